"""The operator dashboard in headless Chromium (Debian's chromium and chromium-driver).

An operator signs in on the page; its figures must equal what the services' read models
say (read here over their RPCs and from their stores directly). Admission, scoring,
certificate and notification are not running at first: the page shows them as
unavailable and everything else as usual. Started later, they appear on the page's next
refresh with their figures. When the operator's token expires, the page asks to sign in
again.
"""

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey
from nameko.testing.services import entrypoint_hook
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from services.account.service import AccountService
from services.admission.service import AdmissionService
from services.certificate.service import CertificateService
from services.notification.service import NotificationService
from services.registration.service import RegistrationService
from services.scoring.service import ScoringService
from services.verification.service import VerificationService
from shared.clock import ControlledClock
from shared.dependencies import EventStoreProvider
from shared.session import WINDOW_LABELS
from tests.integration.test_application_flow import SESSION, at
from tests.integration.test_gateway_flow import PDF, STAFF_PEOPLE, make_config, start_stack

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
UNAVAILABLE = "unavailable 不可用"
LATE = (AdmissionService, ScoringService, CertificateService, NotificationService)


@pytest.fixture
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        # make test installs them; in CI a missing browser is a broken install, not a skip
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            "needs Debian's chromium and chromium-driver (make test installs them)")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,2000"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        pytest.skip(f"Chromium does not start here: {exc.msg}")
    yield driver
    driver.quit()


@pytest.fixture
def config(amqp_uri, databases, tmp_path):
    clock = ControlledClock(at(2026, 4, 7, 10, 30))
    return {**make_config(amqp_uri, databases, clock, "gwdash"),
            "CATCH_UP_INTERVAL": 1, "DEADLINE_INTERVAL": 2,
            "CERTIFICATE_SIGNING_KEY": json.dumps(
                OKPKey.generate_key("Ed25519").as_dict(private=True)),
            "PUBLIC_BASE_URL": "https://kaowu.example.org",
            "SMS_SINK_PATH": str(tmp_path / "sms.jsonl")}


@pytest.fixture
def stack(runner_factory, container_factory, config):
    return start_stack(runner_factory, container_factory, config,
                       [AccountService, RegistrationService, VerificationService])


def figure(driver, name):
    return driver.find_element(By.CSS_SELECTOR, f'[data-figure="{name}"]').text


def figures(driver, prefix):
    """Every ``data-figure`` under ``prefix.`` on the page, as text (between two refreshes:
    the page redraws its tables every 5 s)."""
    for _ in range(5):
        try:
            return _figures(driver, prefix)
        except StaleElementReferenceException:
            continue
    return _figures(driver, prefix)


def _figures(driver, prefix):
    out = {}
    for el in driver.find_elements(By.CSS_SELECTOR, f'[data-figure^="{prefix}."]'):
        out[el.get_attribute("data-figure")[len(prefix) + 1:]] = el.text
    return out


def shows(driver, expected: dict, timeout=30):
    """Wait until each figure on the page reads as expected (the page refreshes every 5 s)."""
    def check(d):
        return all(figure(d, k) == str(v) for k, v in expected.items())
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.25,
                      ignored_exceptions=(StaleElementReferenceException,
                                          NoSuchElementException)).until(check)
    except Exception:
        seen = {k: figure(driver, k) for k in expected}
        raise AssertionError(f"the page shows {seen}, expected {expected}") from None


def agree(driver, prefix, read, timeout=20):
    """Wait until the page's ``prefix`` table equals what ``read()`` (the service, asked
    now) says: figures that move (SMS being sent) are compared as they settle."""
    deadline = time.monotonic() + timeout
    while True:
        want = {k: str(v) for k, v in read().items()}
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


def store_of(stack, name):
    container = next(c for c in stack.runner.containers if c.service_name == name)
    return next(d for d in container.dependencies if isinstance(d, EventStoreProvider)).store


