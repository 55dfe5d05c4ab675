"""The web site's shell in Chromium: the gateway serves it under its Content-Security-Policy,
anyone signs in on one page and lands on their role's home, a wrong password is explained
in Chinese next to the button, and the session's end sends the browser back to sign in."""

import pytest
import requests
from selenium.webdriver.common.keys import Keys

from services.gateway.web import PAGE_CSP
from tests.e2e.conftest import desktop, phone
from tests.integration.test_gateway_flow import CANDIDATES, PASSWORD, STAFF_PEOPLE, start_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway_alone(runner_factory, container_factory, site_config):
    """The gateway without the services: the site's files need none of them."""
    return start_stack(runner_factory, container_factory, site_config, [])


def test_the_gateway_serves_the_site(gateway_alone):
    index = requests.get(gateway_alone.base + "/", timeout=10)
    assert index.status_code == 200 and '<div id="app">' in index.text
    assert index.headers["Content-Security-Policy"] == PAGE_CSP
    assert "'unsafe-inline'" not in PAGE_CSP and "'unsafe-eval'" not in PAGE_CSP
    assert index.headers["Cache-Control"] == "no-cache"
    script = index.text.split('src="', 1)[1].split('"', 1)[0]
    asset = requests.get(gateway_alone.base + script, timeout=10)
    assert asset.status_code == 200
    assert asset.headers["Content-Type"].startswith("text/javascript")
    assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    for bad in ("/assets/nothing.js", "/assets/..%2f..%2fservice.py", "/assets/../index.html"):
        r = requests.get(gateway_alone.base + bad, timeout=10)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", bad


def test_sign_in_lands_each_role_on_its_home(site_stack, page, browser, shot, axe_check):
    api = site_stack.api
    name, id_number, mobile, username = CANDIDATES["candidate"]
    r = api.post("/api/accounts", body={"name": name, "id_type": "resident_id",
                                        "id_number": id_number, "mobile": mobile,
                                        "username": username, "password": PASSWORD})
    assert r.status_code == 201, r.text
    site_stack.staff("staff")

    page.open("/")
    page.wait_route("/login")
    shot("sign-in")
    axe_check("sign-in")

    # a wrong password: said in Chinese next to the button, never the API's English or code
    page.type("username", username)
    page.type("password", "wrong-password-1")
    page.click("signin-submit")
    said = page.wait_text("signin-error", "用户名或密码不正确")
    assert "unauthorized" not in said and "{" not in said
    shot("wrong-password")

    # by keyboard: Tab from the username to the password, Space ticks 记住用户名, Enter signs in
    page.field("username").click()
    active = browser.switch_to.active_element
    active.send_keys(Keys.TAB)
    browser.switch_to.active_element.send_keys(Keys.CONTROL, "a")
    browser.switch_to.active_element.send_keys(PASSWORD)
    assert page.field("password").get_attribute("value") == PASSWORD
    for _ in range(5):  # past the show-password toggle to the checkbox
        browser.switch_to.active_element.send_keys(Keys.TAB)
        if browser.switch_to.active_element.get_attribute("type") == "checkbox":
            break
    browser.switch_to.active_element.send_keys(Keys.SPACE)
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    page.wait_route("/me")
    page.wait_text("signed-in-as", f"{name}（考生）")
    shot("candidate-home")
    axe_check("candidate-home")

    # the username is remembered for the next visit; the password is not kept by the page
    page.click("sign-out")
    page.wait_route("/login")
    assert page.field("username").get_attribute("value") == username
    assert page.field("password").get_attribute("value") == ""
    stored = browser.execute_script("return JSON.stringify(localStorage)")
    assert PASSWORD not in stored

    # staff sign in on the same page
    page.type("username", STAFF_PEOPLE["staff"]["username"])
    page.type("password", STAFF_PEOPLE["staff"]["password"])
    page.click("signin-submit")
    page.wait_text("signed-in-as", "李老师（报名点工作人员）")
    assert not page.route().startswith("#/me")
    shot("staff-signed-in")

    # on a phone: the same page, readable
    page.click("sign-out")
    phone(browser)
    page.wait_route("/login")
    page.find("signin-submit")
    shot("sign-in-phone")
    axe_check("sign-in-phone")
    desktop(browser)


def test_an_expired_sign_in_goes_back_to_the_sign_in_page(site_stack, page, shot):
    site_stack.staff("authority")
    page.open("/login")
    page.type("username", STAFF_PEOPLE["authority"]["username"])
    page.type("password", STAFF_PEOPLE["authority"]["password"])
    page.click("signin-submit")
    page.wait_text("signed-in-as", "考试机构")
    page.open("/account")
    site_stack.clock.advance(minutes=16)  # tokens live 15 minutes of the gateway's clock
    page.type("old-password", STAFF_PEOPLE["authority"]["password"])
    page.type("new-password", "Another2026pw")
    page.click("change-password")
    page.wait_route("/login")
    page.find("expired")
    shot("expired")
