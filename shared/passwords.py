"""Password hashing: argon2id, never stored or logged in clear.

The default cost is OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane): a
production setting that keeps a 10:00 opening minute of sign-ups within two cores.
``PASSWORD_HASH`` in the config can raise it (``time_cost``, ``memory_cost`` in KiB,
``parallelism``).

``ThreadedHasher`` runs the hashes in eventlet's real threads, at most a bound at once
(``PASSWORD_HASH_CONCURRENCY`` in the config, default ``usable_cores()``).
"""

import math
import os
from pathlib import Path

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from eventlet import tpool
from eventlet.semaphore import Semaphore

DEFAULTS = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1}


class PasswordHasher:
    def __init__(self, **params):
        self.params = {**DEFAULTS, **params}
        self._h = argon2.PasswordHasher(type=argon2.Type.ID, **self.params)
        self._dummy = self._h.hash("kaowu-dummy-password-for-timing")

    @classmethod
    def from_config(cls, config):
        return cls(**((config or {}).get("PASSWORD_HASH") or {}))

    def hash(self, password: str) -> str:
        return self._h.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        if not password_hash:
            return False
        try:
            return self._h.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_dummy(self, password: str) -> None:
        """Spend what a real check costs, so timing does not tell which usernames exist."""
        self.verify(self._dummy, password)


class ThreadedHasher:
    """A hasher whose calls run in eventlet's real threads (``tpool``), so the hub keeps
    serving while argon2 works, at most ``limit`` at once; the others wait their turn,
    green. Each hash holds a 19 MiB buffer: ten at once (nameko's ten workers) took ten
    buffers and competed for two cores, none done sooner. Which of tpool's 20 threads runs
    a hash is not bounded, so each thread's malloc arena may still keep a freed buffer:
    ``MALLOC_ARENA_MAX=2`` (shared/runner.py, the Dockerfile) is what stops that."""

    def __init__(self, hasher: PasswordHasher, limit: int):
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"PASSWORD_HASH_CONCURRENCY must be a whole number >= 1, not {limit!r}")
        self.hasher = hasher
        self.limit = limit
        self._slots = Semaphore(limit)

    @classmethod
    def from_config(cls, config):
        config = config or {}
        return cls(PasswordHasher.from_config(config),
                   config.get("PASSWORD_HASH_CONCURRENCY") or usable_cores())

    def _run(self, fn, *args):
        with self._slots:
            return tpool.execute(fn, *args)

    def hash(self, password: str) -> str:
        return self._run(self.hasher.hash, password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        return self._run(self.hasher.verify, password_hash, password)

    def verify_dummy(self, password: str) -> None:
        self._run(self.hasher.verify_dummy, password)


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process can use: its CPU affinity, lowered to its container's CPU
    limit (a pod's ``limits.cpu``), which ``os.cpu_count()`` does not see: a one-core pod
    on a 32-core node would count 32."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 2
    quota = _cpu_quota(cgroup)
    return min(cores, max(1, math.ceil(quota))) if quota else cores


def _cpu_quota(cgroup: Path) -> float | None:
    """CPUs' worth of time the cgroup's quota allows, None when it has none."""
    try:  # cgroup v2: "max 100000", or "50000 100000" for half a CPU
        quota, period = (cgroup / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1: a quota of -1 is none
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
