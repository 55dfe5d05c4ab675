"""nameko dependency providers: how a service gets its log, its clock and its context.

- ``EventStoreProvider`` opens the service's own database, runs migrations (and a rebuild
  an earlier upgrade left owed), and runs the outbox relay in a managed green thread. A
  worker gets a ``BoundStore``: the store plus the worker's context (correlation id,
  actor), so events carry who and why.
- ``TrackingProvider`` holds one ``TrackingConsumer`` per upstream service.
- ``ClockProvider`` gives the clock (``CLOCK`` in the config: the system's, or a test's).
- ``RpcProxy`` calls another service, and gives up after ``RPC_TIMEOUT`` seconds, or at
  once when its service begins to stop (``StopWatch``).
- ``StopSignal`` tells a worker whether its service is stopping (a loop ends early then).
- ``WorkerLog`` gives each worker a correlation id (propagated by nameko through RPC and
  events), binds it to the structlog context, and logs every entrypoint's outcome.
"""

import time
import uuid
from types import SimpleNamespace

import eventlet
import structlog
from nameko.exceptions import UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import MethodProxy, ServiceProxy
from nameko.rpc import RpcProxy as NamekoRpcProxy

from shared import config as kconfig
from shared import deadletter
from shared import logging as klogging
from shared.clock import clock_from_config
from shared.errors import KaowuError, Unavailable
from shared.eventstore.store import open_store
from shared.eventstore.unit_of_work import Context
from shared.logging import get_logger
from shared.relay import GATHER, KombuPublisher, Relay
from shared.tracking import TrackingConsumer

log = get_logger(__name__)

DEFAULT_RPC_TIMEOUT = 20.0  # seconds: RPC_TIMEOUT, a service's wait for another's answer


class BoundStore:
    """The service's ``EventStore`` with the current worker's context attached."""

    def __init__(self, store, context: Context):
        self._store = store
        self.context = context

    def execute(self, command, retries=8):
        return self._store.execute(command, context=self.context, retries=retries)

    def append(self, events, expected=None):
        return self._store.append(events, expected, context=self.context)

    def transaction(self):
        return self._store.transaction(self.context)

    def __getattr__(self, name):  # reads: read_stream, events_after, head, ...
        return getattr(self._store, name)


def correlation_id(worker_ctx) -> str:
    """The worker's correlation id: the caller's (nameko carries it in RPC and event
    headers), or a new one. Dependencies are injected before ``worker_setup`` runs, so
    whichever asks first makes it."""
    data = worker_ctx.data
    if not data.get("correlation_id"):
        data["correlation_id"] = uuid.uuid4().hex
    return data["correlation_id"]


def _context(worker_ctx) -> Context:
    data = worker_ctx.data
    correlation_id(worker_ctx)
    return Context(correlation_id=data.get("correlation_id"),
                   causation_id=data.get("causation_id"),
                   actor=data.get("actor"))


class EventStoreProvider(DependencyProvider):
    def __init__(self, registry, projections=(), relay=True):
        self.registry = registry
        self.projections = list(projections)
        self.relay_enabled = relay
        self.store = None
        self.relay = None

    def setup(self):
        cfg = self.container.config
        service = self.container.service_name
        if not klogging.configured():  # `nameko run`: this process is the service
            klogging.configure(service=service)
        url = (kconfig.resolve_database_url(cfg["DATABASE_URL"], service)
               if cfg.get("DATABASE_URL") else kconfig.database_url(service))
        clock = clock_from_config(cfg)
        self.store = self._open(url, clock)
        if self.relay_enabled and cfg.get("RELAY", True):
            publisher = KombuPublisher(cfg.get("AMQP_URI") or kconfig.amqp_uri(), service)
            self.relay = Relay(self.store, service, publisher,
                               gather=float(cfg.get("RELAY_GATHER", GATHER)))
        log.info("store.ready", database=kconfig.mask_url(url), head=self.store.head())

    def _open(self, url, clock):
        """The store, migrated; before serving, a read model an upgrade made anew (now, or
        by a process that died before its rebuild committed) is rebuilt, with progress in
        the log."""
        from shared.rebuild import Progress

        def started(projection, head):
            log.warning("projection.rebuild_owed", projection=projection, head=head,
                        reason="an upgrade made its tables anew")

        store = open_store(url, self.registry, clock=clock, projections=self.projections,
                           progress=lambda projection: Progress(projection, every=5.0, log=log),
                           on_start=started,
                           on_done=lambda projection, position: log.info(
                               "projection.rebuilt", projection=projection, position=position))
        return store

    def start(self):
        if self.relay is not None:
            self.container.spawn_managed_thread(self.relay.run_forever, identifier="relay")

    def stop(self):
        if self.relay is not None:
            self.relay.stop()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return BoundStore(self.store, _context(worker_ctx))


