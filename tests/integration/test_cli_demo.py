"""A whole season driven by synthetic candidates against the real services (account,
registration, verification, admission, scoring, certificate) in a ServiceRunner on a fresh
vhost and fresh PostgreSQL databases.

- ``kaowu demo`` itself, on the wall clock, with 6-second windows (the smallest
  demo_session allows is 2 s; 6 s leaves the exam window's three sittings 2 s each). Six
  candidates, seed 40: one each of certified, auto check failed then failed the exam, no
  commitment then absent, terminated, lapsed and forfeited. Eight windows of 6 s make it
  a minute and a half with the services' start: marked slow.
- ``SeasonDriver`` on a stepped clock (the services share a ``ControlledClock``; waiting
  for a window moves it there), the same plan with windows of 30 minutes, taking only
  as long as the services take: in ``make test``.

Either must end with the funnel read back from the services agreeing with the plan (which
of the passed cases the draw takes, and whether a drawn one is rejected, varies with the
application ids), and the services' own counts must say the same."""

import json
import re
from datetime import UTC, datetime

import pytest
from joserfc.jwk import OKPKey
from nameko.testing.services import entrypoint_hook
from typer.testing import CliRunner

from cli.main import app
from cli.rpc import RpcClient
from cli.season import SeasonDriver, SteppedClock, make_plan, path_mix
from services.account.service import AccountService
from services.admission.service import AdmissionService
from services.certificate.service import CertificateService
from services.registration.service import RegistrationService
from services.scoring.service import ScoringService
from services.verification.service import VerificationService
from shared.clock import ControlledClock
from tests.support import DEADLINE

pytestmark = pytest.mark.integration

SEED = 40


def start(runner_factory, amqp_uri, databases, **extra):
    key = OKPKey.generate_key("Ed25519")
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("demo") + "_{service}",
              "CATCH_UP_INTERVAL": 0.5, "DEADLINE_INTERVAL": DEADLINE, "max_workers": 10,
              "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024},
              "ADMISSION_QR_KEY": "test-qr-key-0123456789abcdef0123456789",
              "PUBLIC_BASE_URL": "https://kaowu.test",
              "CERTIFICATE_SIGNING_KEY": json.dumps(key.as_dict(private=True)), **extra}
    runner = runner_factory(config, AccountService, RegistrationService, VerificationService,
                            AdmissionService, ScoringService, CertificateService)
    runner.start()
    return runner


@pytest.fixture
def services(runner_factory, amqp_uri, databases):
    return start(runner_factory, amqp_uri, databases)


@pytest.fixture
def stepped(runner_factory, amqp_uri, databases):
    clock = ControlledClock(datetime.now(UTC))
    return start(runner_factory, amqp_uri, databases, CLOCK=clock), clock


def call(runner, service, method, *args):
    container = next(c for c in runner.containers if c.service_name == service)
    with entrypoint_hook(container, method) as hook:
        return hook(*args)


def test_the_plan_of_this_test_has_every_interesting_path():
    mix = path_mix(make_plan(6, SEED))
    assert set(mix) == {"certified", "auto_fail_then_fails_exam", "no_commitment_absent",
                        "terminated", "lapsed", "forfeited"}


@pytest.mark.slow
def test_demo_runs_a_season_end_to_end(services, amqp_uri):
    result = CliRunner().invoke(
        app, ["demo", "--candidates", "6", "--minutes-per-window", "0.1", "--seed", str(SEED),
              "--parallel", "4"],
        env={"AMQP_URI": amqp_uri, "COLUMNS": "200"})
    out = result.output
    assert result.exit_code == 0, out
    assert "the services' funnel agrees with the plan" in out
    assert "What did not go as planned" not in out
    session = re.search(r"Funnel of (\S+)", out).group(1)
    # what the table said, the services say too
    apps = call(services, "registration", "application_counts", session)
    assert apps == {"confirmed": 4, "lapsed": 1, "terminated": 1}
    admission = call(services, "admission", "admission_counts", session)
    assert (admission["printed"], admission["forfeited"]) == (3, 1)
    # 2 sat every sitting; the absent one and the forfeited one missed all 3
    assert (admission["checked_in"], admission["absent"]) == (6, 6)
    assert call(services, "scoring", "score_counts", session)["qualified"] == 1
    certs = call(services, "certificate", "certificate_counts", session)
    assert (certs["issued"], certs["downloaded"]) == (1, 1)
    for row in ("applications: confirmed", "tickets printed", "certificates issued"):
        assert re.search(rf"{re.escape(row)}\s.*✓", out), row


def test_the_season_driver_on_a_stepped_clock(stepped, amqp_uri):
    runner, clock = stepped
    driver = SeasonDriver(lambda timeout=None: RpcClient(amqp_uri, timeout=timeout),
                          candidates=6, minutes_per_window=30, seed=SEED, parallelism=4,
                          clock=SteppedClock(clock), settle=15)
    result = driver.run()
    assert result.deviations == [], result.deviations
    assert result.ok, result.comparison
    assert result.stages == {"admission", "scoring", "certificate"}
    session = result.session_id
    apps = call(runner, "registration", "application_counts", session)
    assert apps == {"confirmed": 4, "lapsed": 1, "terminated": 1}
    assert call(runner, "scoring", "score_counts", session)["qualified"] == 1
    assert call(runner, "certificate", "certificate_counts", session)["issued"] == 1
    # windows of 30 minutes, in seconds of real time: the clock was stepped, not waited for
    assert result.seconds < 120


@pytest.mark.slow
def test_a_second_season_on_the_same_services(stepped, amqp_uri):
    """Two demos one after the other on the same running services (issue 17 #7): the
    second session, of the same exam year, gets ticket numbers of its own and its
    check-ins and scores land on its own tickets. Its registry person, qualified by the
    first, sits again but qualifies once (rolling validity); the funnel says so."""
    runner, clock = stepped

    def season():
        return SeasonDriver(lambda timeout=None: RpcClient(amqp_uri, timeout=timeout),
                            candidates=6, minutes_per_window=30, seed=SEED, parallelism=4,
                            clock=SteppedClock(clock), settle=15).run()

    first, second = season(), season()
    for result in (first, second):
        assert result.deviations == [], result.deviations
        assert result.ok, result.comparison
    assert first.session_id != second.session_id
    numbers = [[c.ticket_number for c in r.plan if c.ticket_number] for r in (first, second)]
    assert len(numbers[0]) == len(numbers[1]) == 4
    assert not set(numbers[0]) & set(numbers[1]), numbers
    assert sum(c.qualified_before for c in second.plan) == 1
    for result, qualified in ((first, 1), (second, 0)):
        session = result.session_id
        admission = call(runner, "admission", "admission_counts", session)
        assert (admission["printed"], admission["checked_in"]) == (3, 6)
        counts = call(runner, "scoring", "score_counts", session)
        assert (counts["published"], counts["candidates"], counts["qualified"]) == \
            (True, 4, qualified)
