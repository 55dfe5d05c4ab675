"""Time, read only through a clock, so tests and demos can run a whole season in seconds."""

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ControlledClock:
    """A clock tests move by hand. Aware datetimes only; shared safely across green threads.

    Whoever must act when it moves (a service's deadline timer: ``shared.service``) listens
    (``listen``): each ``set`` or ``advance`` calls the listeners after the move, so a jump
    over a window's close is acted on at once, not at the timer's next tick."""

    def __init__(self, start: datetime | None = None):
        start = start or datetime(2026, 4, 7, 2, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ControlledClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()
        self._listeners: list = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime):
        if when.tzinfo is None:
            raise ValueError("ControlledClock needs an aware datetime")
        with self._lock:
            self._now = when
        self._moved()

    def advance(self, delta: timedelta | None = None, **kwargs):
        with self._lock:
            self._now += delta if delta is not None else timedelta(**kwargs)
            now = self._now
        self._moved()
        return now

    def listen(self, callback):
        """Call ``callback()`` after every move of the clock (until ``unlisten``)."""
        with self._lock:
            self._listeners.append(callback)

    def unlisten(self, callback):
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def _moved(self):
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()


def clock_from_config(config) -> "SystemClock | ControlledClock":
    """The clock a service runs on: ``CLOCK`` in its config may hold a clock object (tests)."""
    clock = (config or {}).get("CLOCK")
    if clock is None or clock == "system":
        return SystemClock()
    if hasattr(clock, "now"):
        return clock
    raise ValueError(f"unknown CLOCK {clock!r}: use 'system'")


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


def parse_iso(s: str) -> datetime:
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {s!r}")
    return dt


def shanghai(dt: datetime) -> str:
    """A time as people in the exam read it: Asia/Shanghai, to the second."""
    return dt.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def count_by_hour(timestamps) -> dict[str, int]:
    """ISO timestamps counted by the hour (Asia/Shanghai) they fall in, keyed by that hour's
    start (``2026-04-07T10:00:00+08:00``): the dashboard's arrivals per hour."""
    out: dict[str, int] = {}
    for ts in timestamps:
        hour = parse_iso(ts).astimezone(SHANGHAI).replace(minute=0, second=0, microsecond=0)
        out[hour.isoformat()] = out.get(hour.isoformat(), 0) + 1
    return dict(sorted(out.items()))


__all__ = ["SHANGHAI", "SystemClock", "ControlledClock", "clock_from_config", "count_by_hour", "iso", "parse_iso",
           "shanghai", "timedelta"]
