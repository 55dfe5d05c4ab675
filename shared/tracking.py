"""Tracking consumers: apply an upstream service's events exactly once, in order.

A message from the upstream's relay carries the events of one relay cycle (``events``,
in log order, after position ``after`` up to ``last``) and ``types_at``, the position of
the last event of each type at or before ``after`` (``shared.relay``); a message from an
older relay has no ``types_at``, or is one event. A message reaches only the consumers
that handle one of its types (``shared.routing``), so a consumer does not see every
message, and positions between its own and a message's ``after`` may hold only types it
does not handle. Each run of events is applied in one transaction: this service's own
appended events (hence its projections) and the tracking record (upstream, position)
commit together. So:

- a duplicate delivery (``last`` <= the position) is skipped;
- a message that follows the position is applied from itself: its ``after`` <= position,
  or each type the handler declares was last seen at or before the position
  (``types_at``), so nothing it handles lies between: the message's events of its types
  after the position are applied and it moves to ``last``;
- a gap (anything else: a message overtaken or lost) is filled by pulling the
  upstream's ``events_after(position, limit, types)`` over RPC, outside any transaction,
  and a periodic ``catch_up`` pulls what a lost last message would have said. A message
  that arrives while another worker applies (no worker ever waits for it) is handed to
  the holder, which takes it (by the rules above) before it lets go; past ``stash`` such
  messages they are dropped for a prompt: the holder pulls instead. Either way the
  message was acknowledged and nothing was recorded for it, so a process that stops
  first pulls it again at its next catch-up.

So whatever the broker delivers, drops, duplicates or reorders, the events of the types a
consumer handles are applied each once, in log order, and none is passed over.

Where it stands is held in memory (read from the record once, then moved by its own
commits): the record is written by compare-and-set from the position last known, so a
replica that moved it first makes the transaction a conflict, and the consumer reads the
record again. Nothing is read per message.

A handler is ``handler(tx, event)``: it decides and appends through ``tx``. It must not do
I/O of its own (the transaction is open, and SQLite under eventlet must not yield). What a
decision needs from outside (a registry lookup) comes from ``prepare(event)``, called
before the transaction opens; then the handler is ``handler(tx, event, prepared)``.

Passing over (略过). A handler is a dispatch table from the upstream event types it acts
on to a step each (``dispatch({"ApplicationSubmitted": ..., ...})``): only those reach it,
its queue is bound to only those (``shared.routing``: a message with none of them is not
delivered), a pull asks the upstream for only those (its answer says how far it read,
``upto``, so the types asked for tell the gap), and a run with none of them (a pull's
answer, an older relay's message) is passed over without a transaction: the position moves
on in memory, and is written with the next run it acts on or by the catch-up timer. Nothing
is lost if the process stops first: the record is behind, so those events are passed over
again. The types are declared once, where they are dispatched: a type the table lacks is a
type no step would act on. ``passed_over`` counts the positions moved over without
applying; ``deliveries_passed_over`` the messages delivered with none of the types;
``delivered_unhandled`` the events of other types that came in delivered messages (a
batch mixes types: what routing by type cannot spare a consumer).

Poison (死信). A handler that fails on one event with an error that is neither a domain
refusal nor the database (a bug meeting data it did not expect) would hold the consumer
at that position for ever. After ``MAX_ATTEMPTS`` failures the event is dead-lettered: an
``EventDeadLettered`` (with the event and the error) is appended and the tracking record
moves past it, in one transaction; a copy goes to the broker's dead-letter queue for
operators (``on_dead_letter``). ``replay_dead_letter`` applies it again once fixed.
"""

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from shared.errors import Conflict, KaowuError, NotFound
from shared.events import NewEvent, StoredEvent
from shared.eventstore.store import EventStore
from shared.eventstore.unit_of_work import ConcurrencyConflict, Context
from shared.logging import get_logger

log = get_logger(__name__)