class TrackingProvider(DependencyProvider):
    """``handlers``: upstream service name -> ``handler(tx, event)``, or a pair
    ``(make_prepare, handler)`` where ``make_prepare(config, providers)`` returns the
    ``prepare(event)`` step that runs before the transaction (see ``shared.tracking``).
    ``providers`` are the container's dependency providers by attribute name: what the
    steps need of the container's own state (its folds, its issuer) they get through
    ``prepare``, never from a module."""

    #: The timer's pull only finds what was lost with nothing after it (a later message
    #: shows a gap, and ``receive`` pulls at once). So an upstream heard from since the
    #: last tick is passed over; one whose pulls find nothing is pulled at every 2nd tick,
    #: then every ``QUIET_EVERY``th; a pull that finds events restores every tick.
    QUIET_EVERY = 4

    def __init__(self, handlers: dict):
        self.handlers = dict(handlers)
        self.consumers: dict[str, TrackingConsumer] = {}
        self.watch = StopWatch()  # the container's, from setup on
        self._heard: set[str] = set()  # upstreams heard from since the last tick
        self._empty: dict[str, int] = {}  # upstream -> pulls in a row that found nothing
        self._skip: dict[str, int] = {}  # upstream -> ticks to pass over before the next pull

    def setup(self):
        store_dep = next(d for d in self.container.dependencies
                         if isinstance(d, EventStoreProvider))
        self.store_provider = store_dep
        self.watch = StopWatch.of(self.container)

    def start(self):
        store = self.store_provider.store
        providers = SimpleNamespace(**{d.attr_name: d for d in self.container.dependencies})
        for up, h in self.handlers.items():
            prepare = None
            if isinstance(h, tuple):
                make_prepare, h = h
                prepare = make_prepare(self.container.config, providers)
            self.consumers[up] = TrackingConsumer(store, up, h, prepare=prepare,
                                                  on_dead_letter=self._dead_letter)

    def handles(self, upstream: str) -> frozenset[str] | None:
        """The event types of ``upstream`` its handler acts on (its dispatch table's keys);
        None: not declared, every type."""
        h = self.handlers.get(upstream)
        if isinstance(h, tuple):
            h = h[1]
        return getattr(h, "handles", None)

    def _dead_letter(self, upstream, event, error):
        """The broker's copy of a poison event, for operators (the log has the original)."""
        deadletter.publish(self.container.config.get("AMQP_URI") or kconfig.amqp_uri(), event.to_dict(),
                {"x-kaowu-consumer": self.container.service_name, "x-kaowu-upstream": upstream,
                 "x-kaowu-position": event.position, "x-kaowu-error": error[:1000],
                 "x-kaowu-at": time.time()})

    def receive(self, upstream: str, message: dict, fetch) -> int:
        self._heard.add(upstream)
        return self.consumers[upstream].receive(message, fetch)

    def catch_up(self, fetch_by_upstream: dict) -> int:
        """The catch-up timer's pull, upstream by upstream: one that is not deployed or not
        answering (restarting, its database down) must not hold up the others; the next
        tick tries it again. A quiet upstream is pulled less often (``QUIET_EVERY``).
        Returns how many events were applied."""
        total = 0
        for up, fetch in fetch_by_upstream.items():
            if self.watch.stopping:  # the rest waits for the next start
                break
            if up in self._heard:  # in order so far: pulled at the second tick without one
                self._heard.discard(up)
                self._empty[up], self._skip[up] = 0, 1
                continue
            if self._skip.get(up):
                self._skip[up] -= 1
                continue
            try:
                got = self.consumers[up].catch_up(fetch)
                total += got
                empty = 0 if got else self._empty.get(up, 0) + 1
                self._empty[up] = empty
                self._skip[up] = min(2 ** empty, self.QUIET_EVERY) - 1
            except UnknownService:  # not deployed (yet): its events come when it is
                log.debug("catch_up.upstream_absent", upstream=up)
            except Exception as exc:  # noqa: BLE001 - logged; the next tick tries again
                if self.watch.stopping:
                    break  # given up for the stop: no failure to report
                log.warning("catch_up.failed", upstream=up, error_type=type(exc).__name__,
                            error=str(exc)[:500])
        return total

    def get_dependency(self, worker_ctx):
        return self


