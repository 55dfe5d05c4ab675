"""How SMS are sent, as pure policies: the result of one attempt, the retry schedule
(exponential backoff) and the rate limit (token bucket). No I/O; the token bucket takes
its time source as a function, so tests drive it by hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class SendResult:
    """One attempt at handing an SMS to the provider."""

    ok: bool
    retryable: bool = False  # a failure worth trying again (5xx, timeouts, 429)
    error: str | None = None  # what went wrong, for operators (never holds a whole mobile)
    provider_id: str | None = None  # the provider's id of the message, if it gave one

    @classmethod
    def sent(cls, provider_id: str | None = None) -> SendResult:
        return cls(True, provider_id=provider_id)

    @classmethod
    def retry(cls, error: str) -> SendResult:
        return cls(False, retryable=True, error=error)

    @classmethod
    def permanent(cls, error: str) -> SendResult:
        return cls(False, retryable=False, error=error)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: after failed attempt ``n`` wait ``base * 2**(n-1)``, at most
    ``cap``; give up after ``max_attempts`` attempts. No jitter: the schedule is exact and
    a restart computes the same one (it is recorded in the events anyway)."""

    max_attempts: int = 5
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError("SMS_MAX_ATTEMPTS must be at least 1")
        if self.base <= timedelta(0) or self.cap < self.base:
            raise ValueError("SMS_RETRY_BASE_S must be positive and SMS_RETRY_MAX_S at least as long")

    def delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt ``attempt`` (1 = the first) before the next."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        return min(self.cap, self.base * (2 ** min(attempt - 1, 32)))

    def schedule(self) -> list[timedelta]:
        """Offsets of every attempt from the first: [0, base, 3 base, 7 base, …]."""
        out, t = [timedelta(0)], timedelta(0)
        for n in range(1, self.max_attempts):
            t += self.delay(n)
            out.append(t)
        return out

    @classmethod
    def from_config(cls, setting: Callable[[str, object], object]) -> RetryPolicy:
        return cls(max_attempts=int(setting("SMS_MAX_ATTEMPTS", 5)),
                   base=timedelta(seconds=float(setting("SMS_RETRY_BASE_S", 30))),
                   cap=timedelta(seconds=float(setting("SMS_RETRY_MAX_S", 3600))))


class TokenBucket:
    """At most ``rate`` sends per second on average, bursts of ``capacity``.

    Measured on a monotonic clock, not the business clock: the limit is about throughput
    towards the provider in real seconds, and a test's ControlledClock jumping days ahead
    must not hand out a burst of tokens.
    """

    def __init__(self, rate: float, capacity: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("SMS_RATE_PER_S must be positive")
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, rate))
        if self.capacity < 1:
            raise ValueError("SMS_BURST must be at least 1")
        self._monotonic = monotonic
        self._tokens = self.capacity
        self._at = monotonic()
        self._lock = threading.Lock()

    def try_take(self) -> float:
        """Take a token: 0.0 if one was free, else the seconds until one will be."""
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def take(self, sleep: Callable[[float], None] = time.sleep):
        """Take a token, waiting for it if need be."""
        while (wait := self.try_take()) > 0:
            sleep(wait)
