"""找回密码 in Chromium: a code sent by SMS (the development sink) resets the password; a
wrong code is explained next to its field in Chinese; the sign-in open in another tab ends
and says why; the new password signs in."""

import re

import pytest

from services.notification.gateway import read_sink
from tests.integration.test_gateway_flow import CANDIDATES, PASSWORD

pytestmark = pytest.mark.integration

NEW_PASSWORD = "Reset2026pw"


def test_a_forgotten_password_is_reset_by_sms(site_stack, site_config, page, browser, shot,
                                               axe_check):
    api = site_stack.api
    name, id_number, mobile, username = CANDIDATES["candidate"]
    assert api.post("/api/accounts", body={"name": name, "id_type": "resident_id",
                                           "id_number": id_number, "mobile": mobile,
                                           "username": username, "password": PASSWORD}
                    ).status_code == 201

    # signed in in this tab
    page.open("/login")
    page.type("username", username)
    page.type("password", PASSWORD)
    page.click("signin-submit")
    page.wait_text("signed-in-as", name)
    first = browser.current_window_handle
    site_stack.clock.advance(seconds=2)  # the services' clock stands still otherwise

    # another tab (its own session storage): 忘记密码
    browser.switch_to.new_window("tab")
    page.open("/login")
    page.click("to-reset")
    page.wait_route("/password-reset")
    shot("reset-start")
    axe_check("reset-start")
    page.type("reset-username", username)
    page.type("reset-mobile", mobile)
    page.click("reset-start")
    page.find("reset-sent")

    def code():
        sent = [re.search(r"验证码：(\d{6})", r["text"])
                for r in read_sink(site_config["SMS_SINK_PATH"]) if "验证码" in r["text"]]
        return sent[-1].group(1) if sent else None

    right = site_stack.wait(code, 30)
    page.type("reset-code", f"{(int(right) + 1) % 10**6:06d}")
    page.type("reset-password", NEW_PASSWORD)
    page.type("reset-password2", NEW_PASSWORD)
    page.click("reset-finish")
    page.wait(lambda d: "验证码不正确、已过期或已使用" in page.text(), what="the wrong code explained")
    said = page.text()
    assert "invalid" not in said and "{" not in said
    shot("reset-wrong-code")
    axe_check("reset-finish")
    page.type("reset-code", right)
    page.click("reset-finish")
    page.find("reset-done")
    shot("reset-done")

    # the first tab's sign-in has ended: its next request says so
    browser.close()
    browser.switch_to.window(first)
    page.open("/profile")
    page.wait_route("/login")
    page.wait_text("expired", "密码已修改或重置")
    shot("signed-out-elsewhere")

    page.type("username", username)
    page.type("password", PASSWORD)
    page.click("signin-submit")
    page.wait_text("signin-error", "用户名或密码不正确")
    page.type("password", NEW_PASSWORD)
    page.click("signin-submit")
    page.wait_text("signed-in-as", name)
