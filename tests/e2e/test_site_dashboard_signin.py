"""One sign-in: an operator signed in on the site opens the dashboard from the site's menu
in the same tab and sees its figures without signing in again; the dashboard renews the
site's own token in place (tokens live 15 s here), so the site is still signed in after."""

import json
import time

import pytest
from selenium.webdriver.common.by import By

from tests.e2e.conftest import ALL_SERVICES, Page
from tests.integration.test_application_flow import SESSION
from tests.integration.test_gateway_dashboard import shows
from tests.integration.test_gateway_flow import STAFF_PEOPLE, start_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def short_lived_site(runner_factory, container_factory, site_config):
    return start_stack(runner_factory, container_factory, site_config, ALL_SERVICES,
                       gateway_config={"GATEWAY_TOKEN_TTL": 15})


def site_session(driver):
    return json.loads(driver.execute_script("return sessionStorage.getItem('kaowu.session')")
                      or "null")


def test_operator_opens_the_dashboard_from_the_site_without_a_second_sign_in(
        short_lived_site, browser, shot):
    stack = short_lived_site
    stack.load_session(stack.staff("authority"))
    stack.staff("operator")
    page = Page(browser, stack.base)

    page.open("/login")
    page.type("username", STAFF_PEOPLE["operator"]["username"])
    page.type("password", STAFF_PEOPLE["operator"]["password"])
    page.click("signin-submit")
    page.wait_route("/ops/dashboard")
    first = site_session(browser)["token"]
    page.click("open-dashboard")

    page.wait(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"),
              what="the dashboard's figures")
    assert not browser.find_element(By.ID, "login").is_displayed()
    shows(browser, {"session.id": SESSION})
    assert browser.find_element(By.ID, "who-name").text == STAFF_PEOPLE["operator"]["name"]
    shot("dashboard-from-the-site")

    # past two token lifetimes: the dashboard renews the site's token, keeps no token of its own
    for _ in range(30):
        stack.clock.advance(seconds=1)
        time.sleep(1)
    assert not browser.find_element(By.ID, "login").is_displayed()
    assert int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-renewed") or 0) >= 2
    renewed = site_session(browser)
    assert renewed["token"] != first and renewed["account"]["role"] == "operator"
    assert browser.execute_script(
        "return sessionStorage.getItem('kaowu.dashboard.token')") is None
    stack.candidate("candidate", complete=False)
    shows(browser, {"funnel.accounts": 1}, timeout=15)

    # back on the site, in the same tab: still signed in with the dashboard's last token
    last = site_session(browser)["token"]
    browser.back()
    page.wait_route("/ops/dashboard")
    page.find("open-dashboard")
    assert site_session(browser)["token"] == last

    # signing out on the dashboard ends the one sign-in
    browser.forward()
    page.wait(lambda d: d.find_element(By.ID, "sign-out").is_displayed(), what="sign-out")
    browser.find_element(By.ID, "sign-out").click()
    page.wait(lambda d: d.find_element(By.ID, "login").is_displayed(), what="the form")
    assert site_session(browser) is None
