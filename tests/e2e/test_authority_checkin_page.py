"""The exam authority checks a candidate in at the door (考场签到) in Chromium: finds the
ticket holder by name, is refused in Chinese next to the action for a sitting whose check-in
has not opened and for a document that does not match, then checks the candidate in."""

import pytest

from tests.integration.test_application_flow import SESSION, at
from tests.integration.test_gateway_flow import CANDIDATES, STAFF_PEOPLE

pytestmark = pytest.mark.integration

ID_NUMBER = CANDIDATES["candidate"][1]


def ticket_holder(stack) -> str:
    """One candidate through application, confirmation and printing: the ticket number."""
    token = stack.candidate("candidate")
    assert stack.apply(token, "candidate").status_code == 201
    account = stack.accounts["candidate"]
    stack.wait(lambda: stack.rpc("registration", "get_application", account, SESSION)
               ["status"] == "auto_passed", timeout=30)
    stack.clock.set(at(2026, 4, 17, 10, 0))  # past the spot check: passed through
    stack.wait(lambda: stack.rpc("registration", "get_application", account, SESSION)
               ["status"] == "eligible", timeout=30)
    stack.rpc("registration", "confirm_application", account, SESSION)
    stack.clock.set(at(2026, 4, 18, 16, 0, 1))  # confirmation closes: seats and tickets

    def ticket():
        try:
            t = stack.rpc("admission", "get_ticket", account, SESSION)
        except Exception:
            return None
        return t if t.get("seat") else None

    number = stack.wait(ticket, timeout=30)["ticket_number"]
    stack.clock.set(at(2026, 6, 10, 10, 0))
    stack.rpc("admission", "download_ticket", account, SESSION)
    return number


def test_the_authority_checks_a_candidate_in(site_stack, page, shot, axe_check):
    stack = site_stack
    stack.staff("authority")
    stack.load_session(stack.api.login(STAFF_PEOPLE["authority"]["username"],
                                       STAFF_PEOPLE["authority"]["password"]))
    number = ticket_holder(stack)
    stack.clock.set(at(2026, 6, 13, 8, 40))  # the first sitting (L1-LAW) admits from 07:45

    page.open("/login")
    page.type("username", STAFF_PEOPLE["authority"]["username"])
    page.type("password", STAFF_PEOPLE["authority"]["password"])
    page.click("signin-submit")
    page.wait(lambda d: "/authority" in d.execute_script("return location.hash"))
    page.open("/authority/check-in")
    page.wait_text("session", SESSION)
    page.wait_text("sitting", "正在签到")  # the sitting now checking in is chosen at first
    page.type("search", "王建")
    page.click("search-submit")
    roster = page.wait_text("roster", number)
    assert "王建国" in roster and "号" in roster and ID_NUMBER not in roster  # masked
    assert page.text(f"state-{number}") == "未签到"
    shot("roster")
    axe_check("roster")

    # tomorrow's sitting: its check-in has not opened
    page.choose("subject", "计量专业案例分析（L1-CASE）")
    page.type(f"id-{number}", ID_NUMBER)
    page.click(f"check-in-{number}")
    said = page.wait_text(f"row-error-{number}", "尚未开始签到")
    assert "L1-CASE" in said and "北京时间" in said and "Check-in" not in said
    shot("refused-not-open")

    # today's: a document that is not the candidate's
    page.choose("subject", "计量法律法规及综合知识（L1-LAW）·签到中")
    page.type(f"id-{number}", "31011519920315002X")
    page.click(f"check-in-{number}")
    said = page.wait_text(f"row-error-{number}", "证件与准考证上的考生不一致")
    assert "document" not in said
    shot("refused-document")

    page.type(f"id-{number}", ID_NUMBER)
    page.click(f"check-in-{number}")
    page.wait_text(f"row-done-{number}", "已签到")
    page.wait_text(f"state-{number}", "已签到")
    shot("checked-in")
    counts = stack.rpc("admission", "admission_counts", SESSION)
    assert counts["checked_in"] == 1
