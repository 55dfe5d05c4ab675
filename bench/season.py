"""The whole-season figures (issue 7): candidates from sign-up (注册账号) to certificate (证书)
through every service, each a process of its own, as in production.

- ``season_10k_s``: wall seconds from the first registration to the last
  ``CertificateIssued`` for CANDIDATES candidates (``--scale`` scales the count; the
  count taken is ``detail.candidates``), target <= 240 s. ``detail.phases`` has each
  phase's seconds, calls, candidates/s, the CPU each process took and the load average:
  register+profile, apply→eligible, confirm, seat allocation, ticket download, check-in,
  import+publish, certification. Below 10,000 candidates ``detail.extrapolated_10k_s``
  scales each phase's seconds linearly to 10,000 (an extrapolation, not a measurement);
- ``peak_rss_mb``: the largest resident set of any service process during the season
  (``VmHWM`` of each, sampled with ``VmRSS`` every second: ``detail`` names the service
  and the phase it peaked in), target <= 300 MiB.

How. account, registration, verification, admission, scoring, certificate and
notification run as ``nameko run`` processes (``max_workers`` 10, as ``config.yml``), each
on a fresh PostgreSQL database, on a fresh RabbitMQ vhost, with the production password
hashing (``PASSWORD_HASH`` not set) and the default timer intervals. The load comes from
CLIENTS client processes, THREADS green threads each, every green thread with a
``ClusterRpcProxy`` of its own; the bench process tells them what to do phase by phase and
watches the services' own databases (read models, log heads, tracking) for the
asynchronous effects, so watching costs the services no RPC.

Time. The session is ``shared.session.demo_session`` with windows of SLOT_MINUTES (long
enough that no phase's work ever outlasts its window), and its windows end when the work
is done, not when a timer says: the services run on a shared *stepped* clock
(``SteppedClock``: the system clock plus an offset the bench moves forward, read from a
memory-mapped file), which the bench moves to the next window as soon as every effect of
the phase before it is in. Inside a phase time runs at wall speed; a move is instant, and
the services' deadline timers (``DEADLINE_INTERVAL``, 1 s) see it at their next tick. So
the figure is the time the system needs, not the time a timetable allots; the only
difference from ``nameko run`` is the ``CLOCK`` put into each service's config by the
launcher (``serve``).

The candidates (``bench.applicants``, all SIMULATED): valid resident ID numbers, complete
profiles with a photo, one 本科 diploma, metrology work since 2010. Of every 4, 3 are in the
simulated education registry written for the run (``REFERENCE_EDUCATION_CSV``); of every
10, 9 sign the commitment (告知承诺): so about two thirds pass the automatic check and the
rest are asked for proof, submit a (simulated) PDF and are passed by the registration
point (人工核查); a few are rejected for good (报名终止). The authority draws a spot check
(抽查, SPOT_RATE of the passed) and passes the drawn. Of every 100: one never confirms
(lapsed), one never prints the ticket (forfeited), one misses the last sitting (absent),
two fail the last subject; everyone else passes every subject. Scores: one import of the
CSV generated from the check-ins, published by the authority (``publish_scores``) in the
查询成绩 window; certificates are issued by the certificate service on
``QualificationAttained``.

Knobs: ``BENCH_SEASON_CANDIDATES`` (the count at ``--scale 1``, default 10,000);
``BENCH_SEASON_POOL=size,overflow`` (each service's PostgreSQL pool; by default production's
10+10 when the server has room for seven such pools, else what it has room for: the pool
taken is in ``detail.db_pool_per_service``); ``BENCH_SEASON_PROFILE=DIR`` (cProfile in every
service process, one file per service and phase, ``BENCH_SEASON_PROFILE_PHASES=a,b`` to
take some phases only).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import mmap
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    ROOT,
    Context,
    Figure,
    cores_available,
    fresh_pg,
    fresh_vhost,
    load_average,
    pg_url,
)

CANDIDATES = 10_000  # at --scale 1
LEAST = 40  # candidates at the smallest scale: every path still taken
FULL = 10_000  # what season_10k_s is named after (the extrapolation's target)
TARGET_S = 240.0
RSS_CEILING_MB = 300.0
CLIENTS = 4  # client processes
THREADS = 8  # green threads per client process, each with its own ClusterRpcProxy
CALL_TIMEOUT = 300.0  # seconds a client waits for one answer (the machine may be shared)
READY_TIMEOUT = 120.0  # a client process starting and connecting its proxies
STALL_S = 180.0  # an awaited effect that has not moved for this long: the season is stuck
SLOT_MINUTES = 600  # demo_session slot: longer than any phase's work takes
SPOT_RATE = 0.02  # 抽查: the share of passed cases drawn
SEED = 2026
BASE = 7_000_000  # candidate numbers BASE..BASE+n-1 (bench.common.resident_id: born 1969)
ROOMS_PER_VENUE = 40
POINT = "2916"
STAFF = {"staff_id": "bench-staff-2916", "registration_point": POINT}  # 报名点工作人员
AUTHORITY = {"staff_id": "bench-authority"}  # 考试机构
PROOF_PDF = b"%PDF-1.4\n% SIMULATED proof of education and work (kaowu bench)\n%%EOF\n"

SERVICES = (
    ("account", "services.account.service:AccountService"),
    ("registration", "services.registration.service:RegistrationService"),
    ("verification", "services.verification.service:VerificationService"),
    ("admission", "services.admission.service:AdmissionService"),
    ("scoring", "services.scoring.service:ScoringService"),
    ("certificate", "services.certificate.service:CertificateService"),
    ("notification", "services.notification.service:NotificationService"),
)
PHASES = ("register_profile", "apply_to_eligible", "confirm", "seat_allocation",
          "ticket_download", "check_in", "import_publish", "certification")

# the processes: started with ``python -c`` so eventlet patches before anything else loads
_SERVE = ("import eventlet; eventlet.monkey_patch()\n"
          "import sys\nfrom bench.season import serve\nsys.exit(serve())")
_CLIENT = ("import eventlet; eventlet.monkey_patch()\n"
           "import sys\nfrom bench.season import client_main\nsys.exit(client_main())")


# -- the stepped clock ----------------------------------------------------------------------

class SteppedClock:
    """The system clock plus an offset in seconds (a float in an 8-byte file, memory-mapped
    by every service process): ``now()`` is what the services' ``self.clock.now()``
    answers. Only the bench writes it, and only forward (``jump_to``)."""

    def __init__(self, path: Path, writer: bool = False):
        self.path = Path(path)
        if writer:
            self.path.write_bytes(struct.pack("d", 0.0))
        fd = os.open(self.path, os.O_RDWR if writer else os.O_RDONLY)
        try:
            self._mm = mmap.mmap(fd, 8, access=mmap.ACCESS_WRITE if writer else mmap.ACCESS_READ)
        finally:
            os.close(fd)

    def offset(self) -> float:
        while True:  # two equal reads: never a half-written value
            a, b = self._mm[:8], self._mm[:8]
            if a == b:
                return struct.unpack("d", a)[0]

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset())

    def jump_to(self, when: datetime) -> float:
        """Move the clock forward to ``when`` (never back); the seconds skipped."""
        ahead = (when - self.now()).total_seconds()
        if ahead > 0:
            self._mm[:8] = struct.pack("d", self.offset() + ahead)
        return max(0.0, ahead)


def serve() -> int:
    """``python -c _SERVE CLOCKFILE --config CFG MODULE``: ``nameko run`` with
    ``CLOCK`` set to the bench's stepped clock (a service process of the season)."""
    clock_file, args = sys.argv[1], sys.argv[2:]
    import nameko.cli.run as nameko_run

    plain = nameko_run.run

    def run(services, config, backdoor_port=None):
        config["CLOCK"] = SteppedClock(Path(clock_file))
        return plain(services, config, backdoor_port=backdoor_port)

    nameko_run.run = run
    if os.environ.get("BENCH_SEASON_PROFILE"):
        _profile_on_signals(Path(os.environ["BENCH_SEASON_PROFILE"]),
                            args[-1].split(".")[1] if args else "service")
    pool = os.environ.get("BENCH_SEASON_POOL")  # "size,overflow": see ``pool_budget``
    if pool:
        import shared.eventstore as eventstore

        size, overflow = (int(x) for x in pool.split(","))
        plain_engine = eventstore.make_engine

        def make_engine(url, **kwargs):
            kwargs.setdefault("pool_size", size)
            kwargs.setdefault("max_overflow", overflow)
            return plain_engine(url, **kwargs)

        eventstore.make_engine = make_engine
    sys.argv = ["nameko", "run", *args]
    from nameko.cli.main import main as nameko_main

    return nameko_main()


