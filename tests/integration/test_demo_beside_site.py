"""Someone trying the web site beside ``kaowu demo`` (issue 15): a candidate not in the demo's
plan registers and applies through the HTTP API (no pledge: proof uploaded), confirms,
prints the ticket, and reaches a certificate, because the demo, by default, is every member
of staff for everyone: it approves their manual check, passes their spot check if drawn,
checks them in at every sitting and scores them (a pass, SIMULATED). With ``serve_outside``
off (``kaowu demo --only-planned``) the same person stalls at the manual check and gets
nothing.

The services, the gateway and the driver share a ControlledClock stepped by the driver
(``SteppedClock``); the person acts from the driver's reporter at the start of each phase,
as someone at the site would in that window. The demo's own funnel must still agree with
its plan, the person counted apart (``SeasonResult.outside``)."""

import base64
import json
from datetime import UTC, datetime

import pytest
from joserfc.jwk import OKPKey

from cli.rpc import RpcClient
from cli.season import Reporter, SeasonDriver, SteppedClock, resident_id
from services.account.service import AccountService
from services.admission.service import AdmissionService
from services.certificate.service import CertificateService
from services.registration.domain import FINAL
from services.registration.service import RegistrationService
from services.scoring.service import ScoringService
from services.verification.service import VerificationService
from shared.clock import ControlledClock
from tests.integration.test_account_flow import jpeg
from tests.integration.test_gateway_flow import PASSWORD, PDF, make_config, start_stack

pytestmark = pytest.mark.integration

SEED = 40


def register(stack, username: str, n: int):
    """Register over HTTP and fill in the whole profile: someone the simulated education
    registry does not know (their automatic check fails; no pledge: proof)."""
    id_number = resident_id(9_000_000 + n)
    r = stack.api.post("/api/accounts", body={
        "name": "赵志刚", "id_type": "resident_id", "id_number": id_number,
        "mobile": f"1370000{n:04d}", "username": username, "password": PASSWORD})
    assert r.status_code == 201, r.text
    token = stack.api.login(username)
    birth = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
    sections = {
        "basic": {"gender": "M" if int(id_number[16]) % 2 else "F", "birth_date": birth,
                  "ethnicity": "汉族"},
        "education": {"education": [{
            "level": "本科", "school": "某大学", "major": "测控", "graduated_on": "2005-07-01",
            "major_category": "science_engineering", "certificate_no": f"88{n:06d}SITE"}],
            "degrees": []},
        "work": {"entries": [{"employer": "上海市计量测试技术研究院", "position": "工程师",
                              "start": "2006-01-01", "end": None, "metrology": True}]},
        "contact": {"email": f"{username}@example.com", "address": "上海市徐汇区"},
    }
    for section, data in sections.items():
        r = stack.api.put(f"/api/me/profile/{section}", token, data)
        assert r.status_code == 200, r.text
    r = stack.api.put("/api/me/photo", token, files={
        "photo": ("photo.jpg", base64.b64decode(jpeg()), "image/jpeg")})
    assert r.status_code == 200 and r.json()["complete"], r.text
    return r.json()


