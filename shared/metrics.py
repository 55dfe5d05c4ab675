"""Prometheus metrics of one service: what ``GET /metrics`` answers (``EventSourcedService``).

Two kinds of figures, one exposition:

- **Counted as it happens**, in a registry of the service container's own (one process runs
  one container in production, so it is the process's registry; the tests may run several
  containers, even replicas of one service, in one process without mixing their counts):

  ``kaowu_entrypoint_duration_seconds{service,entrypoint,kind}``  histogram, every worker
      (``kind``: rpc, event, timer, http, ...)
  ``kaowu_entrypoint_calls_total{service,entrypoint,kind,outcome}``  outcome: ok, refused
      (a ``KaowuError``: a clear answer to the caller), error (anything else)
  ``kaowu_entrypoint_errors_total{service,entrypoint,kind,error_type}``  the "error" ones
  ``kaowu_events_appended_total{service,type}``  events this process committed to its log
  ``kaowu_db_round_trips_total{service,kind}``  round trips to the service's database, counted
      client-side (``shared.eventstore.engine.count_round_trips``): ``statement``, ``begin``,
      ``commit`` (a committed transaction), ``rollback``

- **Read at scrape time** from the log and the process (never stale, same on every replica
  where it is read from the database):

  ``kaowu_store_up{service}``  1 if the figures below could be read from the database
  ``kaowu_log_head_position{service}``, ``kaowu_relay_position{service}``
  ``kaowu_relay_lag_events{service}``  head − relay position: committed, not yet published
  ``kaowu_relay_published_total{service}``  published by this process's relay
  ``kaowu_consumer_position{service,upstream}``  the tracking record: applied up to here
  ``kaowu_consumer_highest_seen_position{service,upstream}``  the highest upstream
      position this process has seen in a message or a pull
  ``kaowu_consumer_lag_events{service,upstream}``  highest seen − applied or passed over
      (never below 0)
  ``kaowu_consumer_{applied,duplicates,pulled,passed_over,deferred}_total{service,upstream}``
      by this process (passed over: types the handler does not act on, no transaction; the
      tracking record catches up with them within a catch-up interval; deferred: messages
      that came while another worker applied, taken as a prompt to pull)
  ``kaowu_consumer_deliveries_total{service,upstream}``, ``…_deliveries_passed_over_total``
      upstream messages delivered to this process, and those holding none of the types its
      handler acts on (routing by type keeps these near 0)
  ``kaowu_consumer_delivered_unhandled_total{service,upstream}``  events of other types
      carried by the messages delivered (a relay cycle mixes types)
  ``kaowu_projection_position{service,projection}``, ``kaowu_projection_lag_events``
  ``kaowu_business_count{service,name,status}``  the service's ``business_counts()``

  ``kaowu_dead_letters{service}``  dead letters (死信) in the service's own log: upstream
      events its consumers gave up on (``EventDeadLettered``) and not replayed since
      (no ``DeadLetterReplayed``): the figure ``status()`` reports as ``dead_letters``.
      Counted incrementally: each scrape reads only the log's events since the last one
      (by position, the primary key), so it stays cheap however long the log grows.

- **The gateway's requests** (its routes; other services answer only probes and scrapes):

  ``kaowu_http_requests_total{service,route,method,status}``  by route template
      (``/api/applications/<application_id>``) and status code
  ``kaowu_http_request_duration_seconds{service,route,method}``  histogram

- **The process** (prometheus_client's process collector, in every service's registry):
  ``process_cpu_seconds_total``, ``process_resident_memory_bytes``,
  ``process_virtual_memory_bytes``, ``process_open_fds``, ``process_max_fds``,
  ``process_start_time_seconds``.

- **Deadlines and queues**, read at scrape time through the service's ``scrape_gauges()``
  (``shared.service``; every family always present, empty where a service has none):

  ``kaowu_deadline_overdue_seconds{service,session_id,deadline}``  a deadline effect that
      fell due (by the service's clock) and has not run: how long ago it fell due
  ``kaowu_manual_check_queue{service,session_id,registration_point}``  cases waiting for
      a point's manual check (verification)
  ``kaowu_window_end_timestamp_seconds{service,session_id,window}``  when a session's
      window closes (its first instant past the end), Unix seconds (verification)

``business_counts()`` (a method of the service class, default ``{}``) returns
``{name: number}`` or ``{name: {status: number}}``; ``{"applications": {"confirmed": 3},
"accounts": 10}`` becomes ``kaowu_business_count{name="applications",status="confirmed"} 3``
and ``kaowu_business_count{name="accounts",status=""} 10``. It runs in the scrape's worker,
so it may use ``self.store`` (keep it to a few ``SELECT … GROUP BY`` on the read model).

The dead-letter *queue* (``kaowu.dead-letters`` in RabbitMQ, ``shared.deadletter``) also
holds messages no service could decode; its depth comes from RabbitMQ's own metrics
(``rabbitmq_detailed_queue_messages``, see deploy/monitoring), not from here.
"""