def _profile_on_signals(out: Path, service: str):
    """cProfile in this service process between SIGUSR1 and SIGUSR2 (``bench.profiled``'s
    way), written to ``OUT/<service>-<phase>.prof``, the phase named in ``OUT/phase`` when
    it starts."""
    import cProfile

    state = {}

    def start(_signum, _frame):
        # the phase is named before the signal is sent, and renamed only after the next one
        state["phase"] = (out / "phase").read_text().strip() or "phase"
        state["profile"] = cProfile.Profile()
        state["profile"].enable()

    def stop(_signum, _frame):
        if "profile" in state:
            state["profile"].disable()
            state.pop("profile").dump_stats(str(out / f"{service}-{state['phase']}.prof"))

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


def _signal_profiles(pids, signum, phase: str | None = None):
    """``BENCH_SEASON_PROFILE=DIR`` (and ``BENCH_SEASON_PROFILE_PHASES=a,b``, default all):
    tell the service processes to start or stop profiling."""
    out = os.environ.get("BENCH_SEASON_PROFILE")
    wanted = [p for p in os.environ.get("BENCH_SEASON_PROFILE_PHASES", "").split(",") if p]
    if not out or (phase and wanted and phase not in wanted):
        return False
    Path(out).mkdir(parents=True, exist_ok=True)
    if phase:
        (Path(out) / "phase").write_text(phase)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
    return True


PRODUCTION_POOL = (10, 10)  # shared.eventstore.make_engine's PostgreSQL pool


def pool_budget() -> tuple[int, int]:
    """Each service's connection pool (size, overflow): production's when the PostgreSQL
    server has room for seven of them, else what it has room for now (the server is shared:
    ``max_connections`` less the connections open, less a margin, over seven services).
    ``BENCH_SEASON_POOL=size,overflow`` sets it."""
    if os.environ.get("BENCH_SEASON_POOL"):
        size, overflow = (int(x) for x in os.environ["BENCH_SEASON_POOL"].split(","))
        return size, overflow
    from sqlalchemy import text

    from bench.common import _admin_engine

    engine = _admin_engine()
    try:
        with engine.connect() as c:
            limit = int(c.execute(text("SHOW max_connections")).scalar())
            used = c.execute(text("SELECT count(*) FROM pg_stat_activity")).scalar()
    finally:
        engine.dispose()
    per = (limit - used - 12) // len(SERVICES)
    if per >= sum(PRODUCTION_POOL):
        return PRODUCTION_POOL
    if per < 4:
        raise RuntimeError(f"PostgreSQL has room for {limit - used} more connections: too few "
                           f"for seven services (max_connections {limit}, {used} open)")
    size = min(PRODUCTION_POOL[0], per - 1)
    return size, per - size


# -- client processes -----------------------------------------------------------------------

