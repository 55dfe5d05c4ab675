"""The outbox relay: publishes a service's committed events to RabbitMQ, in position order.

The log is the outbox. The relay reads events after the position it last recorded,
publishes them as one message with a publisher confirm, and only then records the new
position, so a crash or a broker restart between the two publishes again (at-least-once,
consumers deduplicate) and never skips. Events are only read once committed, so nothing is
published early.

One message per relay cycle: ``{"events": [...], "after": p, "last": q, "log_id": ...,
"types_at": {type: position}}``, the events after position ``p`` up to ``q`` in log order,
and for every event type of the log the position of its last event at or before ``p``
(absent: none yet). One confirm per cycle, not per event.

A message reaches only the consumers that handle one of its types (``shared.routing``), so
a consumer no longer sees every message; ``types_at`` is what lets it tell a gap from a
stretch of types it does not handle: nothing it handles lies between its position and
``p`` iff each of its types was last seen at or before its position (``shared.tracking``).
The relay keeps the map in memory, moved by what it publishes. It reads it from the log
(one ``GROUP BY`` on the type) when the position it finds recorded is not the one it
published up to itself: at its start, after a failure, and after another replica
published (then only the stretch that replica published).

On PostgreSQL the relay holds ``relay_state``'s row lock (``FOR UPDATE SKIP LOCKED``) while
it publishes: with several replicas exactly one publishes at a time, the others skip.
On SQLite (one process) an in-process lock does that job: under eventlet a SQLite write
lock must never be held across a network wait.

Messages follow nameko's event conventions (exchange ``<service>.events``, topic), so
``@event_handler`` consumes them; the routing key is an event type of the message, the
other types are in the ``CC`` header (``shared.routing``).
"""

import contextlib
import threading

import eventlet
from kombu import Connection, Exchange, Producer

from shared.eventstore.statements import RELAY_ADVANCE, RELAY_LOCK
from shared.eventstore.store import EventStore
from shared.logging import get_logger
from shared.routing import message_keys

log = get_logger(__name__)


def events_exchange(service: str) -> Exchange:
    return Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False)


class KombuPublisher:
    """Publishes a cycle's events to ``<service>.events`` as one message, confirmed."""

    def __init__(self, amqp_uri: str, service: str, heartbeat: int = 60):
        self.amqp_uri = amqp_uri
        self.exchange = events_exchange(service)
        self._conn = None
        self._producer = None
        self.heartbeat = heartbeat

    def _producer_ready(self):
        if self._producer is None:
            self._conn = Connection(self.amqp_uri, transport_options={"confirm_publish": True},
                                    heartbeat=self.heartbeat, connect_timeout=5)
            self._conn.ensure_connection(max_retries=1)
            channel = self._conn.channel()
            self.exchange(channel).declare()
            self._producer = Producer(channel, exchange=self.exchange, serializer="json")
        return self._producer

    def publish(self, message: dict):
        md = message["events"][0].get("metadata") or {}
        key, cc = message_keys(e["type"] for e in message["events"])
        headers = {"nameko.correlation_id": md.get("correlation_id") or "",
                   "nameko.causation_id": md.get("event_id") or ""}
        if cc:
            headers["CC"] = cc
        self._producer_ready().publish(message, routing_key=key, delivery_mode=2,
                                       headers=headers)

    def close(self):
        conn, self._conn, self._producer = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to release
                conn.release()


#: seconds a relay waits after a commit wakes it before it publishes (config
#: ``RELAY_GATHER``), so that one cycle serves the commits of many concurrent commands: each
#: cycle costs a transaction, a confirmed publish, and a delivery and a transaction in every
#: consumer it reaches, whether it carries one event or twenty
GATHER = 0.01
#: an idle relay's poll (it looks for another replica's commits; this process's wake it at
#: once) slows to ``poll_interval`` × 1, 2, then 4: this many steps after the first empty cycle
QUIET_POLLS = 3


