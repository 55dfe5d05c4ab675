"""tests/cpu.py: the machine's CPU over a test run by kind of process, read from a /proc of
files made here (the runner's own test reads the real one: tests/unit/test_test_runner.py)."""

import pytest

from tests.cpu import MachineCpu, kind_of


@pytest.mark.parametrize("comm,cmdline,kind", [
    ("python", "/work/.venv/bin/python -m pytest -q -p tests.claim tests", "pytest"),
    ("pytest", "/work/.venv/bin/python /work/.venv/bin/pytest tests/unit", "pytest"),
    ("chromium", "/usr/lib/chromium/chromium --type=renderer --lang=zh-CN", "Chromium"),
    ("chromedriver", "/usr/bin/chromedriver --port=4444", "Chromium"),
    ("headless_shell", "headless_shell --type=gpu-process", "Chromium"),
    ("beam.smp", "/usr/lib/erlang/erts-13.1.5/bin/beam.smp -W w -- -s rabbit boot", "RabbitMQ"),
    ("erl_child_setup", "erl_child_setup 65536", "RabbitMQ"),
    ("epmd", "/usr/lib/erlang/erts-13.1.5/bin/epmd -daemon", "RabbitMQ"),
    ("postgres", "postgres: 15/main: postgres kaowu_t1 127.0.0.1(5050) idle", "PostgreSQL"),
    ("python", "/work/.venv/bin/python /work/.venv/bin/nameko run --config x.yaml", "other"),
    ("python", "/work/.venv/bin/python -m tests.run", "other"),
    ("redis-server", "/usr/bin/redis-server 127.0.0.1:6379", "other"),
])
def test_each_process_has_its_kind(comm, cmdline, kind):
    assert kind_of(comm, cmdline) == kind


def test_the_kernel_s_threads_are_a_kind_of_their_own():
    assert kind_of("kworker/1:2-events", "", kernel=True) == "kernel"
    assert kind_of("python", "", kernel=False) == "other"  # a process ended, not yet reaped


class FakeProc:
    """A /proc of files: the machine's counters and some processes, CPU in seconds."""

    def __init__(self, root, ticks):
        self.root, self.ticks = root, ticks
        root.mkdir(exist_ok=True)

    def machine(self, busy: float, idle: float):
        # user nice system idle iowait irq softirq steal guest guest_nice
        t = self.ticks
        fields = [busy * t * 0.7, 0, busy * t * 0.3, idle * t * 0.9, idle * t * 0.1, 0, 0, 0,
                  0, 0]
        (self.root / "stat").write_text("cpu  " + " ".join(str(round(f)) for f in fields)
                                        + "\ncpu0 1 2 3 4 5 6 7 8 9 10\n")

    def process(self, pid: int, comm: str, cmdline: str, cpu: float, started: int,
                parent: int = 1):
        folder = self.root / str(pid)
        folder.mkdir(exist_ok=True)
        rest = ["S", str(parent)] + ["0"] * 39
        rest[11], rest[12] = str(round(cpu * self.ticks * 0.8)), str(round(cpu * self.ticks * 0.2))
        rest[19] = str(started)
        # a name with a space and a parenthesis, as comm may have
        (folder / "stat").write_text(f"{pid} ({comm} (x)) " + " ".join(rest) + "\n")
        (folder / "comm").write_text(comm + "\n")
        # a kernel thread's is empty; a process's arguments each end in a NUL
        (folder / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in cmdline.split()))

    def gone(self, pid: int):
        for f in (self.root / str(pid)).iterdir():
            f.unlink()
        (self.root / str(pid)).rmdir()


def test_the_run_s_cpu_by_kind_counts_only_what_was_used_during_it(tmp_path):
    proc = FakeProc(tmp_path / "proc", ticks=100)
    proc.machine(busy=1000, idle=5000)
    proc.process(10, "beam.smp", "beam.smp -s rabbit boot", cpu=400, started=5)
    proc.process(11, "postgres", "postgres: checkpointer", cpu=50, started=6)
    proc.process(12, "python", "python -m pytest -q", cpu=1.5, started=900)  # a shard, begun
    proc.process(13, "redis-server", "redis-server", cpu=7, started=3)  # dies during the run
    machine = MachineCpu(interval=3600, proc=proc.root)
    machine.ticks = 100
    machine.start()

    proc.machine(busy=1100, idle=5030)  # 100 busy, 30 idle
    proc.process(10, "beam.smp", "beam.smp -s rabbit boot", cpu=412, started=5)
    proc.process(11, "postgres", "postgres: checkpointer", cpu=50, started=6)
    proc.process(12, "python", "python -m pytest -q", cpu=61.5, started=900)
    proc.gone(13)
    proc.process(20, "chromium", "/usr/lib/chromium/chromium --headless=new", cpu=20,
                 started=1000)  # born during the run: all of it counts
    # pid 11's number taken by another process: its CPU is its own, not 50 less
    proc.gone(11)
    proc.process(11, "python", "python nameko run", cpu=3, started=1200)
    proc.process(30, "kworker/0:1", "", cpu=4, started=1100, parent=2)  # the kernel's own
    machine.stop()

    assert machine.by_kind() == pytest.approx(
        {"pytest": 60, "Chromium": 20, "RabbitMQ": 12, "PostgreSQL": 0, "kernel": 4, "other": 3})
    assert machine.report() == (
        "  the machine: busy 100 of 130 core-seconds (77 %); by process (core-s): pytest 60, "
        "Chromium 20, RabbitMQ 12, PostgreSQL 0, kernel 4, other 3, unseen 1")


def test_without_proc_there_is_nothing_to_report(tmp_path):
    machine = MachineCpu(proc=tmp_path / "no-proc")
    machine.start()
    machine.stop()
    assert not machine.is_alive()
    assert machine.report() == ""