def client_main() -> int:
    """A client process (``python -c _CLIENT``), for the whole season: reads its spec (a
    JSON line: ``amqp``, ``threads``, ``timeout``) on stdin, opens ``threads`` proxies and
    says ``ready``; then, for every line ``{"tasks": [...]}``, works through the tasks with
    all of them and prints one JSON line: each task's result (None when it failed), the
    calls made, each task's latency, the errors. An empty line or EOF ends it.

    Tasks: ``{"op": "register", "n": n}``: register candidate n and save the five profile
    sections (six calls), answering the account id; ``{"op": "call", "s": service, "m":
    method, "a": args, "k": key}``: one call, answering ``result[key]`` (or the result).
    (The standalone proxies' connections have no heartbeat: idle between batches, they
    stay open.)"""
    import eventlet
    from nameko.standalone.rpc import ClusterRpcProxy

    from bench import applicants
    from bench.common import candidate

    spec = json.loads(sys.stdin.readline())
    photo = applicants.photo_base64()
    clusters, proxies = [], []
    try:
        for _ in range(spec["threads"]):
            cluster = ClusterRpcProxy({"AMQP_URI": spec["amqp"], "serializer": "json"},
                                      timeout=spec["timeout"])
            proxies.append(cluster.start())
            clusters.append(cluster)
    except Exception as exc:  # the broker is not there
        print(json.dumps({"failed": f"{type(exc).__name__}: {exc}"[:300]}), flush=True)
        return 1
    print("ready", flush=True)

    def batch(tasks: list[dict]) -> dict:
        results: list = [None] * len(tasks)
        latency_ms = [0.0] * len(tasks)
        state = {"next": 0, "calls": 0, "errors": 0, "first_errors": []}

        def do(proxy, task):
            if task["op"] == "register":
                n = task["n"]
                account_id = proxy.account.register(
                    candidate(n, applicants.PASSWORD))["account_id"]
                state["calls"] += 1
                for section, data in applicants.sections(n, photo).items():
                    proxy.account.update_profile_section(account_id, section, data)
                    state["calls"] += 1
                return account_id
            result = getattr(proxy[task["s"]], task["m"])(*task["a"])
            state["calls"] += 1
            key = task.get("k")
            return result.get(key) if key else result

        def worker(proxy):
            while state["next"] < len(tasks):
                i = state["next"]  # green threads: nothing yields between read and write
                state["next"] += 1
                t = time.monotonic()
                try:
                    results[i] = do(proxy, tasks[i])
                except Exception as exc:  # counted and reported; the season goes on without it
                    state["errors"] += 1
                    if len(state["first_errors"]) < 3:
                        state["first_errors"].append(f"{type(exc).__name__}: {exc}"[:400])
                latency_ms[i] = round((time.monotonic() - t) * 1000, 1)

        pool = [eventlet.spawn(worker, p) for p in proxies[:max(1, min(len(proxies), len(tasks)))]]
        for gt in pool:
            gt.wait()
        return {"results": results, "latency_ms": latency_ms, "calls": state["calls"],
                "errors": state["errors"], "first_errors": state["first_errors"]}

    try:
        while line := sys.stdin.readline().strip():
            print(json.dumps(batch(json.loads(line)["tasks"]), ensure_ascii=False), flush=True)
    finally:
        for cluster in clusters:
            with contextlib.suppress(Exception):
                cluster.stop()
    return 0


def _readline(proc, timeout: float, what: str) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"{what}: a client process said nothing for {timeout:.0f} s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{what}: a client process exited ({proc.wait()}) without a report")
    return line


