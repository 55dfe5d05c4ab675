"""The command line's RPC layer: failures become one-line errors a person can act on; and
the fake RPC layer the other CLI unit tests use (``FakeServices``)."""

import threading

import pytest
from nameko.exceptions import MethodNotFound, RemoteError, RpcTimeout, UnknownService

from cli import rpc
from cli.rpc import (
    BrokerUnavailable,
    MethodMissing,
    RpcClient,
    ServiceFailed,
    ServiceUnavailable,
    ThreadClients,
)
from shared.errors import Refused


class FakeServices:
    """Stands in for the running services: ``handlers[(service, method)]`` is a value or a
    function of the call's arguments; services in ``down`` do not answer."""

    def __init__(self, handlers=None, down=()):
        self.handlers = dict(handlers or {})
        self.down = set(down)
        self.calls = []
        self.clients = 0
        self.lock = threading.Lock()

    def factory(self, timeout=None):
        with self.lock:
            self.clients += 1
        return FakeClient(self, timeout)


class FakeClient:
    def __init__(self, services, timeout):
        self.services, self.timeout, self.closed = services, timeout, False

    def call(self, service, method, *args):
        s = self.services
        with s.lock:
            s.calls.append((service, method, args))
        if service in s.down:
            raise ServiceUnavailable(service, f"did not answer {method}() within {self.timeout} s")
        if (service, method) not in s.handlers:
            raise MethodMissing(service, method)
        h = s.handlers[(service, method)]
        return h(*args) if callable(h) else h

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Proxy:
    """A started ClusterRpcProxy's stand-in: ``proxy[service].method(*args)``."""

    def __init__(self, behaviour):
        self.behaviour = behaviour

    def __getitem__(self, service):
        behaviour = self.behaviour

        class Service:
            def __getattr__(self, method):
                def call(*args):
                    result = behaviour(service, method, args)
                    if isinstance(result, BaseException):
                        raise result
                    return result
                return call

        return Service()


def _cluster(monkeypatch, behaviour, start_error=None):
    started, stopped = [], []

    class Cluster:
        def __init__(self, config, timeout=None, context_data=None):
            self.config, self.timeout, self.context_data = config, timeout, context_data

        def start(self):
            if start_error:
                raise start_error
            started.append(self)
            return _Proxy(behaviour)

        def stop(self):
            stopped.append(self)

    monkeypatch.setattr(rpc, "ClusterRpcProxy", Cluster)
    return started, stopped


def test_a_call_goes_through_with_the_timeout_and_actor(monkeypatch):
    started, stopped = _cluster(monkeypatch, lambda s, m, a: {"service": s, "method": m, "args": a})
    with RpcClient("amqp://guest:secret@h:5672/v", timeout=2.5, actor_name="kaowu-cli:ops") as c:
        assert c.call("account", "status") == {"service": "account", "method": "status", "args": ()}
        assert c.call("account", "events_after", 3, 10)["args"] == (3, 10)
    assert len(started) == 1 and len(stopped) == 1  # one proxy for both calls
    assert started[0].timeout == 2.5
    assert started[0].config == {"AMQP_URI": "amqp://guest:secret@h:5672/v"}
    assert started[0].context_data == {"actor": "kaowu-cli:ops"}


@pytest.mark.parametrize("error, kind, words", [
    (RpcTimeout(2), ServiceUnavailable, "did not answer status() within 2 s"),
    (UnknownService("account"), ServiceUnavailable, "is not running"),
    (MethodNotFound("create_staff"), MethodMissing, "has no status() here"),
    (ConnectionResetError("reset by peer"), BrokerUnavailable, "cannot reach the message broker"),
    (RemoteError("ProgrammingError", "no such table"), ServiceFailed,
     "the account service failed on status(): ProgrammingError: no such table"),
])
def test_failures_become_errors_a_person_can_act_on(monkeypatch, error, kind, words):
    _cluster(monkeypatch, lambda s, m, a: error)
    c = RpcClient("amqp://guest:secret@h:5672/", timeout=2)
    with pytest.raises(kind) as exc:
        c.call("account", "status")
    assert words in str(exc.value)
    assert "secret" not in str(exc.value)  # the broker's password is never printed


def test_a_timeout_drops_the_proxy_so_a_late_reply_is_not_read_as_the_next_answer(monkeypatch):
    answers = iter([RpcTimeout(1), {"ok": True}])
    started, stopped = _cluster(monkeypatch, lambda s, m, a: next(answers))
    c = RpcClient("amqp://h/", timeout=1)
    with pytest.raises(ServiceUnavailable):
        c.call("scoring", "status")
    assert c.call("scoring", "status") == {"ok": True}
    assert len(started) == 2 and len(stopped) == 1


def test_refusals_from_a_service_pass_through_as_they_are(monkeypatch):
    _cluster(monkeypatch, lambda s, m, a: Refused("window closed", {"window": "application"}))
    with pytest.raises(Refused) as exc:
        RpcClient("amqp://h/").call("registration", "submit_application", "a", {})
    assert exc.value.fields == {"window": "application"}


def test_a_broker_that_does_not_answer_is_said_so_with_its_address_masked(monkeypatch):
    _cluster(monkeypatch, None, start_error=ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(BrokerUnavailable) as exc:
        RpcClient("amqp://guest:pw@127.0.0.1:5999/").call("account", "status")
    assert exc.value.exit_code == 2
    assert "amqp://guest:***@127.0.0.1:5999/" in str(exc.value)


def test_a_client_belongs_to_the_thread_that_started_it(monkeypatch):
    _cluster(monkeypatch, lambda s, m, a: "ok")
    c = RpcClient("amqp://h/")
    c.call("account", "status")
    c.close()
    errors = []

    def other():
        try:
            c.call("account", "status")
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors and "one thread" in str(errors[0])


def test_thread_clients_give_each_thread_its_own_client():
    services = FakeServices({("account", "status"): {"head": 1}})
    clients = ThreadClients(services.factory, timeout=5)
    seen = []

    def work():
        seen.append(id(clients.get()))
        clients.call("account", "status")

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 3 and services.clients == 3
    clients.close()
