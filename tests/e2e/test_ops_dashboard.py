"""The operator dashboard (运维看板), the web site's page /#/dashboard, in headless Chromium.

Its figures must equal what the services' read models say (read here over their RPCs and
from their stores directly). Admission, scoring, certificate and notification are not
running at first: the page shows them as unavailable and everything else as usual; started
later, they appear on the page's next refresh. On a wall screen (``?wall=1``, no site menus)
it stays signed in past its token's lifetime (tokens live 6 s here), says when its figures
are stale (the network cut) and recovers; it fits a phone.
"""

import time

import pytest
from nameko.testing.services import entrypoint_hook
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from services.account.service import AccountService
from services.admission.service import AdmissionService
from services.certificate.service import CertificateService
from services.notification.service import NotificationService
from services.registration.service import RegistrationService
from services.scoring.service import ScoringService
from services.verification.service import VerificationService
from shared.dependencies import EventStoreProvider
from shared.session import WINDOW_LABELS
from tests.e2e.conftest import Page, desktop, phone
from tests.integration.test_application_flow import SESSION
from tests.integration.test_gateway_flow import PDF, STAFF_PEOPLE, start_stack

pytestmark = pytest.mark.integration

UNAVAILABLE = "不可用 unavailable"
FIRST = (AccountService, RegistrationService, VerificationService)
LATE = (AdmissionService, ScoringService, CertificateService, NotificationService)
WALL = (1920, 1080)


@pytest.fixture
def stack(runner_factory, container_factory, site_config):
    return start_stack(runner_factory, container_factory, site_config, list(FIRST))


@pytest.fixture
def short_lived(runner_factory, container_factory, site_config):
    """Tokens that live 6 s (on the controlled clock)."""
    return start_stack(runner_factory, container_factory, site_config, list(FIRST),
                       gateway_config={"GATEWAY_TOKEN_TTL": 6})


def figure(driver, name):
    return driver.find_element(By.CSS_SELECTOR, f'[data-figure="{name}"]').text


def figures(driver, prefix):
    """Every ``data-figure`` under ``prefix.`` on the page, as text."""
    for _ in range(5):
        try:
            return {el.get_attribute("data-figure")[len(prefix) + 1:]: el.text
                    for el in driver.find_elements(By.CSS_SELECTOR, f'[data-figure^="{prefix}."]')}
        except StaleElementReferenceException:
            continue
    raise AssertionError("the page kept redrawing")


def shows(driver, expected: dict, timeout=30):
    """Wait until each figure on the page reads as expected (the page refreshes every 5 s)."""
    def check(d):
        return all(figure(d, k) == str(v) for k, v in expected.items())
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.25,
                      ignored_exceptions=(StaleElementReferenceException,
                                          NoSuchElementException)).until(check)
    except Exception:
        seen = {}
        for k in expected:
            try:
                seen[k] = figure(driver, k)
            except NoSuchElementException:
                seen[k] = None
        raise AssertionError(f"the page shows {seen}, expected {expected}") from None


def agree(driver, prefix, read, timeout=20):
    """Wait until the page's ``prefix`` table equals what ``read()`` (the service, asked
    now) says: figures that move (SMS being sent) are compared as they settle."""
    deadline = time.monotonic() + timeout
    while True:
        want = {k: str(v) for k, v in read().items() if not isinstance(v, (dict, bool))}
        shown = figures(driver, prefix)
        if shown == want or time.monotonic() > deadline:
            assert shown == want, prefix
            return
        time.sleep(0.5)


def bars(driver, attribute="data-value"):
    """The arrivals chart's bars: ``{(hour, series): attribute}``."""
    for _ in range(5):
        try:
            return {(r.get_attribute("data-hour"), r.get_attribute("data-series")):
                    r.get_attribute(attribute)
                    for r in driver.find_elements(By.CSS_SELECTOR, "#arrivals svg rect")}
        except StaleElementReferenceException:
            continue
    raise AssertionError("the chart kept redrawing")


def board(driver):
    return driver.find_element(By.CSS_SELECTOR, '[data-test="dashboard"]')


def loaded(page):
    """Wait for the dashboard's figures (its first refresh)."""
    page.wait(lambda d: int(board(d).get_attribute("data-loaded") or 0) > 0,
              what="the dashboard's figures")


