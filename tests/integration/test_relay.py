"""The outbox relay: in order, nothing published before commit, nothing lost when the
broker restarts under it."""

import shutil
import subprocess
import time

import eventlet
import pytest
from kombu import Connection, Queue

from shared.events import NewEvent
from shared.eventstore import open_store
from shared.relay import KombuPublisher, Relay, events_exchange
from tests.integration.test_eventstore import registry

pytestmark = pytest.mark.integration


def drain(amqp_uri, queue_name, want, timeout=30):
    """Positions of the messages on ``queue_name`` until ``want`` distinct ones are seen."""
    got = []
    deadline = time.monotonic() + timeout
    with Connection(amqp_uri) as conn:
        q = Queue(queue_name, durable=True)(conn.channel())
        while len(set(got)) < want and time.monotonic() < deadline:
            msg = q.get(no_ack=True)
            if msg is None:
                eventlet.sleep(0.05)
                continue
            got.append(msg.payload["position"])
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
    assert drain(amqp_uri, "relaytest-order", 30) == list(range(1, 31))
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


@pytest.mark.skipif(not shutil.which("rabbitmqctl"), reason="needs the local broker's rabbitmqctl")
def test_broker_restart_loses_and_reorders_nothing(amqp_uri, pg_url):
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
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=60)
    try:
        write(50)  # the broker is down: commands go on, the relay waits and retries
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)
        subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=False, timeout=120)
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