class PersonOnTheSite(Reporter):
    """A person at the web site, acting when each window opens; what the demo said."""

    def __init__(self, stack, username):
        self.stack, self.username = stack, username
        self.driver: SeasonDriver | None = None
        self.notes: list[str] = []
        self.stalled: list[str] = []  # the steps the person could not take
        self.app_id: str | None = None
        self._signed_in = (None, None)  # (the clock's time then, the token)

    @property
    def sid(self):
        return self.driver.doc.session_id

    def token(self):
        """Signed in afresh whenever the stepped clock has moved (it outruns a token's 15
        minutes); while it stands (the person's step in a window) one sign-in serves."""
        now = self.stack.clock.now()
        if self._signed_in[0] != now:
            self._signed_in = (now, self.stack.api.login(self.username))
        return self._signed_in[1]

    def status(self):
        r = self.stack.api.get(f"/api/me/applications/{self.sid}", self.token())
        return r.json()["status"] if r.status_code == 200 else None

    def note(self, text):
        self.notes.append(text)

    def phase(self, name, description):
        step = getattr(self, f"on_{name}", None)
        if step is None:
            return
        try:
            step()
        except AssertionError as exc:
            self.stalled.append(f"{name}: {exc}")

    def on_application(self):
        api, sid = self.stack.api, self.sid
        r = api.post("/api/me/applications", self.token(), {
            "session_id": sid, "level": "L1", "commitment": None,
            "registration_point": self.driver.staff["registration_point"]})
        assert r.status_code == 201, r.text
        self.stack.wait(lambda: self.status() == "proof_requested", timeout=30)
        r = api.post(f"/api/me/applications/{sid}/proof?filename=工作证明.pdf", self.token(),
                     data=PDF, headers={"Content-Type": "application/pdf"})
        assert r.status_code == 200, r.text
        self.app_id = r.json()["application_id"]
        # the demo's staff may decide it before this looks: at the manual check, or past it
        self.stack.wait(lambda: self.case() in ("awaiting_manual", "passed", "spot_check",
                                                "confirmed"), timeout=30)

    def case(self):
        return self.stack.rpc("verification", "get_case", self.app_id)["status"]

    def on_confirmation(self):
        # the demo's staff take up proof while verification is open (the driver sweeps the
        # points' queues when application ends): a case still waiting now waits for good
        case = self.case()
        assert case != "awaiting_manual", f"no one made the manual check (case {case})"
        self.stack.wait(lambda: self.status() == "eligible", timeout=20)
        r = self.stack.api.post(f"/api/me/applications/{self.sid}/confirm", self.token())
        assert r.status_code == 200, r.text

    def on_ticket_printing(self):
        api = self.stack.api
        # confirmation has closed: its deadline ends every application; only a confirmed one
        # gets a seat
        status = self.stack.wait(lambda: (s := self.status()) in FINAL and s, timeout=30)
        assert status == "confirmed", f"application {status}"
        self.stack.wait(lambda: (api.get(f"/api/me/tickets/{self.sid}", self.token()).json()
                                 .get("seat")), timeout=30)
        r = api.get(f"/api/me/tickets/{self.sid}/pdf", self.token())
        assert r.status_code == 200, r.text

    def certificates(self):
        r = self.stack.api.get("/api/me/certificates", self.token())
        return [c for c in r.json() if c.get("session_id") == self.sid]


@pytest.fixture
def stack(runner_factory, container_factory, amqp_uri, databases):
    clock = ControlledClock(datetime.now(UTC))
    key = OKPKey.generate_key("Ed25519")
    config = {**make_config(amqp_uri, databases, clock, "beside"),
              "CATCH_UP_INTERVAL": 0.5, "PUBLIC_BASE_URL": "https://kaowu.test",
              "CERTIFICATE_SIGNING_KEY": json.dumps(key.as_dict(private=True))}
    return start_stack(runner_factory, container_factory, config,
                       [AccountService, RegistrationService, VerificationService,
                        AdmissionService, ScoringService, CertificateService])


def season(stack, amqp_uri, person, **options):
    driver = SeasonDriver(lambda timeout=None: RpcClient(amqp_uri, timeout=timeout),
                          candidates=2, minutes_per_window=30, seed=SEED, parallelism=4,
                          clock=SteppedClock(stack.clock), settle=15, reporter=person, **options)
    person.driver = driver
    return driver.run()


def test_a_person_on_the_site_reaches_a_certificate_beside_the_demo(stack, amqp_uri):
    person = PersonOnTheSite(stack, "zhao_site")
    register(stack, "zhao_site", 1)
    result = season(stack, amqp_uri, person)

    assert person.stalled == []
    got = person.certificates()
    assert len(got) == 1, got
    r = stack.api.get(f"/api/me/certificates/{got[0]['certificate_number']}/pdf", person.token())
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    # the demo said what it did for someone not in its plan
    assert any("approved the manual check of 1 application(s) not in the demo's plan" in n
               for n in person.notes), person.notes
    assert result.outside_actions["manual checks approved"] == 1
    assert result.outside_actions["check-ins (candidate × subject)"] == 3
    assert result.outside_actions["scores given (candidate × subject)"] == 3
    # the plan's funnel is its own; the person is counted apart
    assert result.ok, result.comparison
    assert result.deviations == [], result.deviations
    assert result.outside["applications: confirmed"] == 1
    assert result.outside["qualified (passed every subject)"] == 1
    assert result.outside["certificates issued"] == 1


def test_with_only_the_plan_served_the_person_stalls(stack, amqp_uri):
    person = PersonOnTheSite(stack, "zhao_site2")
    register(stack, "zhao_site2", 2)
    result = season(stack, amqp_uri, person, serve_outside=False)

    assert [s.split(":")[0] for s in person.stalled] == ["confirmation", "ticket_printing"]
    assert "no one made the manual check (case awaiting_manual)" in person.stalled[0]
    assert "application lapsed" in person.stalled[1]
    assert person.status() != "confirmed"
    assert person.certificates() == []
    assert result.outside_actions == {} and result.outside == {}
