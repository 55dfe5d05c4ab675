"""A registration point's staff member at work in Chromium: the manual-check queue with how
long each candidate has waited, a case page with the candidate's profile, photo, the
reasons proof was asked for and the proof itself shown in the page (a JPEG as an image, a
PDF in a frame, both from blob: URLs under the site's CSP), a decision taken while looking
at it, and a decision outside the point's service hours refused in Chinese, naming them."""

import base64
import hashlib

import pytest
from selenium.webdriver.common.by import By

from tests.e2e.conftest import desktop, phone
from tests.integration.test_account_flow import jpeg
from tests.integration.test_application_flow import SESSION, at
from tests.integration.test_gateway_flow import PDF, STAFF_PEOPLE

pytestmark = pytest.mark.integration


def sign_in(page, key):
    page.open("/login")
    page.type("username", STAFF_PEOPLE[key]["username"])
    page.type("password", STAFF_PEOPLE[key]["password"])
    page.click("signin-submit")


def test_staff_decide_a_case_while_looking_at_its_proof(site_stack, page, browser, shot,
                                                        axe_check):
    stack, api = site_stack, site_stack.api
    stack.load_session(stack.staff("authority"))
    stack.staff("staff")
    scan = base64.b64decode(jpeg())
    queue_rpc = {"staff_id": "t", "registration_point": "2916"}
    for key in ("candidate", "other_candidate"):
        token = stack.candidate(key)
        assert stack.apply(token, key, commitment=False).status_code == 201
        stack.wait(lambda token=token: api.get(f"/api/me/applications/{SESSION}", token)
                   .json()["status"] == "proof_requested")
        files = [("files", ("工作证明.pdf", PDF, "application/pdf"))]
        if key == "candidate":
            files.append(("files", ("学历证书.jpg", scan, "image/jpeg")))
        r = api.post(f"/api/me/applications/{SESSION}/proof", token, files=files)
        assert r.status_code == 200, r.text
        waiting = 1 if key == "candidate" else 2
        stack.wait(lambda n=waiting: len(stack.rpc("verification", "manual_queue", queue_rpc,
                                                   SESSION)) == n)
        stack.clock.advance(minutes=1)  # 王建国's proof came first
    first = f"{SESSION}.{stack.accounts['candidate']}"

    # 11:20, in the point's service hours (09:30–11:30)
    stack.clock.set(at(2026, 4, 7, 11, 20))
    sign_in(page, "staff")
    page.wait_route("/staff/queue")
    page.wait_text("manual-queue", "王建国")
    queue = page.text("manual-queue")
    assert "李敏" in queue and "50分钟" in queue  # his proof came at 10:30
    assert queue.index("王建国") < queue.index("李敏")  # oldest first
    shot("queue")
    axe_check("queue")

    page.click("open-case")
    page.wait_route("/staff/cases/")
    page.wait_text("candidate-name", "王建国")
    page.wait_text("subjects", "计量法律法规及综合知识")  # subjects by name, not code
    assert "L1-" not in page.text("subjects")
    page.wait_text("reasons", "未选择告知承诺制")
    # the latest file first: the JPEG, as an image drawn from a blob: URL
    img = page.find("proof-image")
    page.wait(lambda d: d.execute_script("return arguments[0].complete && "
                                         "arguments[0].naturalWidth", img) == 295,
              what="the proof image drawn")
    assert img.get_attribute("src").startswith("blob:")
    assert img.get_attribute("data-type") == "image/jpeg"
    phone(browser)  # a point's staff on a phone: the case fits the screen
    page.fits_phone("the case page")
    shot("case-phone")
    desktop(browser)
    page.wait(lambda d: d.execute_script(
        "const p = document.querySelector('[data-test=photo]'); "
        "return p && p.complete && p.naturalWidth"), what="the candidate's photo")
    shot("case-with-jpeg-proof")
    axe_check("case")
    # the PDF, in a frame, as the gateway typed it
    page.click(f"proof-{hashlib.sha256(PDF).hexdigest()[:12]}")
    frame = page.find("proof-pdf")
    assert frame.get_attribute("src").startswith("blob:")
    assert (frame.get_attribute("data-type"), frame.get_attribute("data-size")) == (
        "application/pdf", str(len(PDF)))
    shot("case-with-pdf-proof")

    # the decision, taken while the proof is on the screen
    page.type("reason", "工作证明与学历证书核实无误")
    page.click("submit-decision")
    page.wait_text("decided", "核查通过")
    page.wait_text("case-status", "核查通过")
    assert stack.rpc("verification", "get_case", first)["status"] == "passed"
    shot("decided")

    # every look is in the audit trail, under this staff member
    trail = stack.rpc("registration", "audit_trail", {"staff_id": "a"},
                      {"application_id": first})
    looks = [e["what"] for e in trail if e["action"] == "document_viewed"]
    assert "viewed the candidate's profile" in looks and "viewed the candidate's photo" in looks
    assert sum(w.startswith("viewed proof file") for w in looks) == 2
    assert {e["staff_id"] for e in trail} == {stack.accounts["staff"]}

    # 11:31: the point has closed for lunch; a decision is refused, saying so in Chinese
    stack.clock.set(at(2026, 4, 7, 11, 31))
    page.open("/staff/queue")
    page.wait_text("manual-queue", "李敏")
    page.click("open-case")
    page.wait_text("candidate-name", "李敏")
    page.find("proof-pdf")
    page.click("decision-reject")
    page.type("reason", "工作证明未盖章")
    page.click("submit-decision")
    said = page.wait_text("refusal", "不在本报名点的服务时间内")
    assert "09:30-11:30、13:30-16:00" in said and "抽查复核期间不办理" in said
    assert not any(w in said for w in ("during", "refused", "out_of_service"))
    assert browser.find_elements(By.CSS_SELECTOR, "[data-test=decided]") == []
    shot("refused-out-of-hours")