def test_dashboard_shows_the_projections(stack, browser, container_factory, config):
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

    browser.get(stack.base + "/dashboard")
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "login").is_displayed())
    browser.find_element(By.ID, "login-username").send_keys(STAFF_PEOPLE["operator"]["username"])
    browser.find_element(By.ID, "login-password").send_keys(STAFF_PEOPLE["operator"]["password"])
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body")
                                     .get_attribute("data-loaded"))
    assert not browser.find_element(By.ID, "login").is_displayed()

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
        "queue.2916": len(queue),
        "service.account": "up 正常", "service.registration": "up 正常",
        "service.verification": "up 正常",
    })
    agree(browser, "applications", lambda: stack.rpc("registration", "application_counts", SESSION))
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
    assert "注册 registrations" in browser.find_element(By.CSS_SELECTOR, "#arrivals .legend").text
    shots = Path(__file__).resolve().parents[2] / "var/screenshots/dashboard"
    shots.mkdir(parents=True, exist_ok=True)
    browser.find_element(By.ID, "arrivals").screenshot(str(shots / "arrivals-per-hour.png"))
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
    assert countdown.startswith("6d 05:29") or countdown.startswith("6d 05:30"), countdown

    # the rest of the services come up: the next refreshes show them with their figures
    late = {}
    for service in LATE:
        late[service.name] = container = container_factory(service, config)
        container.start()
    shows(browser, {f"service.{n}": "up 正常" for n in late}, timeout=40)

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

    # the operator's token expires: the page asks to sign in again
    stack.clock.advance(minutes=16)
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "login").is_displayed())
    assert "expired" in browser.find_element(By.ID, "login-error").text


@pytest.fixture
def short_lived(runner_factory, container_factory, config):
    """The stack with tokens that live 15 s (on the controlled clock)."""
    return start_stack(runner_factory, container_factory, config,
                       [AccountService, RegistrationService, VerificationService],
                       gateway_config={"GATEWAY_TOKEN_TTL": 15})


def test_dashboard_stays_signed_in_and_current_past_its_tokens_lifetime(
        short_lived, browser):
    stack = short_lived
    authority = stack.staff("authority")
    stack.staff("operator")
    stack.load_session(authority)
    browser.get(stack.base + "/dashboard")
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "login").is_displayed())
    browser.find_element(By.ID, "login-username").send_keys(STAFF_PEOPLE["operator"]["username"])
    browser.find_element(By.ID, "login-password").send_keys(STAFF_PEOPLE["operator"]["password"])
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body")
                                     .get_attribute("data-loaded"))
    shows(browser, {"funnel.accounts": 0, "session.id": SESSION})
    first = browser.execute_script("return sessionStorage.getItem('kaowu.dashboard.token')")

    # the gateway's clock runs on, a second a second, for three token lifetimes
    for _ in range(45):
        stack.clock.advance(seconds=1)
        time.sleep(1)
    body = browser.find_element(By.TAG_NAME, "body")
    assert not browser.find_element(By.ID, "login").is_displayed()
    assert int(body.get_attribute("data-renewed") or 0) >= 3
    assert browser.execute_script(
        "return sessionStorage.getItem('kaowu.dashboard.token')") != first
    # ... and current: a candidate who registers now is counted on the next refresh
    stack.candidate("candidate", complete=False)
    shows(browser, {"funnel.accounts": 1, "stale": ""}, timeout=15)
    assert body.get_attribute("data-stale") == "false"
    assert figure(browser, "window.application.state") == "进行中 open"
    assert "后截止 to close" in figure(browser, "window.application.countdown")
    assert figure(browser, "funnel.accounts.rate") == "— · 100%"
    shots = Path(__file__).resolve().parents[2] / "var/screenshots/dashboard"
    shots.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shots / "signed-in-past-the-token-lifetime.png"))

    # figures that stop coming are called stale (the gateway stops answering)
    stack.gateway.stop()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body")
                                     .get_attribute("data-stale") == "true")
    assert "数据已过时" in browser.find_element(By.ID, "stale").text
