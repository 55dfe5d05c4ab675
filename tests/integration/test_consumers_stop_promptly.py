"""The tests' stacks stop at once (``tests/conftest.py``: ``_consume``, ``_wake``): an idle
queue consumer waits on the broker up to ``CONSUMER_WAKE`` before it looks again whether it
is to cancel a provider or stop, and a stop wakes it instead of waiting for that look (so
the consumers need not wake often while idle). Here the wait is made a minute long: a stop
that waited for it would not end within the test's bound."""

import eventlet
import pytest
from nameko.events import event_handler
from nameko.messaging import QueueConsumer
from nameko.rpc import rpc

pytestmark = pytest.mark.integration


class Idle:
    name = "idle"

    @rpc
    def ping(self):
        return "pong"

    @event_handler("elsewhere", "happened")
    def on_happened(self, payload):
        pass


def test_an_idle_consumer_is_woken_to_stop(container_factory, amqp_uri, monkeypatch):
    consume = QueueConsumer.consume  # the tests' own, installed for the session
    monkeypatch.setattr(consume, "__defaults__", (None, None, 60.0))
    container = container_factory(Idle, {"AMQP_URI": amqp_uri})
    container.start()
    eventlet.sleep(0.5)  # long enough to be parked on the broker
    with eventlet.Timeout(20, AssertionError("the stop waited for the consumer's wait")):
        container.stop()