class Clients:
    """CLIENTS client processes (``client_main``), THREADS proxies each, started and
    connected once for the whole season (the candidates are there all along: starting
    processes is no phase's work). ``run`` shares tasks round-robin among them; its
    ``seconds`` run from sending the tasks to the last answer."""

    def __init__(self, amqp: str, processes: int = CLIENTS, threads: int = THREADS):
        self.amqp, self.processes, self.threads = amqp, processes, threads
        self.procs: list[subprocess.Popen] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def start(self):
        for _ in range(self.processes):
            p = subprocess.Popen([sys.executable, "-W", "ignore", "-c", _CLIENT], cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            p.stdin.write(json.dumps({"amqp": self.amqp, "threads": self.threads,
                                      "timeout": CALL_TIMEOUT}) + "\n")
            p.stdin.flush()
            self.procs.append(p)
        for p in self.procs:
            line = _readline(p, READY_TIMEOUT, "starting the clients")
            if line.strip() != "ready":
                raise RuntimeError(f"a client process did not get ready: {line.strip()}")

    def stop(self):
        for p in self.procs:
            with contextlib.suppress(OSError):
                p.stdin.write("\n")
                p.stdin.flush()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []

    def run(self, tasks: list[dict], what: str) -> dict:
        if not tasks:
            return {"results": [], "calls": 0, "errors": 0, "seconds": 0.0, "first_errors": [],
                    "latency_ms": {}}
        procs = self.procs[:max(1, min(len(self.procs), -(-len(tasks) // self.threads)))]
        k = len(procs)
        t0 = time.monotonic()
        for i, p in enumerate(procs):
            p.stdin.write(json.dumps({"tasks": tasks[i::k]}, ensure_ascii=False) + "\n")
            p.stdin.flush()
        reports = [json.loads(_readline(p, 6 * 3600, what)) for p in procs]
        seconds = time.monotonic() - t0
        results: list = [None] * len(tasks)
        latency: list = [0.0] * len(tasks)
        for i, r in enumerate(reports):
            results[i::k] = r["results"]
            latency[i::k] = r["latency_ms"]
        lat = sorted(latency)
        return {"results": results, "calls": sum(r["calls"] for r in reports),
                "errors": sum(r["errors"] for r in reports), "seconds": seconds,
                "first_errors": [e for r in reports for e in r["first_errors"]][:3],
                "latency_ms": {"p50": lat[len(lat) // 2],
                               "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                               "max": lat[-1]}}

    def call(self, service: str, method: str, *args, key: str | None = None):
        got = self.run([{"op": "call", "s": service, "m": method, "a": list(args), "k": key}],
                       f"{service}.{method}")
        if got["errors"]:
            raise RuntimeError(f"{service}.{method} failed: {got['first_errors'][0]}")
        return got["results"][0]


# -- the services -----------------------------------------------------------------------------

class Services:
    """The seven services (or ``services``: (name, module) pairs), each ``nameko run`` in a
    process of its own (``serve``), started together; stopped with SIGTERM (SIGKILL after
    20 s). Config and log files are ``<prefix>-<name>.yml/.log`` in the work dir."""

    def __init__(self, ctx: Context, amqp: str, configs: dict[str, dict], clock_file: Path,
                 pool: tuple[int, int], services=None, prefix: str = "season"):
        self.ctx, self.amqp, self.configs, self.clock_file = ctx, amqp, configs, clock_file
        self.pool = pool
        self.services = SERVICES if services is None else services
        self.prefix = prefix
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start(self):
        import yaml

        from bench import rpc
        from shared.runner import service_environment

        env = service_environment()  # as production runs them (MALLOC_ARENA_MAX)
        if self.pool != PRODUCTION_POOL:
            env["BENCH_SEASON_POOL"] = ",".join(map(str, self.pool))
        for name, module in self.services:
            cfg = self.ctx.workdir / f"{self.prefix}-{name}.yml"
            web = {"WEB_SERVER_ADDRESS": f"127.0.0.1:{rpc._free_port()}"}  # health, metrics
            cfg.write_text(yaml.safe_dump({**self.configs[name], **web}, allow_unicode=True))
            self.logs[name] = self.ctx.workdir / f"{self.prefix}-{name}.log"
            with open(self.logs[name], "wb") as log:
                self.procs[name] = subprocess.Popen(
                    [sys.executable, "-W", "ignore", "-c", _SERVE, str(self.clock_file),
                     "--config", str(cfg), module],
                    cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
        for name, _ in self.services:
            rpc._wait_for_consumers(self.amqp, f"rpc-{name}", [self.procs[name]], [self.logs[name]])

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def exited(self) -> list[str]:
        return [name for name, p in self.procs.items() if p.poll() is not None]

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class RssSampler:
    """Every second, each service process's ``VmRSS`` and ``VmHWM`` (its peak so far):
    the largest of each, by service, and the phase the largest RSS was seen in."""

    def __init__(self, pids: dict[str, int], databases: dict[str, str] | None = None,
                 interval: float = 1.0):
        self.pids, self.interval = pids, interval
        self.databases = databases or {}  # service -> database: its connections counted too
        self.connections: dict[str, int] = {}  # the most each service had open at once
        self.phase = "start"
        self.hwm_kb: dict[str, int] = {}
        self.rss_kb: dict[str, tuple[int, str]] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    @staticmethod
    def _status(pid: int) -> dict[str, int]:
        out = {}
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        key, value = line.split(":", 1)
                        out[key] = int(value.split()[0])
        except OSError:
            pass
        return out

    def sample(self):
        for name, pid in self.pids.items():
            s = self._status(pid)
            if "VmHWM" in s:
                self.hwm_kb[name] = max(self.hwm_kb.get(name, 0), s["VmHWM"])
            if "VmRSS" in s and s["VmRSS"] > self.rss_kb.get(name, (0, ""))[0]:
                self.rss_kb[name] = (s["VmRSS"], self.phase)
        if self.databases:
            with contextlib.suppress(Exception):  # a sample missed is no harm
                self._count_connections()

    def _count_connections(self):
        from sqlalchemy import text

        from bench.common import _admin_engine

        engine = _admin_engine()
        try:
            with engine.connect() as c:
                counts = dict(c.execute(text(
                    "SELECT datname, count(*) FROM pg_stat_activity WHERE datname = ANY(:d) "
                    "GROUP BY datname"), {"d": list(self.databases.values())}).all())
        finally:
            engine.dispose()
        for svc, db in self.databases.items():
            self.connections[svc] = max(self.connections.get(svc, 0), counts.get(db, 0))

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self):
        self.sample()
        self.thread.start()

    def stop(self):
        self._stop.set()
        self.thread.join(5)
        self.sample()  # the last word: VmHWM holds the peak even between samples


class Watch:
    """The services' databases, read directly (read models, log heads, tracking)."""

    def __init__(self, urls: dict[str, str]):
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self.engines = {svc: create_engine(url, poolclass=NullPool) for svc, url in urls.items()}

    def rows(self, svc: str, sql: str, **params) -> list:
        from sqlalchemy import text

        with self.engines[svc].connect() as c:
            return list(c.execute(text(sql), params).all())

    def scalar(self, svc: str, sql: str, **params):
        from sqlalchemy import text

        with self.engines[svc].connect() as c:
            return c.execute(text(sql), params).scalar()

    def behind(self, upstream: str, downstream: str) -> int:
        """Events of ``upstream`` not yet published, or not yet applied by ``downstream``."""
        head = self.scalar(upstream, "SELECT position FROM log_head") or 0
        relay = self.scalar(upstream, "SELECT position FROM relay_state") or 0
        seen = self.scalar(downstream, "SELECT position FROM tracking WHERE upstream = :u",
                           u=upstream) or 0
        return (head - relay) + max(0, head - seen)

    def dispose(self):
        for e in self.engines.values():
            e.dispose()


def wait_for(ctx: Context, what: str, check, services: Services | None = None,
             poll: float = 0.25) -> float:
    """Poll ``check()`` -> (done, progress) until done; fails when progress has not moved
    for STALL_S seconds or a service process has exited. Seconds waited."""
    t0 = last_move = time.monotonic()
    last = None
    while True:
        done, progress = check()
        if done:
            return time.monotonic() - t0
        now = time.monotonic()
        if progress != last:
            last, last_move = progress, now
        if services is not None and services.exited():
            raise RuntimeError(f"{what}: service(s) {', '.join(services.exited())} exited; "
                               f"see their logs in {ctx.workdir}")
        if now - last_move > STALL_S:
            raise RuntimeError(f"{what}: nothing moved for {STALL_S:.0f} s (last seen: {progress})")
        time.sleep(poll)


# -- the plan ---------------------------------------------------------------------------------

class Plan:
    """Who does what (deterministic from the candidate's index ``i``; number BASE + i)."""

    def __init__(self, count: int):
        from bench import applicants

        self.count = count
        self.numbers = [BASE + i for i in range(count)]
        self.proof = {i for i in range(count)
                      if not (applicants.in_registry(BASE + i) and applicants.with_commitment(BASE + i))}
        self.terminated = {i for i in self.proof if i % 50 == 17}  # 报名终止: rejected for good
        self.lapse = {i for i in range(count) if i % 100 == 3} - self.terminated
        self.forfeit = {i for i in range(count) if i % 100 == 5} - self.terminated
        self.absent = {i for i in range(count) if i % 100 == 7} - self.terminated  # misses the last sitting
        self.fail = {i for i in range(count) if i % 100 in (11, 12)} - self.terminated

    def mix(self) -> dict:
        return {"candidates": self.count, "proof_and_manual": len(self.proof - self.terminated),
                "terminated": len(self.terminated), "lapsed": len(self.lapse),
                "forfeited": len(self.forfeit), "absent_last_sitting": len(self.absent),
                "fail_last_subject": len(self.fail)}


def session_document(now: datetime, count: int) -> dict:
    """demo_session of the reference session from ``now``, SLOT_MINUTES a window, with rooms
    of 30 for everyone (the sample venues seat 210)."""
    from shared.session import SessionDocument, demo_session

    d = demo_session(now, minutes_per_window=SLOT_MINUTES).to_dict()
    rooms = -(-count // 30) + 1
    venues = -(-rooms // ROOMS_PER_VENUE)
    d["venues"] = [{"code": f"SEASON-{v:02d}", "name": f"基准考点{v:02d}（模拟）",
                    "address": f"上海市（模拟地址）{v}号",
                    "rooms": [{"code": f"{r:03d}", "seats": 30}
                              for r in range(1, ROOMS_PER_VENUE + 1)]}
                   for v in range(1, venues + 1)]
    return SessionDocument.from_dict(d).to_dict()  # validated as the service will


# -- the season -------------------------------------------------------------------------------

class Season:
    def __init__(self, ctx: Context, pool: Clients, plan: Plan, services: Services, watch: Watch,
                 clock: SteppedClock, rss: RssSampler):
        self.ctx, self.pool, self.plan, self.services = ctx, pool, plan, services
        self.watch, self.clock, self.rss = watch, clock, rss
        self.phases: dict[str, dict] = {}
        self.errors = 0
        self.first_errors: list[str] = []
        self.doc = None
        self.session_id = None
        self.accounts: dict[int, str] = {}  # i -> account id
        self.apps: dict[int, str] = {}  # i -> application id
        self.tickets: dict[int, str] = {}  # i -> ticket number
        self.sat: dict[int, list[str]] = {}  # i -> subjects checked in
        self.confirmed: list[int] = []
        self.printed: list[int] = []
        self.expected_qualified = 0
        self.t_first = self.t_last = None

    # -- helpers ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def phase(self, name: str):
        from bench.rpc import CpuMeter

        pids = self.services.pids
        meter = CpuMeter(list(pids.values()), self.pool.pids, {n: [p] for n, p in pids.items()})
        record = self.phases[name] = {"calls": 0, "load_average_before": _load()}
        self.rss.phase = name
        self.ctx.log(f"season: {name} …")
        profiling = _signal_profiles(pids.values(), signal.SIGUSR1, name)
        meter.start()
        t = time.monotonic()
        yield record
        record["seconds"] = round(time.monotonic() - t, 2)
        cpu = meter.stop()
        if profiling:
            _signal_profiles(pids.values(), signal.SIGUSR2)
        if cpu:
            record["cpu"] = {k.removeprefix("cpu_"): v for k, v in cpu.items()
                             if k != "cpu_service"}
        record["load_average_after"] = _load()
        self.ctx.log(f"season: {name} took {record['seconds']:.1f} s, {record['calls']} calls "
                     f"(load average {record['load_average_after']})")

    def clients(self, record: dict, what: str, tasks: list[dict]) -> list:
        got = self.pool.run(tasks, what)
        record["calls"] += got["calls"]
        record.setdefault("rpc", {})[what] = {"tasks": len(tasks), "seconds": round(got["seconds"], 2),
                                             "latency_ms": got["latency_ms"]}
        if got["errors"]:
            self.errors += got["errors"]
            record.setdefault("errors", 0)
            record["errors"] += got["errors"]
            self.first_errors += got["first_errors"][: 3 - len(self.first_errors)]
            self.ctx.log(f"season: {what}: {got['errors']} calls failed, first: "
                         f"{got['first_errors'][0]}")
        return got["results"]

    def wait(self, what: str, check) -> float:
        return wait_for(self.ctx, what, check, self.services)

    def jump(self, when: datetime):
        skipped = self.clock.jump_to(when)
        local = when.astimezone(self.doc.tz) if self.doc else when
        self.ctx.log(f"season: clock moved {skipped / 60:.0f} min on, to {local:%m-%d %H:%M:%S} "
                     f"({self.doc.phase(self.clock.now()) if self.doc else '-'})")

    def statuses(self) -> dict[str, str]:
        """registration's applications of the session: account id -> status."""
        return dict(self.watch.rows("registration", "SELECT account_id, status FROM applications "
                                    "WHERE session_id = :s", s=self.session_id))

    def call(self, record: dict, service: str, method: str, *args, key=None):
        record["calls"] += 1
        return self.pool.call(service, method, *args, key=key)

    # -- the phases ------------------------------------------------------------------------

    def run(self) -> dict:
        self.register_profile()
        self.schedule()
        self.apply_to_eligible()
        self.confirm()
        self.seat_allocation()
        self.ticket_download()
        self.check_in()
        self.import_publish()
        self.certification()
        return self.result()

    def register_profile(self):
        """注册账号 → 信息维护: register (production hashing) and five profile sections."""
        p = self.plan
        with self.phase("register_profile") as r:
            self.t_first = time.monotonic()
            ids = self.clients(r, "register+profile", [{"op": "register", "n": n} for n in p.numbers])
            self.accounts = {i: a for i, a in enumerate(ids) if a}
            want = len(self.accounts)
            self.wait("registration hears of the complete profiles", lambda: (
                (c := self.watch.scalar("registration", "SELECT count(*) FROM candidates "
                                        "WHERE complete")) >= want, c))

    def schedule(self):
        import yaml

        d = session_document(self.clock.now(), self.plan.count)
        from shared.session import SessionDocument

        self.doc = SessionDocument.from_dict(d)
        self.session_id = d["session_id"]
        self.pool.call("registration", "load_session",
             {"yaml": yaml.safe_dump(d, allow_unicode=True)}, key="session_id")
        # every service has the session before anyone applies
        for svc in ("verification", "admission", "scoring", "certificate"):
            self.wait(f"{svc} has the session", lambda svc=svc: (
                self.watch.behind("registration", svc) == 0, None))

    def apply_to_eligible(self):
        """网上报名 → 资格核查 (automatic; proof and 人工核查) → 抽查复核 → eligible."""
        from bench import applicants

        p, sid = self.plan, self.session_id
        with self.phase("apply_to_eligible") as r:
            order = sorted(self.accounts)
            got = self.clients(r, "submit_application", [
                {"op": "call", "s": "registration", "m": "submit_application",
                 "a": [self.accounts[i], applicants.application(BASE + i, sid)],
                 "k": "application_id"} for i in order])
            self.apps = {i: a for i, a in zip(order, got, strict=True) if a}
            by_account = {self.accounts[i]: i for i in self.apps}

            def decided():
                st = self.statuses()
                left = sum(1 for a in by_account if st.get(a) in (None, "submitted"))
                return left == 0, left

            self.wait("automatic checks", decided)
            st = self.statuses()
            proof = [i for i in self.apps if st[self.accounts[i]] == "proof_requested"]
            r["proof_requested"] = len(proof)
            pdf = {"name": "证明材料（模拟）.pdf",
                   "content_base64": base64.b64encode(PROOF_PDF).decode()}
            self.clients(r, "submit_proof", [
                {"op": "call", "s": "registration", "m": "submit_proof",
                 "a": [self.accounts[i], {"session_id": sid, "files": [pdf]}], "k": "status"}
                for i in proof])
            waiting = {self.apps[i] for i in proof}

            def awaiting():
                cases = dict(self.watch.rows("verification", "SELECT application_id, status FROM "
                                             "cases WHERE session_id = :s", s=sid))
                left = sum(1 for a in waiting if cases.get(a) != "awaiting_manual")
                return left == 0, left

            self.wait("proof reaches the registration point", awaiting)
            self.clients(r, "decide_manual", [
                {"op": "call", "s": "verification", "m": "decide_manual",
                 "a": [STAFF, {"application_id": self.apps[i], "decision": "reject",
                               "reason": "学历证书与学信网记录不符（模拟）", "final": True}
                       if i in p.terminated else
                       {"application_id": self.apps[i], "decision": "pass",
                        "reason": "材料核实无误（模拟）"}], "k": "status"} for i in proof])

            def recorded():
                st = self.statuses()
                left = sum(1 for i in proof if st.get(self.accounts[i]) not in
                           ("manual_passed", "terminated"))
                return left == 0, left

            self.wait("manual decisions recorded", recorded)
            # 抽查复核: draw, the authority passes the drawn; the rest pass through
            self.jump(self.doc.window("spot_check").start + timedelta(seconds=1))
            draw = self.call(r, "verification", "draw_spot_check", AUTHORITY,
                             {"session_id": sid, "rate": SPOT_RATE, "seed": SEED})
            r["spot_check"] = {"population": draw["population"], "drawn": len(draw["selected"])}
            self.clients(r, "decide_spot_check", [
                {"op": "call", "s": "verification", "m": "decide_spot_check",
                 "a": [AUTHORITY, {"application_id": a, "decision": "pass",
                                   "reason": "抽查无误（模拟）"}], "k": "status"}
                for a in draw["selected"]])
            self.jump(self.doc.window("confirmation").start + timedelta(seconds=1))
            going_on = [self.accounts[i] for i in self.apps if i not in p.terminated]

            def eligible():
                st = self.statuses()
                left = sum(1 for a in going_on if st.get(a) != "eligible")
                return left == 0, left

            self.wait("eligible", eligible)

    def confirm(self):
        """核对确认 (no fee); the lapsing never confirm."""
        p = self.plan
        with self.phase("confirm") as r:
            who = [i for i in sorted(self.apps) if i not in p.terminated and i not in p.lapse]
            got = self.clients(r, "confirm_application", [
                {"op": "call", "s": "registration", "m": "confirm_application",
                 "a": [self.accounts[i], self.session_id], "k": "status"} for i in who])
            self.confirmed = [i for i, s in zip(who, got, strict=True) if s]

    def seat_allocation(self):
        """核对确认 closes: the unconfirmed lapse; admission plans seats and issues tickets."""
        with self.phase("seat_allocation"):
            self.jump(self.doc.window("confirmation").end_exclusive + timedelta(seconds=1))
            want = len(self.confirmed)
            self.wait("tickets issued", lambda: (
                (c := self.watch.scalar("admission", "SELECT count(*) FROM tickets WHERE "
                                        "session_id = :s AND ticket_number IS NOT NULL "
                                        "AND seat IS NOT NULL", s=self.session_id)) >= want, c))
            numbers = dict(self.watch.rows("admission", "SELECT account_id, ticket_number FROM "
                                           "tickets WHERE session_id = :s", s=self.session_id))
            self.tickets = {i: numbers[self.accounts[i]] for i in self.confirmed
                            if numbers.get(self.accounts[i])}

    def ticket_download(self):
        """打印准考证: a PDF each (photo fetched from account, QR code); some never print."""
        with self.phase("ticket_download") as r:
            self.jump(self.doc.window("ticket_printing").start + timedelta(seconds=1))
            who = [i for i in sorted(self.tickets) if i not in self.plan.forfeit]
            got = self.clients(r, "download_ticket", [
                {"op": "call", "s": "admission", "m": "download_ticket",
                 "a": [self.accounts[i], self.session_id], "k": "filename"} for i in who])
            self.printed = [i for i, f in zip(who, got, strict=True) if f]

    def check_in(self):
        """打印准考证 closes (the unprinted forfeit); 身份核验 at the door of every sitting."""
        from bench.common import resident_id

        level = self.doc.levels["L1"]
        sittings: dict[datetime, list[str]] = {}
        for e in self.doc.exam_schedule:
            if e["subject"] in level.subjects:
                sittings.setdefault(e["start"], []).append(e["subject"])
        last = level.subjects[-1]
        with self.phase("check_in") as r:
            for start in sorted(sittings):
                self.jump(start)
                items = [(i, s) for s in sittings[start] for i in self.printed
                         if not (s == last and i in self.plan.absent)]
                got = self.clients(r, f"check_in {'+'.join(sittings[start])}", [
                    {"op": "call", "s": "admission", "m": "check_in",
                     "a": [AUTHORITY, {"ticket_number": self.tickets[i],
                                       "session_id": self.session_id, "id_type": "resident_id",
                                       "id_number": resident_id(BASE + i), "subject": s}],
                     "k": "subject"} for i, s in items])
                for (i, s), ok in zip(items, got, strict=True):
                    if ok:
                        self.sat.setdefault(i, []).append(s)

    def score_file(self) -> str:
        """ticket_number,subject,score for every check-in (SIMULATED marks): a failing
        candidate has 50 of 120 in the last subject (the pass mark is 72)."""
        last = self.doc.levels["L1"].subjects[-1]
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["ticket_number", "subject", "score"])
        for i, subjects in sorted(self.sat.items()):
            for s in subjects:
                fail = i in self.plan.fail and s == last
                w.writerow([self.tickets[i], s, 50 if fail else 75 + (i * 7 + len(s)) % 40])
        return out.getvalue()

    def import_publish(self):
        """The exam window closes (absences); one import of the marking centre's file;
        scoring publishes at the 查询成绩 window's start (its own timer)."""
        sid = self.session_id
        sittings = len({e["subject"] for e in self.doc.exam_schedule})
        with self.phase("import_publish") as r:
            self.jump(self.doc.window("exam").end_exclusive + timedelta(seconds=1))
            self.wait("absences recorded", lambda: (
                (c := self.watch.scalar("admission", "SELECT count(*) FROM deadlines WHERE "
                                        "session_id = :s AND name LIKE 'sitting-%'", s=sid))
                >= sittings, c))
            self.wait("scoring has every ticket and absence", lambda: (
                (b := self.watch.behind("admission", "scoring")) == 0, b))
            csv_text = self.score_file()
            r["score_rows"] = csv_text.count("\n") - 1
            r["import_bytes"] = len(csv_text.encode())
            t = time.monotonic()
            got = self.call(r, "scoring", "import_scores", AUTHORITY,
                            {"session_id": sid, "filename": "season-scores.csv", "csv": csv_text})
            r["import_s"] = round(time.monotonic() - t, 2)
            r["imported"] = {k: got.get(k) for k in ("rows", "candidates", "absent_rows", "missing")}
            # demo_session's scores window opens the second the exam window closes: no
            # import can precede it, so the authority publishes (scoring's timer would
            # publish an import made before the window opened)
            self.jump(self.doc.window("scores").start + timedelta(seconds=1))
            t = time.monotonic()
            got = self.call(r, "scoring", "publish_scores", AUTHORITY, sid)
            r["publish_s"] = round(time.monotonic() - t, 2)
            r["published"] = {k: v for k, v in got.items() if isinstance(v, (int, float, str))}

    def certification(self):
        """证书: issued by the certificate service on QualificationAttained."""
        level = self.doc.levels["L1"]
        self.expected_qualified = sum(1 for i, s in self.sat.items()
                                      if len(s) == len(level.subjects) and i not in self.plan.fail)
        with self.phase("certification"):
            want = self.expected_qualified
            self.wait("certificates issued", lambda: (
                (c := self.watch.scalar("certificate", "SELECT count(*) FROM certificates WHERE "
                                        "session_id = :s", s=self.session_id)) >= want, c))
            self.t_last = time.monotonic()

    # -- the result ------------------------------------------------------------------------

    def funnel(self) -> dict:
        sid = self.session_id
        w = self.watch
        apps = dict(w.rows("registration", "SELECT status, count(*) FROM applications WHERE "
                           "session_id = :s GROUP BY status", s=sid))
        att = dict(w.rows("admission", "SELECT status, count(*) FROM attendance WHERE "
                          "session_id = :s GROUP BY status", s=sid))
        return {
            "accounts": w.scalar("account", "SELECT count(*) FROM accounts"),
            "complete_profiles": w.scalar("registration", "SELECT count(*) FROM candidates WHERE complete"),
            "applications": apps,
            "tickets": w.scalar("admission", "SELECT count(*) FROM tickets WHERE session_id = :s "
                                "AND ticket_number IS NOT NULL", s=sid),
            "printed": w.scalar("admission", "SELECT count(*) FROM tickets WHERE session_id = :s "
                                "AND printed_count > 0", s=sid),
            "forfeited": w.scalar("admission", "SELECT count(*) FROM tickets WHERE session_id = :s "
                                  "AND forfeited", s=sid),
            "checked_in": att.get("checked_in", 0), "absent": att.get("absent", 0),
            "qualified": w.scalar("scoring", "SELECT count(*) FROM qualifications WHERE "
                                  "session_id = :s AND status = 'attained'", s=sid),
            "certificates": w.scalar("certificate", "SELECT count(*) FROM certificates WHERE "
                                     "session_id = :s", s=sid),
            "notification_messages": w.scalar("notification", "SELECT count(*) FROM messages")
            if _has_table(w, "notification", "messages") else None,
        }

    def result(self) -> dict:
        total = self.t_last - self.t_first
        n = self.plan.count
        phases = {}
        for name in PHASES:
            rec = self.phases[name]
            rec["candidates_per_s"] = round(n / rec["seconds"], 1) if rec["seconds"] else None
            phases[name] = rec
        behind = {up: self.watch.behind(up, "notification")
                  for up, _ in SERVICES if up != "notification"}
        detail = {
            "candidates": n, "mix": self.plan.mix(), "phases": phases,
            "phase_seconds": {k: v["seconds"] for k, v in phases.items()},
            "calls": sum(v["calls"] for v in phases.values()),
            "errors": self.errors, "first_errors": self.first_errors,
            "funnel": self.funnel(),
            "expected": {"confirmed": len(self.confirmed), "printed": len(self.printed),
                         "check_ins": sum(len(s) for s in self.sat.values()),
                         "certificates": self.expected_qualified},
            "notification_behind_events_at_end": behind,
            "clock": "stepped: each window ends when its work is done (see bench/season.py)",
            "slot_minutes": SLOT_MINUTES, "clients": CLIENTS, "threads_per_client": THREADS,
        }
        lost = self.expected_qualified - (detail["funnel"]["certificates"] or 0)
        if lost:
            detail["lost"] = lost
        # the machine's CPU this season took (its processes, PostgreSQL and RabbitMQ: shared
        # with whatever else runs, so an upper bound), per candidate; at that cost the cores
        # of this machine cannot take FULL candidates through in less than ...
        core_s = sum((v["cpu"]["machine"] - v["cpu"]["other"]) * v["seconds"]
                     for v in phases.values() if v.get("cpu"))
        if core_s:
            cores = cores_available()
            detail["cpu_core_ms_per_candidate"] = round(core_s / n * 1000)
            detail["cpu_bound_10k_s"] = {
                "note": f"{FULL} candidates at this CPU cost per candidate on all {cores} cores "
                        "of this machine, nothing else running: a floor, not a measurement",
                "seconds": round(core_s / n * FULL / cores)}
        if n < FULL:
            per = {k: round(v["seconds"] * FULL / n, 1) for k, v in phases.items()}
            detail["extrapolated_10k_s"] = {
                "note": "EXTRAPOLATION, not a measurement: each phase's seconds times "
                        f"{FULL}/{n} (linear; phases with fixed costs are overestimated)",
                "total": round(sum(per.values()), 1), "phases": per}
        return {"total": total, "detail": detail}


def _has_table(watch: Watch, svc: str, table: str) -> bool:
    return bool(watch.scalar(svc, "SELECT to_regclass(:t) IS NOT NULL", t=table))


def _load() -> float | None:
    la = load_average()
    return None if la is None else round(la, 2)


# -- the module's figures ---------------------------------------------------------------------

def _configs(amqp: str, template: str, registry: Path, workdir: Path) -> dict[str, dict]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bench import rpc

    base = {"AMQP_URI": amqp, "DATABASE_URL": template, "max_workers": rpc.MAX_WORKERS,
            "serializer": "json"}  # PASSWORD_HASH left out: production hashing
    key = Ed25519PrivateKey.generate().private_bytes(  # the run's own issuer key
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    return {
        "account": base, "registration": base, "scoring": base,
        "verification": {**base, "REFERENCE_EDUCATION_CSV": str(registry)},  # SIMULATED registry
        "admission": {**base, "ADMISSION_QR_KEY": "season-bench-" + os.urandom(8).hex()},
        "certificate": {**base, "CERTIFICATE_SIGNING_KEY": key},
        # SMS to a file (the sink gateway: SIMULATED delivery)
        "notification": {**base, "SMS_GATEWAY": "sink",
                         "SMS_SINK_PATH": str(workdir / "season-sms.jsonl")},
    }


def run(ctx: Context):
    take_season = ctx.wanted("season_10k_s")
    take_rss = ctx.wanted("peak_rss_mb")
    if not (take_season or take_rss):
        return
    from bench import applicants

    plan = Plan(ctx.n(int(os.environ.get("BENCH_SEASON_CANDIDATES") or CANDIDATES), LEAST))
    ctx.log(f"season: {plan.count} candidates, 7 services ({CLIENTS} client processes x "
            f"{THREADS} green threads); mix {plan.mix()}")
    load_before = _load()
    outcome, failure = None, None
    with fresh_vhost(ctx) as amqp, contextlib.ExitStack() as stack:
        dbs = {svc: stack.enter_context(fresh_pg(ctx, f"season_{svc}", create=False))
               for svc, _ in SERVICES}
        template = pg_url(dbs["account"]).replace(dbs["account"],
                                                  f"kaowu_bench_{ctx.run_id}_season_{{service}}")
        registry = ctx.workdir / "season-education-registry.csv"
        rows = applicants.registry_rows(plan.numbers)
        with open(registry, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        clock = SteppedClock(ctx.workdir / "season-clock", writer=True)
        db_pool = pool_budget()
        if db_pool != PRODUCTION_POOL:
            ctx.log(f"season: PostgreSQL is shared and short of connections: each service's "
                    f"pool is {db_pool[0]}+{db_pool[1]} (production {PRODUCTION_POOL[0]}+"
                    f"{PRODUCTION_POOL[1]})")
        services = Services(ctx, amqp, _configs(amqp, template, registry, ctx.workdir),
                            clock.path, db_pool)
        stack.callback(services.stop)
        t = time.monotonic()
        services.start()
        ctx.log(f"season: services up in {time.monotonic() - t:.0f} s")
        rss = RssSampler(services.pids, dbs)
        rss.start()
        stack.callback(rss.stop)
        watch = Watch({svc: pg_url(db) for svc, db in dbs.items()})
        stack.callback(watch.dispose)
        clients = Clients(amqp)
        stack.callback(clients.stop)
        clients.start()
        season = Season(ctx, clients, plan, services, watch, clock, rss)
        try:
            outcome = season.run()
        except Exception as exc:  # the RSS figure stands; the season's failure is raised below
            failure = exc
            ctx.log(f"season: failed: {exc}")
        rss.stop()
    load_after = _load()
    machine_load = {"load_average_before": load_before, "load_average_after": load_after,
                    "db_pool_per_service": list(db_pool),
                    "db_connections_peak_by_service": dict(sorted(rss.connections.items()))}

    if take_season and outcome is not None:
        # the target is for 10,000: a smaller run's seconds are not checked against it
        # (its extrapolation is in the detail, labelled as one)
        yield Figure("season_10k_s", outcome["total"], "s",
                     ceiling=TARGET_S if plan.count >= CANDIDATES else None,
                     detail={**outcome["detail"], **machine_load})
    if take_rss and rss.hwm_kb:
        name = max(rss.hwm_kb, key=rss.hwm_kb.get)
        yield Figure("peak_rss_mb", rss.hwm_kb[name] / 1024, "MiB", ceiling=RSS_CEILING_MB,
                     detail={"service": name, "candidates": plan.count,
                             "peak_rss_mb_by_service": {k: round(v / 1024, 1)
                                                        for k, v in sorted(rss.hwm_kb.items())},
                             "largest_rss_sampled_in_phase": {k: p for k, (_, p) in rss.rss_kb.items()},
                             **({"season_failed": str(failure)[:300]} if failure else {}),
                             **machine_load})
    if failure is not None:
        raise RuntimeError(f"the season did not complete: {failure}") from failure
