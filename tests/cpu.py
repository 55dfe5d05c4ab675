"""Where a test run's CPU went, machine-wide: ``tests/run.py`` prints it under its summary.

The suite is CPU-bound on two cores, so its time is the CPU of everything it makes busy:
the shards, the browser, the broker, the database, the processes the tests start. This
reads ``/proc`` (Linux; elsewhere it reports nothing): the machine's busy and idle
core-seconds from ``/proc/stat`` between ``start`` and ``stop``, and every second each
process's CPU from ``/proc/<pid>/stat``, summed by kind (``kind_of``). A process that lived
between two samples is not seen (a ``rabbitmqctl``, a ``psql``): its CPU is in the busy
total and in no kind ("unseen"). Costs ~4 ms of CPU a sample."""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")
KINDS = ("pytest", "Chromium", "RabbitMQ", "PostgreSQL", "other")


def kind_of(comm: str, cmdline: str) -> str:
    """The kind of a process by its name (``comm``) and command line."""
    if comm.startswith(("chrom", "headless")) or "chromium" in cmdline[:80]:
        return "Chromium"
    if comm.startswith(("beam", "erl_child", "epmd", "inet_gethost")):
        return "RabbitMQ"  # its node and each rabbitmqctl's VM: Erlang here is RabbitMQ's
    if comm.startswith("postgres"):
        return "PostgreSQL"
    if " -m pytest" in cmdline or "/pytest " in cmdline:
        return "pytest"
    return "other"


class MachineCpu(threading.Thread):
    def __init__(self, interval: float = 1.0, proc: Path = PROC):
        super().__init__(daemon=True, name="machine-cpu")
        self.interval, self.proc = interval, proc
        self.ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.done = threading.Event()
        self.first: tuple[float, float] | None = None  # (busy, idle) core-s at start
        self.last: tuple[float, float] | None = None
        self.before: dict[tuple[int, int], float] = {}  # CPU of those alive at start
        self.seen: dict[tuple[int, int], list] = {}  # (pid, start time) -> [kind, CPU]

    def machine(self) -> tuple[float, float] | None:
        """(busy, idle) core-seconds since boot."""
        try:
            fields = (self.proc / "stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return None
        user, nice, system, idle, iowait, irq, softirq, steal = (int(f) for f in fields[:8])
        return ((user + nice + system + irq + softirq + steal) / self.ticks,
                (idle + iowait) / self.ticks)

    def processes(self):
        """(pid, start time, CPU s) of every process now."""
        for entry in os.scandir(self.proc):
            if not entry.name.isdigit():
                continue
            try:
                stat = (self.proc / entry.name / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            rest = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            yield int(entry.name), int(rest[19]), (int(rest[11]) + int(rest[12])) / self.ticks

    def _kind(self, pid: int) -> str | None:
        try:
            comm = (self.proc / str(pid) / "comm").read_text().strip()
            cmdline = (self.proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            return None
        return kind_of(comm, cmdline.decode(errors="replace"))

    def sample(self):
        for pid, started, cpu in self.processes():
            key = (pid, started)
            if key not in self.seen:
                kind = self._kind(pid)
                if kind is None:
                    continue
                self.seen[key] = [kind, cpu]
            self.seen[key][1] = cpu

    def start(self):
        self.first = self.machine()
        if self.first is None:
            return  # no /proc: nothing to report
        for pid, started, cpu in self.processes():
            self.before[(pid, started)] = cpu
        super().start()

    def run(self):
        while not self.done.wait(self.interval):
            self.sample()

    def stop(self):
        self.done.set()
        if self.is_alive():
            self.join()
            self.sample()
            self.last = self.machine()

    def by_kind(self) -> dict[str, float]:
        out = dict.fromkeys(KINDS, 0.0)
        for key, (kind, cpu) in self.seen.items():
            out[kind] += cpu - self.before.get(key, 0.0)
        return out

    def report(self) -> str:
        if self.first is None or self.last is None:
            return ""
        busy, idle = (b - a for a, b in zip(self.first, self.last, strict=True))
        kinds = self.by_kind()
        unseen = max(busy - sum(kinds.values()), 0.0)
        share = 100 * busy / (busy + idle) if busy + idle else 0.0
        said = ", ".join(f"{k} {v:.0f}" for k, v in kinds.items())
        return (f"  the machine: busy {busy:.0f} of {busy + idle:.0f} core-seconds ({share:.0f} %); "
                f"by process (core-s): {said}, unseen {unseen:.0f}")
