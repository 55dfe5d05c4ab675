"""The exam authority's other screens in Chromium: the timetable with an amendment previewed
before it is made, a spot-check draw refused outside its window (in Chinese), and the
audit trail searched by candidate, showing who looked at the candidate's proof."""

import hashlib

import pytest

from tests.e2e.conftest import desktop, phone
from tests.integration.test_application_flow import SESSION
from tests.integration.test_gateway_flow import PDF, STAFF_PEOPLE

pytestmark = pytest.mark.integration


def test_timetable_amendment_spot_check_and_audit(site_stack, page, shot, axe_check):
    stack, api = site_stack, site_stack.api
    stack.load_session(stack.staff("authority"))
    staff = stack.staff("staff")
    token = stack.candidate("candidate")
    assert stack.apply(token, "candidate", commitment=False).status_code == 201
    stack.wait(lambda: api.get(f"/api/me/applications/{SESSION}", token).json()["status"]
               == "proof_requested")
    assert api.post(f"/api/me/applications/{SESSION}/proof", token, files=[
        ("files", ("工作证明.pdf", PDF, "application/pdf"))]).status_code == 200
    app_id = f"{SESSION}.{stack.accounts['candidate']}"
    stack.wait(lambda: api.get(f"/api/staff/cases/{app_id}", staff).json().get("proof_files"))
    assert api.get(f"/api/staff/cases/{app_id}/proof/{hashlib.sha256(PDF).hexdigest()}",
                   staff).status_code == 200  # one look, by the point's staff

    page.open("/login")
    page.type("username", STAFF_PEOPLE["authority"]["username"])
    page.type("password", STAFF_PEOPLE["authority"]["password"])
    page.click("signin-submit")
    page.wait_route("/authority/sessions")
    page.wait_text("timetable", "2026-04-13 16:00:00")
    shot("timetable")
    axe_check("timetable")

    # the application window closes a day later: previewed, then made
    page.type("amend-end", "2026-04-14 16:00:00")
    preview = page.wait_text("amend-preview", "2026-04-14 16:00:00")
    assert "2026-04-13 16:00:00" in preview  # as it is, beside what it becomes
    page.type("amend-reason", "系统维护顺延一天")
    shot("amendment-preview")
    page.click("amend-submit")
    page.wait_text("amended", "时间安排已调整")
    page.wait_text("timetable", "2026-04-14 16:00:00")
    window = api.get(f"/api/sessions/{SESSION}").json()["windows"]["application"]
    assert window["end"].startswith("2026-04-14T16:00:00")

    # the spot check is drawn only in its window: said in Chinese
    page.open("/authority/spot-check")
    page.click("draw-submit")
    said = page.wait_text("draw-problem", "只能在「抽查复核」时段")
    assert "spot" not in said.lower()
    shot("spot-check-refused")

    # the audit trail, searched by the candidate: the staff member's look at the proof
    page.open("/authority/audit")
    page.type("audit-account", stack.accounts["candidate"])
    page.click("audit-submit")
    trail = page.wait_text("audit", "查看考生材料")
    assert stack.accounts["staff"] in trail and "工作证明.pdf" in trail
    assert STAFF_PEOPLE["staff"]["name"] in trail  # who, by name beside the id
    assert "调整时间" not in trail  # the amendment concerns no candidate
    shot("audit")
    axe_check("audit")

    # on a phone: the session picker and the page fit the screen (no sideways scrolling)
    phone(page.driver)
    page.open("/authority/sessions")
    page.wait_text("timetable", "2026-04-14 16:00:00")
    shot("timetable-phone")
    page.fits_phone("the timetable")
    desktop(page.driver)