MAX_ATTEMPTS = 3  # failures of one event's handler before it is dead-lettered
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
# fetch(position, limit) -> [event dict], or fetch(position, limit, types=[...]) -> the
# answer of ``events_answer``: the upstream's ``events_after`` RPC
Fetch = Callable[..., list[dict] | dict]


def dispatch(table: dict[str, Callable], prepared: bool = False) -> Handler:
    """A consumer's handler from its dispatch table ``{upstream event type: step}``: the
    table's keys are the types it handles (``handler.handles``), so the consumer receives and
    pulls only those and passes over the others without a transaction (see the module's
    docstring). A step is ``step(tx, event)``, or with ``prepared`` (the consumer has a
    ``prepare``) ``step(tx, event, prepared)``."""
    table = dict(table)
    if prepared:
        def handler(tx, event, prepared):
            step = table.get(event.type)
            if step is not None:
                step(tx, event, prepared)
    else:
        def handler(tx, event):
            step = table.get(event.type)
            if step is not None:
                step(tx, event)
    handler.table = table
    handler.handles = frozenset(table)
    return handler


def events_answer(store: EventStore, service: str, position: int, limit: int,
                  types: Iterable[str]) -> dict:
    """``events_after`` with a type filter: the events of ``types`` after ``position``
    (``limit`` at most) and ``upto``, the position read up to. Every event up to ``upto``
    not in ``events`` is of another type, so a consumer that asked for these types has
    nothing to miss there. The head is read first: every event up to it is committed (the
    head row is advanced in the appending transaction), so the read below sees them all."""
    types = sorted(set(types))
    head = store.head()
    found = [e for e in store.events_after(position, limit, types=types) if e.position <= head] \
        if types else []
    upto = found[-1].position if len(found) == limit else max(head, position)
    return {"events": [store.public_view(e, service) for e in found], "upto": upto,
            "log_id": store.log_id}


@dataclass(frozen=True)
class _Run:
    """Events after ``after`` up to ``last`` of one log, in order: every event of that
    stretch, or (a filtered pull) every event of the types asked for. ``types_at``: the
    last position of each type of the log at or before ``after`` (None: not known)."""
    events: list[StoredEvent]
    after: int
    last: int
    log_id: str | None
    types_at: dict[str, int] | None = None

    @classmethod
    def of(cls, message: dict) -> "_Run":
        if "events" in message:  # one relay cycle
            return cls([StoredEvent.from_dict(d) for d in message["events"]], message["after"],
                       message["last"], message.get("log_id"), message.get("types_at"))
        ev = StoredEvent.from_dict(message)  # one event, from an older relay
        return cls([ev], ev.position - 1, ev.position, message.get("log_id"))

    def follows(self, position: int, handles: frozenset[str] | None) -> bool:
        """Nothing of ``handles`` lies after ``position`` up to ``after`` (every type if
        None): the run can be applied at ``position``, else what is missing is pulled."""
        if self.after <= position:
            return True
        if self.types_at is None or handles is None:
            return False
        return all(self.types_at.get(t, 0) <= position for t in handles)

    def holds_any(self, handles: frozenset[str] | None) -> bool:
        return handles is None or any(ev.type in handles for ev in self.events)

    def then(self, other: "_Run", handles: frozenset[str] | None) -> "_Run | None":
        """This run and ``other`` as one (applied in one transaction), if ``other``
        follows on from this one's ``last`` in the same log; else None. Between the two lie
        no events of ``handles``, so the joined run holds every one of those up to its end."""
        if other.log_id != self.log_id or not other.follows(self.last, handles):
            return None
        return _Run(self.events + [ev for ev in other.events if ev.position > self.last],
                    self.after, max(self.last, other.last), self.log_id, self.types_at)


