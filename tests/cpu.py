"""Where a test run's CPU went, machine-wide: ``tests/run.py`` prints it under its summary.

The suite is CPU-bound on two cores, so its time is the CPU of everything it makes busy:
the shards, the browser, the broker, the database, the processes the tests start. This
reads ``/proc`` (Linux; elsewhere it reports nothing): the machine's busy and idle
core-seconds from ``/proc/stat`` between ``start`` and ``stop``, and every second each
process's CPU from ``/proc/<pid>/stat``, summed by kind (``kind_of``; the reading and the
sums are the season benchmark's own: ``bench/accounting.py``). A process that lived
between two samples is not seen (a ``rabbitmqctl``, a ``psql``): its CPU is in the busy
total and in no kind ("unseen"). The kernel's own threads (``kworker``, ``jbd2``, ...: the
disk writes behind the database's and SQLite's syncs) are a kind of their own. Costs ~4 ms
of CPU a sample."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from bench.accounting import TICK, CpuAccount, parent, parse_stat, started

PROC = Path("/proc")
KINDS = ("pytest", "Chromium", "RabbitMQ", "PostgreSQL", "kernel", "other")


def kind_of(comm: str, cmdline: str, kernel: bool = False) -> str:
    """The kind of a process by its name (``comm``) and command line; ``kernel``: one of the
    kernel's own threads (kthreadd's children)."""
    if comm.startswith(("chrom", "headless")) or "chromium" in cmdline[:80]:
        return "Chromium"
    if comm.startswith(("beam", "erl_child", "epmd", "inet_gethost")):
        return "RabbitMQ"  # its node and each rabbitmqctl's VM: Erlang here is RabbitMQ's
    if comm.startswith("postgres"):
        return "PostgreSQL"
    if " -m pytest" in cmdline or "/pytest " in cmdline:
        return "pytest"
    if kernel:
        return "kernel"  # writeback, the file system's journal, ...
    return "other"


class MachineCpu(threading.Thread):
    def __init__(self, interval: float = 1.0, proc: Path = PROC):
        super().__init__(daemon=True, name="machine-cpu")
        self.interval, self.proc = interval, proc
        self.ticks = TICK
        self.done = threading.Event()
        self.first: tuple[float, float] | None = None  # (busy, idle) core-s at start
        self.last: tuple[float, float] | None = None
        # by (pid, start time): a pid given to a later process is another process
        self.account = CpuAccount()
        self.kinds: dict[tuple[int, int], str] = {}

    def machine(self) -> tuple[float, float] | None:
        """(busy, idle) core-seconds since boot."""
        try:
            fields = (self.proc / "stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return None
        user, nice, system, idle, iowait, irq, softirq, steal = (int(f) for f in fields[:8])
        return ((user + nice + system + irq + softirq + steal) / self.ticks,
                (idle + iowait) / self.ticks)

    def processes(self) -> dict[str, dict[tuple[int, int], float]]:
        """Every process now, by kind: ``{kind: {(pid, start time): CPU s}}``."""
        out: dict[str, dict[tuple[int, int], float]] = {}
        for entry in os.scandir(self.proc):
            if not entry.name.isdigit():
                continue
            try:
                stat = (self.proc / entry.name / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            key = (int(entry.name), started(stat))
            if key not in self.kinds and (kind := self._kind(key[0], stat)) is not None:
                self.kinds[key] = kind
            if key in self.kinds:
                out.setdefault(self.kinds[key], {})[key] = parse_stat(stat, self.ticks)[1]
        return out

    def _kind(self, pid: int, stat: str) -> str | None:
        try:
            folder = self.proc / str(pid)
            comm = (folder / "comm").read_text().strip()
            cmdline = (folder / "cmdline").read_bytes().rstrip(b"\0").replace(b"\0", b" ")
        except OSError:
            return None
        kernel = pid == 2 or parent(stat) == 2  # kthreadd and its children
        return kind_of(comm, cmdline.decode(errors="replace"), kernel=kernel)

    def sample(self):
        for kind, samples in self.processes().items():
            self.account.add(kind, samples)

    def start(self):
        self.first = self.machine()
        if self.first is None:
            return  # no /proc: nothing to report
        self.account.start(self.processes())
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
        return {**dict.fromkeys(KINDS, 0.0), **self.account.seconds()}

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
