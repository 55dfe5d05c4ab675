"""What every event-sourced service offers, and the one way to validate RPC input.

A service subclasses ``EventSourcedService`` and declares ``store`` (an
``EventStoreProvider``). It then answers, besides its own commands:

- ``events_after(position, limit, types=None)``: its log after a position (public views),
  for the operator command line; with ``types``, only those types and how far it read
  (``shared.tracking.events_answer``), for consumers' pulls;
- ``status()``: head position, relay position and lag, tracking per upstream, projections,
  and where the service has deadline effects (``shared.deadlines``) which ran, when, and
  which are overdue;
- ``rebuild(projection=None)``: drop and replay read models while running;
- ``dead_letters()`` and ``replay_dead_letter(upstream, position)``: upstream events its
  consumers dead-lettered (``shared.tracking``), and applying one again.

and, over HTTP on ``WEB_SERVER_ADDRESS`` (``shared.health``, ``shared.metrics``):

- ``GET /health/live`` and ``GET /health/ready`` (database and broker) for the probes;
- ``GET /metrics``: Prometheus metrics, including the service's ``business_counts()``.
"""

import time

from eventlet import Timeout
from eventlet.event import Event
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as SchemaError
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.events import SERVICE_POOL, EventHandler
from nameko.rpc import Responder, Rpc, RpcConsumer, get_rpc_exchange
from nameko.timer import Timer

from shared.clock import clock_from_config
from shared.deadletter import DeadLetteringQueueConsumer
from shared.deadlines import DeadlineRunner, has_run
from shared.dependencies import ClockProvider, TrackingProvider, WorkerLog
from shared.errors import EXPECTED, NotFound, Unavailable, ValidationFailed, flat_fields
from shared.health import Health, http
from shared.metrics import Metrics
from shared.routing import consumer_queue
from shared.tracking import events_answer


class _ReplyPublisher(Publisher):
    # a reply the broker loses is a reply the caller's deadline covers (RPC_TIMEOUT, the
    # gateway's 503): waiting for its confirm would only add a round trip to every call
    use_confirms = False
    # publish() writes confirm_publish into this dict, and nameko's class-wide one is shared
    # by every other publisher of the process (those confirm): replies keep a dict of their own
    transport_options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False}


class _Responder(Responder):
    publisher_cls = _ReplyPublisher


class CommandConsumer(RpcConsumer):
    """nameko's RPC consumer, but replies go out without a publisher confirm. What a
    command did is in its committed transaction (and its events in the outbox) before the
    reply is sent; the reply itself is a message to one waiting caller."""

    def handle_result(self, message, result, exc_info):
        config = self.container.config
        responder = _Responder(
            config[AMQP_URI_CONFIG_KEY], get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER), message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class Command(Rpc):
    """nameko's RPC entrypoint, but a lost or unreachable database answers as
    ``Unavailable`` (try again shortly) instead of a driver exception with its text: after
    a PostgreSQL restart the first use of each pooled connection fails (SQLAlchemy then
    renews the whole pool), and a caller should hear "try again", not "internal error".
    Commands have already been retried by ``EventStore.execute``; nothing half-written
    stays (the transaction rolled back). Replies are not confirmed (``CommandConsumer``)."""

    rpc_consumer = CommandConsumer()

    def handle_result(self, message, worker_ctx, result, exc_info):
        if exc_info is not None and database_unavailable(exc_info[1]):
            exc = Unavailable("The service could not reach its database for a moment; "
                              "nothing was changed. Please try again shortly.")
            exc_info = (Unavailable, exc, exc_info[2])
        return super().handle_result(message, worker_ctx, result, exc_info)


def database_unavailable(exc: BaseException) -> bool:
    """A transient database failure: connection lost or refused, pool exhausted, or a
    transaction the server rolled back (deadlock, serialization, shutdown)."""
    from sqlalchemy.exc import DBAPIError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    return (isinstance(exc, OperationalError | PoolTimeout)
            or (isinstance(exc, DBAPIError) and exc.connection_invalidated))


command = Command.decorator(expected_exceptions=EXPECTED)


class TrackedEventHandler(EventHandler):
    """The event handler of tracking consumers: a shared durable queue per consuming
    service, bound to the upstream's event types its consumer handles (``shared.routing``;
    the types are its dispatch table's, in the service's ``TrackingProvider``), reliable
    delivery, undecodable messages dead-lettered (``shared.deadletter``)."""

    queue_consumer = DeadLetteringQueueConsumer()

    def setup(self):
        super().setup()  # nameko's queue, bound to everything: its name is kept (and its messages)
        q = self.queue
        tracking = next((d for d in self.container.dependencies
                         if isinstance(d, TrackingProvider)), None)
        handles = tracking.handles(self.source_service) if tracking is not None else None
        self.queue = consumer_queue(q.name, q.exchange, handles, durable=q.durable,
                                    auto_delete=q.auto_delete, exclusive=q.exclusive)


