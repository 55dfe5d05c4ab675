"""One candidate through a compressed season in Chromium, by clicking and typing only.

The exam authority, the registration point's staff, exam day and the marking centre are
driven over the API (as their own screens are another part of the site); the clock is the
services' ControlledClock, moved from window to window. The candidate registers, fills the
profile (a photo the browser refuses first), applies with the pledge, withdraws it, sends
proof (two files), is rejected, raises an enquiry, is reopened, sends proof again, passes,
is refused confirmation before its window (the refusal shown in Chinese next to the
button), confirms, sees the ticket message outside the printing window and downloads it
inside, sees the scores, downloads the certificate PDF and credential, reads the inbox and
checks the certificate on the public pages. Screenshots: var/screenshots/<test>/.
"""

import base64

import pytest

from shared.pdf import read_pdf
from tests.e2e.conftest import desktop, downloaded, phone
from tests.integration.test_account_flow import jpeg
from tests.integration.test_application_flow import SESSION, at
from tests.integration.test_gateway_flow import PDF

pytestmark = pytest.mark.integration

NAME, ID_NUMBER, MOBILE, USERNAME, PASSWORD = (
    "王建国", "310104198805123455", "13900000001", "wang_2026", "pass2026word")


def sign_in(page):
    page.open("/login")
    page.type("username", USERNAME)
    page.type("password", PASSWORD)
    page.click("signin-submit")
    page.wait_text("signed-in-as", NAME)


def until_status(stack, page, label, timeout=60):
    """Open the status page once the application says ``label`` (the services move on by
    events): waited for over the API with the page's own sign-in, as reloading the page
    every second until then would cost a page load each time."""
    token = page.driver.execute_script("return JSON.parse(sessionStorage['kaowu.session']).token")
    stack.wait(lambda: label in api_app(stack, token)["status_label"], timeout)
    page.open("/status")
    page.wait_text("status-label", label)


def api_app(stack, token):
    return stack.api.get(f"/api/me/applications/{SESSION}", token).json()


def staff_case(stack, staff):
    queue = stack.wait(lambda: stack.api.get("/api/staff/manual-queue", staff).json(), 30)
    return queue[0]["application_id"]