def _joined(runs: list[_Run], handles: frozenset[str] | None, most: int) -> list[_Run]:
    """``runs`` in log order, those that follow on from each other joined (``most``
    events at most each): messages handed to one worker cost a transaction together."""
    out: list[_Run] = []
    for run in sorted(runs, key=lambda r: r.after):
        joined = out[-1].then(run, handles) if out else None
        if joined is not None and len(joined.events) <= most:
            out[-1] = joined
        else:
            out.append(run)
    return out


class TrackingConsumer:
    def __init__(self, store: EventStore, upstream: str, handler: Handler, batch: int = 500,
                 prepare: Callable[[StoredEvent], object] | None = None,
                 on_dead_letter: Callable[[str, StoredEvent, str], None] | None = None,
                 stash: int = 64):
        self.store = store
        self.on_dead_letter = on_dead_letter
        self._failures: dict[int, int] = {}  # position -> handler failures so far
        self.dead_lettered = 0
        self.upstream = upstream
        self.handler = handler
        self.prepare = prepare
        self.batch = batch  # events asked for per pull
        self._lock = threading.Lock()  # one applier per upstream per process; never waited for
        self._prompted = False  # messages came past the stash while the lock was held: pull
        self._stash: list[_Run] = []  # messages that came while the lock was held
        self.stash = stash  # at most so many; beyond, a prompt (a burst is pulled batch-wise)
        self.deferred = 0  # such messages
        self.applied = 0
        self.skipped = 0
        self.pulled = 0
        self.passed_over = 0
        self.deliveries = 0  # messages received
        self.deliveries_passed_over = 0  # of them, those with none of the handler's types
        self.delivered_unhandled = 0  # events carried by deliveries, of types it does not handle
        self.highest_seen = 0  # highest upstream position seen in a message or a pull (metrics)
        self.log_changed: str | None = None  # set when the upstream answers from another log
        # the event types the handler acts on (None: undeclared, every event is applied)
        self.handles: frozenset[str] | None = getattr(handler, "handles", None)
        # where this process stands: applied or passed over up to ``_at`` (position, log
        # id); the record said ``_recorded`` when last read or written (None: not read yet)
        self._at: tuple[int, str | None] = (0, None)
        self._recorded: tuple[int, str | None] | None = None

    def receive(self, message: dict, fetch: Fetch) -> int:
        """A message from the bus. Returns how many upstream positions this call took care
        of (applied or passed over).

        The worker never waits for another one: if another worker is applying, the message
        is handed to that worker (or, past the stash, left as a prompt to pull), which takes
        it before it lets go. A pull is an RPC and a read of the upstream's log; a handed
        message costs neither. So a burst of messages
        keeps one worker busy, not the whole pool, and the pool stays free for the RPC
        calls other services make of this one (a pool full of workers queued on this lock,
        while the holder waits on an RPC to a service whose own workers wait on this one,
        is a deadlock)."""
        run = _Run.of(message)
        self.deliveries += 1
        if not run.holds_any(self.handles):
            self.deliveries_passed_over += 1
        if self.handles is not None:
            self.delivered_unhandled += sum(ev.type not in self.handles for ev in run.events)
        self.highest_seen = max(self.highest_seen, run.last)
        return self._work(fetch, run, pull=False)

    def catch_up(self, fetch: Fetch) -> int:
        """Pull and apply upstream events after our position (the timer; a first contact),
        and write what was passed over. Skipped while another worker is applying: it is
        making progress anyway.

        Positions count in one log: if the upstream answers from another log than the one
        tracked so far (its database was restored or replaced), nothing is applied and the
        consumer says so loudly; mixing two logs would lose or invent events.
        """
        return self._work(fetch, None, pull=True)

    def _work(self, fetch: Fetch, run: "_Run | None", pull: bool) -> int:
        total = 0
        while True:
            if not self._lock.acquire(blocking=False):
                if run is not None:
                    self.deferred += 1
                    if self._prompted or len(self._stash) >= self.stash:
                        self._stash.clear()  # the pull takes these too, batch by batch
                        self._prompted = True
                    else:
                        self._stash.append(run)  # the holder takes it before it lets go
                return total
            try:
                if run is not None:
                    total += self._take(run, fetch)
                    run = None
                while self._stash or pull or self._prompted:
                    if self._stash and not self._prompted:
                        handed, self._stash = self._stash, []
                        total += self._take_handed(handed, fetch)
                        continue
                    self._prompted = False
                    self._stash.clear()  # what the pull below reads
                    total += self._pull(fetch)
                    if pull:
                        self._write_passed()
                        pull = False
            finally:
                self._lock.release()
            if not (self._prompted or self._stash):  # else one came before the release
                return total

    @property
    def passed_position(self) -> int:
        """How far this process has passed over in memory, not yet written (0: nothing)."""
        recorded = self._recorded
        return self._at[0] if recorded is not None and self._at[0] > recorded[0] else 0

    def _position(self) -> tuple[int, str | None]:
        """(position, log id) applied or passed over so far (lock held)."""
        if self._recorded is None:
            self._read_record()
        return self._at

    def _read_record(self):
        """Read the record again (first use; another replica moved it): in memory stays
        what was passed over beyond it in the same log."""
        self._recorded = recorded = self.store.tracked(self.upstream)
        at = self._at
        if not (at[1] == recorded[1] and at[0] > recorded[0]):
            self._at = recorded

    def _take(self, run: "_Run", fetch: Fetch) -> int:
        position, log_id = self._position()
        if log_id is None or run.log_id != log_id:
            # first contact, or a message from another log than the one we follow (a
            # queue that outlived a reset database): only the upstream itself is believed
            return self._pull(fetch)
        if run.last <= position:
            self.skipped += len(run.events)
            return 0
        if not run.follows(position, self.handles):
            self._read_record()  # another replica may have applied what is missing
            position = self._at[0]
            if run.last <= position:
                self.skipped += len(run.events)
                return 0
            if not run.follows(position, self.handles):
                # a gap: pull what is missing (no worker waits on us meanwhile, so the RPC
                # cannot close a circle of waits between two services)
                log.info("consumer.gap", upstream=self.upstream, tracked=position,
                         received=run.after + 1)
                return self._pull(fetch)
        return self._apply(run)

    def _take_handed(self, handed: list["_Run"], fetch: Fetch) -> int:
        """The messages handed to this worker (lock held): those not yet applied, joined
        where each follows on from the one before, each taken as a message is."""
        position, log_id = self._position()
        fresh = []
        for r in handed:
            if r.last <= position and r.log_id == log_id:
                self.skipped += len(r.events)  # applied meanwhile: not joined to the others
            else:
                fresh.append(r)
        return sum(self._take(r, fetch) for r in _joined(fresh, self.handles, self.batch))

    def _fetch(self, fetch: Fetch, position: int) -> "_Run | None":
        """Ask the upstream for what follows ``position``: only the declared types (an
        upstream of before the type filter, in a rolling upgrade: every type)."""
        if self.handles is not None:
            try:
                answer = fetch(position, self.batch, types=sorted(self.handles))
            except Exception as exc:
                if getattr(exc, "exc_type", None) != "IncorrectSignature":  # nameko's RemoteError
                    raise
            else:
                return _Run([StoredEvent.from_dict(d) for d in answer["events"]], position,
                            answer["upto"], answer["log_id"])
        answer = fetch(position, self.batch)
        if not answer:
            return None
        return _Run([StoredEvent.from_dict(d) for d in answer], position,
                    answer[-1]["position"], answer[0].get("log_id"))

    def _pull(self, fetch: Fetch) -> int:
        """Pull and apply what the upstream has after our position (lock held)."""
        total = 0
        while True:
            position, log_id = self._position()
            run = self._fetch(fetch, position)
            if run is None:
                return total
            self.pulled += len(run.events)
            if log_id is not None and run.log_id != log_id:
                self.log_changed = run.log_id
                log.error("consumer.upstream_log_changed", upstream=self.upstream,
                          tracked=position, tracked_log=log_id, upstream_log=run.log_id,
                          action="nothing applied; an operator must reconcile")
                return total
            if run.last <= position:
                return total
            self.highest_seen = max(self.highest_seen, run.last)
            total += self._apply(run)
            if len(run.events) < self.batch or self._at[0] < run.last:
                return total  # all there was, or not applied (retried by the timer)

    def _write_passed(self):
        """Write the position passed over in memory, if the record is not there yet."""
        if self.passed_position:
            position, log_id = self._at
            try:
                with self.store.transaction(Context(actor=f"service:{self.upstream}")) as tx:
                    self._track(tx, position, log_id)
            except ConcurrencyConflict:
                self._read_record()  # another replica moved it: the next tick writes
                return
            self._recorded = (position, log_id)

    def _track(self, tx, position: int, log_id: str | None):
        """Compare-and-set the record from where it was last known to ``position`` (first
        contact: create the row, under its lock, first)."""
        recorded = self._recorded
        if recorded[1] is None and tx.tracked(self.upstream, lock=True) != recorded:
            raise ConcurrencyConflict([f"tracking:{self.upstream}"])
        tx.track(self.upstream, position, recorded[0], log_id)

    def _apply(self, run: "_Run") -> int:
        """Apply what ``run`` has after our position in one transaction; a conflict with
        another replica is not an error: read the record again and apply only what is still
        new.

        A domain refusal (``KaowuError``) is this service's decision about that event: the
        run is applied again without it, and the event is passed over, logged, and tracked
        as applied. Anything else (a bug, the database) leaves the event to be retried.

        Returns how many positions it took care of: applied, or (types the handler does
        not declare) passed over, those of a run without any of its types without a
        transaction.
        """
        refused: dict[int, str] = {}  # position -> why
        poisoned: dict[int, str] = {}  # position -> the error, dead-lettered in this run
        for _attempt in range(5 + len(run.events)):
            position, log_id = self._position()
            if log_id is not None and log_id != run.log_id:
                return 0  # another replica saw the upstream change first
            if run.last <= position:
                return 0  # another replica applied it
            if not run.follows(position, self.handles):
                return 0  # behind the record this process had passed over: pulled next
            mine = [ev for ev in run.events if ev.position > position
                    and (self.handles is None or ev.type in self.handles)]
            if not mine:
                self._at = (run.last, run.log_id)
                self.passed_over += run.last - position
                return run.last - position
            try:
                self._apply_once(mine, run, refused, poisoned)
            except ConcurrencyConflict:
                self._read_record()
                continue
            except _Refused as r:
                refused[r.position] = r.reason
                continue
            except _Poisoned as p:
                poisoned[p.position] = p.error
                continue
            for failed in [p for p in self._failures if p <= run.last]:
                del self._failures[failed]  # applied, refused or dead-lettered: done
            self._dead_lettered([ev for ev in mine if ev.position in poisoned], poisoned)
            self.applied += len(mine)
            self.passed_over += run.last - position - len(mine)
            return run.last - position
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
            self.handler(tx, ev)
        else:
            self.handler(tx, ev, prepared[ev.position])

    def _apply_once(self, events: list[StoredEvent], run: "_Run", refused: dict[int, str],
                    poisoned: dict[int, str]):
        """``events`` (those of ``run`` the handler acts on, after our position) and the
        record moved to ``run.last``, in one transaction."""
        prepared = {ev.position: self.prepare(ev) for ev in events} if self.prepare else None
        first = events[0]
        ctx = Context(correlation_id=first.metadata.get("correlation_id"),
                      causation_id=first.metadata.get("event_id"), actor=f"service:{self.upstream}")
        with self.store.transaction(ctx) as tx:
            # first: the row's lock serialises replicas, and one that moved it is a conflict
            self._track(tx, run.last, run.log_id)
            for ev in events:
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
        self._at = self._recorded = (run.last, run.log_id)

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
