"""Service-to-service RPC gives up after ``RPC_TIMEOUT``: a reply that never comes (lost
to a broker restart, or a callee stuck) must not hang the caller's worker for ever. So a
command's reply is sent without a publisher confirm (the caller's deadline covers its loss),
while requests keep theirs."""

import time
from contextlib import contextmanager

import eventlet
import pytest
from nameko.rpc import RpcProxy as NamekoRpcProxy
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from services.gateway import rpc as gateway_rpc
from services.gateway.errors import ServiceUnavailable
from shared.dependencies import RpcProxy
from shared.errors import Unavailable
from shared.service import command

pytestmark = pytest.mark.integration


class Slow:
    name = "slow"

    @rpc
    def echo(self, value, delay=0.0):
        eventlet.sleep(delay)
        return value


class Caller:
    name = "caller"
    slow = RpcProxy("slow")

    @rpc
    def ask(self, value, delay=0.0):
        started = time.monotonic()
        try:
            return {"value": self.slow.echo(value, delay), "s": time.monotonic() - started}
        except Unavailable as exc:
            return {"unavailable": exc.message, "fields": exc.fields,
                    "s": time.monotonic() - started, "slots": _slots(self.slow)}


def _slots(proxy) -> int:
    """Replies the proxy's listener still waits for."""
    return len(proxy.echo.reply_listener._reply_events)


class Front:
    """The gateway's way: nameko's own proxy, a deadline per call (``services.gateway.rpc``)."""

    name = "front"
    slow = NamekoRpcProxy("slow")

    @rpc
    def ask(self, value, delay=0.0):
        try:
            return {"value": gateway_rpc.call(self.slow, "slow", "echo", value, delay, timeout=1.0)}
        except ServiceUnavailable as exc:
            return {"unavailable": exc.message, "status": exc.status, "slots": _slots(self.slow)}


def test_a_call_not_answered_in_time_is_unavailable(container_factory, amqp_uri):
    config = {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 1.0}
    for cls in (Slow, Caller):
        container_factory(cls, config).start()
    with ServiceRpcProxy("caller", {"AMQP_URI": amqp_uri}, timeout=20) as caller:
        assert caller.ask("a")["value"] == "a"
        # deadline 1 s, reply after 4 s: a caller that waited for it would take 4 s (the
        # margins leave room for a loaded test machine)
        late = caller.ask("b", 4.0)
        assert late["fields"] == {"service": "slow", "method": "echo"}
        assert "did not answer in 1 s" in late["unavailable"]
        assert 1.0 <= late["s"] < 3.5
        assert late["slots"] == 0  # the late reply's slot is gone: it is ignored, not kept
        # the late reply, when it comes, is dropped; the next call gets its own answer
        time.sleep(4.0)
        assert caller.ask("c")["value"] == "c"


def test_the_gateway_gives_up_the_same_way(container_factory, amqp_uri):
    config = {"AMQP_URI": amqp_uri}
    for cls in (Slow, Front):
        container_factory(cls, config).start()
    with ServiceRpcProxy("front", {"AMQP_URI": amqp_uri}, timeout=20) as front:
        assert front.ask("a")["value"] == "a"
        late = front.ask("b", 4.0)
        assert late["status"] == 503 and "did not answer within 1 s" in late["unavailable"]
        assert late["slots"] == 0
        time.sleep(4.0)
        assert front.ask("c")["value"] == "c"


class Commands:
    name = "commands"

    @command
    def echo(self, value):
        return value


def test_command_replies_go_without_a_confirm_and_requests_with_one(container_factory,
                                                                     amqp_uri, monkeypatch):
    from nameko.amqp import publish

    published = []  # (confirms asked, confirm mode of the connection that published)
    real = publish.get_producer

    @contextmanager
    def spy(uri, confirms=True, *args, **kwargs):
        with real(uri, confirms, *args, **kwargs) as producer:
            # noted before the publish: once a reply is out, the caller's next request
            # can be published before this worker runs again
            published.append((confirms, producer.connection.connection.confirm_publish))
            yield producer

    monkeypatch.setattr(publish, "get_producer", spy)
    container_factory(Commands, {"AMQP_URI": amqp_uri}).start()
    with ServiceRpcProxy("commands", {"AMQP_URI": amqp_uri}, timeout=20) as proxy:
        assert [proxy.echo(v) for v in "abc"] == list("abc")
    # request, reply, in turn: a reply without confirms leaves the next request's alone
    assert published == [(True, True), (False, False)] * 3