from __future__ import annotations

import contextlib
import threading
import time

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer
from nameko.rpc import Rpc
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from sqlalchemy import select

from shared.errors import KaowuError
from shared.eventstore.engine import count_round_trips
from shared.logging import get_logger

log = get_logger(__name__)

disable_created_metrics()  # no ``*_created`` series: half the samples, nothing we chart

DEAD_LETTERS = "kaowu_dead_letters"  # unreplayed dead letters in a service's log

# every metric family GET /metrics answers (a counter's samples add ``_total``, a
# histogram's ``_bucket``, ``_sum`` and ``_count``); alerts and the dashboard use these
EXPORTED = (
    "kaowu_entrypoint_duration_seconds", "kaowu_entrypoint_calls", "kaowu_entrypoint_errors",
    "kaowu_events_appended", "kaowu_db_round_trips", "kaowu_relay_published", "kaowu_consumer_applied",
    "kaowu_consumer_duplicates", "kaowu_consumer_pulled", "kaowu_consumer_passed_over",
    "kaowu_consumer_deferred", "kaowu_consumer_deliveries",
    "kaowu_consumer_deliveries_passed_over", "kaowu_consumer_delivered_unhandled", "kaowu_store_up",
    "kaowu_log_head_position", "kaowu_relay_position", "kaowu_relay_lag_events",
    "kaowu_consumer_position", "kaowu_consumer_highest_seen_position",
    "kaowu_consumer_lag_events", "kaowu_consumer_upstream_log_changed",
    "kaowu_projection_position", "kaowu_projection_lag_events",
    "kaowu_business_count", DEAD_LETTERS,
    "kaowu_http_requests", "kaowu_http_request_duration_seconds",
)

# the process collector's families (Linux: read from /proc at each scrape)
PROCESS = ("process_cpu_seconds", "process_resident_memory_bytes",
           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
           "process_start_time_seconds")

# gauges a service reads at scrape time (``scrape_gauges()``): name -> (help, labels after
# ``service``)
SCRAPE_GAUGES = {
    "kaowu_deadline_overdue_seconds": (
        "Seconds since a deadline effect fell due, for those that have not run.",
        ("session_id", "deadline")),
    "kaowu_manual_check_queue": (
        "Verification cases waiting for a registration point's manual check.",
        ("session_id", "registration_point")),
    "kaowu_window_end_timestamp_seconds": (
        "When a session's window closes (the first instant past its end), Unix seconds.",
        ("session_id", "window")),
}

EXPORTED = (*EXPORTED, *PROCESS, *SCRAPE_GAUGES)

# seconds; from a cached read (1 ms) to an argon2 hash or a slow pull (10 s and more)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)

_KINDS = ((Rpc, "rpc"), (EventHandler, "event"), (Consumer, "message"), (Timer, "timer"),
          (HttpRequestHandler, "http"))


def entrypoint_kind(entrypoint) -> str:
    for cls, kind in _KINDS:
        if isinstance(entrypoint, cls):
            return kind
    return type(entrypoint).__name__.lower()