def upstream_events(upstream: str):
    """Subscribe to the events of ``upstream`` its consumer handles (one durable queue per
    consuming service). The consumer tells duplicates and gaps from the positions and
    ``types_at`` its messages carry (``shared.tracking``). A message that cannot be decoded
    goes to the dead-letter queue (``shared.deadletter``)."""
    return TrackedEventHandler.decorator(upstream, "#", handler_type=SERVICE_POOL,
                                         reliable_delivery=True)


class ConfigTimer(Timer):
    """A timer whose interval comes from the service config (``key``), so tests and demos
    can run the same service faster."""

    def __init__(self, interval=2.0, key="CATCH_UP_INTERVAL", **kwargs):
        super().__init__(interval=interval, **kwargs)
        self.key = key

    def setup(self):
        self.interval = float(self.container.config.get(self.key, self.interval))


config_timer = ConfigTimer.decorator


class DeadlineTimer(ConfigTimer):
    """The timer of a service's deadline effects (``DEADLINE_INTERVAL``, default 1 s), which
    also fires as soon as the service's clock is moved by hand (a ``ControlledClock``: the
    tests, the in-process benchmarks): a jump past a window's close is acted on at once, and
    the timer need not tick often to keep up with such a clock."""

    def __init__(self, interval=1.0, key="DEADLINE_INTERVAL", **kwargs):
        super().__init__(interval=interval, key=key, **kwargs)
        self._wake = Event()
        self._clock = None

    def start(self):
        clock = clock_from_config(self.container.config)
        if hasattr(clock, "listen"):
            self._clock = clock
            clock.listen(self.poke)
        super().start()

    def stop(self):
        self._unlisten()
        self.should_stop.send(True)
        self.poke()  # the loop waits on ``_wake``: woken, it finds ``should_stop`` sent
        self.gt.wait()

    def kill(self):
        self._unlisten()
        super().kill()

    def _unlisten(self):
        if self._clock is not None:
            self._clock.unlisten(self.poke)
            self._clock = None

    def poke(self):
        """Fire now (once, however often poked before the tick runs)."""
        if not self._wake.ready():
            self._wake.send(True)

    def _run(self):
        """Every ``interval`` (or at once after a tick that took longer), and when poked."""
        wait = 0 if self.eager else self.interval
        while True:
            with Timeout(wait, exception=False):
                self._wake.wait()
            if self.should_stop.ready():
                break
            if self._wake.ready():
                self._wake.reset()
            began = time.monotonic()
            self.handle_timer_tick()
            self.worker_complete.wait()
            self.worker_complete.reset()
            wait = max(self.interval - (time.monotonic() - began), 0)


deadline_timer = DeadlineTimer.decorator


def load(schema: Schema, data, **kwargs):
    """Validate ``data`` with ``schema``; bad input becomes ``ValidationFailed`` (field ->
    message), never a traceback, and nothing has been written yet."""
    if not isinstance(data, dict):
        raise ValidationFailed("Expected an object.", {"_schema": ["Expected an object."]})
    try:
        return schema.load(data, **kwargs)
    except SchemaError as exc:
        raise ValidationFailed("Some fields are not valid.", flat_fields(exc.normalized_messages())) from None


class EventsAfterSchema(Schema):
    position = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=1000, strict=True, validate=validate.Range(min=1, max=5000))
    types = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                        load_default=None, validate=validate.Length(max=200))


class EventReply(Schema):
    """An event of a service's log as ``events_after`` answers it (its public view: a
    private event keeps its place, ``private`` true, without its payload)."""

    position = fields.Integer(required=True)
    stream_id = fields.String(required=True)
    stream_version = fields.Integer(required=True)
    type = fields.String(required=True)
    schema_version = fields.Integer(required=True)
    payload = fields.Dict(required=True)
    metadata = fields.Dict(required=True)
    service = fields.String(required=True)
    log_id = fields.String(required=True, allow_none=True)
    private = fields.Boolean()


