"""The exam authority imports the marking centre's scores in Chromium: a refused file comes
back with its row-by-row report in Chinese (nothing stored), then the corrected file is
imported and its results listed."""

import pytest

from tests.integration.test_application_flow import SESSION, at
from tests.integration.test_gateway_flow import STAFF_PEOPLE

pytestmark = pytest.mark.integration

AUTHORITY = {"staff_id": "authority-e2e"}
SUBJECTS = ("L1-LAW", "L1-DATA", "L1-CASE")
SITTINGS = {"L1-LAW": (2026, 6, 13, 8, 45), "L1-DATA": (2026, 6, 13, 13, 45),
            "L1-CASE": (2026, 6, 14, 8, 45)}


def seated_candidate(stack):
    """One candidate through application, confirmation, printing and both exam days: the
    ticket number."""
    token = stack.candidate("candidate")
    assert stack.apply(token, "candidate").status_code == 201
    account = stack.accounts["candidate"]
    # The spot check's close passes through, once, the cases verification has opened by
    # then: wait for the automatic check before moving past it (the relay delivers the
    # application in its next batch, not at once).
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
    for subject in SUBJECTS:
        stack.clock.set(at(*SITTINGS[subject]))
        stack.rpc("admission", "check_in", AUTHORITY, {
            "ticket_number": number, "id_type": "resident_id",
            "id_number": "310104198805123455", "subject": subject})
    return number


def test_the_authority_imports_a_refused_then_a_good_score_file(site_stack, page, shot,
                                                                axe_check, tmp_path):
    stack = site_stack
    stack.staff("authority")
    stack.load_session(stack.api.login(STAFF_PEOPLE["authority"]["username"],
                                       STAFF_PEOPLE["authority"]["password"]))
    number = seated_candidate(stack)
    stack.clock.set(at(2026, 7, 1, 10, 0))  # the exam is over; scores not yet published
    stack.wait(lambda: stack.rpc("scoring", "status")["tracking"].get("admission", 0)
               >= stack.rpc("admission", "status")["head"], timeout=30)
    bad = tmp_path / "成绩-有误.csv"
    bad.write_text(f"ticket_number,subject,score\n{number},L1-LAW,130\n{number},L1-DATA,88\n"
                   f"NOPE,L1-LAW,70\n{number},L1-DATA,90\n", encoding="utf-8")
    good = tmp_path / "成绩.csv"
    good.write_text(f"ticket_number,subject,score\n{number},L1-LAW,90\n{number},L1-DATA,88\n"
                    f"{number},L1-CASE,75\n", encoding="utf-8")
    head = stack.store("scoring").head()

    page.open("/login")
    page.type("username", STAFF_PEOPLE["authority"]["username"])
    page.type("password", STAFF_PEOPLE["authority"]["password"])
    page.click("signin-submit")
    page.wait(lambda d: "/authority" in d.execute_script("return location.hash"))
    page.open("/authority/scores")
    page.wait_text("session", SESSION)  # the latest session, chosen at first
    page.attach("score-file", bad)
    page.wait(lambda d: bad.name in page.text(), what="the chosen file's name beside the button")
    page.click("import")
    report = page.wait_text("row-report", "第 2 行")
    assert "分数 130 超出范围（L1-LAW 满分 120）" in report
    assert "准考证号 NOPE 不存在" in report and "第 4 行" in report
    assert "与第 3 行重复" in report.split("第 5 行")[1]
    assert "未导入" in page.text("refused") and "未保存任何成绩" in page.text("refused")
    assert "row" not in report and "unknown" not in report
    assert stack.store("scoring").head() == head  # nothing stored
    shot("refused-file")
    axe_check("refused-file")

    page.attach("score-file", good)
    page.click("import")
    said = page.wait_text("imported", "已导入")
    assert "3 行" in said and "1 名考生" in said
    page.click("show-results")
    results = page.wait_text("results", number)
    assert "90" in results and "75" in results
    shot("imported")