class ServiceMetrics:
    """The live counters of one service container, in a registry of its own."""

    def __init__(self, service: str):
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["service", "entrypoint", "kind"]
        self.duration = Histogram(
            "kaowu_entrypoint_duration_seconds", "Time spent in an entrypoint's worker.",
            labels, buckets=LATENCY_BUCKETS, registry=self.registry)
        self.calls = Counter(
            "kaowu_entrypoint_calls", "Entrypoint calls by outcome (ok, refused, error).",
            [*labels, "outcome"], registry=self.registry)
        self.errors = Counter(
            "kaowu_entrypoint_errors", "Entrypoint calls that failed unexpectedly.",
            [*labels, "error_type"], registry=self.registry)
        self.appended = Counter(
            "kaowu_events_appended", "Events committed to this service's log by this process.",
            ["service", "type"], registry=self.registry)
        self.round_trips = Counter(
            "kaowu_db_round_trips", "Round trips to this service's database by this process "
            "(statement, begin, commit, rollback).", ["service", "kind"], registry=self.registry)
        self.requests = Counter(
            "kaowu_http_requests", "HTTP requests answered, by route template and status code.",
            ["service", "route", "method", "status"], registry=self.registry)
        self.request_duration = Histogram(
            "kaowu_http_request_duration_seconds", "Time to answer an HTTP request, by route.",
            ["service", "route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        # CPU and resident memory of the process (one container per process in production)
        ProcessCollector(registry=self.registry)

    def observe_request(self, route: str, method: str, status: int, seconds: float):
        self.requests.labels(self.service, route, method, str(status)).inc()
        self.request_duration.labels(self.service, route, method).observe(seconds)

    def observe(self, entrypoint: str, kind: str, seconds: float, exc: BaseException | None):
        labels = (self.service, entrypoint, kind)
        self.duration.labels(*labels).observe(seconds)
        if exc is None:
            outcome = "ok"
        elif isinstance(exc, KaowuError):
            outcome = "refused"
        else:
            outcome = "error"
            self.errors.labels(*labels, type(exc).__name__).inc()
        self.calls.labels(*labels, outcome).inc()

    def count_appended(self, events):
        for ev in events:
            self.appended.labels(self.service, ev.type).inc()

    def instrument(self, store):
        """Count what ``store`` commits, by type (its commit hook runs after the commit: a
        rolled-back transaction counts nothing), and its engine's round trips. Idempotent."""
        if getattr(store, "_kaowu_metrics", None) is self:
            return
        store.on_commit(self.count_appended)
        kinds = {kind: self.round_trips.labels(self.service, kind).inc
                 for kind in ("statement", "begin", "commit", "rollback")}
        count_round_trips(store.engine, lambda kind: kinds[kind]())
        store._kaowu_metrics = self


class Metrics(DependencyProvider):
    """Times every worker of the service and counts its outcome; counts appended events;
    renders the exposition for ``GET /metrics`` (``render(service_instance)``)."""

    def setup(self):
        self.metrics = ServiceMetrics(self.container.service_name)
        self.dead_letters = DeadLetterTally()

    def start(self):
        self._instrument_store()

    def _instrument_store(self):
        provider = _store_provider(self.container)
        if provider is not None and provider.store is not None:
            self.metrics.instrument(provider.store)

    def worker_setup(self, worker_ctx):
        self._instrument_store()  # cheap when done; covers a worker that beats start()
        worker_ctx._kaowu_metrics_started = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = getattr(worker_ctx, "_kaowu_metrics_started", None)
        if started is None:
            return
        entrypoint = worker_ctx.entrypoint
        self.metrics.observe(entrypoint.method_name, entrypoint_kind(entrypoint),
                             time.perf_counter() - started, exc_info[1] if exc_info else None)

    def get_dependency(self, worker_ctx):
        return self

    # -- the exposition ------------------------------------------------------------------

    def render(self, service=None) -> tuple[int, dict, str]:
        """The ``(status, headers, body)`` of ``GET /metrics``. ``service``: the worker's
        service instance, for ``business_counts()``."""
        state = CollectorRegistry(auto_describe=False)
        state.register(_StateCollector(self.metrics.service, self.container, service,
                                       self.dead_letters))
        body = generate_latest(self.metrics.registry) + generate_latest(state)
        return 200, {"Content-Type": CONTENT_TYPE_LATEST}, body.decode("utf-8")


class DeadLetterTally:
    """How many dead letters (死信) a service's log holds unreplayed, kept up to date from
    the log incrementally: a dead letter is a stream ``deadletter-<upstream>-<position>``
    that has its ``EventDeadLettered`` and no ``DeadLetterReplayed`` (``shared.tracking``;
    the same rule as ``status()``). ``count(store, head)`` reads only the events after the
    position it read up to last time and up to ``head`` (every event up to the head read
    is committed: positions are given in commit order). A log with another identity (a
    restored or replaced database) or a shorter one is read again from the start."""

    TYPES = ("EventDeadLettered", "DeadLetterReplayed")

    def __init__(self):
        self._lock = threading.Lock()  # concurrent scrapes: one reads, the next reuses it
        self._log_id: str | None = None
        self._position = 0
        self._open: set[str] = set()

    def count(self, store, head: int) -> int:
        from shared.eventstore.tables import events_table, log_identity

        with self._lock:
            with store.read_engine.connect() as c:
                log_id = c.execute(select(log_identity.c.log_id)).scalar()
                if log_id != self._log_id or head < self._position:
                    self._log_id, self._position, self._open = log_id, 0, set()
                if head > self._position:
                    rows = c.execute(
                        select(events_table.c.stream_id, events_table.c.type)
                        .where(events_table.c.position > self._position,
                               events_table.c.position <= head,
                               events_table.c.type.in_(self.TYPES))
                        .order_by(events_table.c.position)).all()
                    for stream_id, type_ in rows:
                        if type_ == "EventDeadLettered":
                            self._open.add(stream_id)
                        else:
                            self._open.discard(stream_id)
                    self._position = head
            return len(self._open)


def _store_provider(container):
    from shared.dependencies import EventStoreProvider

    return next((d for d in container.dependencies if isinstance(d, EventStoreProvider)), None)


def _tracking_consumers(container) -> dict:
    from shared.dependencies import TrackingProvider

    consumers = {}
    for d in container.dependencies:
        if isinstance(d, TrackingProvider):
            consumers.update(d.consumers)
    return consumers


class _StateCollector:
    """Gauges read at scrape time: the log, the relay, the consumers, the projections and
    the business counts. A database that does not answer gives ``kaowu_store_up 0`` and
    leaves the database-backed figures out (no stale values)."""

    def __init__(self, service_name: str, container, service=None,
                 dead_letters: DeadLetterTally | None = None):
        self.name = service_name
        self.container = container
        self.service = service
        self.dead_letters = dead_letters if dead_letters is not None else DeadLetterTally()

    def collect(self):
        name = self.name
        provider = _store_provider(self.container)
        store = provider.store if provider is not None else None
        relay = provider.relay if provider is not None else None
        consumers = _tracking_consumers(self.container)

        # the database's figures first, the in-process counters after them: the relay counts
        # an event published before it records the position, so a scrape that reads a
        # position has counted at least as many (a relay publishing meanwhile cannot show a
        # lag of 0 beside a published count short of it)
        figures = None
        if store is not None:
            try:
                head = store.head()
                figures = (head, store.relay_position(), store.tracking(),
                           store.projection_positions(), self.dead_letters.count(store, head))
            except Exception as exc:  # the database is down: say so, keep the rest
                log.warning("metrics.store_unavailable", error_type=type(exc).__name__,
                            error=str(exc))

        published = CounterMetricFamily("kaowu_relay_published",
                                        "Events published by this process's relay.",
                                        labels=["service"])
        if relay is not None:
            published.add_metric([name], relay.published)
        yield published
        per_upstream = [("applied", "Upstream events applied by this process."),
                        ("duplicates", "Upstream deliveries skipped as already applied."),
                        ("pulled", "Upstream events pulled over RPC (gap fill, catch-up)."),
                        ("passed_over", "Upstream events of types the handler does not act "
                                        "on, passed over without a transaction."),
                        ("deferred", "Upstream messages that came while another worker "
                                     "applied: their events pulled by that worker."),
                        ("deliveries", "Upstream messages delivered to this process."),
                        ("deliveries_passed_over", "Upstream messages delivered holding "
                                                   "none of the types the handler acts on."),
                        ("delivered_unhandled", "Upstream events of types the handler does "
                                                "not act on, carried by delivered messages.")]
        attr = {"applied": "applied", "duplicates": "skipped", "pulled": "pulled",
                "passed_over": "passed_over", "deferred": "deferred",
                "deliveries": "deliveries", "deliveries_passed_over": "deliveries_passed_over",
                "delivered_unhandled": "delivered_unhandled"}
        for metric, doc in per_upstream:
            fam = CounterMetricFamily(f"kaowu_consumer_{metric}", doc, labels=["service", "upstream"])
            for up, consumer in sorted(consumers.items()):
                fam.add_metric([name, up], getattr(consumer, attr[metric], 0))
            yield fam

        up = GaugeMetricFamily("kaowu_store_up", "1 if the service's database answered the scrape.",
                               labels=["service"])
        if figures is None:
            up.add_metric([name], 0)
            yield up
            return
        head, relay_position, tracked, projections, dead_letters = figures
        up.add_metric([name], 1)
        yield up

        yield _gauge("kaowu_log_head_position", "Last position of the service's event log.",
                     name, head)
        yield _gauge("kaowu_relay_position", "Last position the outbox relay published.",
                     name, relay_position)
        yield _gauge("kaowu_relay_lag_events", "Committed events not yet published (head − relay).",
                     name, max(head - relay_position, 0))
        yield _gauge(DEAD_LETTERS, "Upstream events this service's consumers gave up on "
                     "(dead-lettered in its log) and not replayed since.", name, dead_letters)

        position = GaugeMetricFamily("kaowu_consumer_position",
                                     "Upstream position applied (the tracking record).",
                                     labels=["service", "upstream"])
        seen = GaugeMetricFamily("kaowu_consumer_highest_seen_position",
                                 "Highest upstream position this process has seen.",
                                 labels=["service", "upstream"])
        lag = GaugeMetricFamily("kaowu_consumer_lag_events",
                                "Upstream events seen but not yet applied (nor passed over).",
                                labels=["service", "upstream"])
        for upstream in sorted(set(tracked) | set(consumers)):
            applied = tracked.get(upstream, 0)
            consumer = consumers.get(upstream)
            highest = max(getattr(consumer, "highest_seen", 0) or 0, applied)
            # passed over in memory is dealt with too, though the record says so only later
            done = max(applied, getattr(consumer, "passed_position", 0) or 0)
            position.add_metric([name, upstream], applied)
            seen.add_metric([name, upstream], highest)
            lag.add_metric([name, upstream], max(highest - done, 0))
        yield position
        yield seen
        yield lag
        changed = GaugeMetricFamily("kaowu_consumer_upstream_log_changed",
                                    "1 when the upstream answers from another log than the one "
                                    "followed (restored or reset): nothing is applied.",
                                    labels=["service", "upstream"])
        for upstream, consumer in sorted(consumers.items()):
            changed.add_metric([name, upstream], 1 if getattr(consumer, "log_changed", None) else 0)
        yield changed

        ppos = GaugeMetricFamily("kaowu_projection_position",
                                 "Last log position folded into a read model.",
                                 labels=["service", "projection"])
        plag = GaugeMetricFamily("kaowu_projection_lag_events",
                                 "Log events not yet in a read model (head − position).",
                                 labels=["service", "projection"])
        for p in (provider.projections if provider is not None else []):
            pos = projections.get(p.name, 0)
            ppos.add_metric([name, p.name], pos)
            plag.add_metric([name, p.name], max(head - pos, 0))
        yield ppos
        yield plag

        business = GaugeMetricFamily("kaowu_business_count",
                                     "The service's business counts (business_counts()).",
                                     labels=["service", "name", "status"])
        for key, status, value in self._business():
            business.add_metric([name, key, status], value)
        yield business
        yield from self._scrape_gauges()

    def _scrape_gauges(self):
        gauges_of = getattr(self.service, "scrape_gauges", None)
        values = {}
        if gauges_of is not None:
            try:
                values = gauges_of() or {}
            except Exception as exc:  # as business counts: never takes the scrape down
                log.warning("metrics.scrape_gauges_failed", error_type=type(exc).__name__,
                            error=str(exc))
        for metric, (doc, labels) in SCRAPE_GAUGES.items():
            fam = GaugeMetricFamily(metric, doc, labels=["service", *labels])
            for key, value in sorted(values.get(metric, ())):
                fam.add_metric([self.name, *map(str, key)], float(value))
            yield fam

    def _business(self):
        counts_of = getattr(self.service, "business_counts", None)
        if counts_of is None:
            return []
        try:
            counts = counts_of() or {}
        except Exception as exc:  # a broken count must not take the scrape down
            log.warning("metrics.business_counts_failed", error_type=type(exc).__name__,
                        error=str(exc))
            return []
        rows = []
        for key, value in counts.items():
            if isinstance(value, dict):
                rows += [(str(key), str(status), float(n)) for status, n in value.items()]
            else:
                with contextlib.suppress(TypeError, ValueError):
                    rows.append((str(key), "", float(value)))
        return sorted(rows)


def _gauge(metric: str, doc: str, service: str, value) -> GaugeMetricFamily:
    fam = GaugeMetricFamily(metric, doc, labels=["service"])
    fam.add_metric([service], value)
    return fam
