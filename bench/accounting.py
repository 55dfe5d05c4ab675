"""The arithmetic of the season's figures (issue 18), apart from any process or service so
that it can be tested alone: CPU from ``/proc/<pid>/stat`` samples, the stepping search for
the sustained decision rate, and counters turned into per-candidate counts."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# -- CPU from /proc -------------------------------------------------------------------------

def parse_stat(text: str, tick: int = TICK) -> tuple[str, float]:
    """``(comm, utime + stime in seconds)`` of one ``/proc/<pid>/stat`` line (the command
    name may hold spaces and parentheses: it ends at the last ``)``)."""
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = _after_comm(text)
    return comm, (int(fields[11]) + int(fields[12])) / tick


def started(text: str) -> int:
    """When the process of a ``/proc/<pid>/stat`` line started (clock ticks after boot): with
    its pid, it tells the process from a later one given the same pid."""
    return int(_after_comm(text)[19])


def parent(text: str) -> int:
    """The parent's pid in a ``/proc/<pid>/stat`` line."""
    return int(_after_comm(text)[1])


def _after_comm(text: str) -> list[str]:
    return text[text.rindex(")") + 2:].split()


def read_cpu(pid: int) -> tuple[str, float] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return parse_stat(f.read())
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class CpuAccount:
    """CPU seconds per group over a window, from repeated samples ``{pid: cpu_s}`` (or any
    key naming one process: ``tests/cpu.py`` gives ``(pid, start time)``).

    A pid seen in the first sample counts from that sample; a pid first seen later was born
    during the window and counts from 0 (a PostgreSQL backend a pool opened); a pid gone from
    a later sample keeps its last value (its CPU after that sample is lost: sample often)."""

    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    group_of: dict[int, str] = field(default_factory=dict)
    started: bool = False

    def add(self, group: str, samples: dict[int, float]):
        """One sample of ``group``'s processes (call ``start`` first, then any number)."""
        for pid, cpu in samples.items():
            if pid not in self.last:
                self.first[pid] = cpu if not self.started else 0.0
                self.group_of[pid] = group
            self.last[pid] = max(cpu, self.last.get(pid, 0.0))

    def start(self, samples_by_group: dict[str, dict[int, float]]):
        for group, samples in samples_by_group.items():
            self.add(group, samples)
        self.started = True

    def seconds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, group in self.group_of.items():
            out[group] = out.get(group, 0.0) + self.last[pid] - self.first[pid]
        return out


def core_seconds_per_candidate(cpu_by_group: dict[str, float], hashes: int,
                               hash_cpu_s: float, candidates: int) -> dict:
    """CPU of every process over the season ÷ candidates, the password hashing's own CPU
    (``hashes`` × ``hash_cpu_s``) subtracted and reported beside it."""
    total = sum(cpu_by_group.values())
    hashing = hashes * hash_cpu_s
    return {"value": (total - hashing) / candidates,
            "with_hashing": total / candidates,
            "hashing_per_candidate": hashing / candidates,
            "cpu_s": {k: round(v, 2) for k, v in sorted(cpu_by_group.items())},
            "cpu_s_total": round(total, 2), "hashing_cpu_s": round(hashing, 2)}


# -- the sustained rate ---------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    rate: float
    decided: int
    submitted: int
    lost: int
    p99_ms: float | None

    def sustained(self, ceiling_ms: float = 1000.0) -> bool:
        """Every submission decided, none lost, p99 submit → decision within the ceiling."""
        return (self.submitted > 0 and self.lost == 0 and self.decided == self.submitted
                and self.p99_ms is not None and self.p99_ms <= ceiling_ms)


def sustained_rate(measure: Callable[[float], Step], start: float = 25.0, step: float = 25.0,
                   highest: float = 400.0, ceiling_ms: float = 1000.0) -> tuple[float, list[Step]]:
    """Offer ``start``, ``start + step``, … (open loop, ``measure(rate)``) until a rate is not
    sustained or ``highest`` is passed: the highest sustained rate (0 if none) and every
    step taken."""
    best, steps = 0.0, []
    rate = start
    while rate <= highest:
        s = measure(rate)
        steps.append(s)
        if not s.sustained(ceiling_ms):
            break
        best = rate
        rate += step
    return best, steps


# -- counts per candidate -------------------------------------------------------------------

def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """``after - before`` key by key (a key missing before counts from 0)."""
    return {k: after[k] - before.get(k, 0) for k in after}


def per_candidate(totals: dict[str, float | None], candidates: int) -> dict[str, float | None]:
    """Each total ÷ candidates, to 0.1 (None stays None: not measured)."""
    return {k: None if v is None else round(v / candidates, 1) for k, v in totals.items()}


def prometheus_sum(text: str, name: str, where: dict[str, str] | None = None) -> float:
    """The sum of the samples of ``name`` in a Prometheus exposition whose labels include
    ``where`` (``kaowu_entrypoint_calls_total``, ``{"kind": "rpc"}``)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, labels = head.partition("{")
        if metric != name:
            continue
        got = dict(p.split("=", 1) for p in _label_pairs(labels.rstrip("}")))
        if all(got.get(k) == f'"{v}"' for k, v in (where or {}).items()):
            total += float(value)
    return total


def _label_pairs(labels: str) -> list[str]:
    """``a="x",b="y,z"`` → ``['a="x"', 'b="y,z"']`` (commas inside quotes kept)."""
    out, cur, quoted = [], "", False
    for ch in labels:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out