class Relay:
    def __init__(self, store: EventStore, service: str, publisher, batch: int = 500,
                 poll_interval: float = 0.5, gather: float = GATHER):
        self.store = store
        self.service = service
        self.publisher = publisher
        self.batch = batch
        self.poll_interval = poll_interval
        self.gather = gather  # after a wake (``GATHER``)
        self._wake = eventlet.event.Event()
        self._local = threading.Lock()
        self._stopped = False
        self._quiet = 0  # cycles in a row that published nothing (``poll_wait``)
        self.published = 0
        # the last position of each type at or before ``_types_upto`` (None: not read yet)
        self._types_at: dict[str, int] = {}
        self._types_upto: int | None = None
        store.on_commit(self.wake)

    def wake(self, _appended=None):
        if not self._wake.ready():
            self._wake.send(True)

    def run_once(self) -> int:
        """Publish one batch; returns how many were published (0: nothing to do, or
        another replica holds the relay)."""
        if self.store.dialect == "postgresql":
            with self.store.engine.begin() as conn:
                pos = conn.execute(RELAY_LOCK).scalar()
                if pos is None:
                    return 0
                return self._publish_from(conn, pos)
        if not self._local.acquire(blocking=False):
            return 0
        try:
            pos = self.store.relay_position()
            return self._publish_from(None, pos)
        finally:
            self._local.release()

    def _publish_from(self, conn, pos: int) -> int:
        evs = self.store.events_after(pos, self.batch, conn=conn)
        if not evs:
            return 0
        self.publisher.publish({"events": [self.store.public_view(e, self.service) for e in evs],
                                "after": pos, "last": evs[-1].position,
                                "log_id": self.store.log_id,
                                "types_at": dict(self._types_at_position(conn, pos))})
        self.published += len(evs)  # published (confirmed), whether or not the record below lands
        for e in evs:
            self._types_at[e.type] = e.position
        self._types_upto = evs[-1].position
        advance = {"to": evs[-1].position}
        if conn is not None:
            conn.execute(RELAY_ADVANCE, advance)
        else:
            with self.store.write_engine.begin() as c:
                c.execute(RELAY_ADVANCE, advance)
        return len(evs)

    def _types_at_position(self, conn, pos: int) -> dict[str, int]:
        """The last position of each type at or before ``pos``: the map in memory, read
        from the log where the recorded position is not where this relay left it (the
        stretch another replica published; all of it at the start or after a failure)."""
        upto = self._types_upto
        if upto != pos:
            if upto is None or upto > pos:
                self._types_at = self.store.last_of_types(0, pos, conn=conn)
            else:
                self._types_at.update(self.store.last_of_types(upto, pos, conn=conn))
            self._types_upto = pos
        return self._types_at

    def poll_wait(self, published: int) -> float:
        """How long to wait for a wake after a cycle that published ``published`` events
        before polling again (``QUIET_POLLS``)."""
        self._quiet = 0 if published else min(self._quiet + 1, QUIET_POLLS)
        return self.poll_interval * 2 ** max(self._quiet - 1, 0)

    def run_forever(self):
        backoff = 0.5
        while not self._stopped:
            self._wake = eventlet.event.Event()  # a commit from here on wakes the wait below
            try:
                # a cycle that published less than a batch read up to the head: whatever
                # commits after its read wakes the wait below (this process's commits) or
                # is found at the next poll (another replica's); no empty cycle to be sure
                while (published := self.run_once()) == self.batch and not self._stopped:
                    pass
                backoff = 0.5
            except Exception as exc:  # broker or database down: keep the position, retry
                log.warning("relay.retry", error=str(exc), error_type=type(exc).__name__,
                            retry_in=backoff)
                self.publisher.close()
                eventlet.sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            with eventlet.Timeout(self.poll_wait(published), False):
                self._wake.wait()
                eventlet.sleep(self.gather)

    def stop(self):
        self._stopped = True
        self.wake()
        self.publisher.close()

    def lag(self) -> int:
        return self.store.head() - self.store.relay_position()