def test_a_candidate_walks_the_whole_season(site_stack, page, browser, shot, axe_check,
                                            downloads, tmp_path):
    stack, api = site_stack, site_stack.api
    authority = stack.staff("authority")
    stack.load_session(authority)
    staff = stack.staff("staff")

    # ---- 注册: the ID number's check digit explained in words; the password rule shown
    page.open("/register")
    shot("register")
    axe_check("register")
    page.type("reg-name", NAME)
    page.type("reg-id-number", ID_NUMBER[:-1] + "6")
    page.click("reg-mobile")  # leaving the field checks it
    page.wait(lambda d: "应为 5" in page.text(), what="the check digit explained")
    assert "GB 11643" in page.text()
    shot("register-wrong-id")
    page.type("reg-id-number", ID_NUMBER)
    page.type("reg-mobile", MOBILE)
    page.type("reg-username", USERNAME)
    page.type("reg-password", "pass")
    rules = {e.get_attribute("data-rule"): e.get_attribute("data-ok")
             for e in browser.find_elements("css selector", "[data-rule]")}
    assert rules == {"length": "false", "letter": "true", "digit": "false", "username": "true"}
    page.type("reg-password", PASSWORD)
    page.type("reg-password2", PASSWORD)
    shot("register-filled")
    page.click("register-submit")

    # ---- 完善个人信息: completeness always in view; the photo checked before upload
    page.wait_route("/profile")
    page.wait_text("completeness-value", "0%")
    shot("profile-photo")
    axe_check("profile")
    wrong = tmp_path / "wrong.jpg"
    wrong.write_bytes(base64.b64decode(jpeg(w=300, h=400)))
    grey = tmp_path / "grey.jpg"
    grey.write_bytes(base64.b64decode(jpeg(bg=(150, 150, 150))))
    right = tmp_path / "photo.jpg"
    right.write_bytes(base64.b64decode(jpeg()))
    page.attach("photo-file", wrong)
    page.wait_text("photo-problems", "须为 295×413 像素")
    shot("photo-wrong-size")
    page.attach("photo-file", grey)
    page.wait_text("photo-problems", "背景须为白色")
    page.attach("photo-file", right)
    page.find("photo-ok")
    page.click("photo-upload")
    page.wait_text("completeness-value", "20%")
    page.find("section-basic")
    assert page.field("birth-date").get_attribute("value") == "1988-05-12"  # from the ID
    page.type("ethnicity", "汉族")
    shot("profile-basic")
    page.click("save")
    page.wait_text("completeness-value", "40%")
    page.find("section-education")
    page.choose("edu-0-level", "本科")
    page.type("edu-0-school", "同济大学")
    page.type("edu-0-major", "测控技术与仪器")
    page.type("edu-0-graduated", "2010-07-01")
    # the certificate the simulated registry (学信网) holds for him: an entry the registry
    # cannot confirm goes to proof and the manual check, whatever the years
    page.type("edu-0-certificate", "102471201005001234")
    page.click("save")
    page.wait_text("completeness-value", "60%")
    page.find("section-work")
    page.type("work-0-employer", "上海市计量测试技术研究院")
    page.type("work-0-position", "工程师")
    page.type("work-0-start", "2012/01/01")  # not a date as asked: said next to it
    page.click("save")
    page.wait(lambda d: "请按“年-月-日”填写日期" in page.text(), what="the date format explained")
    page.type("work-0-start", "2012-01-01")
    page.click("save")
    page.wait_text("completeness-value", "80%")
    page.find("section-contact")
    page.type("email", "wang@example.com")
    page.type("address", "上海市徐汇区桂箐路69号")
    page.click("save")
    page.wait_text("completeness-value", "100%")
    shot("profile-complete")
    page.click("to-apply")

    # ---- 网上报名: the pledge shown whole and signed by typing one's name
    page.wait_route("/apply")
    page.click("level-L1")
    pledge = page.text("pledge-text")
    assert pledge.startswith("本人已认真阅读") and "记入诚信档案" in pledge
    shot("apply")
    axe_check("apply")
    phone(browser)  # on a phone the long choices (免试, 告知承诺制) wrap within the screen
    page.fits_phone("the application form")
    shot("apply-phone")
    desktop(browser)
    page.type("signed-name", "王建民")
    page.click("agreed")
    page.click("apply-submit")
    page.wait(lambda d: "签名须与账号姓名「王建国」一致" in page.text(), what="the signature check")
    page.type("signed-name", NAME)
    page.click("apply-submit")
    page.wait_route("/status")
    until_status(stack, page, "自动核查通过")
    reason = page.text("status-reason")
    # the eligibility rules write their reason in Chinese, years counted to the cut-off inclusive
    assert "报考一级需从事计量技术工作满3年（截至2026年12月31日，含当日）" in reason
    assert "needs" not in reason
    assert "2026-04-18 16:00:00" not in page.text("next-step")  # confirmation opens first
    assert "2026-04-17 10:00:00" in page.text("next-step")
    shot("status-auto-passed")
    axe_check("status")

    # on a phone: the same page, readable
    phone(browser)
    page.driver.refresh()
    page.find("status-label")
    shot("status-phone")
    axe_check("status-phone")
    desktop(browser)

    # ---- the pledge withdrawn: proof, a manual check, an enquiry
    page.driver.refresh()
    page.click("withdraw-sure")
    page.click("withdraw")
    until_status(stack, page, "请提交证明材料")  # verification asks for proof: an event away
    assert "已撤回告知承诺" in page.text("status-reason")  # verification writes it in Chinese
    assert "2026-04-14 16:00:00" in page.text("deadline")  # proof until verification closes
    proof_jpeg = tmp_path / "工作证明.jpg"
    proof_jpeg.write_bytes(base64.b64decode(jpeg()))
    proof_pdf = tmp_path / "学历证书.pdf"
    proof_pdf.write_bytes(PDF)
    not_proof = tmp_path / "notes.txt"
    not_proof.write_text("not a PDF")
    page.attach("proof-files", not_proof)
    page.wait_text("proof-list", "不是 PDF 或 JPEG 文件")
    page.attach("proof-files", proof_pdf, proof_jpeg)
    page.wait_text("proof-list", "工作证明.jpg")
    shot("proof-chosen")
    page.click("proof-submit")
    page.wait_text("status-label", "证明材料已提交", 30)
    shot("proof-sent")

    token = api.login(USERNAME, PASSWORD)  # the test's own view of the candidate's records
    app_id = staff_case(stack, staff)
    r = api.post(f"/api/staff/cases/{app_id}/decision", staff,
                 {"decision": "reject", "reason": "工作证明未加盖单位公章"})
    assert r.status_code == 200, r.text
    until_status(stack, page, "人工核查不通过")
    assert "工作证明未加盖单位公章" in page.text("status-reason")
    page.type("enquiry-text", "我的工作证明已加盖公章，请再次核实。")
    page.click("enquiry-submit")
    page.wait_text("enquiries", "等待报名点答复")
    shot("enquiry-raised")
    enquiry = stack.wait(lambda: api.get("/api/staff/enquiries", staff).json(), 30)[0]
    r = api.post(f"/api/staff/enquiries/{enquiry['enquiry_id']}/answer", staff,
                 {"answer": "请上传加盖公章的工作证明原件扫描件。", "reopen": True})
    assert r.status_code == 200, r.text
    until_status(stack, page, "请提交证明材料")
    page.wait_text("enquiries", "请上传加盖公章的工作证明原件扫描件")
    assert "2026-04-18 16:00:00" in page.text("deadline")  # reopened: until confirmation closes
    page.attach("proof-files", proof_pdf)
    page.click("proof-submit")
    page.wait_text("status-label", "证明材料已提交", 30)
    staff_case(stack, staff)
    r = api.post(f"/api/staff/cases/{app_id}/decision", staff, {"decision": "pass"})
    assert r.status_code == 200, r.text
    until_status(stack, page, "人工核查通过")
    shot("manual-passed")

    # ---- 核对确认 before its window: the API's refusal, in Chinese, next to the button
    page.open("/confirm")
    page.click("confirm-checked")
    page.click("confirm-submit")
    said = page.wait_text("confirm-error", "核对确认")
    assert "2026-04-17 10:00:00" in said and "window" not in said and "{" not in said
    shot("confirm-refused")

    stack.clock.set(at(2026, 4, 17, 10, 0))
    stack.wait(lambda: api_app(stack, api.login(USERNAME, PASSWORD))["status"] == "eligible", 30)
    sign_in(page)  # the old sign-in ended with the clock's jump
    until_status(stack, page, "资格核查通过")
    page.click("next-action")
    page.wait_route("/confirm")
    summary = page.wait_text("confirm-summary", NAME)
    assert NAME in summary and "一级" in summary and "计量专业案例分析" in summary
    shot("confirm-summary")
    axe_check("confirm")
    page.click("confirm-checked")
    page.click("confirm-submit")
    page.find("confirmed")
    shot("confirmed")

    # ---- 准考证: a clear message outside the printing window; the PDF inside it
    stack.clock.set(at(2026, 4, 18, 16, 0, 1))
    token = api.login(USERNAME, PASSWORD)
    ticket = stack.wait(lambda: (t := api.get(f"/api/me/tickets/{SESSION}", token)).status_code == 200
                        and t.json().get("seat") and t.json(), 30)
    sign_in(page)
    page.open("/ticket")
    page.wait_text("ticket-closed", "打印准考证时段尚未开始")
    assert "2026-06-10 10:00:00" in page.text("ticket-closed")
    shot("ticket-before-window")
    stack.clock.set(at(2026, 6, 10, 10, 0))
    sign_in(page)
    page.open("/ticket")
    page.wait_text("ticket-number", ticket["ticket_number"])
    axe_check("ticket")
    page.click("ticket-download")
    page.find("ticket-downloaded")
    pdf = read_pdf(downloaded(downloads, ".pdf").read_bytes())
    assert NAME in pdf.text and ticket["ticket_number"] in pdf.text
    page.wait_text("ticket-status", "准考证已打印")
    shot("ticket-downloaded")

    # ---- exam day and the marking centre (the authority's side, over the API)
    for when, subject in ((at(2026, 6, 13, 8, 45), "L1-LAW"), (at(2026, 6, 13, 13, 45), "L1-DATA"),
                          (at(2026, 6, 14, 8, 45), "L1-CASE")):
        stack.clock.set(when)
        authority = api.login("authority1", "Auth0rity1")
        r = api.post("/api/authority/check-in", authority, {
            "ticket_number": ticket["ticket_number"], "id_type": "resident_id",
            "id_number": ID_NUMBER, "subject": subject})
        assert r.status_code == 200, r.text
    stack.clock.set(at(2026, 7, 1, 10, 0))
    authority = api.login("authority1", "Auth0rity1")
    n = ticket["ticket_number"]
    csv = f"ticket_number,subject,score\n{n},L1-LAW,90\n{n},L1-DATA,88\n{n},L1-CASE,75\n"
    r = api.post(f"/api/authority/sessions/{SESSION}/scores", authority, data=csv.encode(),
                 headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text

    # ---- 成绩: pass or fail per subject, and how long the passes count
    stack.clock.set(at(2026, 8, 15, 9, 0, 1))
    token = api.login(USERNAME, PASSWORD)
    stack.wait(lambda: api.get(f"/api/me/results/{SESSION}", token).status_code == 200, 30)
    sign_in(page)
    page.open("/scores")
    page.wait_text("scores-table", "计量专业案例分析")
    for code in ("L1-LAW", "L1-DATA", "L1-CASE"):
        assert page.text(f"result-{code}") == "合格"
    validity = page.text("validity")
    assert "连续 3 个考试年度" in validity and "2026–2028" in validity
    page.find("qualified")
    shot("scores")
    axe_check("scores")
    page.open("/me")
    page.wait_text("home-status", "已核对确认")
    shot("home")
    axe_check("home")
    phone(browser)  # the timetable on a phone: each time whole, the break between the two
    page.driver.refresh()
    page.find("timetable")
    times = browser.execute_script(
        "return [...document.querySelectorAll('[data-test=timetable] .when')]"
        ".map(e => e.getClientRects().length)")
    assert times and set(times) == {1}, times
    shot("home-phone")
    desktop(browser)

    # ---- 证书: PDF and credential, the pickup notice
    certs = stack.wait(lambda: api.get("/api/me/certificates", token).json(), 30)
    number = certs[0]["certificate_number"]
    stack.clock.set(at(2026, 9, 15, 10, 0))
    authority = api.login("authority1", "Auth0rity1")
    r = api.post(f"/api/authority/sessions/{SESSION}/pickup-notices", authority, {
        "place": "上海市计量协会培训部（徐汇区桂箐路69号）", "start": "2026-10-08T09:00:00+08:00",
        "end": "2026-10-30T16:00:00+08:00", "text": "请携带身份证原件领取纸质证书。"})
    assert r.status_code == 201, r.text
    sign_in(page)
    page.open("/certificates")
    page.wait_text("certificate-number", number)
    page.wait_text("pickup", "请携带身份证原件领取纸质证书")
    assert "2026-10-08 09:00:00" in page.text("pickup")
    page.click("certificate-pdf")
    page.find("certificate-downloaded")
    pdf = read_pdf(downloaded(downloads, f"{number}.pdf").read_bytes())
    assert number in pdf.text and NAME in pdf.text
    page.click("certificate-vc")
    page.wait(lambda d: any(p.suffix == ".jwt" for p in downloads.iterdir()), what="the credential")
    vc = downloaded(downloads, ".jwt").read_text()
    assert api.post("/api/verify", body={"credential": vc}).json()["result"] == "valid"
    shot("certificates")
    axe_check("certificates")

    # ---- 站内信: unread counts, read on opening
    page.open("/inbox")
    page.wait(lambda d: page.text("unread-count") != "（未读 0 条）", what="unread messages")
    before = int(page.text("unread-count").strip("（未读 条）"))
    shot("inbox")
    axe_check("inbox")
    page.driver.find_elements("css selector", '[data-test^="message-"] ')[0].click()
    page.find("message-body")
    page.wait_text("unread-count", f"未读 {before - 1} 条")
    shot("inbox-read")

    # ---- the public pages: the number check and the QR code's page, in the same look
    page.click("sign-out")
    page.wait_route("/login")  # signed out: its own navigation done, not racing ours
    page.open("/verify")
    page.type("verify-number", number)
    page.click("verify-submit")
    page.wait_text("verify-result", "有效")
    result = page.text("verify-result")
    issuer = api.get("/issuer").json()["name"]
    issued = certs[0]["issued_at"]
    assert f"发证机构\n{issuer}" in result and "王*国" in result
    assert "发证时间\n2026-08-15 09:00:01（北京时间）" in result, (issued, result)
    shot("verify")
    axe_check("verify")
    verify_url = certs[0]["verify_url"]
    browser.get(stack.base + "/verify/" + verify_url.rsplit("/", 1)[1])
    page.wait(lambda d: "有效 Valid" in page.text(), what="the verification page")
    text = page.text()
    assert issuer in text and "该证书由考试机构颁发" in text and "（北京时间）" in text
    assert ".000" not in text and "+00:00" not in text
    shot("verify-qr-page")
    axe_check("verify-qr-page")
