"""疑问核实 in Chromium: a candidate rejected at manual check asks why; the point's staff
member sees the enquiry with the case's reason, answers it reopening the case, and the
candidate may send proof again."""

import pytest

from tests.integration.test_application_flow import SESSION
from tests.integration.test_gateway_flow import PDF, STAFF_PEOPLE

pytestmark = pytest.mark.integration


def test_staff_answer_an_enquiry_and_reopen_the_case(site_stack, page, shot, axe_check):
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
    stack.wait(lambda: api.get("/api/staff/manual-queue", staff).json())
    r = api.post(f"/api/staff/cases/{app_id}/decision", staff,
                 {"decision": "reject", "reason": "工作证明未盖章", "final": True})
    assert r.status_code == 200, r.text
    r = api.post(f"/api/me/applications/{SESSION}/enquiries", token,
                 {"text": "工作证明已盖章，请再核实。"})
    assert r.status_code == 201, r.text

    page.open("/login")
    page.type("username", STAFF_PEOPLE["staff"]["username"])
    page.type("password", STAFF_PEOPLE["staff"]["password"])
    page.click("signin-submit")
    page.wait_route("/staff/queue")
    page.open("/staff/enquiries")
    said = page.wait_text("enquiry", "工作证明已盖章，请再核实。")
    assert "王建国" in said and "工作证明未盖章" in said and "报名终止" in said
    shot("enquiry")
    axe_check("enquiries")
    page.type("answer", "已核实盖章页，请重新上传清晰的扫描件。")
    page.click("reopen")
    page.click("send-answer")
    page.wait_text("answered", "已答复王建国的疑问")
    shot("answered")
    stack.wait(lambda: api.get(f"/api/me/applications/{SESSION}", token).json()["status"]
               == "proof_requested")
    assert api.get("/api/staff/enquiries", staff).json() == []
