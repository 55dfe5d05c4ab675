"""The HTTP side of a running service: ``/metrics`` scraped and parsed, and the probes.

The account service runs on real RabbitMQ and PostgreSQL with ``WEB_SERVER_ADDRESS`` on a
free port, as ``nameko run`` would serve it; the test speaks plain HTTP to it. The
dead-letter figure is followed through a real poison event: a consumer's handler fails on
it, the event is dead-lettered, the metric and ``status()`` say 1, a replay brings both
back to 0.
"""

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from services.account.service import AccountService
from shared.clock import ControlledClock
from shared.dependencies import EventStoreProvider
from shared.errors import KaowuError
from shared.events import NewEvent
from shared.eventstore.store import open_store
from shared.health import BrokerCheck, check_database, listening_port, readiness
from shared.metrics import DEAD_LETTERS, EXPORTED, DeadLetterTally
from shared.tracking import dead_letter_stream
from tests import support
from tests.integration.test_account_flow import CANDIDATE, SECTIONS, jpeg

pytestmark = pytest.mark.integration


def get(port, path):
    """(status, content type, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def scrape(port, store_up=True) -> dict:
    """{(sample name, frozenset(labels)): value} of one scrape."""
    status, ctype, body = get(port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    families = list(text_string_to_metric_families(body))
    names = {f.name for f in families}
    # every family alerts and dashboards rely on (those read from the database need it)
    assert names == set(EXPORTED) if store_up else names < set(EXPORTED)
    return {(s.name, frozenset(s.labels.items())): s.value for fam in families for s in fam.samples}


def value(samples, metric, **labels):
    return samples.get((metric, frozenset(labels.items())))


def wait_for(predicate, timeout=10.0):
    return support.wait_for(predicate, timeout)


@pytest.fixture
def account(container_factory, amqp_uri, databases):
    port = support.free_port()
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("metrics") + "_{service}",
              "CLOCK": ControlledClock(), "max_workers": 10, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
              "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024}}
    container = container_factory(AccountService, config)
    container.start()
    assert listening_port(container) == port
    return container, port


def call(container, method, *args):
    from nameko.testing.services import entrypoint_hook

    with entrypoint_hook(container, method) as hook:
        return hook(*args)


def test_metrics_are_scraped_and_move(account):
    container, port = account
    store = next(d for d in container.dependencies if isinstance(d, EventStoreProvider)).store

    account_id = call(container, "register", dict(CANDIDATE))["account_id"]
    for section, data in {"photo": {"jpeg_base64": jpeg()}, **SECTIONS}.items():
        call(container, "update_profile_section", account_id, section, data)
    with pytest.raises(KaowuError):  # a duplicate is refused: an answer, not an error
        call(container, "register", dict(CANDIDATE))

    # the relay publishes what was committed: its lag drops to 0
    samples = wait_for(lambda: (s := scrape(port)) and
                       value(s, "kaowu_relay_lag_events", service="account") == 0 and s)
    head = store.head()
    assert head > 0
    assert value(samples, "kaowu_store_up", service="account") == 1
    assert value(samples, "kaowu_log_head_position", service="account") == head
    assert value(samples, "kaowu_relay_position", service="account") == head
    assert value(samples, "kaowu_relay_published_total", service="account") == head
    assert value(samples, "kaowu_projection_position", service="account", projection="accounts") == head
    assert value(samples, "kaowu_projection_lag_events", service="account", projection="accounts") == 0

    # latency histogram and outcomes, by entrypoint
    rpc = {"service": "account", "entrypoint": "register", "kind": "rpc"}
    assert value(samples, "kaowu_entrypoint_duration_seconds_count", **rpc) == 2
    assert value(samples, "kaowu_entrypoint_duration_seconds_sum", **rpc) > 0
    assert value(samples, "kaowu_entrypoint_duration_seconds_bucket", **rpc, le="+Inf") == 2
    assert value(samples, "kaowu_entrypoint_calls_total", **rpc, outcome="ok") == 1
    assert value(samples, "kaowu_entrypoint_calls_total", **rpc, outcome="refused") == 1
    sections = {"service": "account", "entrypoint": "update_profile_section", "kind": "rpc"}
    assert value(samples, "kaowu_entrypoint_calls_total", **sections, outcome="ok") == 5

    # events appended, by type: exactly what the log holds
    in_log = {}
    for ev in store.events_after(0, 10_000):
        in_log[ev.type] = in_log.get(ev.type, 0) + 1
    counted = {dict(labels)["type"]: v for (name, labels), v in samples.items()
               if name == "kaowu_events_appended_total"}
    assert counted == in_log
    assert counted["AccountRegistered"] == 1 and counted["ProfileCompleted"] == 1

    # no dead letters: the figure is there, and 0
    assert value(samples, DEAD_LETTERS, service="account") == 0

    # the business counts hook
    assert value(samples, "kaowu_business_count", service="account", name="accounts", status="") == 1
    assert value(samples, "kaowu_business_count", service="account", name="profiles",
                 status="complete") == 1  # the profile above was completed
    assert value(samples, "kaowu_business_count", service="account", name="profiles",
                 status="incomplete") == 0

    # more work moves the counters
    call(container, "update_profile_section", account_id, "contact",
         {"email": "zs@example.com", "address": "上海市"})
    again = scrape(port)
    assert value(again, "kaowu_entrypoint_calls_total", **sections, outcome="ok") == 6
    assert value(again, "kaowu_events_appended_total", service="account",
                 type="ProfileUpdated") == counted["ProfileUpdated"] + 1
    # a scrape is an http worker, timed like any other (counted once it has answered)
    scrapes = {"service": "account", "entrypoint": "prometheus_metrics", "kind": "http"}
    assert value(again, "kaowu_entrypoint_calls_total", **scrapes, outcome="ok") >= 1


def test_probes(account, databases):
    container, port = account
    status, ctype, body = get(port, "/health/live")
    assert (status, ctype) == (200, "application/json")
    assert json.loads(body) == {"service": "account", "status": "live"}

    status, _, body = get(port, "/health/ready")
    assert status == 200, body
    assert json.loads(body)["checks"] == {"database": "ok", "broker": "ok"}

    # the database goes away: not ready, and the body says what is down
    store = next(d for d in container.dependencies if isinstance(d, EventStoreProvider)).store
    url = store.engine.url
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT",
                          poolclass=NullPool)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE "{url.database}" WITH (FORCE)'))
    admin.dispose()
    status, ctype, body = get(port, "/health/ready")
    assert (status, ctype) == (503, "application/json")
    answer = json.loads(body)
    assert answer["down"] == ["database"] and answer["checks"]["broker"] == "ok"
    assert answer["checks"]["database"] != "ok"
    assert "password" not in body

    # metrics still answer, saying the store is down, without stale log figures
    samples = scrape(port, store_up=False)
    assert value(samples, "kaowu_store_up", service="account") == 0
    assert value(samples, "kaowu_relay_lag_events", service="account") is None
    assert value(samples, DEAD_LETTERS, service="account") is None
    assert get(port, "/health/live")[0] == 200


def test_readiness_checks_name_what_is_down(pg_base):
    missing = make_url(pg_base).set(drivername="postgresql+psycopg2", database="kaowu_no_such_db")
    engine = create_engine(missing, poolclass=NullPool)
    problem = check_database(engine)
    assert problem and "kaowu_no_such_db" in problem
    broker = BrokerCheck("amqp://guest:secret@127.0.0.1:1/", ttl=60, timeout=1)
    first = broker()
    assert first and "secret" not in first
    assert broker() is first  # cached: no second connection attempt
    status, _, body = readiness("account", problem, first)
    assert status == 503 and json.loads(body)["down"] == ["database", "broker"]
    assert readiness("account", None, None)[0] == 200


# -- dead letters ---------------------------------------------------------------------------
# the upstream and the consumer whose handler meets a poison event
from tests.integration.test_deadletter import EVENTS, FIXED, DownService, UpService  # noqa: E402


def test_dead_letters_metric_follows_the_log(container_factory, amqp_uri, databases):
    FIXED["yes"] = False
    url = databases.new("deadletters") + "_{service}"
    base = {"AMQP_URI": amqp_uri, "DATABASE_URL": url, "CATCH_UP_INTERVAL": 0.2,
            "max_workers": 10}
    speaker = container_factory(UpService, dict(base))
    port = support.free_port()
    listener = container_factory(DownService,
                                 {**base, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
    speaker.start()
    listener.start()
    store = next(d for d in listener.dependencies if isinstance(d, EventStoreProvider)).store

    def heard():
        return [e.payload["text"] for e in store.events_after(0, 1000) if e.type == "Heard"]

    for said in ("one", "poison", "two"):
        call(speaker, "say", said)
    wait_for(lambda: heard() == ["one", "two"], timeout=20)  # the consumer went on
    samples = wait_for(lambda: (s := scrape(port)) and
                       value(s, DEAD_LETTERS, service="down") == 1 and s)
    assert call(listener, "status")["dead_letters"] == 1  # the same figure as status()
    assert value(samples, "kaowu_consumer_position", service="down", upstream="up") == 3

    FIXED["yes"] = True  # the fix is deployed; the operator replays it
    assert call(listener, "replay_dead_letter", "up", 2)["outcome"] == "applied"
    assert sorted(heard()) == ["one", "poison", "two"]
    assert value(scrape(port), DEAD_LETTERS, service="down") == 0
    assert call(listener, "status")["dead_letters"] == 0


def dead_lettered(upstream, position):
    return NewEvent(dead_letter_stream(upstream, position), "EventDeadLettered", {
        "upstream": upstream, "position": position, "type": "Said", "error": "TypeError: x",
        "attempts": 3, "event": {}})


def replayed(upstream, position):
    return NewEvent(dead_letter_stream(upstream, position), "DeadLetterReplayed", {
        "upstream": upstream, "position": position, "outcome": "refused", "reason": "r"})


def test_dead_letter_tally_reads_only_what_is_new(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/tally.db", EVENTS)
    scans = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _seen(conn, cursor, statement, params, context, executemany):
        if "FROM events" in statement:
            scans.append(params)

    tally = DeadLetterTally()
    assert tally.count(store, store.head()) == 0
    assert scans == []  # an empty log: nothing to read

    store.append([NewEvent("said-a", "Said", {"text": "a"}), dead_lettered("up", 1),
                  dead_lettered("up", 2), dead_lettered("other", 1)])
    assert tally.count(store, store.head()) == 3
    store.append([replayed("up", 1), NewEvent("said-b", "Said", {"text": "b"})])
    scans.clear()
    assert tally.count(store, store.head()) == 2
    (params,) = scans  # one read, of the two new events only
    assert 4 in tuple(params) and 6 in tuple(params)
    scans.clear()
    assert tally.count(store, store.head()) == 2 and scans == []  # nothing new: no read

    # events committed after the head the scrape read wait for the next scrape
    head = store.head()
    store.append([replayed("other", 1)])
    assert tally.count(store, head) == 2
    assert tally.count(store, store.head()) == 1

    # another log (a restored or replaced database), even a longer one, is read from its start
    other = open_store(f"sqlite:///{tmp_path}/other.db", EVENTS)
    other.append([NewEvent(f"said-{i}", "Said", {"text": "x"}) for i in range(9)]
                 + [dead_lettered("up", 7)])
    assert other.head() > store.head()
    assert tally.count(other, other.head()) == 1
    store.engine.dispose()
    other.engine.dispose()


# -- the gateway's requests, the process, deadlines and the manual-check queue ------------

def test_gateway_counts_requests_by_route_and_status(container_factory, amqp_uri):
    from services.gateway.service import GatewayService
    from tests.integration.test_gateway_flow import TOKEN_KEY

    port = support.free_port()
    gateway = container_factory(GatewayService, {
        "AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
        "GATEWAY_TOKEN_KEY": TOKEN_KEY, "GATEWAY_RPC_TIMEOUT": 2, "CLOCK": ControlledClock(),
        "GATEWAY_CHECK_REPLIES": True})
    gateway.start()
    assert get(port, "/health/live")[0] == 200
    assert get(port, "/health/live")[0] == 200
    assert get(port, "/api/me/profile")[0] == 401  # no token
    status, _, body = get(port, "/metrics")
    assert status == 200
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for fam in text_string_to_metric_families(body) for s in fam.samples}
    live = {"service": "gateway", "route": "/health/live", "method": "GET"}
    assert value(samples, "kaowu_http_requests_total", **live, status="200") == 2
    assert value(samples, "kaowu_http_requests_total", service="gateway",
                 route="/api/me/profile", method="GET", status="401") == 1
    assert value(samples, "kaowu_http_request_duration_seconds_count", **live) == 2
    # the process collector is registered: CPU and resident memory of this process
    assert value(samples, "process_resident_memory_bytes") > 10 * 2**20
    assert value(samples, "process_cpu_seconds_total") > 0


def test_every_service_reports_its_process(account):
    _, port = account
    samples = scrape(port)
    assert value(samples, "process_resident_memory_bytes") > 10 * 2**20
    assert value(samples, "process_cpu_seconds_total") > 0
    assert value(samples, "process_open_fds") > 0


def test_overdue_deadlines_by_the_services_clock():
    from datetime import timedelta

    from shared.service import EventSourcedService
    from tests.integration.test_application_flow import at

    due = at(2026, 4, 18, 16, 0, 1)

    class Deadlines(EventSourcedService):
        name = "deadlines"

        def deadline_schedule(self):
            return [("s1", "confirmation", due, False), ("s1", "spot_check", due, True),
                    ("s1", "ticket_printing", due + timedelta(days=50), False)]

    service = Deadlines.__new__(Deadlines)
    service.clock = ControlledClock(due - timedelta(seconds=1))
    assert service.scrape_gauges() == {"kaowu_deadline_overdue_seconds": []}
    service.clock.set(due + timedelta(seconds=90))
    assert service.scrape_gauges() == {
        "kaowu_deadline_overdue_seconds": [(("s1", "confirmation"), 90.0)]}


def test_manual_check_queue_window_ends_and_deadlines(runner_factory, amqp_uri, databases):
    """Verification's figures for the business alerts, from a real season: each point's
    manual-check queue, the windows' ends, and its deadline effects, done once run."""
    from nameko.testing.services import worker_factory

    from services.verification.service import VerificationService
    from shared.session import REFERENCE_SESSION_PATH
    from tests.integration.test_application_flow import SESSION, STAFF, at, start_season

    s = start_season(runner_factory, amqp_uri, databases, name="mqueue")
    s.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    for key in ("liu", "chen"):
        s.candidate(key)
        s.known_complete(key)
    s.clock.set(at(2026, 4, 7, 10, 0))
    for key in ("liu", "chen"):
        s.apply(key)
        s.status(key, "proof_requested")
    s.clock.set(at(2026, 4, 8, 10, 0))
    for key in ("liu", "chen"):
        s.proof(key)
    s.wait(lambda: len(s.call("verification", "manual_queue", STAFF, SESSION)) == 2)

    container = next(c for c in s.runner.containers if c.service_name == "verification")
    store = next(d for d in container.dependencies if isinstance(d, EventStoreProvider)).store
    service = worker_factory(VerificationService, store=store, clock=s.clock,
                             session_docs=VerificationService.session_docs.fresh())
    gauges = service.scrape_gauges()
    assert gauges["kaowu_manual_check_queue"] == [((SESSION, STAFF["registration_point"]), 2)]
    ends = dict(gauges["kaowu_window_end_timestamp_seconds"])
    assert ends[(SESSION, "verification")] == at(2026, 4, 14, 16, 0, 1).timestamp()
    assert gauges["kaowu_deadline_overdue_seconds"] == []  # nothing due yet
    assert {(name, done) for _, name, _, done in service.deadline_schedule()} == {
        ("spot_check", False), ("confirmation", False)}

    from services.registration.service import RegistrationService

    reg = next(c for c in s.runner.containers if c.service_name == "registration")
    registration = worker_factory(RegistrationService, clock=s.clock, store=next(
        d for d in reg.dependencies if isinstance(d, EventStoreProvider)).store,
        session_docs=RegistrationService.session_docs.fresh())
    assert list(registration.deadline_schedule()) == [
        (SESSION, "confirmation", at(2026, 4, 18, 16, 0, 1), False)]

    s.clock.set(at(2026, 4, 17, 0, 0, 30))  # the spot-check window closed 29 s ago
    s.wait(lambda: ("spot_check", True) in {(n, d) for _, n, _, d in service.deadline_schedule()})
    assert service.scrape_gauges()["kaowu_deadline_overdue_seconds"] == []
    s.clock.set(at(2026, 4, 18, 16, 0, 2))  # confirmation closed: lapsing runs, once
    s.wait(lambda: list(registration.deadline_schedule())[0][3])
