"""The one deadline mechanism (截止): run an effect once when a window of an exam session
closes (or opens, where an effect needs that).

Every service with such effects declares ``deadline_effects = Deadlines()`` and one timer
(``DEADLINE_INTERVAL``) that hands the provider its schedule: a ``Due`` per (session,
window) with the instant it falls due, read from the service's own sessions and compared
with the service's own clock. The provider runs each due effect not run yet, oldest first.

Durable, once: the record that an effect ran is a ``DeadlineReached`` event on the stream
``deadline-<session>-<window>``, appended with expected version 0 in the same unit of work
as the effect's own events. Two replicas cannot both run it (one commits, the other's
append conflicts and, re-run, finds the record); a restart in the middle finds either both
or neither. What has run is read from the log (``status`` shows it, with when), never from
memory: the provider only remembers it to skip a database read per tick.

An effect too large for one unit of work (admission issuing thousands of tickets) returns
``MORE`` after each batch it committed; the provider calls it again and writes the record
with the last batch (each batch must then be safe to repeat, by its own streams' versions).

For operators: ``report()`` in each service's ``status`` (which ran, when, which are
overdue), and ``kaowu_deadline_overdue_seconds{service,session_id,deadline}`` from the
service's ``deadline_schedule()`` (``shared.service``; the alert KaowuDeadlineNotRun).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from nameko.extensions import DependencyProvider

from shared.clock import parse_iso, shanghai
from shared.events import NewEvent
from shared.logging import get_logger

log = get_logger(__name__)

DEADLINE_REACHED = "DeadlineReached"
#: an effect's answer "one batch committed, call me again" (the record waits for the last)
MORE = object()


def deadline_stream(session_id: str, window: str) -> str:
    return f"deadline-{session_id}-{window}"


def has_run(store, key: tuple[str, str]) -> bool:
    """Whether the log records the effect of (session, window) as run (an indexed read)."""
    return bool(store.read_stream(deadline_stream(*key)))


@dataclass(frozen=True)
class Due:
    """An effect of a session's window, and the first instant it may run.

    ``effect(tx)`` runs in the unit of work that records it; it appends its own events and
    returns extra fields for the record (or None), or ``MORE``. ``prepare()`` runs before
    it, outside any transaction, only when the record is not there yet."""

    session_id: str
    window: str
    at: datetime
    effect: Callable[[object], dict | None | object]
    prepare: Callable[[], None] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.session_id, self.window)


class DeadlineRunner:
    """The work and the memory of one service's deadline effects (one per container)."""

    def __init__(self, service: str):
        self.service = service
        self._lock = threading.Lock()
        self._ran: dict[str, set[tuple[str, str]]] = {}  # log id -> (session, window) known run
        self._pending: dict[tuple[str, str], datetime] = {}  # due at the last tick, not run
        self._scheduled: dict[tuple[str, str], datetime] = {}  # every effect of the last tick

    # -- the timer's work ----------------------------------------------------------------

    def run_due(self, store, now: datetime, schedule: Iterable[Due]) -> list[tuple[str, str]]:
        """Run every effect of ``schedule`` due at ``now`` and not run yet; returns the
        (session, window) this call ran. An effect that fails is logged and stays pending
        (the next tick tries again; the overdue gauge shows it)."""
        schedule = list(schedule)
        ran = self._known(store)
        due = sorted((d for d in schedule if now >= d.at and d.key not in ran), key=lambda d: d.at)
        with self._lock:
            self._scheduled = {d.key: d.at for d in schedule}
            self._pending = {d.key: d.at for d in due}
        done, failed = [], set()
        for d in due:
            if d.session_id in failed:  # a session's effects run in order: the later wait
                with contextlib.suppress(Exception):
                    self._recorded(store, d.key)  # (unless another replica ran them)
                continue
            try:
                if self._recorded(store, d.key):  # by another replica: nothing to prepare
                    continue
                if d.prepare is not None:
                    d.prepare()
                outcome = MORE
                while outcome is MORE:
                    outcome = store.execute(lambda tx, d=d: _run(tx, d))
                if outcome:
                    done.append(d.key)
                    log.info("deadline.ran", session_id=d.session_id, window=d.window,
                             due_at=d.at.isoformat(), late_s=round((now - d.at).total_seconds(), 3))
                self._recorded(store, d.key)
            except Exception:
                failed.add(d.session_id)
                log.exception("deadline.failed", session_id=d.session_id, window=d.window,
                              action="retried at the next tick")
        return done

    def _known(self, store) -> set[tuple[str, str]]:
        """The effects known to have run in ``store``'s log: filled as each falls due (one
        indexed read of its stream, then kept: a record never goes away)."""
        with self._lock:
            return set(self._ran.setdefault(store.log_id, set()))

    def _recorded(self, store, key: tuple[str, str]) -> bool:
        if self._record(store, key) is not None:
            with self._lock:
                self._ran.setdefault(store.log_id, set()).add(key)
                self._pending.pop(key, None)
            return True
        return False

    @staticmethod
    def _record(store, key):
        events = store.read_stream(deadline_stream(*key))
        return events[0] if events else None

    def _records(self, store):
        """(key, record) of the effects that ran: those of the last tick's schedule by
        their streams (indexed); before any tick, by type over the whole log."""
        with self._lock:
            scheduled = sorted(self._scheduled)
        if scheduled:
            for key in scheduled:
                if (record := self._record(store, key)) is not None:
                    yield key, record
            return
        position = 0
        while batch := store.events_after(position, 1000, types=[DEADLINE_REACHED]):
            for e in batch:
                yield (e.payload["session_id"], e.payload["window"]), e
            position = batch[-1].position

    # -- for operators -------------------------------------------------------------------

    def report(self, store, now: datetime) -> dict:
        """What ``status`` shows: the effects that ran (from the log: every replica agrees)
        and when, and those due at the last tick and not run, with how late they are."""
        ran = sorted(({"session_id": s, "window": w, "ran_at": e.metadata.get("occurred_at"),
                       "ran_at_local": _local(e.metadata.get("occurred_at")), "position": e.position}
                      for (s, w), e in self._records(store)), key=lambda r: r["position"])
        for r in ran:
            del r["position"]
        return {"ran": ran, "overdue": [
            {"session_id": s, "window": w, "due_at": at.isoformat(),
             "overdue_seconds": round(max((now - at).total_seconds(), 0.0), 3)}
            for (s, w), at in sorted(self.pending().items())]}

    def pending(self) -> dict[tuple[str, str], datetime]:
        with self._lock:
            return dict(self._pending)

    def overdue_by_window(self, now: datetime) -> dict[str, float]:
        """Per window name, the longest any of its effects is past due (0: none)."""
        out: dict[str, float] = {}
        for (_, window), at in self.pending().items():
            out[window] = max(out.get(window, 0.0), max((now - at).total_seconds(), 0.0))
        return out


def _run(tx, d: Due):
    stream = deadline_stream(d.session_id, d.window)
    if tx.stream_version(stream):
        return None  # ran before: by us, another replica, or before a restart
    extra = d.effect(tx)
    if extra is MORE:
        return MORE
    tx.append([NewEvent(stream, DEADLINE_REACHED,
                        {"session_id": d.session_id, "window": d.window, **(extra or {})})],
              {stream: 0})
    return True


def _local(at: str | None) -> str | None:
    return shanghai(parse_iso(at)) if at else None


class Deadlines(DependencyProvider):
    """The service's ``DeadlineRunner``: its state lives here, per container, not in a
    module."""

    def setup(self):
        self.runner = DeadlineRunner(self.container.service_name)

    def get_dependency(self, worker_ctx):
        return self.runner