def sign_in(page, who="operator"):
    page.type("username", STAFF_PEOPLE[who]["username"])
    page.type("password", STAFF_PEOPLE[who]["password"])
    page.click("signin-submit")


def store_of(stack, name):
    container = next(c for c in stack.runner.containers if c.service_name == name)
    return next(d for d in container.dependencies if isinstance(d, EventStoreProvider)).store


def test_dashboard_shows_the_projections(stack, browser, shot, axe_check, container_factory,
                                         site_config):
    api = stack.api
    authority = stack.staff("authority")
    stack.staff("operator")
    stack.load_session(authority)
    token = stack.candidate("candidate")
    stack.candidate("other_candidate", complete=False)
    assert stack.apply(token, "candidate", commitment=False).status_code == 201
    stack.wait(lambda: api.get(f"/api/me/applications/{SESSION}", token).json()["status"]
               == "proof_requested")
    assert api.post(f"/api/me/applications/{SESSION}/proof", token,
                    files=[("files", ("证明.pdf", PDF, "application/pdf"))]).status_code == 200
    staff = {"staff_id": "t", "registration_point": "2916"}
    stack.wait(lambda: stack.rpc("verification", "manual_queue", staff, SESSION))

    # the old address (a bookmark, the README) leads to the site's page, through its sign-in
    page = Page(browser, stack.base)
    browser.get(stack.base + "/dashboard")
    page.wait_route("/login")
    sign_in(page)
    page.wait_route("/dashboard")
    loaded(page)

    # what the services' read models say, asked directly
    accounts = stack.rpc("account", "account_counts")
    applications = stack.rpc("registration", "application_counts", SESSION)
    assert stack.rpc("verification", "case_counts", SESSION) == {"awaiting_manual": 1}
    queue = stack.rpc("verification", "manual_queue", staff, SESSION)
    assert accounts["accounts"] == 2 and accounts["complete_profiles"] == 1  # the setup's
    assert applications == {"proof_submitted": 1} and len(queue) == 1

    shows(browser, {
        "session.id": SESSION, "session.phase": WINDOW_LABELS["application"],
        "deadline.kind": "closes", "deadline.at": "2026-04-13T16:00:00+08:00",
        "funnel.accounts": accounts["accounts"],
        "funnel.complete_profiles": accounts["complete_profiles"],
        "funnel.applications": sum(applications.values()),
        "funnel.confirmed": applications.get("confirmed", 0),
        "funnel.accounts.rate": "— · 100%", "funnel.complete_profiles.rate": "50% · 50%",
        "queue.2916": len(queue),
        "service.account": "正常 up", "service.registration": "正常 up",
        "service.verification": "正常 up",
    })
    assert figure(browser, "queue.2916.oldest") != "—"
    agree(browser, "applications",
          lambda: stack.rpc("registration", "application_counts", SESSION))
    # arrivals per hour: the chart's bars and totals are the services' counts per hour
    registered = stack.rpc("account", "arrivals_per_hour")
    arrived = stack.rpc("registration", "arrivals_per_hour", SESSION)
    hour = "2026-04-07T10:00:00+08:00"
    assert registered == {"registrations": {hour: 2}}
    assert arrived == {"applications": {hour: 1}, "confirmations": {}}
    shows(browser, {"arrivals.registrations": 2, "arrivals.applications": 1,
                    "arrivals.confirmations": 0, "arrivals.range": "04-07 10:00 – 04-07 10:00"})
    assert bars(browser) == {(hour, "registrations"): "2", (hour, "applications"): "1",
                             (hour, "confirmations"): "0"}
    heights = {k: float(v) for k, v in bars(browser, "height").items()}
    assert heights[(hour, "registrations")] == 2 * heights[(hour, "applications")] > 0
    assert heights[(hour, "confirmations")] == 0
    assert "注册 registrations" in browser.find_element(By.ID, "arrivals").text
    agree(browser, "cases", lambda: stack.rpc("verification", "case_counts", SESSION))
    assert figure(browser, "service.account.head") == str(store_of(stack, "account").head())
    assert figure(browser, "service.registration.relay_lag") in ("0", "1", "2")
    # not running: shown as unavailable, the rest of the page as usual
    for name in ("admission", "scoring", "certificate", "notification"):
        assert figure(browser, f"service.{name}") == UNAVAILABLE
    for key in ("tickets_printed", "checked_in", "qualified", "certificates"):
        assert figure(browser, f"funnel.{key}") == UNAVAILABLE
    assert figure(browser, "admission.status") == UNAVAILABLE
    countdown = figure(browser, "deadline.countdown")
    assert countdown.startswith(("6天 05:29", "6天 05:30")), countdown
    shot("some-services-down")
    axe_check("the dashboard")

    # the rest of the services come up: the next refreshes show them with their figures
    late = {}
    for service in LATE:
        late[service.name] = container = container_factory(service, site_config)
        container.start()
    shows(browser, {f"service.{n}": "正常 up" for n in late}, timeout=40)

    def ask(name, method, *args):
        with entrypoint_hook(late[name], method) as hook:
            return hook(*args)

    admission = ask("admission", "admission_counts", SESSION)
    scores = ask("scoring", "score_counts", SESSION)
    certificates = ask("certificate", "certificate_counts", SESSION)
    shows(browser, {"funnel.tickets_printed": admission["printed"],
                    "funnel.checked_in": admission["checked_in"],
                    "funnel.qualified": scores["qualified"],
                    "funnel.certificates": certificates["issued"]}, timeout=20)
    agree(browser, "admission", lambda: ask("admission", "admission_counts", SESSION))
    agree(browser, "certificates", lambda: ask("certificate", "certificate_counts", SESSION))
    agree(browser, "notifications", lambda: ask("notification", "notification_counts", SESSION))
    shot("every-service-up")

    # the operator's token expires (the laptop slept): the sign-in page says so
    stack.clock.advance(minutes=16)
    page.wait_route("/login")
    assert "登录" in page.text("expired")


