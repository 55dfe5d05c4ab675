"""Tracking consumers: apply an upstream service's events exactly once, in order.

Each applied event's effects (this service's own appended events, hence its projections)
and the tracking record (upstream, position) commit in one transaction. So:

- a duplicate delivery (position <= tracked) is skipped;
- the next ones (tracked + 1, …) are applied from the messages themselves, as many as
  have arrived, ``batch`` at most in one transaction, by whichever worker holds the
  consumer (no worker ever waits for it);
- a gap (position > tracked + 1: a message overtaken or lost) is filled by pulling the
  upstream's ``events_after(tracked, limit)`` over RPC, outside any transaction, and a
  periodic ``catch_up`` pulls what a lost last message would have said.

A handler is ``handler(tx, event)``: it decides and appends through ``tx``. It must not do
I/O of its own (the transaction is open, and SQLite under eventlet must not yield). What a
decision needs from outside (a registry lookup) comes from ``prepare(event)``, called
before the transaction opens; then the handler is ``handler(tx, event, prepared)``.

Passing over (略过). A handler may declare the upstream event types it acts on
(``@handles("ApplicationSubmitted", ...)``). A run of received events none of which it acts
on is then passed over in memory, without a transaction: the consumer's position moves on,
and is written with the next event it does act on (in that event's transaction) or by the
catch-up timer. Nothing is lost if the process stops first: the position written is
behind, so those events are pulled again and passed over again. A declaration that leaves
out a type the handler needs would drop that type's events, so every declaration is
checked against its handler by a test (``tests/unit/test_consumer_declarations.py``).

Poison (死信). A handler that fails on one event with an error that is neither a domain
refusal nor the database (a bug meeting data it did not expect) would hold the consumer
at that position for ever. After ``MAX_ATTEMPTS`` failures the event is dead-lettered: an
``EventDeadLettered`` (with the event and the error) is appended and the tracking record
moves past it, in one transaction; a copy goes to the broker's dead-letter queue for
operators (``on_dead_letter``). ``replay_dead_letter`` applies it again once fixed.
"""

import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from shared.errors import Conflict, KaowuError, NotFound
from shared.events import NewEvent, StoredEvent
from shared.eventstore import ConcurrencyConflict, Context, EventStore
from shared.logging import get_logger

log = get_logger(__name__)

MAX_ATTEMPTS = 3  # failures of one event's handler before it is dead-lettered
# received events held for the applier at most; past it a message is dropped (acked) and its
# event pulled again when its turn comes: a burst (scores published for 10,000 candidates,
# ~48,000 events in seconds) against a slow handler must not sit whole in memory
MAX_PENDING = 2000
# errors that say nothing about the event: the infrastructure; retried, never dead-lettered
_INFRASTRUCTURE = (SQLAlchemyError, ConcurrencyConflict, OSError)


class _Refused(Exception):
    def __init__(self, position, reason):
        super().__init__(position, reason)
        self.position, self.reason = position, reason


class _Poisoned(Exception):
    def __init__(self, position, error):
        super().__init__(position, error)
        self.position, self.error = position, error


def dead_letter_stream(upstream: str, position: int) -> str:
    return f"deadletter-{upstream}-{position}"

Handler = Callable[[object, StoredEvent], None]
Fetch = Callable[[int, int], list[dict]]


def handles(*types: str):
    """Declare the upstream event types a handler acts on; the consumer passes over the
    others without a transaction (see the module's docstring)."""
    def declare(handler):
        handler.handles = frozenset(types)
        return handler
    return declare


