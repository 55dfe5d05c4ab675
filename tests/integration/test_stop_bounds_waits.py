"""A stop ends every worker within the stop timeout: RPC waits end when the stop begins
(``shared.dependencies.StopWatch``), and batch loops (SMS to send) stop taking work. A
worker waiting ``RPC_TIMEOUT`` (20 s here) for a service that is stopping too, once per
upstream a catch-up timer asks, held the notification service past the runner's timeout."""

import threading
import time

import eventlet
import pytest
from nameko.rpc import RpcProxy as NamekoRpcProxy
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from services.gateway import rpc as gateway_rpc
from services.gateway.errors import ServiceUnavailable
from shared.dependencies import RpcProxy, StopSignal
from shared.errors import Unavailable

pytestmark = pytest.mark.integration

OUTCOMES = []


class Stuck:
    name = "stuck"

    @rpc
    def echo(self, value, delay=0.0):
        eventlet.sleep(delay)
        return value


class Caller:
    """A service's way: shared.dependencies.RpcProxy, several calls in a row (a catch-up)."""

    name = "caller"
    stuck = RpcProxy("stuck")

    @rpc
    def ask_each(self, n, delay):
        started = time.monotonic()
        for i in range(n):
            try:
                self.stuck.echo(i, delay)
            except Unavailable as exc:
                OUTCOMES.append(("caller", i, exc.message, time.monotonic() - started))
        return "done"


class Front:
    """The gateway's way: nameko's proxy with services.gateway.rpc's deadline."""

    name = "front"
    stuck = NamekoRpcProxy("stuck")
    stopping = StopSignal()  # the gateway's Gate installs the watch the same way

    @rpc
    def ask(self, delay):
        started = time.monotonic()
        try:
            gateway_rpc.call(self.stuck, "stuck", "echo", 1, delay, timeout=20)
        except ServiceUnavailable as exc:
            OUTCOMES.append(("front", 0, exc.message, time.monotonic() - started))
        return "done"


def _call_in_background(amqp_uri, service, method, *args):
    def run():
        try:
            with ServiceRpcProxy(service, {"AMQP_URI": amqp_uri}, timeout=30) as proxy:
                getattr(proxy, method)(*args)
        except Exception:  # noqa: BLE001 - the reply may be lost to the stop: not the point
            pass
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("cls, method, args", [(Caller, "ask_each", (6, 8.0)),
                                              (Front, "ask", (8.0,))])
def test_a_stop_ends_a_worker_waiting_on_another_services_rpc(container_factory, amqp_uri,
                                                               cls, method, args):
    OUTCOMES.clear()
    config = {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 20}
    container_factory(Stuck, config).start()
    caller = container_factory(cls, config)
    caller.start()
    _call_in_background(amqp_uri, cls.name, method, *args)
    deadline = time.monotonic() + 10
    while not caller._worker_threads and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the worker now waits on stuck.echo (8 s each; RPC_TIMEOUT 20 s)
    assert caller._worker_threads

    started = time.monotonic()
    caller.stop()
    took = time.monotonic() - started

    # the calls wait 8 s and RPC_TIMEOUT is 20 s: under 6 s, the stop did not wait on them
    assert took < 6, f"the stop took {took:.1f} s: it waited on the RPC"
    assert OUTCOMES, "the waiting worker was not woken"
    # the first call was given up at the stop; the calls after it at once, not 20 s each
    assert all(s < 6 for *_, s in OUTCOMES), OUTCOMES
    assert "stopping" in OUTCOMES[0][2] or "did not answer" in OUTCOMES[0][2]