class RpcProxy(NamekoRpcProxy):
    """nameko's ``RpcProxy`` with a deadline: a call not answered within ``RPC_TIMEOUT``
    seconds (config; 20 by default) raises ``Unavailable``. nameko's own waits for ever,
    and a reply lost to a broker restart (sent before the caller's reply queue was bound
    again, or while the connection was going) then hangs the worker: a hung catch-up
    timer never ticks again, and a consumer stops at the gap it was filling."""

    def __init__(self, target_service, timeout: float | None = None, **options):
        super().__init__(target_service, **options)
        self.timeout = timeout

    def setup(self):
        super().setup()
        if self.timeout is None:
            self.timeout = float(self.container.config.get("RPC_TIMEOUT", DEFAULT_RPC_TIMEOUT))
        StopWatch.of(self.container)

    def get_dependency(self, worker_ctx):
        return _TimedServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener,
                                  self.timeout, **self.options)


class _TimedServiceProxy(ServiceProxy):
    def __init__(self, worker_ctx, service_name, reply_listener, timeout, **options):
        super().__init__(worker_ctx, service_name, reply_listener, **options)
        self.timeout = timeout

    def __getattr__(self, name):
        method = _TimedMethodProxy(self.worker_ctx, self.service_name, name, self.reply_listener,
                                   **self.options)
        method.timeout = self.timeout
        return method


class _TimedMethodProxy(MethodProxy):
    timeout = 20.0

    def __call__(self, *args, **kwargs):
        try:
            return reply_within(self, self.timeout, *args, **kwargs)
        except Stopping:
            raise Unavailable(f"This service is stopping: the call to {self.service_name} was "
                              "given up; please try again shortly.",
                              {"service": self.service_name, "method": self.method_name}) from None
        except NoReply:
            raise Unavailable(f"The {self.service_name} service did not answer in "
                              f"{self.timeout:g} s; please try again shortly.",
                              {"service": self.service_name, "method": self.method_name}) from None


class NoReply(Exception):
    """An RPC not answered within its deadline."""


class Stopping(NoReply):
    """An RPC given up because the calling service is stopping (``StopWatch``)."""


def reply_within(method: MethodProxy, timeout: float, *args, **kwargs):
    """``method(*args, **kwargs)``'s answer, or ``NoReply`` after ``timeout`` seconds, or
    ``Stopping`` as soon as the calling service begins to stop (a stop must not wait out
    ``RPC_TIMEOUT``, once per upstream a timer asks). The reply's slot in the listener is
    then dropped: a late reply is ignored, not kept for ever (a callee stuck under load
    would otherwise leave one slot per call behind)."""
    watch = StopWatch.find(getattr(method.worker_ctx, "container", None))
    if watch is not None and watch.stopping:
        raise Stopping()
    reply = method.call_async(*args, **kwargs)
    timer = eventlet.Timeout(timeout)
    if watch is not None:
        watch.waiting[reply] = method.reply_listener
    try:
        if watch is not None and watch.stopping:  # the stop began while the call was sent
            _drop_reply_slot(method.reply_listener, reply)
            raise Stopping()
        return reply.result()
    except eventlet.Timeout as exc:
        if exc is not timer:
            raise
        _drop_reply_slot(method.reply_listener, reply)
        raise NoReply() from None
    finally:
        timer.cancel()
        if watch is not None:
            watch.waiting.pop(reply, None)


