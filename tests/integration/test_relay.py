"""The outbox relay: in order, nothing published before commit, nothing lost when the
broker restarts under it."""

import time

import eventlet
import pytest
from kombu import Connection, Queue

from shared.events import NewEvent
from shared.eventstore.store import open_store
from shared.relay import KombuPublisher, Relay, events_exchange
from tests import support
from tests.integration.test_eventstore import registry

pytestmark = pytest.mark.integration


def drain(amqp_uri, queue_name, want, timeout=30, messages=None):
    """Positions of the events on ``queue_name`` until ``want`` distinct ones are seen
    (``messages`` collects the messages)."""
    got = []
    deadline = time.monotonic() + timeout
    with Connection(amqp_uri) as conn:
        q = Queue(queue_name, durable=True)(conn.channel())
        while len(set(got)) < want and time.monotonic() < deadline:
            msg = q.get(no_ack=True)
            if msg is None:
                eventlet.sleep(0.05)
                continue
            assert [e["position"] for e in msg.payload["events"]] == \
                list(range(msg.payload["after"] + 1, msg.payload["last"] + 1))
            got.extend(e["position"] for e in msg.payload["events"])
            if messages is not None:
                messages.append(msg.payload)
    return got


def bind_queue(amqp_uri, service, name):
    with Connection(amqp_uri) as conn:
        ch = conn.channel()
        ex = events_exchange(service)(ch)
        ex.declare()
        q = Queue(name, exchange=events_exchange(service), routing_key="#", durable=True)(ch)
        q.declare()
        q.purge()


def test_relay_publishes_in_order_and_records_progress(amqp_uri, db_url):
    store = open_store(db_url, registry())
    bind_queue(amqp_uri, "relaytest", "relaytest-order")
    relay = Relay(store, "relaytest", KombuPublisher(amqp_uri, "relaytest"), batch=7)
    for i in range(30):
        store.append([NewEvent(f"s-{i % 4}", "Counted", {"n": i})])
    assert store.relay_position() == 0  # nothing leaves before the relay runs
    while relay.run_once():
        pass
    assert store.relay_position() == 30 and relay.lag() == 0
    messages = []
    assert drain(amqp_uri, "relaytest-order", 30, messages=messages) == list(range(1, 31))
    # one message (one confirm) per cycle of at most ``batch`` events
    assert [(m["after"], m["last"]) for m in messages] == \
        [(0, 7), (7, 14), (14, 21), (21, 28), (28, 30)]
    assert {m["log_id"] for m in messages} == {store.log_id}
    relay.stop()


