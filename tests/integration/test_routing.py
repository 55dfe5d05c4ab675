"""Routing by event type over the real broker (``shared.routing``): a consumer's queue gets
only the relay's messages holding one of its types, each once; a queue made before, bound
to everything, loses that binding; a consumer that declares no types still gets all."""

import uuid

import pytest
from kombu import Connection, Queue
from marshmallow import Schema, fields
from nameko.rpc import RpcProxy
from nameko.testing.services import entrypoint_hook

from shared.contracts import INTEGRATION, EventRegistry
from shared.dependencies import EventStoreProvider, TrackingProvider
from shared.events import NewEvent
from shared.relay import KombuPublisher, events_exchange
from shared.routing import consumer_queue
from shared.service import EventSourcedService, command, config_timer, upstream_events
from shared.tracking import dispatch
from tests.support import wait_for

pytestmark = pytest.mark.integration


def cycle(n, *types):
    """A relay cycle's message (``n`` tells them apart) with events of ``types``."""
    return {"events": [{"type": t, "position": n, "metadata": {}} for t in types],
            "after": n - 1, "last": n, "log_id": "L", "types_at": {}}


def taken(amqp_uri, name):
    """The messages on queue ``name``, taken off it."""
    got = []
    with Connection(amqp_uri) as conn:
        q = Queue(name, durable=True)(conn.channel())
        while (m := q.get(no_ack=True)) is not None:
            got.append(m.payload["last"])
    return got


def test_a_queue_gets_only_the_messages_with_its_types_once(amqp_uri):
    service = f"route{uuid.uuid4().hex[:6]}"
    exchange = events_exchange(service)
    handled, everything = f"{service}-handled", f"{service}-everything"
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        # made before type routing: bound to everything
        Queue(handled, exchange=exchange, routing_key="#", durable=True)(channel).declare()
        consumer_queue(handled, exchange, frozenset({"Closed", "Renamed"}),
                       durable=True)(channel).declare()
        consumer_queue(everything, exchange, None, durable=True)(channel).declare()
    publisher = KombuPublisher(amqp_uri, service)
    try:
        for message in (cycle(1, "Counted"), cycle(2, "Counted", "Renamed"),
                        cycle(3, "Renamed", "Counted", "Closed"), cycle(4, "Counted", "Counted"),
                        cycle(5, "Closed")):
            publisher.publish(message)  # confirmed: routed by the time it returns
        producer = publisher._producer_ready()
        producer.publish(cycle(6, "Counted"), routing_key="batch")  # a relay before routing
        producer.publish(cycle(7, "Counted"), routing_key="#")  # a key is a key, not a pattern
    finally:
        publisher.close()
    # 2 by its CC (routing key Counted), 3 by two of its keys: once
    assert taken(amqp_uri, handled) == [2, 3, 5, 6]
    assert taken(amqp_uri, everything) == [1, 2, 3, 4, 5, 6, 7]


class Said(Schema):
    text = fields.String(required=True)


EVENTS = EventRegistry().include(INTEGRATION)
EVENTS.register("Said", Said)
EVENTS.register("Shouted", Said)
EVENTS.register("Heard", Said, public=False)


class UpService(EventSourcedService):
    name = "rup"
    store = EventStoreProvider(EVENTS)

    @command
    def say(self, text, kind="Said"):
        self.store.append([NewEvent(f"said-{text}", kind, {"text": text})])


def hear(tx, event):
    tx.append([NewEvent(f"heard-{event.position}", "Heard", {"text": event.payload["text"]})])


class DownService(EventSourcedService):
    name = "rdown"
    store = EventStoreProvider(EVENTS, relay=False)
    tracking = TrackingProvider({"rup": dispatch({"Said": hear})})
    rup_rpc = RpcProxy("rup")

    @upstream_events("rup")
    def on_rup(self, message):
        self.tracking.receive("rup", message, self.rup_rpc.events_after)

    @config_timer()
    def catch_up(self):
        self.tracking.catch_up({"rup": self.rup_rpc.events_after})


def test_a_service_receives_only_what_its_dispatch_table_handles(runner_factory, amqp_uri,
                                                                  tmp_path):
    """The queue of an upgraded service loses its binding to everything; it is then bound
    to the types its dispatch table names, and applies them from the messages although it
    no longer sees the ones in between (``types_at``), without pulling."""
    queue = "evt-rup-#--rdown.on_rup"  # nameko's name for it, as before type routing
    with Connection(amqp_uri) as conn:
        Queue(queue, exchange=events_exchange("rup"), routing_key="#",
              durable=True)(conn.channel()).declare()
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": f"sqlite:///{tmp_path}/{{service}}.db",
              "CATCH_UP_INTERVAL": 3600, "max_workers": 4}
    runner = runner_factory(config, UpService, DownService)
    runner.start()
    up = next(c for c in runner.containers if c.service_name == "rup")
    down = next(c for c in runner.containers if c.service_name == "rdown")
    consumer = next(d for d in down.dependencies if isinstance(d, TrackingProvider)).consumers["rup"]
    up_store = next(d for d in up.dependencies if isinstance(d, EventStoreProvider)).store
    down_store = next(d for d in down.dependencies if isinstance(d, EventStoreProvider)).store

    def heard():
        return [e.payload["text"] for e in down_store.events_after(0, 1000) if e.type == "Heard"]

    with entrypoint_hook(up, "say") as say:
        say("one")
        wait_for(lambda: heard() == ["one"])  # first contact: a pull
        for i in range(3):
            say(f"loud-{i}", "Shouted")
        wait_for(lambda: up_store.relay_position() == 4)
        say("two")
        wait_for(lambda: heard() == ["one", "two"])
    assert consumer.deliveries == 2 and consumer.deliveries_passed_over == 0
    assert consumer.pulled == 1 and consumer.passed_over == 3  # the Shouted, never delivered
    runner.stop()

    publisher = KombuPublisher(amqp_uri, "rup")
    try:
        publisher.publish(cycle(8, "Shouted"))
        publisher.publish(cycle(9, "Shouted", "Said"))
    finally:
        publisher.close()
    assert taken(amqp_uri, queue) == [9]