def _drop_reply_slot(listener, reply) -> None:
    events = listener._reply_events
    for key, event in list(events.items()):
        if event is reply.reply_event:
            events.pop(key, None)


class StopWatch:
    """Knows when a service container begins to stop, and ends its workers' RPC waits then.

    nameko's ``stop()`` stops the entrypoints, then waits for every running worker before
    anything else: a worker waiting ``RPC_TIMEOUT`` (20 s) for a service that is stopping
    too (``make run`` and a rollout stop them together) held the stop past the runner's
    timeout and Kubernetes' grace period, and was killed. So the container's ``stop`` and
    ``kill`` first mark it stopping and wake each waiting call with ``Stopping`` (its slot
    dropped, so a late reply finds none); calls made after that fail at once. One watch per
    container, installed by the first ``RpcProxy`` or ``StopSignal`` that sets up."""

    _ATTRIBUTE = "_kaowu_stop_watch"  # on the container (extensions hold weak proxies of it)

    def __init__(self):
        self.stopping = False
        self.waiting: dict = {}  # RpcReply -> its reply listener, while a worker waits

    @classmethod
    def of(cls, container) -> "StopWatch":
        watch = getattr(container, cls._ATTRIBUTE, None)
        if watch is None:
            watch = cls()
            setattr(container, cls._ATTRIBUTE, watch)
            stop, kill = getattr(container, "stop", None), getattr(container, "kill", None)
            if stop is None or kill is None:  # a test's stand-in: nothing to stop
                return watch

            def stopping_then_stop():
                watch.begin()
                return stop()

            def stopping_then_kill(*args, **kwargs):
                watch.begin()
                return kill(*args, **kwargs)

            container.stop, container.kill = stopping_then_stop, stopping_then_kill
        return watch

    @classmethod
    def find(cls, container) -> "StopWatch | None":
        return getattr(container, cls._ATTRIBUTE, None) if container is not None else None

    def begin(self) -> None:
        self.stopping = True
        for reply, listener in list(self.waiting.items()):
            self.waiting.pop(reply, None)
            _drop_reply_slot(listener, reply)
            if not reply.reply_event.ready():
                reply.reply_event.send_exception(Stopping())


class StopSignal(DependencyProvider):
    """``self.stopping()`` in a worker: has the service begun to stop? A loop over a batch
    (SMS to send, notices to fire) ends early then, leaving the rest to the next start."""

    def setup(self):
        self.watch = StopWatch.of(self.container)

    def get_dependency(self, worker_ctx):
        watch = self.watch
        return lambda: watch.stopping


class ClockProvider(DependencyProvider):
    def setup(self):
        self.clock = clock_from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.clock


class WorkerLog(DependencyProvider):
    """Correlation ids and one log line per entrypoint call (no payloads: they hold PII)."""

    def worker_setup(self, worker_ctx):
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            service=self.container.service_name,
            entrypoint=worker_ctx.entrypoint.method_name,
            correlation_id=correlation_id(worker_ctx))
        worker_ctx._kaowu_started = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        ms = round((time.perf_counter() - getattr(worker_ctx, "_kaowu_started", time.perf_counter())) * 1000, 2)
        if exc_info is None:
            log.debug("call.ok", ms=ms)
        elif isinstance(exc_info[1], KaowuError):
            log.info("call.refused", ms=ms, code=exc_info[1].error_code, reason=exc_info[1].message)
        else:
            log.error("call.failed", ms=ms, error_type=type(exc_info[1]).__name__,
                      error=str(exc_info[1]), exc_info=exc_info)

    def worker_teardown(self, worker_ctx):
        structlog.contextvars.clear_contextvars()

    def get_dependency(self, worker_ctx):
        return worker_ctx.data