class DeadLetterSchema(Schema):
    upstream = fields.String(required=True, validate=validate.Length(min=1, max=100))
    position = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class EventSourcedService:
    """Base for the six services. ``store`` is declared by each subclass."""

    name: str
    log = WorkerLog()
    clock = ClockProvider()
    metrics = Metrics()
    health = Health()

    def business_counts(self) -> dict:
        """The business figures of the dashboard, read at each scrape of ``/metrics``:
        ``{name: number}`` or ``{name: {status: number}}`` (e.g. ``{"applications":
        {"submitted": 12, "confirmed": 3}}``), exported as
        ``kaowu_business_count{service, name, status}``. Keep it to a few cheap
        ``SELECT … GROUP BY`` on the read model (``self.store``). Default: none."""
        return {}

    def deadline_plan(self) -> list:
        """The service's deadline effects (``shared.deadlines.Due``: session, window, when
        it falls due, the effect), which its ``DEADLINE_INTERVAL`` timer hands to its
        ``Deadlines`` provider. Default: none."""
        return []

    def deadline_schedule(self):
        """The service's deadline effects: ``(session_id, name, due_at, done)`` each, due_at
        aware, done as the log records it (``shared.deadlines``). Exported while due and
        not done as ``kaowu_deadline_overdue_seconds`` (the alert KaowuDeadlineNotRun)."""
        return [(d.session_id, d.window, d.at, has_run(self.store, d.key))
                for d in self.deadline_plan()]

    def scrape_gauges(self) -> dict:
        """``{metric: [(label values, value)]}`` for ``shared.metrics.SCRAPE_GAUGES``, read
        at each scrape. Here: the overdue deadlines, by the service's clock."""
        now = self.clock.now()
        return {"kaowu_deadline_overdue_seconds": [
            ((session_id, name), (now - due).total_seconds())
            for session_id, name, due, done in self.deadline_schedule()
            if not done and now >= due]}

    @http("GET", "/health/live")
    def health_live(self, request):
        return self.health.live()

    @http("GET", "/health/ready")
    def health_ready(self, request):
        return self.health.ready(self.store.read_engine)

    @http("GET", "/metrics")
    def prometheus_metrics(self, request):
        return self.metrics.render(self)

    @command
    def events_after(self, position, limit=1000, types=None):
        args = load(EventsAfterSchema(), {"position": position, "limit": limit, "types": types})
        if args["types"] is not None:
            return events_answer(self.store, self.name, args["position"], args["limit"],
                                 args["types"])
        return [self.store.public_view(e, self.name)
                for e in self.store.events_after(args["position"], args["limit"])]

    @command
    def status(self):
        store = self.store
        head = store.head()
        relay = store.relay_position()
        answer = {
            "service": self.name,
            "head": head,
            "relay_position": relay,
            "relay_lag": head - relay,
            "tracking": self._tracking_positions(),
            "projections": store.projection_positions(),
            "dead_letters": sum(1 for d in self.dead_letters() if not d["replayed"]),
        }
        runner = getattr(self, "deadline_effects", None)
        if isinstance(runner, DeadlineRunner):  # the deadline effects that ran, and when
            answer["deadlines"] = runner.report(store, self.clock.now())
        return answer

    def _tracking_positions(self) -> dict[str, int]:
        """Each upstream's position as its tracking record has it, or as this process's
        consumer has it where it has passed over events the record does not show yet (the
        operators' "behind" would otherwise count them for up to a catch-up interval)."""
        positions = self.store.tracking()
        consumers = getattr(getattr(self, "tracking", None), "consumers", None)
        if isinstance(consumers, dict):  # as the lag metric counts it (shared.metrics)
            for upstream, consumer in consumers.items():
                positions[upstream] = max(positions.get(upstream, 0), consumer.passed_position)
        return positions

    @command
    def dead_letters(self):
        """Upstream events this service's consumers gave up on, and whether replayed since."""
        found: dict[str, dict] = {}
        position = 0
        while True:
            batch = self.store.events_after(position, 1000,
                                            types=("EventDeadLettered", "DeadLetterReplayed"))
            if not batch:
                break
            for e in batch:
                p = e.payload
                if e.type == "EventDeadLettered":
                    found[e.stream_id] = {"upstream": p["upstream"], "position": p["position"],
                                          "type": p["type"], "error": p["error"],
                                          "at": e.metadata.get("occurred_at"), "replayed": None}
                elif e.stream_id in found:
                    found[e.stream_id]["replayed"] = p["outcome"]
            position = batch[-1].position
        return list(found.values())

    @command
    def replay_dead_letter(self, upstream, position):
        args = load(DeadLetterSchema(), {"upstream": upstream, "position": position})
        consumers = getattr(getattr(self, "tracking", None), "consumers", {})
        if args["upstream"] not in consumers:
            raise NotFound(f"{self.name} does not consume {args['upstream']!r}.",
                           {"upstream": f"one of {sorted(consumers)}"})
        return consumers[args["upstream"]].replay_dead_letter(args["position"])

    @command
    def rebuild(self, projection=None):
        names = [p.name for p in self.store.projections]
        if projection is not None and projection not in names:
            raise ValidationFailed(f"No projection {projection!r} here; this service has {names}.",
                                   {"projection": f"one of {names}"})
        return {p.name: p.rebuild(self.store) for p in self.store.projections
                if projection in (None, p.name)}