class TrackingConsumer:
    def __init__(self, store: EventStore, upstream: str, handler: Handler, batch: int = 200,
                 prepare: Callable[[StoredEvent], object] | None = None,
                 on_dead_letter: Callable[[str, StoredEvent, str], None] | None = None,
                 max_pending: int = MAX_PENDING):
        self.store = store
        self.max_pending = max_pending
        self.deferred = 0  # messages dropped with the applier's hands full, pulled later
        self._dropped = False  # some since the last pull
        self.on_dead_letter = on_dead_letter
        self._failures: dict[int, int] = {}  # position -> handler failures so far
        self.dead_lettered = 0
        self.upstream = upstream
        self.handler = handler
        self.prepare = prepare
        self.batch = batch
        self._lock = threading.Lock()  # one applier per upstream per process; never waited for
        self._pending: dict[int, tuple[StoredEvent, str | None]] = {}  # received, not applied
        self.applied = 0
        self.skipped = 0
        self.pulled = 0
        self.highest_seen = 0  # highest upstream position seen in a message or a pull (metrics)
        self.log_changed: str | None = None  # set when the upstream answers from another log
        # the event types the handler acts on (None: undeclared, every event is applied)
        self.handles: frozenset[str] | None = getattr(handler, "handles", None)
        # (log id, position): passed over in memory up to there, not yet written
        self._passed: tuple[str, int] | None = None
        self.passed_over = 0

    def receive(self, message: dict, fetch: Fetch) -> int:
        """A message from the bus. Returns how many events this call applied.

        The worker never waits for another one: it leaves the event with the consumer and,
        unless another worker is applying already (who then applies this one too before
        letting go), applies every event received that follows the tracked position, in
        transactions of at most ``batch`` events. So a burst of messages keeps one worker
        busy, not the whole pool, and the pool stays free for the RPC calls other services
        make of this one (a pool full of workers queued on this lock, while the holder
        waits on an RPC to a service whose own workers wait on this one, is a deadlock)."""
        position = message["position"]
        self.highest_seen = max(self.highest_seen, position)
        if len(self._pending) >= self.max_pending:
            # hands full: keep the earliest; the gap the latest leaves is pulled when the
            # applier gets there
            self.deferred += 1
            self._dropped = True
            highest = max(self._pending)
            if position > highest:
                return self._work(fetch, pull=False)
            del self._pending[highest]
        self._pending[position] = (StoredEvent.from_dict(message), message.get("log_id"))
        return self._work(fetch, pull=False)

    def catch_up(self, fetch: Fetch) -> int:
        """Pull and apply upstream events after our tracked position (the timer; a first
        contact). Skipped while another worker is applying: it is making progress anyway.

        Positions count in one log: if the upstream answers from another log than the one
        tracked so far (its database was restored or replaced), nothing is applied and the
        consumer says so loudly; mixing two logs would lose or invent events.
        """
        return self._work(fetch, pull=True)

    def _work(self, fetch: Fetch, pull: bool) -> int:
        total = 0
        while pull or self._pending or self._dropped:
            if not self._lock.acquire(blocking=False):
                return total  # the holder applies what is pending before it lets go
            try:
                if pull:
                    total += self._pull(fetch)
                total += self._drain(fetch)
                if self._dropped and not self._pending:
                    self._dropped = False  # what was not held: from the upstream, now
                    total += self._pull(fetch)
                if pull:
                    self._write_passed()  # the timer writes what was passed over
                    pull = False
            finally:
                self._lock.release()
        return total

    @property
    def passed_position(self) -> int:
        """How far this process has passed over in memory, not yet written (0: nothing)."""
        passed = self._passed
        return passed[1] if passed is not None else 0

    def _passed_beyond(self, tracked: int, log_id: str | None) -> int:
        """How far this consumer is in log ``log_id`` whose record says ``tracked``: what it
        passed over in memory, where that is further on."""
        passed = self._passed
        if passed is not None and passed[0] == log_id and passed[1] > tracked:
            return passed[1]
        return tracked

    def _tracked(self) -> tuple[int, str | None]:
        """(position, log id) applied or passed over so far."""
        tracked, log_id = self.store.tracked(self.upstream)
        return self._passed_beyond(tracked, log_id), log_id

    def _pass_over(self, events: list[StoredEvent], log_id: str | None, tracked: int,
                   tracked_log: str | None) -> bool:
        """Pass over a run the handler acts on none of, in memory (lock held), if it follows
        ``tracked`` (from ``_tracked``) without a gap in the log followed."""
        if (self.handles is None or tracked_log is None or log_id != tracked_log
                or events[0].position != tracked + 1
                or events[-1].position - events[0].position != len(events) - 1
                or any(ev.type in self.handles for ev in events)):
            return False
        self._passed = (log_id, events[-1].position)
        self.passed_over += len(events)
        return True

    def _write_passed(self):
        """Write the position passed over in memory, if the log is not there yet."""
        passed = self._passed
        if passed is None:
            return
        with self.store.transaction(Context(actor=f"service:{self.upstream}")) as tx:
            tracked, tracked_log = tx.tracked(self.upstream, lock=True)
            upto = self._passed_beyond(tracked, tracked_log)
            if upto > tracked:
                tx.track(self.upstream, upto, tracked, tracked_log)
        if self._passed == passed:
            self._passed = None

    def _drain(self, fetch: Fetch) -> int:
        """Apply the received events that follow the tracked position (lock held); across a
        gap, pull the missing ones from the upstream."""
        total = 0
        while self._pending:
            tracked, log_id = self._tracked()
            for position in [p for p in self._pending if p <= tracked]:
                del self._pending[position]
                self.skipped += 1
            foreign = [p for p, (_, log) in self._pending.items() if log is None or log != log_id]
            if log_id is None or foreign:
                # first contact, or a message from another log than the one we follow (a
                # queue that outlived a reset database): only the upstream itself is believed
                for position in foreign:
                    del self._pending[position]
                total += self._pull(fetch)
                continue
            run = []
            # a bounded run: a burst (scores published: ~50,000 events at 10,000
            # candidates) must not become one transaction holding all of it in memory
            while len(run) < self.batch and tracked + 1 + len(run) in self._pending:
                run.append(self._pending.pop(tracked + 1 + len(run))[0])
            if not run:
                if not self._pending:
                    return total
                # a gap: pull what is missing (no worker waits on us meanwhile, so the RPC
                # cannot close a circle of waits between two services)
                log.info("consumer.gap", upstream=self.upstream, tracked=tracked,
                         received=min(self._pending))
                pulled = self._pull(fetch)
                total += pulled
                if not pulled:
                    return total  # the upstream has nothing more yet: the timer retries
                continue
            total += self._apply(run, log_id, tracked, log_id)
        return total

    def _pull(self, fetch: Fetch) -> int:
        """Pull and apply what the upstream has after the tracked position (lock held)."""
        total = 0
        while True:
            tracked, log_id = self._tracked()
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
            total += self._apply(got, upstream_log, tracked, log_id)
            if len(got) < self.batch:
                return total

    def _apply(self, events: list[StoredEvent], log_id: str | None, tracked: int,
               tracked_log: str | None) -> int:
        """Apply a contiguous run in one transaction; a conflict with another replica is
        not an error: re-read the tracking record and apply only what is still new.

        A domain refusal (``KaowuError``) is this service's decision about that event: the
        run is applied again without it, and the event is passed over, logged, and tracked
        as applied. Anything else (a bug, the database) leaves the event to be retried.

        Returns how many events it took care of: applied, or (a run of types the handler
        declares it does not act on) passed over without a transaction. ``tracked``,
        ``tracked_log``: where the caller read the consumer to be (``_tracked``).
        """
        if self._pass_over(events, log_id, tracked, tracked_log):
            return len(events)
        refused: dict[int, str] = {}  # position -> why
        poisoned: dict[int, str] = {}  # position -> the error, dead-lettered in this run
        for _attempt in range(5 + len(events)):
            try:
                applied = self._apply_once(events, refused, log_id, poisoned)
            except ConcurrencyConflict:
                continue
            except _Refused as r:
                refused[r.position] = r.reason
                continue
            except _Poisoned as p:
                poisoned[p.position] = p.error
                continue
            for position in [p for p in self._failures if p <= events[-1].position]:
                del self._failures[position]  # applied, refused or dead-lettered: done
            self._dead_lettered([ev for ev in events if ev.position in poisoned], poisoned)
            return applied
        return 0

    def _dead_lettered(self, events: list[StoredEvent], errors: dict[int, str]):
        for ev in events:
            self.dead_lettered += 1
            log.error("consumer.dead_lettered", upstream=self.upstream, position=ev.position,
                      type=ev.type, error=errors[ev.position])
            if self.on_dead_letter is not None:
                try:
                    self.on_dead_letter(self.upstream, ev, errors[ev.position])
                except Exception as exc:  # the log holds it; the broker copy is for operators
                    log.error("consumer.dead_letter_publish_failed", upstream=self.upstream,
                              position=ev.position, error=repr(exc))

    def _handle(self, tx, ev: StoredEvent, prepared):
        if prepared is None:
            self.handler(tx, ev)  # handlers ignore types they do not know
        else:
            self.handler(tx, ev, prepared[ev.position])

    def _apply_once(self, events: list[StoredEvent], refused: dict[int, str],
                    log_id: str | None, poisoned: dict[int, str] | None = None) -> int:
        poisoned = {} if poisoned is None else poisoned
        prepared = {ev.position: self.prepare(ev) for ev in events} if self.prepare else None
        applied = 0
        first = events[0]
        ctx = Context(correlation_id=first.metadata.get("correlation_id"),
                      causation_id=first.metadata.get("event_id"), actor=f"service:{self.upstream}")
        with self.store.transaction(ctx) as tx:
            tracked, tracked_log = tx.tracked(self.upstream, lock=True)
            if tracked_log is not None and tracked_log != log_id:
                return 0  # another replica saw the upstream change first
            # passed over in memory: written with this run
            position = self._passed_beyond(tracked, tracked_log)
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
                elif ev.position in poisoned:
                    tx.append([NewEvent(dead_letter_stream(self.upstream, ev.position),
                                        "EventDeadLettered", {
                                            "upstream": self.upstream, "position": ev.position,
                                            "type": ev.type, "error": poisoned[ev.position],
                                            "attempts": MAX_ATTEMPTS, "event": ev.to_dict()})],
                              {dead_letter_stream(self.upstream, ev.position): 0})
                else:
                    try:
                        self._handle(tx, ev, prepared)
                    except KaowuError as exc:
                        raise _Refused(ev.position, exc.message) from None
                    except _INFRASTRUCTURE:
                        raise
                    except Exception as exc:
                        failures = self._failures.get(ev.position, 0) + 1
                        self._failures[ev.position] = failures
                        error = f"{type(exc).__name__}: {exc}"[:2000]
                        log.warning("consumer.handler_failed", upstream=self.upstream,
                                    position=ev.position, type=ev.type, attempt=failures,
                                    error=error)
                        if failures >= MAX_ATTEMPTS:
                            raise _Poisoned(ev.position, error) from None
                        raise
                position = ev.position
                applied += 1
            if position != tracked:
                tx.track(self.upstream, position, tracked, log_id)
        if self._passed is not None and self._passed[1] <= position:
            self._passed = None  # written with this run
        self.applied += applied
        return applied

    # -- dead letters --------------------------------------------------------------------

    def replay_dead_letter(self, position: int) -> dict:
        """Apply a dead-lettered event again (its cause fixed). A domain refusal now is an
        answer too (recorded as ``refused``); any other failure leaves it dead-lettered."""
        stream = dead_letter_stream(self.upstream, position)
        history = self.store.read_stream(stream)
        if not history:
            raise NotFound(f"No dead letter from {self.upstream} at position {position}.",
                           {"position": str(position)})
        if len(history) > 1:
            raise Conflict(f"The dead letter from {self.upstream} at position {position} was "
                           f"replayed already ({history[-1].payload['outcome']}).",
                           {"position": str(position)})
        ev = StoredEvent.from_dict(history[0].payload["event"])
        prepared = {ev.position: self.prepare(ev)} if self.prepare else None
        ctx = Context(correlation_id=ev.metadata.get("correlation_id"),
                      causation_id=ev.metadata.get("event_id"), actor="operator:dlq-replay")
        outcome, reason = "applied", ""
        try:
            with self.store.transaction(ctx) as tx:
                self._handle(tx, ev, prepared)
                tx.append([NewEvent(stream, "DeadLetterReplayed", {
                    "upstream": self.upstream, "position": position, "outcome": "applied"})],
                    {stream: 1})
        except KaowuError as exc:
            outcome, reason = "refused", exc.message
            with self.store.transaction(ctx) as tx:
                tx.append([NewEvent(stream, "DeadLetterReplayed", {
                    "upstream": self.upstream, "position": position, "outcome": "refused",
                    "reason": reason})], {stream: 1})
        log.info("consumer.dead_letter_replayed", upstream=self.upstream, position=position,
                 outcome=outcome)
        return {"upstream": self.upstream, "position": position, "type": ev.type,
                "outcome": outcome, "reason": reason}
