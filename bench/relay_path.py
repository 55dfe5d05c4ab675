"""How events travel, without the services: the relay to RabbitMQ, and a tracking consumer
from the messages (issue 18, items 1 and 2). Quick, and independent of PostgreSQL's load:
SQLite stores in a temporary directory, the local broker.

    python -m bench.relay_path [EVENTS]

Prints one JSON line: events, relay seconds and messages (one confirm each), consumer
seconds and transactions, for a handler acting on one type in ten. Run it in another tree
(``cd OTHER && python -m bench.relay_path``) to compare before and after.
"""

import json
import sys
import tempfile
import time

from kombu import Connection, Queue

from shared.config import DEFAULT_AMQP_URI as AMQP
from shared.events import NewEvent
from shared.eventstore.store import open_store
from shared.relay import KombuPublisher, Relay, events_exchange
from shared.tracking import TrackingConsumer, dispatch
from tests.integration.test_eventstore import registry


def fetcher(upstream):
    def fetch(position, limit, types=None):
        if types is None:
            return [upstream.public_view(e, "up") for e in upstream.events_after(position, limit)]
        from shared.tracking import events_answer  # only where consumers filter

        return events_answer(upstream, "up", position, limit, types)
    return fetch


def main(events: int = 5000) -> dict:
    work = tempfile.mkdtemp(prefix="relay-path-")
    upstream = open_store(f"sqlite:///{work}/up.db", registry())
    name = f"relay-path-{int(time.time() * 1000)}"
    with Connection(AMQP) as conn:
        ch = conn.channel()
        events_exchange("up")(ch).declare()
        Queue(name, exchange=events_exchange("up"), routing_key="#", durable=False,
              auto_delete=False)(ch).declare()
    for i in range(events):  # one command, one event (the common case)
        stream = f"s-{i % 50}"
        upstream.append([NewEvent(stream, "Closed", {}) if i % 10 == 0
                         else NewEvent(stream, "Counted", {"n": i})])
    relay = Relay(upstream, "up", KombuPublisher(AMQP, "up"), batch=500)
    t0 = time.perf_counter()
    while relay.run_once():
        pass
    relay_s = time.perf_counter() - t0
    relay.stop()

    bodies = []
    with Connection(AMQP) as conn:
        q = Queue(name)(conn.channel())
        while (msg := q.get(no_ack=True)) is not None:
            bodies.append(msg.payload)
        q.delete()

    me = open_store(f"sqlite:///{work}/me.db", registry())
    transactions = []
    me.on_commit(lambda appended: transactions.append(len(appended)))

    def closed(tx, ev):
        tx.append([NewEvent(f"seen-{ev.position}", "Counted", {"n": ev.position})])

    consumer = TrackingConsumer(me, "up", dispatch({"Closed": closed}))
    fetch = fetcher(upstream)
    consumer.catch_up(lambda position, limit, types=None: fetch(0, 1, types))  # first contact
    t0 = time.perf_counter()
    for body in bodies:
        consumer.receive(body, fetch)
    consumer.catch_up(fetch)  # writes what was passed over
    consumer_s = time.perf_counter() - t0
    assert me.tracked_position("up") == events, me.tracked_position("up")
    return {"events": events, "relay_s": round(relay_s, 2), "messages": len(bodies),
            "relay_events_per_s": round(events / relay_s), "consumer_s": round(consumer_s, 2),
            "consumer_events_per_s": round(events / consumer_s),
            "consumer_transactions": len(transactions), "pulled": consumer.pulled}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)))
