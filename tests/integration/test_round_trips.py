"""Round trips to PostgreSQL, counted client-side (``count_round_trips``, the services'
``kaowu_db_round_trips_total``): what a command, a consumer's batch, a read outside a unit
of work and the relay cost."""

from collections import Counter

import pytest

from shared.events import NewEvent
from shared.eventstore.engine import count_round_trips
from shared.eventstore.store import open_store
from tests import support
from tests.integration.test_eventstore import Things, registry

pytestmark = pytest.mark.integration


@pytest.fixture
def store(pg_url):
    store = open_store(pg_url, registry())
    yield store
    store.engine.dispose()


def counting(store) -> Counter:
    counts = Counter()
    count_round_trips(store.engine, lambda kind: counts.update((kind,)))
    return counts


def cost(counts: Counter, fn) -> dict:
    counts.clear()
    fn()
    return dict(counts)


def test_a_command_is_one_transaction_and_its_appends_one_statement(store):
    counts = counting(store)
    store.append([NewEvent("s-1", "Counted", {"n": 0})])

    def command(tx):
        tx.read_stream("s-1")
        tx.append([NewEvent("s-1", "Counted", {"n": 1}), NewEvent("s-2", "Counted", {"n": 2})],
                  {"s-1": 1, "s-2": 0})

    # BEGIN, the stream read, the head and both events in one statement, COMMIT
    assert cost(counts, lambda: store.execute(command)) == {"begin": 1, "statement": 2, "commit": 1}


def test_a_read_models_rows_are_a_statement_per_table_and_kind_built_once(pg_url, monkeypatch):
    """Many rows of one kind in one statement; the statement's text built on first use only
    (``RowStatements``), not per append."""
    from shared.projection.statements import RowStatements

    built = []
    build = RowStatements._build
    monkeypatch.setattr(RowStatements, "_build", lambda self, *a: built.append(a) or build(self, *a))
    store = open_store(pg_url, registry(), projections=[Things()])
    counts = counting(store)

    def cost_of(events, expected):
        return cost(counts, lambda: store.append(events, expected))

    # three upserts in one statement, the events in another
    counted = [NewEvent(f"s-{i}", "Counted", {"n": i}) for i in range(6)]
    assert cost_of(counted[:3], {f"s-{i}": 0 for i in range(3)}) == {
        "begin": 1, "statement": 2, "commit": 1}
    renamed = [NewEvent(f"s-{i}", "Renamed", {"title": f"t{i}"}) for i in range(2)]
    assert cost_of(renamed, {"s-0": 1, "s-1": 1}) == {"begin": 1, "statement": 2, "commit": 1}
    assert len(built) == 2  # the upsert's, the update's
    assert cost_of(counted[3:], {f"s-{i}": 0 for i in range(3, 6)}) == {
        "begin": 1, "statement": 2, "commit": 1}
    assert len(built) == 2
    with store.engine.connect() as c:
        assert c.exec_driver_sql("SELECT id, n, title FROM things ORDER BY id").all() == [
            ("s-0", 0, "t0"), ("s-1", 1, "t1"), ("s-2", 2, None), ("s-3", 3, None),
            ("s-4", 4, None), ("s-5", 5, None)]
    store.engine.dispose()


def test_a_read_outside_a_unit_of_work_is_one_round_trip(store):
    """Autocommit reads: no BEGIN before, no ROLLBACK after."""
    counts = counting(store)
    store.append([NewEvent("s-1", "Counted", {"n": 0})])
    one = {"statement": 1}
    assert cost(counts, store.head) == one
    assert cost(counts, lambda: store.read_stream("s-1")) == one
    assert cost(counts, lambda: store.events_after(0, 10, types=["Counted"])) == one
    assert cost(counts, lambda: store.tracked("upstream")) == one
    assert cost(counts, store.relay_position) == one


def test_the_relay_runs_no_empty_cycle_after_publishing(store):
    """A cycle that published less than a batch reached the head: the next commit wakes
    the relay, so it does not look again at once (an empty cycle: a transaction, two
    reads)."""
    import eventlet

    from shared.relay import Relay
    from tests.support import wait_for

    publisher = support.CapturedPublisher()
    relay = Relay(store, "rt", publisher, poll_interval=60)
    cycles = []
    run_once = relay.run_once
    relay.run_once = lambda: cycles.append(run_once()) or cycles[-1]
    runner = eventlet.spawn(relay.run_forever)
    try:
        wait_for(lambda: cycles == [0])  # started: nothing to publish, waiting
        store.append([NewEvent("s-1", "Counted", {"n": 0})])
        wait_for(lambda: publisher.messages)
        store.append([NewEvent("s-1", "Counted", {"n": 1}), NewEvent("s-2", "Counted", {"n": 2})])
        wait_for(lambda: len(publisher.messages) == 2)
        eventlet.sleep(0.3)  # room for a cycle that should not come
        assert cycles == [0, 1, 2]
        assert [[e["position"] for e in m["events"]] for m in publisher.messages] == [[1], [2, 3]]
        assert store.relay_position() == 3
    finally:
        relay.stop()
        runner.wait()


# -- a submission end to end --------------------------------------------------------------

def round_trips(season) -> dict[str, Counter]:
    """Each service's ``kaowu_db_round_trips_total`` by kind, as its Metrics counts them."""
    from shared.metrics import Metrics

    out = {}
    for container in season.runner.containers:
        metrics = next(d for d in container.dependencies if isinstance(d, Metrics)).metrics
        out[container.service_name] = Counter({
            s.labels["kind"]: s.value for m in metrics.round_trips.collect()
            for s in m.samples if s.name.endswith("_total")})
    return out


def caught_up(season) -> bool:
    stores = {name: season.store(name) for name in ("account", "registration", "verification")}
    heads = {name: store.head() for name, store in stores.items()}
    return all(store.relay_position() == heads[name] for name, store in stores.items()) and \
        all(stores[down].tracked_position(up) == heads[up]
            for down, up in (("registration", "account"), ("registration", "verification"),
                             ("verification", "registration")))


def test_what_a_submission_costs(runner_factory, amqp_uri, databases, capsys):
    """Round trips per submission, by service and kind, from ``submit_application`` to the
    automatic check's decision recorded in registration (printed: ``pytest -s``)."""
    from shared.session import REFERENCE_SESSION_PATH
    from tests.integration.test_application_flow import at, start_season

    season = start_season(runner_factory, amqp_uri, databases, name="roundtrips")
    season.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    keys = ["wang", "li", "zhou", "chen", "liu"]
    for key in keys:
        season.candidate(key)
    for key in keys:
        season.known_complete(key)
    season.clock.set(at(2026, 4, 7, 10, 0, 0))
    season.wait(lambda: caught_up(season))
    before = round_trips(season)
    for key in keys:
        season.apply(key)
    for key, status in zip(keys, ["auto_passed", "auto_passed", "proof_requested",
                                  "proof_requested", "proof_requested"], strict=True):
        season.status(key, status)
    season.wait(lambda: caught_up(season))
    after = round_trips(season)
    lines = []
    for name in sorted(after):
        used = after[name] - before.get(name, Counter())
        lines.append(f"{name:13s} " + "  ".join(
            f"{kind} {used[kind] / len(keys):.1f}" for kind in ("statement", "begin", "commit",
                                                               "rollback"))
            + f"  = {sum(used.values()) / len(keys):.1f} round trips per submission")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert after["registration"]["commit"] > before["registration"]["commit"]
