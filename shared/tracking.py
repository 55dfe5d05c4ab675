"""Tracking consumers: apply an upstream service's events exactly once, in order.

Each applied event's effects (this service's own appended events, hence its projections)
and the tracking record (upstream, position) commit in one transaction. So:

- a duplicate delivery (position <= tracked) is skipped;
- the next one (tracked + 1) is applied from the message itself;
- a gap (position > tracked + 1: a message lost or overtaken) is filled by pulling the
  upstream's ``events_after(tracked, limit)`` over RPC, outside any transaction;
- a periodic ``catch_up`` pulls whatever a lost last message would have said.

A handler is ``handler(tx, event)``: it decides and appends through ``tx``. It must not do
I/O of its own (the transaction is open, and SQLite under eventlet must not yield). What a
decision needs from outside (a registry lookup) comes from ``prepare(event)``, called
before the transaction opens; then the handler is ``handler(tx, event, prepared)``.
"""

import threading
from collections.abc import Callable

from shared.errors import KaowuError
from shared.events import StoredEvent
from shared.eventstore import ConcurrencyConflict, Context, EventStore
from shared.logging import get_logger

log = get_logger(__name__)


class _Refused(Exception):
    def __init__(self, position, reason):
        super().__init__(position, reason)
        self.position, self.reason = position, reason

Handler = Callable[[object, StoredEvent], None]
Fetch = Callable[[int, int], list[dict]]


class TrackingConsumer:
    def __init__(self, store: EventStore, upstream: str, handler: Handler, batch: int = 200,
                 prepare: Callable[[StoredEvent], object] | None = None):
        self.store = store
        self.upstream = upstream
        self.handler = handler
        self.prepare = prepare
        self.batch = batch
        self._lock = threading.RLock()  # one applier per upstream per process
        self.applied = 0
        self.skipped = 0
        self.pulled = 0
        self.highest_seen = 0  # highest upstream position seen in a message or a pull (metrics)
        self.log_changed: str | None = None  # set when the upstream answers from another log

    def receive(self, message: dict, fetch: Fetch) -> int:
        """A message from the bus. Returns how many events were applied."""
        ev = StoredEvent.from_dict(message)
        self.highest_seen = max(self.highest_seen, ev.position)
        with self._lock:
            tracked, log_id = self.store.tracked(self.upstream)
            if log_id is None or message.get("log_id") != log_id:
                # first contact, or a message from another log than the one we follow (a
                # queue that outlived a reset database): only the upstream itself is believed
                return self.catch_up(fetch)
            if ev.position <= tracked:
                self.skipped += 1
                log.debug("consumer.duplicate", upstream=self.upstream, position=ev.position)
                return 0
            if ev.position == tracked + 1:
                n = self._apply([ev], log_id)
                if n or self.store.tracked_position(self.upstream) >= ev.position:
                    return n
            log.info("consumer.gap", upstream=self.upstream, tracked=tracked, received=ev.position)
            return self.catch_up(fetch, until=ev.position)

    def catch_up(self, fetch: Fetch, until: int | None = None) -> int:
        """Pull and apply upstream events after our tracked position (to ``until`` or the end).

        Positions count in one log: if the upstream answers from another log than the one
        tracked so far (its database was restored or replaced), nothing is applied and the
        consumer says so loudly; mixing two logs would lose or invent events.
        """
        total = 0
        with self._lock:
            while True:
                tracked, log_id = self.store.tracked(self.upstream)
                if until is not None and tracked >= until:
                    return total
                answer = fetch(tracked, self.batch)
                self.pulled += len(answer)
                if not answer:
                    return total
                upstream_log = answer[0].get("log_id")
                if log_id is not None and upstream_log != log_id:
                    self.log_changed = upstream_log
                    log.error("consumer.upstream_log_changed", upstream=self.upstream,
                              tracked=tracked, tracked_log=log_id, upstream_log=upstream_log,
                              action="nothing applied; an operator must reconcile")
                    return total
                got = [StoredEvent.from_dict(d) for d in answer]
                self.highest_seen = max(self.highest_seen, got[-1].position)
                total += self._apply(got, upstream_log)
                if len(got) < self.batch and (until is None or got[-1].position >= until):
                    return total

    def _apply(self, events: list[StoredEvent], log_id: str | None) -> int:
        """Apply a contiguous run in one transaction; a conflict with another replica is
        not an error: re-read the tracking record and apply only what is still new.

        A domain refusal (``KaowuError``) is this service's decision about that event: the
        run is applied again without it, and the event is passed over, logged, and tracked
        as applied. Anything else (a bug, the database) leaves the event to be retried.
        """
        refused: dict[int, str] = {}  # position -> why
        for _attempt in range(5 + len(events)):
            try:
                return self._apply_once(events, refused, log_id)
            except ConcurrencyConflict:
                continue
            except _Refused as r:
                refused[r.position] = r.reason
        return 0

    def _apply_once(self, events: list[StoredEvent], refused: dict[int, str],
                    log_id: str | None) -> int:
        prepared = {ev.position: self.prepare(ev) for ev in events} if self.prepare else None
        applied = 0
        first = events[0]
        ctx = Context(correlation_id=first.metadata.get("correlation_id"),
                      causation_id=first.metadata.get("event_id"), actor=f"service:{self.upstream}")
        with self.store.transaction(ctx) as tx:
            tracked, tracked_log = tx.tracked(self.upstream, lock=True)
            if tracked_log is not None and tracked_log != log_id:
                return 0  # another replica saw the upstream change first
            position = tracked
            for ev in events:
                if ev.position <= position:
                    continue
                if ev.position != position + 1:
                    break  # a hole: the caller pulls it
                tx.context = Context(correlation_id=ev.metadata.get("correlation_id"),
                                     causation_id=ev.metadata.get("event_id"),
                                     actor=f"service:{self.upstream}")
                if ev.position in refused:
                    log.warning("consumer.refused", upstream=self.upstream, position=ev.position,
                                type=ev.type, reason=refused[ev.position])
                else:
                    try:
                        if prepared is None:
                            self.handler(tx, ev)  # handlers ignore types they do not know
                        else:
                            self.handler(tx, ev, prepared[ev.position])
                    except KaowuError as exc:
                        raise _Refused(ev.position, exc.message) from None
                position = ev.position
                applied += 1
            if position != tracked:
                tx.track(self.upstream, position, tracked, log_id)
        self.applied += applied
        return applied
