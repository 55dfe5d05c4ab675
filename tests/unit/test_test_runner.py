"""tests/run.py, make test's parallel runner: shards that take the files of one queue as
they go (longest first, by recorded durations), the serial tests after the others, one summary whose exit status says whether anything failed,
and Ctrl-C stopping every shard with its children."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests import run

ROOT = Path(__file__).resolve().parents[2]


def test_the_queue_is_longest_first_and_new_files_count_the_default():
    known = {"a": 60.0, "b": 4.0, "c": 30.0}
    assert run.queue([*known, "new"], known) == ["a", "c", "new", "b"]  # new: 5 s


def test_each_shard_collects_every_file_from_another_place_in_the_queue():
    queue = [f"tests/unit/test_{c}.py" for c in "abcdefghij"]
    orders = run.collection_orders(queue, 4)
    assert all(sorted(order) == sorted(queue) for order in orders)
    assert [order[0] for order in orders] == [queue[0], queue[2], queue[5], queue[7]]
    assert all(order == order[:1] + queue[queue.index(order[0]) + 1:] + queue[:queue.index(order[0])]
               for order in orders)  # the queue's order, from there round


def test_serial_tests_are_found_by_their_files_text(tmp_path):
    """For a test that must restart the machine's servers (those that restart a server
    restart one of their own now: tests/servers.py)."""
    files = {"all.py": "import pytest\npytestmark = [pytest.mark.integration, pytest.mark.serial]\n",
             "one.py": "import pytest\n@pytest.mark.serial\ndef test_a():\n    pass\n",
             "said.py": '"""``@pytest.mark.serial`` in a string is no mark."""\n'}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    sharded, serial = run.split([str(tmp_path / name) for name in files])
    assert [Path(f).name for f in serial] == ["all.py", "one.py"]
    # a file whose every test is serial takes no shard's time; one with others too does
    assert [Path(f).name for f in sharded] == ["one.py", "said.py"]


def test_every_test_file_has_a_recorded_duration():
    """Balancing needs them: a new file counts DEFAULT_SECONDS until `python -m tests.run
    --record` measures it (then commit tests/durations.json)."""
    recorded = run.durations()
    missing = [f for f in run.test_files([]) if f not in recorded]
    assert len(missing) <= 5, f"record the durations of {missing}"


# the shards of these runs need none of the plugins the real tests use: without them a
# pytest starts in a tenth of the CPU (nameko's imports eventlet, hypothesis's itself)
BARE = ["-p", "no:pytest_nameko", "-p", "no:anyio", "-p", "no:hypothesispytest"]


def _runner(tmp_path, *args):
    return [sys.executable, "-m", "tests.run", "--out", str(tmp_path / "out"), *args, "--", *BARE]


# the runner's tests make no vhosts: a broker of their "own" spares the clean-up after an
# interrupted run a rabbitmqctl (an Erlang VM, a second of CPU)
ENV = {**os.environ, "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/"}


def test_a_run_sums_up_the_shards_and_fails_when_a_test_fails(tmp_path):
    order = tmp_path / "order"
    (tmp_path / "test_good.py").write_text(
        "def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    (tmp_path / "test_bad.py").write_text(
        "def test_breaks():\n    assert 1 + 1 == 3, 'arithmetic is off'\n")
    (tmp_path / "test_alone.py").write_text(
        "import pathlib, pytest\n"
        "def test_parallel():\n"
        f"    pathlib.Path({str(order)!r}).open('a').write('parallel\\n')\n"
        "@pytest.mark.serial\n"
        "def test_last():\n"
        f"    pathlib.Path({str(order)!r}).open('a').write('serial\\n')\n")
    (tmp_path / "test_busy.py").write_text(
        "import subprocess, sys, time\n"
        "def test_spins():\n"
        "    end = time.process_time() + 0.5\n"
        "    while time.process_time() < end:\n"
        "        pass\n"
        "def test_its_child_spins():  # a CLI run, a browser: counted once waited for\n"
        "    subprocess.run([sys.executable, '-c', 'import time\\n'\n"
        "                    'end = time.process_time() + 0.5\\n'\n"
        "                    'while time.process_time() < end: pass'], check=True)\n")
    done = subprocess.run(_runner(tmp_path, "-n", "2", str(tmp_path)), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "arithmetic is off" in out  # the failure's own text, in the summary
    assert "test_breaks" in out
    assert "total: 6 passed, 1 failed, 0 errors" in out
    assert "serial: 1 passed" in out
    assert out.rstrip().endswith("FAILED")
    assert order.read_text().splitlines()[-1] == "serial"  # after every parallel test
    # where the CPU went, per file: the busy one first, with what its child spun
    listed = [line.split() for line in out.split("most CPU")[1].splitlines()[1:5]]
    assert listed[0][0].endswith("test_busy.py") and float(listed[0][1]) >= 1.0, listed
    assert all(float(cpu) < 0.5 for _, cpu, _ in listed[1:]), listed
    # and machine-wide, by kind of process: the shards' own CPU, each at least its start
    machine = next(line for line in out.splitlines() if line.startswith("  the machine: busy"))
    assert float(machine.split(" pytest ")[1].split(",")[0]) >= 1, machine


def test_a_shard_takes_the_next_file_no_other_has_taken(tmp_path):
    """A long file first in the queue: the other shard runs every other file meanwhile (the
    long test waits for them all; split in advance, it would wait for its own shard's)."""
    log = tmp_path / "log"
    quick = [f"test_quick_{i}.py" for i in range(6)]
    (tmp_path / "test_a_long.py").write_text(
        "import os, pathlib, time\n"
        "def test_long():\n"
        f"    log = pathlib.Path({str(log)!r})\n"
        "    deadline = time.monotonic() + 60\n"
        "    while time.monotonic() < deadline and (not log.exists()\n"
        "                                           or len(log.read_text().splitlines()) < 6):\n"
        "        time.sleep(0.1)\n"
        "    log.open('a').write(f'long {os.getpid()}\\n')\n")
    for name in quick:
        (tmp_path / name).write_text(
            "import os, pathlib\n"
            "def test_quick():\n"
            f"    pathlib.Path({str(log)!r}).open('a').write(f'quick {{os.getpid()}}\\n')\n")
    done = subprocess.run(_runner(tmp_path, "-n", "2", str(tmp_path)), cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "total: 7 passed" in done.stdout
    ran = [line.split() for line in log.read_text().splitlines()]
    assert [kind for kind, _ in ran] == ["quick"] * 6 + ["long"]  # each once, the long last
    assert len({pid for kind, pid in ran if kind == "quick"}) == 1
    assert ran[-1][1] != ran[0][1]  # the long one in the other shard
    assert sorted(p.name for p in (tmp_path / "out" / "claims").iterdir()) == \
        [f"{i:04d}" for i in range(7)]


def test_a_run_that_passes_exits_0(tmp_path):
    (tmp_path / "test_good.py").write_text("def test_one():\n    pass\n")
    done = subprocess.run(_runner(tmp_path, str(tmp_path)), cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("OK")


def test_ctrl_c_stops_every_shard_and_what_it_started(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    for i in range(2):
        (tmp_path / f"test_waits_{i}.py").write_text(
            "import os, pathlib, subprocess, time\n"
            "def test_waits():\n"
            "    child = subprocess.Popen(['sleep', '300'])  # a browser, say\n"
            # whole or not there: the test reads the folder while the shards write to it
            f"    done = pathlib.Path({str(tmp_path)!r}, str(os.getpid()))\n"
            "    done.write_text(str(child.pid))\n"
            f"    done.rename(pathlib.Path({str(pids)!r}, done.name))\n"
            "    time.sleep(300)\n")
    said = tmp_path / "runner.out"  # a file, not a pipe: read after a wait with a deadline
    with open(said, "w") as out:
        # Ctrl-C as at a terminal: a run started in the background by a shell without job
        # control inherits SIGINT ignored, and Python then keeps ignoring it
        runner = subprocess.Popen(_runner(tmp_path, "-n", "2", str(tmp_path)), cwd=ROOT,
                                  env={**ENV, "PYTHONUNBUFFERED": "1"}, stdout=out,
                                  stderr=subprocess.STDOUT, preexec_fn=_sigint_default)
    deadline = time.monotonic() + 90
    while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    started = [int(p.name) for p in pids.iterdir()] + [int(p.read_text()) for p in pids.iterdir()]
    assert len(started) == 4, "the shards did not start their tests"
    runner.send_signal(signal.SIGINT)
    try:
        runner.wait(run.GRACE + 60)
    except subprocess.TimeoutExpired:
        runner.kill()
        for pid in started[:2]:  # the shards, each a process group with its test's child
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        raise AssertionError(
            f"the runner did not end {run.GRACE + 60:.0f} s after Ctrl-C; it said:\n"
            f"{said.read_text()}\nits shards' logs:\n" + "\n".join(
                f"{p.name}:\n{p.read_text(errors='replace')[-3000:]}"
                for p in sorted((tmp_path / "out").glob("shard-*.log")))) from None
    out = said.read_text()
    assert runner.returncode == 130, out
    assert "INTERRUPTED" in out
    for pid in started:  # the shards and the processes their tests started
        assert not _alive(pid), f"{pid} still runs"


def _sigint_default():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie no one has reaped yet is gone too
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()
