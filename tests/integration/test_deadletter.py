"""Dead letters over a real broker: an undecodable message and a poison event each land in
the dead-letter queue with where they came from and why; the consumer goes on; a replay
puts the message back where it came from, and applies the poison event once it is fixed."""


import pytest
from kombu import Connection, Exchange
from marshmallow import Schema, fields
from nameko.rpc import RpcProxy
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook

from shared import deadletter
from shared.contracts import INTEGRATION, EventRegistry
from shared.dependencies import EventStoreProvider, TrackingProvider
from shared.events import NewEvent
from shared.service import EventSourcedService, command, config_timer, upstream_events
from tests.support import wait_for

pytestmark = pytest.mark.integration


class Said(Schema):
    text = fields.String(required=True)


EVENTS = EventRegistry().include(INTEGRATION)
EVENTS.register("Said", Said)
EVENTS.register("Heard", Said, public=False)

FIXED = {"yes": False}


class UpService(EventSourcedService):
    name = "up"
    store = EventStoreProvider(EVENTS)

    @command
    def say(self, text):
        self.store.append([NewEvent(f"said-{text}", "Said", {"text": text})])


def hear(tx, event):
    if event.payload["text"] == "poison" and not FIXED["yes"]:
        raise TypeError("a payload this handler did not expect")
    tx.append([NewEvent(f"heard-{event.position}", "Heard", {"text": event.payload["text"]})])


class DownService(EventSourcedService):
    name = "down"
    store = EventStoreProvider(EVENTS, relay=False)
    tracking = TrackingProvider({"up": hear})
    up_rpc = RpcProxy("up")

    @upstream_events("up")
    def on_up(self, message):
        self.tracking.receive("up", message, self.up_rpc.events_after)

    @config_timer()
    def catch_up(self):
        self.tracking.catch_up({"up": self.up_rpc.events_after})




def heard(runner):
    c = next(c for c in runner.containers if c.service_name == "down")
    store = next(d for d in c.dependencies if isinstance(d, EventStoreProvider)).store
    return [e.payload["text"] for e in store.events_after(0, 1000) if e.type == "Heard"]


def test_dead_letters_are_kept_shown_and_replayed(runner_factory, amqp_uri, tmp_path):
    FIXED["yes"] = False
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": f"sqlite:///{tmp_path}/{{service}}.db",
              "CATCH_UP_INTERVAL": 0.2, "max_workers": 10}
    runner = runner_factory(config, UpService, DownService)
    runner.start()
    up = next(c for c in runner.containers if c.service_name == "up")
    with entrypoint_hook(up, "say") as say:
        say("one")
    wait_for(lambda: heard(runner) == ["one"])

    # not JSON at all, straight onto the consumer's queue
    with Connection(amqp_uri) as conn:
        conn.Producer().publish(b"{garbage", exchange=Exchange("up.events", type="topic"),
                                routing_key="Said", content_type="application/json",
                                content_encoding="utf-8")
    wait_for(lambda: deadletter.counts(amqp_uri)[deadletter.NAME] == 1)
    for text in ("poison", "two"):
        with entrypoint_hook(up, "say") as say:
            say(text)
    wait_for(lambda: heard(runner) == ["one", "two"])  # the consumer went on
    wait_for(lambda: deadletter.counts(amqp_uri)[deadletter.NAME] == 2)

    letters = deadletter.peek(amqp_uri)
    assert deadletter.counts(amqp_uri)[deadletter.NAME] == 2  # peeking leaves them
    undecodable, poison = sorted(letters, key=lambda d: d["kind"], reverse=True)
    assert undecodable["kind"] == "undecodable" and undecodable["preview"] == "{garbage"
    assert undecodable["queue"] == "evt-up-#--down.on_up" and "Decode" in undecodable["error"]
    assert poison == {**poison, "kind": "poison", "consumer": "down", "upstream": "up",
                      "position": 2, "type": "Said"}
    assert poison["error"].startswith("TypeError: a payload this handler did not expect")

    with ClusterRpcProxy(config) as rpc:
        status = rpc["down"].status()
        assert status["dead_letters"] == 1 and status["tracking"]["up"] == 3
        FIXED["yes"] = True  # the fix is deployed

        def call(service, method, args):
            return getattr(rpc[service], method)(*args)

        result = deadletter.replay(amqp_uri, call)
    assert result == {"replayed": 2, "failed": 0}
    assert sorted(heard(runner)) == ["one", "poison", "two"]
    # the garbage went back to its queue and, still garbage, came back here alone
    wait_for(lambda: deadletter.counts(amqp_uri)[deadletter.NAME] == 1)
    assert deadletter.peek(amqp_uri)[0]["kind"] == "undecodable"
    with ClusterRpcProxy(config) as rpc:
        assert rpc["down"].status()["dead_letters"] == 0
        assert rpc["down"].dead_letters()[0]["replayed"] == "applied"