class ConfirmLost(KombuPublisher):
    """The broker takes the message, then goes before its confirm arrives (a restart)."""

    def __init__(self, *args, lose=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.lose = lose

    def publish(self, message):
        super().publish(message)
        if self.lose:
            self.lose -= 1
            raise ConnectionResetError("connection lost before the confirm")


def test_a_batch_whose_confirm_is_lost_is_published_again_and_applied_once(amqp_uri, db_url,
                                                                           tmp_path):
    """At-least-once across a batch: the position is not recorded, the same cycle goes
    out again, and a consumer applies each event once."""
    from shared.tracking import TrackingConsumer

    store = open_store(db_url, registry())
    bind_queue(amqp_uri, "relaytest4", "relaytest4-q")
    me = open_store(f"sqlite:///{tmp_path}/me.db", registry())
    seen = []
    consumer = TrackingConsumer(me, "relaytest4", lambda tx, ev: seen.append(ev.position))

    def fetch(position, limit):
        return [store.public_view(e, "relaytest4") for e in store.events_after(position, limit)]

    store.append([NewEvent("s-0", "Counted", {"n": 0})])
    assert consumer.catch_up(fetch) == 1  # first contact: it follows this log from here
    relay = Relay(store, "relaytest4", ConfirmLost(amqp_uri, "relaytest4"), batch=5)
    for i in range(1, 9):
        store.append([NewEvent(f"s-{i % 3}", "Counted", {"n": i})])
    with pytest.raises(ConnectionResetError):
        relay.run_once()
    assert store.relay_position() == 0  # published, not confirmed: not recorded
    while relay.run_once():
        pass
    assert store.relay_position() == 9
    messages = []
    got = drain(amqp_uri, "relaytest4-q", 9, messages=messages)
    assert got == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # the first cycle twice
    assert [consumer.receive(m, fetch) for m in messages] == [4, 0, 4]  # from the messages
    assert seen == list(range(1, 10)) and me.tracked_position("relaytest4") == 9
    assert consumer.pulled == 1 and consumer.skipped == 5
    relay.stop()


def test_uncommitted_events_are_never_published(amqp_uri, pg_url):
    store = open_store(pg_url, registry())
    bind_queue(amqp_uri, "relaytest2", "relaytest2-q")
    relay = Relay(store, "relaytest2", KombuPublisher(amqp_uri, "relaytest2"))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.append([NewEvent("s", "Counted", {"n": 1})])
        assert relay.run_once() == 0  # not committed yet: invisible to the relay
        raise RuntimeError("the command fails after appending")
    assert relay.run_once() == 0 and store.head() == 0
    relay.stop()


def test_broker_restart_loses_and_reorders_nothing(private_broker, pg_url):
    # a node of the test's own (tests/servers.py): the shard's others go on on the machine's
    amqp_uri = private_broker.amqp
    store = open_store(pg_url, registry())
    bind_queue(amqp_uri, "relaytest3", "relaytest3-q")
    relay = Relay(store, "relaytest3", KombuPublisher(amqp_uri, "relaytest3"), poll_interval=0.1)
    runner = eventlet.spawn(relay.run_forever)
    total = 0

    def write(n):
        nonlocal total
        for _ in range(n):
            total += 1
            store.append([NewEvent(f"s-{total % 5}", "Counted", {"n": total})])
            eventlet.sleep(0.002)

    write(50)
    private_broker.rabbitmqctl("-q", "stop_app", check=True, timeout=60)
    try:
        write(50)  # the broker is down: commands go on, the relay waits and retries
    finally:
        private_broker.rabbitmqctl("-q", "start_app", check=True, timeout=120)
        private_broker.rabbitmqctl("-q", "await_startup", check=False, timeout=120)
    write(50)
    deadline = time.monotonic() + 60
    while store.relay_position() < total and time.monotonic() < deadline:
        eventlet.sleep(0.1)
    relay.stop()
    runner.kill()
    assert store.relay_position() == total == 150
    got = drain(amqp_uri, "relaytest3-q", total)
    first_seen = list(dict.fromkeys(got))
    assert first_seen == list(range(1, total + 1))  # every one, in order (re-sends allowed)


def last_seen(store, after):
    """``types_at`` worked out from the whole log: each type's last position up to ``after``."""
    return {e.type: e.position for e in store.events_after(0, 10_000) if e.position <= after}


def reads_of(store):
    """The relay's reads of the map from the log, as (after, upto)."""
    reads = []
    read = store.last_of_types

    def counted(after, upto, conn=None):
        reads.append((after, upto))
        return read(after, upto, conn=conn)

    store.last_of_types = counted
    return reads


KINDS = [("Counted", {"n": 1}), ("Closed", {}), ("Renamed", {"title": "t"})]


def commit(store, n, offset=0):
    for i in range(n):
        kind, payload = KINDS[(i + offset) * 7 % 5 % 3]
        store.append([NewEvent(f"s-{i % 4}", kind, payload)])


def test_each_message_says_where_each_type_was_last_seen(db_url):
    """``types_at``: for every type of the log, its last position at or before the
    message's ``after``; kept in memory, read from the log once at the start."""
    store = open_store(db_url, registry())
    reads = reads_of(store)
    relay = Relay(store, "relaytest5", support.CapturedPublisher(), batch=4)
    commit(store, 3)
    while relay.run_once():
        pass
    commit(store, 11, offset=3)
    while relay.run_once():
        pass
    messages = relay.publisher.messages
    assert [(m["after"], m["last"]) for m in messages] == [(0, 3), (3, 7), (7, 11), (11, 14)]
    assert [m["types_at"] for m in messages] == [last_seen(store, m["after"]) for m in messages]
    assert set(messages[-1]["types_at"]) == {"Counted", "Closed", "Renamed"}
    assert reads == [(0, 0)]  # at the start only: then it follows what it publishes


def test_the_map_is_read_again_after_another_replica_a_restart_or_a_failure(db_url, monkeypatch):
    """Where the recorded position is not where this relay left it, it reads the map from
    the log: the stretch another replica published, or all of it (a new process; a cycle
    published whose position was not recorded)."""
    from sqlalchemy import text

    import shared.relay

    store = open_store(db_url, registry())
    reads = reads_of(store)
    a = Relay(store, "relaytest6", support.CapturedPublisher(), batch=3)
    b = Relay(store, "relaytest6", support.CapturedPublisher(), batch=3)
    commit(store, 5)
    assert a.run_once() == 3 and b.run_once() == 2  # b takes over from 3: reads all to 3
    commit(store, 4, offset=5)
    assert a.run_once() == 3  # a left it at 3, b at 5: a reads 4..5 only
    assert reads == [(0, 0), (0, 3), (3, 5)]
    assert b.run_once() == 1 and reads[-1] == (5, 8)

    reads.clear()
    restarted = Relay(store, "relaytest6", support.CapturedPublisher(), batch=3)
    commit(store, 2, offset=9)
    assert restarted.run_once() == 2 and reads == [(0, 9)]

    commit(store, 3, offset=11)  # published, then recording the position fails
    monkeypatch.setattr(shared.relay, "RELAY_ADVANCE", text("UPDATE relay_state SET nowhere = 1"))
    with pytest.raises(Exception, match="nowhere"):
        restarted.run_once()
    monkeypatch.undo()
    reads.clear()
    assert restarted.run_once() == 3 and reads == [(0, 11)]  # its map was ahead: read anew
    published = a.publisher.messages + b.publisher.messages + restarted.publisher.messages
    assert all(m["types_at"] == last_seen(store, m["after"]) for m in published)
    assert store.relay_position() == 14
