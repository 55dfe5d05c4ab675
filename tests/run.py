"""The test suite in parallel shards: ``make test``'s pytest part.

    python -m tests.run                  # every test file, not the slow tests, 4 shards
    python -m tests.run -n 2 tests/integration          # some folders or files, 2 shards
    python -m tests.run --record         # also write the files' durations to tests/durations.json
    python -m tests.run -- -x -k flow    # arguments after -- go to every pytest

The shards share one queue of the test files, longest first by their recorded durations
(``tests/durations.json``: wall seconds per file as a run of the shards measured them,
``--record``, under each other's load; a file not there counts as ``DEFAULT_SECONDS``), and
each shard takes the next file no other has taken (``tests/claim.py``), so they end within
about a file of each other. Each shard is a ``pytest`` process of its own (not
pytest-xdist: the tests monkey-patch with eventlet first, which execnet's threads do not
survive), with a run id of its own, so its vhosts and databases (``tests/conftest.py``)
never meet another shard's. The tests marked ``serial`` (for a test that must restart the
machine's broker or database; none is today: the ones that restart a server restart their
own, ``tests/servers.py``) run after the shards, alone. Then one summary: per shard the
counts and the time, the failures' tracebacks, the files that took the most CPU (each shard
measures it per file beside the wall seconds: tests/filetimes.py), the machine's busy CPU
by kind of process (``tests/cpu.py``), where the whole logs are (``var/test-runs/``); exit
status 1 if any test failed or a shard broke.

Compiled once: the project's modules are compiled before the shards start, and the shards
(with the services and tools the tests start as processes) read and write ``__pycache__``
even where the environment says ``PYTHONDONTWRITEBYTECODE`` (this machine's does): otherwise
every process compiles the project again, and pytest rewrites every test module's asserts
again (4 s of CPU per shard at start, as much again in the processes the tests start).

Ctrl-C (or SIGTERM) stops every shard (each in a process group of its own, with its
browsers) by SIGINT, so its fixtures still drop its databases and vhosts; SIGKILL after
``GRACE`` seconds.

Peak connections: while the shards run, the number of PostgreSQL connections to this
run's databases (and to the whole server) is sampled every second and reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.cpu import MachineCpu

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
DURATIONS = TESTS / "durations.json"
OUT = ROOT / "var" / "test-runs"  # logs, JUnit reports and timings of the last run
DEFAULT_SHARDS = 4
DEFAULT_SECONDS = 5.0
GRACE = 20.0
MARK = "not slow"
# a file that marks tests serial says so in its text (no collection needed to find them)
SERIAL_TEXT = re.compile(r"^\s*(@pytest\.mark\.serial\b|pytestmark\b.*\bpytest\.mark\.serial\b)",
                         re.MULTILINE)
# ... and one whose every test is serial, by its module's mark, has no part in the shards
ALL_SERIAL = re.compile(r"^pytestmark\b.*\bpytest\.mark\.serial\b", re.MULTILINE)


def test_files(paths: list[str]) -> list[str]:
    """The test files under ``paths`` (files or folders, relative to the repository)."""
    found = []
    for p in paths or ["tests"]:
        path = (ROOT / p).resolve()
        if path.is_file():
            found.append(path)
        else:
            found.extend(sorted(path.rglob("test_*.py")))
    return sorted({str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f)
                   for f in found})


def split(files: list[str]) -> tuple[list[str], list[str]]:
    """(the files with tests for the shards, the files with serial tests)."""
    text = {f: (ROOT / f).read_text(encoding="utf-8") for f in files}
    return ([f for f in files if not ALL_SERIAL.search(text[f])],
            [f for f in files if SERIAL_TEXT.search(text[f])])


def durations() -> dict[str, float]:
    try:
        return json.loads(DURATIONS.read_text())
    except FileNotFoundError:
        return {}


def collection_orders(files: list[str], n: int) -> list[list[str]]:
    """The order each of ``n`` shards collects ``files`` in (the queue from another place
    each; the claims keep the queue's order): after a fresh checkout, pytest rewrites a test
    module's asserts for the first shard to import it and the others read its cached
    rewrite, instead of every shard rewriting every module at once."""
    return [files[i * len(files) // n:] + files[:i * len(files) // n] for i in range(n)]


def queue(files: list[str], known: dict[str, float]) -> list[str]:
    """Longest first (a long file started last would keep its shard running alone)."""
    return sorted(files, key=lambda f: (-known.get(f, DEFAULT_SECONDS), f))


class Shard:
    def __init__(self, name: str, run_id: str, files: list[str], mark: str, extra: list[str],
                 out: Path = OUT, queued: int = 0):
        """``queued``: how many shards share ``files``, the run's queue (``out/queue.txt``,
        ``out/claims/``): this shard runs the files it claims."""
        self.name, self.run_id, self.files, self.queued = name, run_id, files, queued
        self.claims = out / "claims"
        self.xml = out / f"{name}.xml"
        self.log = out / f"{name}.log"
        self.times = out / f"{name}.times.json"
        # schemathesis is a library here (test_gateway_openapi), not a pytest plugin: its
        # plugin costs every shard a second of CPU to import
        self.cmd = [sys.executable, "-m", "pytest", "-q", "-p", "tests.filetimes",
                    "-p", "tests.claim", "-p", "no:schemathesis", "-m", mark,
                    "--tb=short", f"--junitxml={self.xml}", "-o", "junit_family=xunit2",
                    *extra, *files]
        self.proc: subprocess.Popen | None = None
        self.started = self.ended = 0.0
        self.status: int | None = None
        self.cpu = 0.0

    def start(self):
        self.xml.unlink(missing_ok=True)
        self.times.unlink(missing_ok=True)
        env = {**os.environ, "KAOWU_TEST_RUN_ID": self.run_id, "KAOWU_TEST_TIMES": str(self.times),
               "KAOWU_TEST_SHARD": self.name, "PYTHONUNBUFFERED": "1"}
        for key in ("KAOWU_TEST_QUEUE", "KAOWU_TEST_SHARDS"):  # a runner run by a test: not
            env.pop(key, None)  # its shard's
        if self.queued:
            env.update(KAOWU_TEST_QUEUE=str(self.claims.parent / "queue.txt"),
                       KAOWU_TEST_CLAIMS=str(self.claims), KAOWU_TEST_SHARDS=str(self.queued))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        with open(self.log, "wb") as log:
            # a session (process group) of its own: Ctrl-C reaches the shard only through
            # stop(), and stop() reaches its browsers too
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.started = time.monotonic()

    def reaped(self, status: int, usage):
        self.status = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.status
        self.ended = time.monotonic()
        self.cpu = usage.ru_utime + usage.ru_stime

    def signal(self, sig):
        if self.proc and self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def results(self):
        """(counts, failures): counts by outcome; failures as (test, text)."""
        counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
        failures = []
        try:
            root = ET.parse(self.xml).getroot()
        except (FileNotFoundError, ET.ParseError):
            return None, []
        for case in root.iter("testcase"):
            test = f"{_file_of(case.get('classname', ''))}::{case.get('name')}"
            outcome = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
            if outcome is None:
                counts["passed"] += 1
            else:
                counts["failed" if outcome.tag == "failure" else outcome.tag] += 1
                if outcome.tag != "skipped":
                    failures.append((f"{test} ({outcome.tag})",
                                     outcome.text or outcome.get("message", "")))
        return counts, failures

    def ran(self) -> int:
        """How many files the shard ran (those it claimed, when queued)."""
        if not self.queued:
            return len(self.files)
        return sum(1 for claim in self.claims.glob(f"*/{self.name}"))

    def file_seconds(self, kind: str = "wall") -> dict[str, float]:
        """Seconds per test file as the shard measured them (tests/filetimes.py): ``wall``,
        or ``cpu`` (the shard's process with the children it waited for)."""
        try:
            return json.loads(self.times.read_text()).get(kind, {})
        except (FileNotFoundError, ValueError, AttributeError):
            return {}


class PgSampler(threading.Thread):
    """Every second: connections to this run's databases, and to the whole server (over one
    connection of its own, not counted: a ``psql`` a second cost 1-2 % of the run's CPU)."""

    def __init__(self, prefix: str):
        super().__init__(daemon=True)
        self.prefix, self.peak, self.peak_all = prefix, 0, 0
        self.done = threading.Event()

    def run(self):
        if os.environ.get("DATABASE_URL"):
            return
        import psycopg2

        query = (f"SELECT count(*) FILTER (WHERE datname LIKE 'kaowu\\_t{self.prefix}%'), "
                 "count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                 "AND pid <> pg_backend_pid()")
        conn = None
        while not self.done.wait(1.0):
            try:
                if conn is None or conn.closed:
                    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres",
                                            connect_timeout=5)
                    conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(query)
                    ours, every = cur.fetchone()
            except Exception:
                if conn is not None:
                    conn.close()  # a broken one: the next poll connects anew
                continue
            self.peak, self.peak_all = max(self.peak, ours), max(self.peak_all, every)
        if conn is not None:
            conn.close()


COMPILED = ("bench", "cli", "faults", "services", "shared", "tests")


def compile_project():
    """The project's modules compiled once, here, not by each shard (``__pycache__`` is
    ignored by git)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                    *[str(ROOT / d) for d in COMPILED if (ROOT / d).is_dir()]],
                   cwd=ROOT, check=False, stdout=subprocess.DEVNULL)


def run_all(group: list[Shard]) -> bool:
    """Start every shard of ``group``, wait for all; False when interrupted."""
    for s in group:
        s.start()
        print(f"  {s.name}: log {_rel(s.log)}", flush=True)
    running = list(group)
    try:
        while running:
            time.sleep(0.5)
            for s in list(running):
                # the shard's own pid (not any other child of the runner's); the usage
                # is the shard's with its children (browsers) it waited for
                pid, status, usage = os.wait4(s.proc.pid, os.WNOHANG)
                if pid:
                    running.remove(s)
                    s.reaped(status, usage)
                    counts, _ = s.results()
                    said = ", ".join(f"{v} {k}" for k, v in (counts or {}).items() if v)
                    print(f"  {s.name} done in {s.ended - s.started:.0f} s: {s.ran()} file(s), "
                          f"{said or 'no results'} (exit {s.status})", flush=True)
    except KeyboardInterrupt:
        stop(running)
        return False
    return True


def stop(shards_left: list[Shard]):
    print(f"\ninterrupted: stopping {len(shards_left)} shard(s) (their fixtures drop their "
          "databases and vhosts) ...", flush=True)
    for s in shards_left:
        s.signal(signal.SIGINT)
    deadline = time.monotonic() + GRACE
    for s in shards_left:
        try:
            s.proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            s.signal(signal.SIGKILL)
            s.proc.wait()
        s.status = s.proc.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--shards", type=int,
                        default=int(os.environ.get("TEST_SHARDS", DEFAULT_SHARDS)),
                        help=f"parallel pytest processes (default {DEFAULT_SHARDS}, or TEST_SHARDS)")
    parser.add_argument("-m", "--mark", default=MARK, help=f'pytest -m expression (default "{MARK}")')
    parser.add_argument("--record", action="store_true",
                        help="write the files' durations measured now to tests/durations.json")
    parser.add_argument("--list", action="store_true", help="print the shards and stop")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="where the logs and reports go (default var/test-runs)")
    parser.add_argument("paths", nargs="*", help="test files or folders (default: tests)")
    argv = sys.argv[1:] if argv is None else argv
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    args = parser.parse_args(argv)

    files = test_files(args.paths)
    sharded, serial = split(files)
    known = durations()
    order = queue(sharded, known)
    if args.list:
        for f in order:
            print(f"{known.get(f, DEFAULT_SECONDS):7.1f} s recorded  {f}")
        print(f"serial, after: {' '.join(serial) or '-'}")
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.out / "claims", ignore_errors=True)
    (args.out / "claims").mkdir()
    (args.out / "queue.txt").write_text("".join(f"{f}\n" for f in order))
    base = uuid.uuid4().hex[:6]  # the shards' run ids: base + two digits, all of one length
    n = max(1, min(args.shards, len(order)))
    parallel = [Shard(f"shard-{i}", f"{base}{i:02d}", files, f"({args.mark}) and not serial",
                      extra, args.out, queued=n)
                for i, files in enumerate(collection_orders(order, n))] if order else []
    alone = [Shard("serial", f"{base}99", serial, f"({args.mark}) and serial", extra, args.out)] \
        if serial else []
    sampler, machine = PgSampler(base), MachineCpu()
    began = time.monotonic()
    print(f"pytest in {len(parallel)} shard(s), then {len(serial)} serial file(s); "
          f"-m \"{args.mark}\"", flush=True)

    previous = signal.signal(signal.SIGTERM, _interrupt)
    machine.start()
    compile_project()
    sampler.start()
    finished = False
    try:
        finished = run_all(parallel)
        sampler.done.set()
        if finished and alone:
            print("serial tests, alone:", flush=True)
            finished = run_all(alone)
    finally:
        sampler.done.set()
        machine.stop()
        signal.signal(signal.SIGTERM, previous)
        # a shard that ended by itself dropped its own; one stopped or crashed may not have
        if not finished or any(s.status not in (0, 1, 5) for s in parallel + alone if s.proc):
            leftovers(base)
    wall = time.monotonic() - began
    return summary(parallel + alone, wall, sampler, finished, args.record, known, machine)


def _interrupt(*_):
    raise KeyboardInterrupt  # SIGTERM: as Ctrl-C


def leftovers(base: str):
    """Drop what a shard stopped (or killed) before its tear-down left: this run's
    databases and vhosts (on the machine's own servers only, as tests/conftest.py makes
    them there)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from shared.config import LOCAL_POSTGRES

    url = os.environ.get("DATABASE_URL") or LOCAL_POSTGRES
    if "{" not in url:
        try:
            admin = create_engine(make_url(url).set(database="postgres"),
                                  isolation_level="AUTOCOMMIT", poolclass=NullPool)
            with admin.connect() as c:
                for db in c.execute(text("SELECT datname FROM pg_database WHERE datname LIKE "
                                         f"'kaowu\\_t{base}%'")).scalars().all():
                    c.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            admin.dispose()
        except Exception as exc:
            print(f"  could not drop this run's databases: {exc}", file=sys.stderr)
    from tests.servers import stop_leftovers  # a killed shard's servers of its own

    stop_leftovers(base)
    ctl = shutil.which("rabbitmqctl")
    if ctl and not os.environ.get("AMQP_URI"):
        listed = subprocess.run([ctl, "-q", "list_vhosts", "name"], capture_output=True,
                                text=True, check=False).stdout.split()
        for vhost in listed:
            if vhost.startswith(f"kaowu_test_{base}"):
                subprocess.run([ctl, "-q", "delete_vhost", vhost], check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summary(group: list[Shard], wall: float, sampler: PgSampler, finished: bool, record: bool,
            known: dict[str, float], machine: MachineCpu) -> int:
    failed = False
    lines, failures = [], []
    totals = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for s in group:
        if s.proc is None:
            continue
        counts, fails = s.results()
        if counts is None:  # no report: the process died or was stopped before its end
            failed = True
            lines.append(f"  {s.name}: NO RESULTS (exit {s.status}); see {_rel(s.log)}")
            failures.append((s.name, _tail(s.log)))
            continue
        for k, v in counts.items():
            totals[k] += v
        # 5: nothing collected (a shard of files whose tests are all deselected)
        bad = bool(fails) or s.status not in (0, 5)
        failed |= bad
        lines.append(f"  {s.name}: {counts['passed']} passed, {counts['failed']} failed, "
                     f"{counts['error']} errors, {counts['skipped']} skipped in "
                     f"{s.ended - s.started:.0f} s (CPU {s.cpu:.0f} s)"
                     + (f"  FAILED, exit {s.status}: {_rel(s.log)}" if bad else ""))
        if bad and not fails:
            failures.append((s.name, _tail(s.log)))
        failures.extend(fails)

    for test, text in failures:
        print(f"\n{'_' * 20} {test} {'_' * 20}\n{text.rstrip()}")
    print("\n" + "=" * 72)
    print("\n".join(lines))
    cpu = sum(s.cpu for s in group)
    print(f"  total: {totals['passed']} passed, {totals['failed']} failed, {totals['error']} "
          f"errors, {totals['skipped']} skipped in {wall:.0f} s; CPU of the shards {cpu:.0f} s")
    print(top_cpu(group))
    if used := machine.report():
        print(used)
    if sampler.peak_all:
        print(f"  PostgreSQL connections at most: {sampler.peak} to this run's databases, "
              f"{sampler.peak_all} on the whole server")
    if not finished:
        print("  INTERRUPTED")
        return 130
    if record and not failed:
        # a file with serial tests and others has its time in two shards
        seconds: dict[str, float] = {}
        for s in group:
            for f, v in s.file_seconds().items():
                seconds[f] = seconds.get(f, 0.0) + v
        measured = {**known, **{f: round(v, 1) for f, v in seconds.items()}}
        DURATIONS.write_text(json.dumps(dict(sorted(measured.items())), indent=1) + "\n")
        print(f"  durations written to {DURATIONS.relative_to(ROOT)}")
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


TOP = 10


def top_cpu(group: list[Shard], n: int = TOP) -> str:
    """The files that took the most CPU, with their wall seconds beside."""
    cpu, wall = {}, {}
    for s in group:
        cpu.update(s.file_seconds("cpu"))
        wall.update(s.file_seconds("wall"))
    if not cpu:
        return "  CPU per file: not measured"
    top = sorted(cpu.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    width = max(len(f) for f, _ in top)
    outside = sum(s.cpu for s in group) - sum(cpu.values())
    return "\n".join([f"  CPU outside the tests (start-up, collection, the session's tear-down): "
                      f"{outside:.0f} s",
                      f"  most CPU (of {sum(cpu.values()):.0f} s in {len(cpu)} files; "
                      "CPU s, wall s):"]
                     + [f"    {f:<{width}}  {c:6.1f}  {wall.get(f, 0.0):6.1f}" for f, c in top])


def _file_of(classname: str) -> str:
    """The test file of a JUnit classname (``tests.unit.test_x`` or ``....test_x.TestY``)."""
    parts = classname.split(".")
    for n in range(len(parts), 0, -1):
        path = "/".join(parts[:n]) + ".py"
        if (ROOT / path).is_file():
            return path
    return classname


def _rel(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
