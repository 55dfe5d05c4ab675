"""The command line's way to the services: nameko RPC over AMQP (远程调用).

One ``RpcClient`` holds one ``ClusterRpcProxy`` and must stay on the thread that made it:
a standalone proxy reads its replies off one connection, so two threads (or green threads)
sharing it would read each other's answers. Code that works in parallel makes a client per
thread (``ThreadClients``).

Every call has a timeout, so a service that is down is reported as down instead of
hanging the command. Failures a person can act on become the exceptions below, which the
commands print in one line; refusals from a service (``shared.errors``) pass through as
they are (importing ``shared.errors`` registers them, so they arrive as their own class).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import threading
import warnings
from collections.abc import Callable

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # eventlet's deprecation notice says nothing to operators
    # imported here, on the main thread: greenlet must not first load on a worker thread, or
    # that thread's exit waits on the main thread forever (it is blocked in join())
    from nameko.exceptions import MethodNotFound, RemoteError, RpcTimeout, UnknownService
    from nameko.standalone.rpc import ClusterRpcProxy

import shared.errors  # noqa: F401,E402  (registers the service errors for deserialization)
from shared.config import amqp_uri as default_amqp_uri
from shared.config import mask_url

DEFAULT_TIMEOUT = 30.0  # seconds: an ordinary command
STATUS_TIMEOUT = 3.0  # seconds: "is it up?"


class CliError(Exception):
    """Something the operator can act on; printed as one line, never a traceback."""

    exit_code = 1


class BrokerUnavailable(CliError):
    exit_code = 2

    def __init__(self, uri: str, reason: str):
        super().__init__(f"cannot reach the message broker at {mask_url(uri)}: {reason}. "
                         "Is RabbitMQ running, and is AMQP_URI right?")
        self.uri = uri


class ServiceUnavailable(CliError):
    """The service did not answer: not running, or too busy to answer in time."""

    def __init__(self, service: str, reason: str):
        super().__init__(f"the {service} service {reason}")
        self.service, self.reason = service, reason


class ServiceFailed(CliError):
    """The service took the call and failed on it (a bug or a broken dependency on its
    side, not a refusal): its own logs have the traceback."""

    def __init__(self, service: str, method: str, exc_type: str, value: str):
        super().__init__(f"the {service} service failed on {method}(): {exc_type}: {value} "
                         f"(its logs have the details)")
        self.service, self.method, self.exc_type = service, method, exc_type


class MethodMissing(CliError):
    """The service runs but has no such RPC (an older or newer version of it)."""

    def __init__(self, service: str, method: str):
        super().__init__(f"the {service} service has no {method}() here: this operation is not "
                         f"available in the version of {service} that is running")
        self.service, self.method = service, method


def actor() -> str:
    try:
        return f"kaowu-cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "kaowu-cli"


class RpcClient:
    """Calls ``service.method(*args)`` with a timeout; one per thread (see module doc)."""

    def __init__(self, amqp_uri: str | None = None, timeout: float | None = DEFAULT_TIMEOUT,
                 actor_name: str | None = None):
        self.amqp_uri = amqp_uri or default_amqp_uri()
        self.timeout = timeout
        self.actor = actor_name or actor()
        self._cluster = None
        self._proxy = None
        self._thread = None

    # -- lifecycle -----------------------------------------------------------------------

    def _start(self):
        if self._thread is not None and self._thread != threading.get_ident():
            raise RuntimeError("an RpcClient is used by one thread only; make one per thread")
        self._thread = threading.get_ident()
        cluster = ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=self.timeout,
                                  context_data={"actor": self.actor})
        try:
            self._proxy = cluster.start()
        except OSError as exc:
            raise BrokerUnavailable(self.amqp_uri, _reason(exc)) from None
        except Exception as exc:  # amqp's own connection and access errors
            if type(exc).__module__.startswith(("amqp", "kombu")):
                raise BrokerUnavailable(self.amqp_uri, _reason(exc)) from None
            raise
        self._cluster = cluster

    def close(self):
        cluster, self._cluster, self._proxy = self._cluster, None, None
        if cluster is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                cluster.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- calls ---------------------------------------------------------------------------

    def call(self, service: str, method: str, *args, **kwargs):
        if self._proxy is None:
            self._start()
        try:
            return getattr(self._proxy[service], method)(*args, **kwargs)
        except RpcTimeout:
            self.close()  # a late reply must not be read as the answer to the next call
            raise ServiceUnavailable(
                service, f"did not answer {method}() within {self.timeout:g} s (down or "
                         "overloaded; a command sent to a stopped service waits in its queue "
                         "and runs when it starts again)") from None
        except UnknownService:
            raise ServiceUnavailable(service, "is not running: the broker has no RPC queue "
                                              "for it") from None
        except MethodNotFound:
            raise MethodMissing(service, method) from None
        except RemoteError as exc:
            raise ServiceFailed(service, method, exc.exc_type, mask_url(str(exc.value))) from None
        except OSError as exc:
            self.close()
            raise BrokerUnavailable(self.amqp_uri, _reason(exc)) from None
        except Exception as exc:
            if type(exc).__module__.startswith(("amqp", "kombu")):
                self.close()
                raise BrokerUnavailable(self.amqp_uri, _reason(exc)) from None
            raise


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {mask_url(text[0])}" if text else type(exc).__name__


class _QuietUnknownService(logging.Filter):
    """amqp warns when the broker returns an unroutable RPC (a service with no queue) to a
    closing channel; we report that ourselves, in one line."""

    def filter(self, record):
        return "during closing channel" not in record.getMessage()


logging.getLogger("amqp").addFilter(_QuietUnknownService())

ClientFactory = Callable[..., "RpcClient"]


class ThreadClients:
    """One client per thread, made on first use, all closed together."""

    def __init__(self, factory: ClientFactory, timeout: float | None = DEFAULT_TIMEOUT):
        self.factory, self.timeout = factory, timeout
        self._local = threading.local()
        self._all: list = []
        self._lock = threading.Lock()

    def get(self):
        client = getattr(self._local, "client", None)
        if client is None:
            client = self.factory(timeout=self.timeout)
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def call(self, service, method, *args, **kwargs):
        return self.get().call(service, method, *args, **kwargs)

    def close(self):
        with self._lock:
            clients, self._all = self._all, []
        for c in clients:
            c.close()