def test_wall_screen_stays_signed_in_says_when_stale_and_fits_a_phone(
        short_lived, browser, shot):
    stack = short_lived
    authority = stack.staff("authority")
    stack.staff("operator")
    stack.load_session(authority)
    page = Page(browser, stack.base)
    page.open("/login")
    sign_in(page)
    page.wait_route("/dashboard")  # an operator's home
    loaded(page)
    page.click("wall-mode")
    page.wait_route("/dashboard?wall=1")
    assert not browser.find_elements(By.CSS_SELECTOR, ".site-header, .site-nav, .site-footer")
    shows(browser, {"funnel.accounts": 0, "session.id": SESSION})
    first = browser.execute_script("return JSON.parse(sessionStorage['kaowu.session']).token")

    # the network goes: the figures are called stale (and a failing renewal named); back,
    # and the page is current again
    browser.execute_cdp_cmd("Network.enable", {})
    conditions = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, **conditions})
    page.wait(lambda d: board(d).get_attribute("data-stale") == "true", timeout=30,
              what="the figures to be called stale")
    assert "数据已过时" in page.text("stale")
    shot("wall-stale")
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, **conditions})
    page.wait(lambda d: board(d).get_attribute("data-stale") == "false"
              and not d.find_elements(By.CSS_SELECTOR, '[data-test="stale"]'), timeout=15,
              what="the figures to be current again")

    # the gateway's clock runs on, a second a second, past two token lifetimes
    renewed = int(board(browser).get_attribute("data-renewed"))
    for _ in range(13):
        stack.clock.advance(seconds=1)
        time.sleep(1)
    assert page.route().startswith("#/dashboard?wall=1")
    assert int(board(browser).get_attribute("data-renewed")) >= renewed + 2
    assert browser.execute_script(
        "return JSON.parse(sessionStorage['kaowu.session']).token") != first
    # ... and current: a candidate who registers now is counted on the next refresh
    stack.candidate("candidate", complete=False)
    shows(browser, {"funnel.accounts": 1}, timeout=15)
    assert board(browser).get_attribute("data-stale") == "false"
    assert figure(browser, "window.application.state") == "进行中 open"
    assert "后截止 to close" in figure(browser, "window.application.countdown")
    assert figure(browser, "funnel.accounts.rate") == "— · 100%"
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": WALL[0], "height": WALL[1], "deviceScaleFactor": 1, "mobile": False})
    shot("wall-screen")

    # on a phone, with the site's menus: nothing wider than the screen
    desktop(browser)
    page.click("leave-wall")
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".site-header"), what="the menus")
    phone(browser)
    shows(browser, {"funnel.accounts": 1})
    page.fits_phone("the dashboard with the menus")
    shot("phone")
