"""Browser tests of the web site (报名网站) in headless Chromium, shared by every area's tests.

Debian's /usr/bin/chromium driven through /usr/bin/chromedriver by the pinned selenium
(never a browser downloaded at run time). The site must be built (``make site``; ``make
test`` does it first): a missing build fails the tests with that advice.

Fixtures and helpers for the tests here (candidate, staff, authority, operator pages):

- ``browser``: a fresh tab (1280×900; ``phone(browser)`` turns it into a 390×844 phone and
  ``desktop(browser)`` back) of the one headless Chromium the pytest process shares
  (``chromium``), whose console is collected: any Content-Security-Policy violation or
  uncaught script error fails the test at its next ``shot``.
- ``shot(name)``: a full-page PNG, ``var/screenshots/<test name>/NN-name.png`` (NN counts
  up per test), after checking the console as above.
- ``axe_check(name)``: runs axe-core (web/node_modules/axe-core/axe.min.js, the npm
  devDependency) on the page now shown and fails on serious or critical violations.
- ``site_stack``: every service and the gateway (serving the site) with a ControlledClock
  in the reference session's application window; ``site_stack.base`` is the site's URL.
- ``Page``: small waits and finders by ``data-test`` attributes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from services.account.service import AccountService
from services.admission.service import AdmissionService
from services.certificate.service import CertificateService
from services.notification.service import NotificationService
from services.registration.service import RegistrationService
from services.scoring.service import ScoringService
from services.verification.service import VerificationService
from shared.clock import ControlledClock
from tests.integration.test_application_flow import at
from tests.integration.test_gateway_flow import make_config, start_stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SITE_INDEX = ROOT / "services/gateway/static/site/index.html"
AXE = ROOT / "web/node_modules/axe-core/axe.min.js"
SCREENSHOTS = ROOT / "var/screenshots"
DESKTOP, PHONE = (1280, 900), (390, 844)
ALL_SERVICES = [AccountService, RegistrationService, VerificationService, AdmissionService,
                ScoringService, CertificateService, NotificationService]
# console lines that mean the page is broken (a refused request's "Failed to load
# resource: ... 409" is how the browser logs an API refusal the page then explains: fine)
_BROKEN = re.compile(r"Content Security Policy|Refused to (execute|load|apply|evaluate)|"
                     r"Uncaught|TypeError|ReferenceError|SyntaxError|\[Vue warn\]")
_SAFE = re.compile(r"[^\w.-]+")


def _need(condition: bool, why: str):
    if not condition:
        # make test installs and builds them; in CI a missing one is a broken set-up
        (pytest.fail if os.environ.get("CI") else pytest.skip)(why)


class Chromium:
    """One headless Chromium for the whole pytest process (starting one costs more CPU than
    most tests' pages): each test gets a fresh tab of it (``tab``), and at its end
    (``tidy``) the storage of every origin it visited is cleared and its tabs closed, so
    nothing of one test's sign-ins reaches the next. Started again if it died."""

    def __init__(self):
        self.driver = None

    def _start(self):
        options = Options()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--lang=zh-CN",
                    "--force-device-scale-factor=1"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        except WebDriverException as exc:
            _need(False, f"Chromium does not start here: {exc.msg}")

    def _alive(self) -> bool:
        try:
            return bool(self.driver and self.driver.window_handles)
        except WebDriverException:
            return False

    def tab(self):
        """The browser on a new tab, its other tabs closed, its console read."""
        if not self._alive():
            self.quit()
            self._start()
            self.driver.console = []
            return self.driver  # its one tab is fresh
        driver = self.driver
        old = driver.window_handles
        driver.switch_to.new_window("tab")
        fresh = driver.current_window_handle
        for handle in old:
            driver.switch_to.window(handle)
            driver.close()
        driver.switch_to.window(fresh)
        driver.get_log("browser")  # lines of earlier tests
        driver.console = []  # every console line seen so far
        return driver

    def tidy(self):
        """Clear what the test's pages stored (localStorage, sessionStorage, cookies, ...)."""
        if not self._alive():
            return
        origins = set()
        for handle in self.driver.window_handles:
            with contextlib.suppress(WebDriverException):
                self.driver.switch_to.window(handle)
                origins.add(self.driver.execute_script("return location.origin"))
        for origin in origins - {"null", None}:
            with contextlib.suppress(WebDriverException):
                self.driver.execute_cdp_cmd("Storage.clearDataForOrigin",
                                            {"origin": origin, "storageTypes": "all"})

    def quit(self):
        if self.driver is not None:
            with contextlib.suppress(WebDriverException):
                self.driver.quit()
            self.driver = None


@pytest.fixture(scope="session")
def chromium():
    _need(bool(shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
          "needs Debian's chromium and chromium-driver (make test installs them)")
    if not SITE_INDEX.exists():
        pytest.fail("the web site is not built: run `make site` (make test builds it)")
    browser = Chromium()
    yield browser
    browser.quit()


@pytest.fixture
def browser(chromium):
    """A fresh tab of the process's Chromium, 1280×900, its console collected."""
    driver = chromium.tab()
    yield driver
    chromium.tidy()


def console_problems(driver) -> list[str]:
    """The console lines since the last call that mean the page is broken."""
    lines = [e.get("message", "") for e in driver.get_log("browser")]
    driver.console.extend(lines)
    return [line for line in lines if _BROKEN.search(line)]


def phone(driver):
    """A 390×844 phone-sized window (a viewport change Vue's layout follows at once)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True})


def desktop(driver):
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.fixture
def shot(browser, request):
    """``shot(name)``: check the console, then save the whole page as
    var/screenshots/<test name>/NN-name.png; returns the path."""
    folder = SCREENSHOTS / _SAFE.sub("_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    count = [0]

    def take(name: str) -> Path:
        problems = console_problems(browser)
        count[0] += 1
        path = folder / f"{count[0]:02d}-{_SAFE.sub('_', name)}.png"
        metrics = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        png = browser.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "optimizeForSpeed": True,
            "clip": {"x": 0, "y": 0, "width": size["width"],
                     "height": min(size["height"], 8000), "scale": 1}})
        path.write_bytes(base64.b64decode(png["data"]))
        assert not problems, f"the browser console at {name!r}: {problems}"
        return path

    return take


@pytest.fixture
def axe_check(browser):
    """``axe_check(name)``: axe-core on the page now shown; serious or critical violations
    fail the test (listed with their elements)."""
    _need(AXE.exists(), "axe-core is missing: run `make site` (npm ci in web/)")
    source = AXE.read_text(encoding="utf-8")

    def check(name: str = "") -> list[dict]:
        if not browser.execute_script("return !!window.axe"):
            browser.execute_script(source)
        result = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(JSON.stringify(r.violations)))"
            ".catch(e => done(JSON.stringify({error: String(e)})));")
        found = json.loads(result)
        assert isinstance(found, list), f"axe failed to run: {found}"
        bad = [v for v in found if v.get("impact") in ("serious", "critical")]
        assert not bad, f"accessibility ({name}): " + "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(n["target"][0] if isinstance(n["target"][0], str) else str(n["target"])
                        for n in v["nodes"][:5]) for v in bad)
        return found

    return check


class Page:
    """Waits and finders for the site, by ``data-test`` attributes."""

    def __init__(self, driver, base: str):
        self.driver, self.base = driver, base

    def open(self, path: str = "/"):
        """Open a hash route (``/login`` → base/#/login) as a fresh page load, as typing the
        address does, and wait for the app. The tab's sessionStorage (its sign-in) stays.
        On the site's page already, the address is changed without telling the app (a
        change of the hash alone would only route within the page) and the page reloaded:
        the same renderer loads it again from the cache, where a detour by about:blank
        would start a new renderer process and load everything anew (several times the
        CPU)."""
        url = f"{self.base}/#{path}"
        if self.driver.execute_script("return location.href.split('#')[0]") == f"{self.base}/":
            self.driver.execute_script("history.replaceState(null, '', arguments[0])", url)
            self.driver.refresh()
        else:
            self.driver.get(url)
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#main"))

    def wait(self, condition, timeout: float = 20, what: str = "", poll: float = 0.2):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=poll, ignored_exceptions=(
                StaleElementReferenceException, NoSuchElementException)).until(condition)
        except Exception:
            raise AssertionError(f"waited {timeout}s for {what or condition}; the page says: "
                                 f"{self.text()[:1500]}") from None

    def fits_phone(self, what: str):
        """Wait until nothing is wider than the phone (``phone()``): the page's layout
        follows a viewport change a frame or more later, later still on a loaded machine."""
        self.wait(lambda d: d.execute_script("return document.documentElement.scrollWidth")
                  <= PHONE[0], what=f"{what} within the phone's width")

    def find(self, test: str, timeout: float = 20):
        """The first shown element of a data-test, once there is one."""
        css = f'[data-test="{test}"]'
        return self.wait(lambda d: d.execute_script(_SHOWN + "return shown(arguments[0])", css),
                         timeout, css)

    def field(self, test: str):
        """The input of a data-test (the element itself, or the input inside it)."""
        css = f'[data-test="{test}"]'
        return self.wait(lambda d: d.execute_script(_SHOWN + _FIELD, css), what=f"{css} input")

    def type(self, test: str, text: str, clear: bool = True):
        """Enter ``text`` in a field as an input method or a paste does: the field
        focused (its old text selected to be replaced, or with ``clear=False`` the caret
        after it), then the text inserted by the browser's input pipeline in one trusted
        ``input`` event (CDP ``Input.insertText``). Typed key by key, a field cost
        Chromium ~117 ms of CPU, one frame per character."""
        el = self.field(test)

        def value():
            return self.driver.execute_script("return arguments[0].value", el)

        for _ in range(3):
            if not self.driver.execute_script(_FOCUS_FOR_TEXT, el, clear):
                el.send_keys(Keys.END)
            if text:
                self.driver.execute_cdp_cmd("Input.insertText", {"text": text})
            elif clear and value():
                el.send_keys(Keys.BACKSPACE)
            if text in (value() or ""):
                break
            # the text went elsewhere (a PDF frame still loading takes the focus): as a
            # person would, click back into the field and enter it again
            clear = True
        return el

    def click(self, test: str):
        """Click a control as a person does: scrolled to the middle, taking clicks, and
        where it was a moment ago (a photo or a proof loading above it moves it down, and a
        click at its old place lands beside it)."""
        el = self.find(test)
        self.wait(_settled(lambda d: d.execute_script(_CLICKABLE_AT, el)),
                  what=f"{test} enabled and still", poll=0.05)
        el.click()
        return el

    def text(self, test: str | None = None) -> str:
        if test is None:
            return self.driver.find_element(By.TAG_NAME, "body").text
        return self.find(test).text

    def wait_text(self, test: str, contains: str, timeout: float = 20) -> str:
        css = f'[data-test="{test}"]'
        self.wait(lambda d: d.execute_script(_SHOWN + _SAYS, css, contains),
                  timeout, f"{css} to say {contains!r}")
        return self.text(test)

    def choose(self, test: str, option: str):
        """Pick ``option`` (its visible text) in an Element Plus select, once its list has
        stopped moving: a click while the list still opens lands on whichever option is
        under the pointer then (a person would look again and pick once more)."""
        xpath = ("//li[contains(@class, 'el-select-dropdown__item')]"
                 f"[normalize-space(.)={_xpath_literal(option)}]")
        for _ in range(3):
            self.click(test)
            item = self.wait(lambda d: next((e for e in d.find_elements(By.XPATH, xpath)
                                             if e.is_displayed()), None), what=f"option {option!r}")
            self.wait(_settled(lambda d, item=item: item.rect),
                      what=f"option {option!r} to stop moving")
            item.click()
            self.wait(lambda d, item=item: not item.is_displayed(), what="the options to close")
            if self.find(test).text.strip() == option:
                return
        raise AssertionError(f"{test} shows {self.find(test).text!r}, not {option!r}")

    def attach(self, test: str, *paths):
        """Choose files in a file input (several at once where it allows)."""
        el = self.driver.find_element(By.CSS_SELECTOR, f'[data-test="{test}"]')
        el.clear()  # a new choice replaces the last, as in the browser's file dialog
        el.send_keys("\n".join(str(p) for p in paths))

    def route(self) -> str:
        return self.driver.execute_script("return location.hash")

    def wait_route(self, prefix: str, timeout: float = 20):
        self.wait(lambda d: d.execute_script("return location.hash").startswith("#" + prefix),
                  timeout, f"the route {prefix}")


# Waits poll with one script each, not a find plus a WebDriver command per element found
# (is_displayed, get_attribute and .text each run a script of Selenium's own in the page):
# ~5 ms of Chromium's CPU a poll instead of ~23. Shown as is_displayed means it: rendered,
# not hidden by visibility or opacity, with a box.
_SHOWN = """
const isShown = (e) => e.checkVisibility({opacityProperty: true, visibilityProperty: true})
    && e.getClientRects().length > 0;
const shown = (css) => Array.prototype.find.call(document.querySelectorAll(css), isShown) || null;
"""
_FIELD = """
const e = shown(arguments[0]);
if (!e || ['INPUT', 'TEXTAREA', 'SELECT'].includes(e.tagName)) return e;
return e.querySelector('input, textarea');
"""
# a shown element's text as WebElement.text has it (no-break spaces as spaces) holds arguments[1]
_SAYS = r"""
return Array.prototype.some.call(document.querySelectorAll(arguments[0]), (e) =>
    isShown(e) && e.innerText.replace(/\u00a0/g, ' ').includes(arguments[1]));
"""
# a field focused for text to go in: its old text selected (to be replaced), or the caret
# after it (to add to it); false where the caret cannot be set so (an e-mail input)
_FOCUS_FOR_TEXT = """
const e = arguments[0];
e.focus();
if (arguments[1]) { e.select(); return true; }
try { e.setSelectionRange(e.value.length, e.value.length); return true; } catch (err) { return false; }
"""
# where a control is, scrolled to the middle, once it takes clicks (not a disabled button, or
# a fieldset's, or Element Plus's aria-disabled); null while it does not
_CLICKABLE_AT = """
const e = arguments[0];
e.scrollIntoView({block: 'center'});
if (e.matches(':disabled') || e.getAttribute('aria-disabled') === 'true') return null;
const r = e.getBoundingClientRect();
return [r.x, r.y, r.width, r.height];
"""


def _settled(place):
    """A wait condition: ``place(driver)`` (where an element is; None while it cannot be
    used) is what it was at the last poll."""
    last = [None]

    def check(driver):
        before, last[0] = last[0], place(driver)
        return last[0] is not None and last[0] == before

    return check


def _xpath_literal(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    return "concat('" + text.replace("'", "', \"'\", '") + "')"


@pytest.fixture
def downloads(browser, tmp_path):
    """A folder the browser saves downloads to (read them back to check them)."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(folder)})
    return folder


def downloaded(folder: Path, suffix: str, timeout: float = 20) -> Path:
    """The file with ``suffix`` the browser finished saving in ``folder``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        if done and not any(p.name.endswith(".crdownload") for p in folder.iterdir()):
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} downloaded; the folder holds {sorted(folder.iterdir())}")


@pytest.fixture
def site_config(amqp_uri, databases, tmp_path):
    clock = ControlledClock(at(2026, 4, 7, 10, 30))
    # the services' timers at their production defaults or slower (SMS every 2 s): an idle
    # stack of seven polled at 1 / 0.5 s costs a tenth of a core, for the whole of every
    # test, and the pages wait on events, which messages deliver at once
    return {**make_config(amqp_uri, databases, clock, "site"),
            "CATCH_UP_INTERVAL": 3, "DEADLINE_INTERVAL": 1, "DELIVERY_INTERVAL": 2,
            "CERTIFICATE_SIGNING_KEY": json.dumps(
                OKPKey.generate_key("Ed25519").as_dict(private=True)),
            "PUBLIC_BASE_URL": "https://kaowu.example.org",
            "SMS_SINK_PATH": str(tmp_path / "sms.jsonl")}


@pytest.fixture
def site_stack(runner_factory, container_factory, site_config):
    """All seven services and the gateway; tokens last 15 minutes of the ControlledClock."""
    return start_stack(runner_factory, container_factory, site_config, ALL_SERVICES)


@pytest.fixture
def page(browser, site_stack):
    return Page(browser, site_stack.base)
