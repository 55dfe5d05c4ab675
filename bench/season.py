"""The whole-season figures (issues 7 and 18): candidates from sign-up (注册账号) to certificate
(证书) through every service, each a process of its own, as in production.

The season is ``kaowu demo``'s: ``cli.season.SeasonDriver`` (people, plan, clocks, ID
numbers written once there) runs here on the bench's services and clock, and observes the
services only through their RPCs (``get_application``, ``application_counts``, …) and
their ``/metrics``; the bench reads no service's tables.

- ``season_10k_s``: wall seconds of the driver's season for CANDIDATES candidates
  (``--scale`` scales the count; ``detail.candidates``), target <= 240 s at 10,000;
  ``detail.phase_seconds`` has each of the driver's phases, ``detail.funnel`` the
  services' funnel against the plan;
- ``season_core_s_per_candidate``: CPU (``/proc/<pid>/stat``, sampled every second by
  ``CpuSampler``) of the seven services, RabbitMQ's ``beam.smp`` and the PostgreSQL
  backends connected to the season's databases, over the season, ÷ candidates, less the
  password hashing's own CPU (hashing RPCs counted by the account service's metrics ×
  one production hash's CPU measured here): target <= 0.2 core-s;
- ``per_candidate_counts``: transactions (``pg_stat_database.xact_commit`` of the
  season's databases), database round trips and statements, publishes, deliveries
  (messages delivered to consumers), deliveries passed over (of those, messages with none
  of the consumer's types), events passed over (positions a consumer moved over without
  applying: its upstream's log less what it applied, whatever the routing), delivered
  unhandled (events of other types inside the delivered messages) and RPCs (the
  services' ``/metrics``) per candidate (report; the value is deliveries passed over);
- ``peak_rss_mb``: the largest resident set of any service process during the season
  (``VmHWM``), target <= 300 MiB.

How. account, registration, verification, admission, scoring, certificate and
notification run as ``nameko run`` processes (``max_workers`` 10), each on a fresh
PostgreSQL database, on a fresh RabbitMQ vhost, with the production password hashing and
the default timer intervals. The driver works with CLIENTS × THREADS threads, each with
its own RPC client, in the bench process.

Time. The session is ``shared.session.demo_session`` with windows of SLOT_MINUTES and
rooms for everyone (``session_document``); the services run on a shared *stepped* clock
(``SteppedClock``: the system clock plus an offset in a memory-mapped file) that the driver
moves to the next window as soon as the work of the one before is done (``DriverClock``).

The people are the driver's (``cli.season.make_plan``: its archetypes and weights), with a
SIMULATED education registry of the bench's own (``bench_people``) so that the commitment
routes pass the automatic check. ``Plan`` and ``session_document`` also serve
``bench/memory.py``.

Knobs: ``BENCH_SEASON_CANDIDATES`` (the count at ``--scale 1``, default 10,000);
``BENCH_SEASON_POOL=size,overflow`` (each service's PostgreSQL pool);
``BENCH_SEASON_PROFILE=DIR`` (cProfile in every service process, one file per service
and driver phase, ``BENCH_SEASON_PROFILE_PHASES=a,b`` to take some phases only).
"""

from __future__ import annotations

import contextlib
import csv
import mmap
import os
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
CALL_TIMEOUT = 60.0  # seconds a client waits for one answer (the machine may be shared)
STALL_S = 180.0  # an awaited effect that has not moved for this long: the season is stuck
SLOT_MINUTES = 600  # demo_session slot: longer than any phase's work takes
SPOT_RATE = 0.02  # 抽查: the share of passed cases drawn
SEED = 2026
BASE = 7_000_000  # candidate numbers BASE..BASE+n-1 (bench.common.resident_id: born 1969)
ROOMS_PER_VENUE = 40
AUTHORITY = {"staff_id": "bench-authority"}  # 考试机构

SERVICES = (
    ("account", "services.account.service:AccountService"),
    ("registration", "services.registration.service:RegistrationService"),
    ("verification", "services.verification.service:VerificationService"),
    ("admission", "services.admission.service:AdmissionService"),
    ("scoring", "services.scoring.service:ScoringService"),
    ("certificate", "services.certificate.service:CertificateService"),
    ("notification", "services.notification.service:NotificationService"),
)

# the processes: started with ``python -c`` so eventlet patches before anything else loads
_SERVE = ("import eventlet; eventlet.monkey_patch()\n"
          "import sys\nfrom bench.season import serve\nsys.exit(serve())")


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
        import shared.eventstore.store as eventstore  # open_store's make_engine

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


PRODUCTION_POOL = (10, 10)  # shared.eventstore.engine.make_engine's PostgreSQL pool


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
        self.web: dict[str, str] = {}  # name -> host:port of its /metrics

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
            self.web[name] = web["WEB_SERVER_ADDRESS"]
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
        "admission": {**base, "ADMISSION_QR_KEY": "season-bench-" + os.urandom(16).hex()},
        "certificate": {**base, "CERTIFICATE_SIGNING_KEY": key},
        # SMS to a file (the sink gateway: SIMULATED delivery)
        "notification": {**base, "SMS_GATEWAY": "sink",
                         "SMS_SINK_PATH": str(workdir / "season-sms.jsonl")},
    }



# -- the season: cli.season's driver on the bench's services and clock ----------------------------

class DriverClock:
    """``cli.season.SeasonDriver``'s clock protocol on the bench's stepped clock: waiting for
    a window moves the clock there (every service reads the same mapped offset)."""

    def __init__(self, clock: SteppedClock):
        self.clock = clock

    def now(self) -> datetime:
        return self.clock.now()

    def sleep_until(self, when: datetime, tick=None):
        self.clock.jump_to(when)
        if tick:
            tick()

    def pause(self, seconds: float):
        time.sleep(seconds)


def bench_people(count: int) -> list:
    """SIMULATED registry people for the driver's commitment routes (the shipped registry
    has a handful): valid ID numbers far from the driver's own (``identity_base`` 0)."""
    from cli.season import RegistryPerson, resident_id

    return [RegistryPerson(resident_id(BASE + i), "王" + "伟芳娜敏静丽强磊"[i % 8],
                           f"1{BASE + i:011d}SIM", "本科", "模拟大学", "测控技术与仪器",
                           "science_engineering", "2010-07-01") for i in range(count)]


def write_registry(path: Path, people: list):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id_number", "name", "certificate_no", "level", "school", "major",
                    "major_category", "graduated_on"])
        for p in people:
            w.writerow([p.id_number, p.name, p.certificate_no, p.level, p.school, p.major,
                        p.major_category, p.graduated_on])


class BenchReporter:
    """The driver's reporter: each phase's wall seconds and the RSS sampler's phase."""

    def __init__(self, ctx: Context, rss: RssSampler, services: Services):
        from cli.season import Reporter

        self.ctx, self.rss, self.base = ctx, rss, Reporter()
        self.services, self.pids = services, list(services.pids.values())
        self.phases: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def _close(self):
        if self._current:
            _signal_profiles(self.pids, signal.SIGUSR2)
            name, t = self._current
            self.phases[name] = round(self.phases.get(name, 0) + time.monotonic() - t, 2)
            self._current = None

    def phase(self, name: str, description: str):
        # a service that died (the broker restarted under it …) ends the season here rather
        # than leaving the driver to wait out every call's timeout
        if self.services.exited():
            raise RuntimeError(f"service(s) {', '.join(self.services.exited())} exited; see "
                               f"their logs in {self.ctx.workdir}")
        self._close()
        self._current = (name, time.monotonic())
        self.rss.phase = name
        _signal_profiles(self.pids, signal.SIGUSR1, name)
        self.ctx.log(f"season: {name}: {description}")

    def waiting(self, description, until, now):
        pass

    def note(self, text: str):
        self.ctx.log(f"season:   {text}")

    def task(self, description: str, total: int):
        if self.services.exited():
            raise RuntimeError(f"service(s) {', '.join(self.services.exited())} exited; see "
                               f"their logs in {self.ctx.workdir}")
        return self.base.task(description, total)


class CpuSampler:
    """Every second, the CPU (``/proc/<pid>/stat``) of the services, RabbitMQ (``beam.smp``:
    the broker is shared with whatever else uses it) and the PostgreSQL backends connected to
    the season's databases, into a ``CpuAccount``; the driver's process apart."""

    def __init__(self, services: dict[str, int], databases: list[str], interval: float = 1.0):
        from bench.accounting import CpuAccount

        self.services, self.databases, self.interval = services, databases, interval
        self.account = CpuAccount()
        self.broker = [pid for pid in _all_pids() if (_comm(pid) or "").startswith("beam")]
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self.driver0 = 0.0

    def _backends(self) -> list[int]:
        from sqlalchemy import text

        from bench.common import _admin_engine

        engine = _admin_engine()
        try:
            with engine.connect() as c:
                return [r[0] for r in c.execute(text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = ANY(:d)"),
                    {"d": self.databases}).all()]
        finally:
            engine.dispose()

    def sample(self) -> dict[str, dict[int, float]]:
        from bench.accounting import read_cpu

        groups = {"services": list(self.services.values()), "rabbitmq": self.broker}
        with contextlib.suppress(Exception):  # a sample missed is no harm
            groups["postgres"] = self._backends()
        out = {}
        for group, pids in groups.items():
            out[group] = {pid: got[1] for pid in pids if (got := read_cpu(pid))}
        return out

    def _run(self):
        while not self._stop.wait(self.interval):
            for group, samples in self.sample().items():
                self.account.add(group, samples)

    def start(self):
        self.account.start(self.sample())
        self.driver0 = time.process_time()
        self.thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self.thread.join(10)
        for group, samples in self.sample().items():
            self.account.add(group, samples)
        self.driver_cpu_s = time.process_time() - self.driver0
        return self.account.seconds()


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _comm(pid: int) -> str | None:
    from bench.accounting import read_cpu

    got = read_cpu(pid)
    return got[0] if got else None


def hash_cpu_seconds(repeat: int = 5) -> float:
    """Median CPU (this thread's) of one production ``PasswordHasher().hash``."""
    from shared.passwords import PasswordHasher

    hasher = PasswordHasher()
    hasher.hash("warm-up-2026")
    took = []
    for i in range(repeat):
        t = time.thread_time()
        hasher.hash(f"Season{i}pass")
        took.append(time.thread_time() - t)
    return sorted(took)[len(took) // 2]


def scrape(services: Services) -> dict[str, str]:
    """Each service's ``GET /metrics`` (Prometheus text)."""
    import urllib.request

    out = {}
    for name, address in services.web.items():
        with contextlib.suppress(OSError), \
                urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as r:
            out[name] = r.read().decode()
    return out


HASHING_RPCS = ("register", "create_staff", "login")  # account RPCs that run argon2 once


def metric_totals(pages: dict[str, str]) -> dict[str, float]:
    """The services' own counters, summed over the services."""
    from bench.accounting import prometheus_sum

    def total(name, **where):
        return sum(prometheus_sum(t, name, where) for t in pages.values())

    return {
        "round_trips": total("kaowu_db_round_trips_total"),
        "statements": total("kaowu_db_round_trips_total", kind="statement"),
        "commits": total("kaowu_db_round_trips_total", kind="commit"),
        "publishes": total("kaowu_relay_published_total"),
        "events_appended": total("kaowu_events_appended_total"),
        "deliveries": total("kaowu_consumer_deliveries_total"),
        "deliveries_passed_over": total("kaowu_consumer_deliveries_passed_over_total"),
        "events_applied": total("kaowu_consumer_applied_total"),
        "events_duplicates": total("kaowu_consumer_duplicates_total"),
        "events_passed_over": total("kaowu_consumer_passed_over_total"),
        "delivered_unhandled": total("kaowu_consumer_delivered_unhandled_total"),
        "pulled": total("kaowu_consumer_pulled_total"),
        "rpcs": total("kaowu_entrypoint_calls_total", kind="rpc"),
        "hashing_rpcs": sum(prometheus_sum(pages.get("account", ""), "kaowu_entrypoint_calls_total",
                                           {"kind": "rpc", "entrypoint": m})
                            for m in HASHING_RPCS),
    }


def xact_commits(databases: list[str]) -> float:
    """PostgreSQL's committed transactions in these databases (``pg_stat_database``)."""
    from sqlalchemy import text

    from bench.common import _admin_engine

    engine = _admin_engine()
    try:
        with engine.connect() as c:
            return float(c.execute(text("SELECT coalesce(sum(xact_commit), 0) FROM "
                                        "pg_stat_database WHERE datname = ANY(:d)"),
                                   {"d": databases}).scalar())
    finally:
        engine.dispose()


def counts_before(services: Services, databases: list[str]) -> dict[str, float]:
    return {**metric_totals(scrape(services)), "transactions": xact_commits(databases)}


def run(ctx: Context):
    names = ("season_10k_s", "season_core_s_per_candidate", "per_candidate_counts",
             "peak_rss_mb")
    if not ctx.wanted(*names):
        return
    from bench.accounting import core_seconds_per_candidate, delta, per_candidate
    from cli.rpc import RpcClient
    from cli.season import SeasonDriver
    from shared.session import SessionDocument

    n = ctx.n(int(os.environ.get("BENCH_SEASON_CANDIDATES") or CANDIDATES), LEAST)
    people = bench_people(n)
    ctx.log(f"season: {n} candidates, 7 services, cli.season's driver ({THREADS * CLIENTS} "
            "threads)")
    load_before = _load()
    hash_cpu = hash_cpu_seconds()
    with fresh_vhost(ctx) as amqp, contextlib.ExitStack() as stack:
        dbs = {svc: stack.enter_context(fresh_pg(ctx, f"season_{svc}", create=False))
               for svc, _ in SERVICES}
        template = pg_url(dbs["account"]).replace(dbs["account"],
                                                  f"kaowu_bench_{ctx.run_id}_season_{{service}}")
        registry = ctx.workdir / "season-education-registry.csv"
        write_registry(registry, people)
        clock = SteppedClock(ctx.workdir / "season-clock", writer=True)
        db_pool = pool_budget()
        services = Services(ctx, amqp, _configs(amqp, template, registry, ctx.workdir),
                            clock.path, db_pool)
        stack.callback(services.stop)
        t = time.monotonic()
        services.start()
        ctx.log(f"season: services up in {time.monotonic() - t:.0f} s")
        rss = RssSampler(services.pids, dbs)
        rss.start()
        stack.callback(rss.stop)
        reporter = BenchReporter(ctx, rss, services)

        def factory(timeout=CALL_TIMEOUT):
            return RpcClient(amqp, timeout=timeout)

        def session(now, minutes):
            return SessionDocument.from_dict(session_document(now, n))

        driver = SeasonDriver(factory, candidates=n, minutes_per_window=SLOT_MINUTES, seed=SEED,
                              parallelism=CLIENTS * THREADS, clock=DriverClock(clock),
                              reporter=reporter, spot_rate=SPOT_RATE, identity_base=0,
                              settle=STALL_S, margin=1.0, timeout=CALL_TIMEOUT, people=people,
                              poll=1.0, make_session=session,
                              # the benchmark's session is its own: nobody applies beside it,
                              # and serving others would add RPCs to what it measures
                              serve_outside=False)
        databases = list(dbs.values())
        before = counts_before(services, databases)
        cpu = CpuSampler(services.pids, databases)
        cpu.start()
        t0 = time.monotonic()
        result = driver.run()
        seconds = time.monotonic() - t0
        cpu_s = cpu.stop()
        reporter._close()
        after = counts_before(services, databases)
        rss.stop()
    counts = delta(before, after)
    load_after = _load()
    machine_load = {"load_average_before": load_before, "load_average_after": load_after,
                    "db_pool_per_service": list(db_pool)}
    from collections import Counter

    wrong = [row for row, *_, agree in result.comparison if not agree]
    funnel = {row: {"intended": want, "services": got} for row, want, got, _ in result.comparison}
    common = {"candidates": n, "funnel_differs": wrong, **machine_load}
    if result.deviations:  # calls refused or failed, effects not seen in time: the table says so
        common["errors"] = len(result.deviations)
    yield Figure("season_10k_s", seconds, "s", ceiling=TARGET_S if n >= CANDIDATES else None,
                 detail={**common, "phase_seconds": reporter.phases, "funnel": funnel,
                         "mix": dict(Counter(c.path.archetype for c in result.plan)),
                         "calls": result.calls, "deviations": len(result.deviations),
                         "first_deviations": [vars(d) for d in result.deviations[:5]],
                         **({"extrapolated_10k_s": {
                             "note": f"EXTRAPOLATION, not a measurement: x {FULL}/{n}",
                             "seconds": round(seconds * FULL / n, 1)}} if n < FULL else {})})
    hashes = counts["hashing_rpcs"]
    core = core_seconds_per_candidate(cpu_s, int(hashes), hash_cpu, n)
    yield Figure("season_core_s_per_candidate", core["value"], "core-s", ceiling=0.2,
                 detail={**common, **{k: (round(v, 4) if isinstance(v, float) else v)
                                      for k, v in core.items() if k != "value"},
                         "hashes": int(hashes), "hash_cpu_s_each": round(hash_cpu, 4),
                         "driver_cpu_s (not counted)": round(cpu.driver_cpu_s, 1),
                         "note": "RabbitMQ's beam.smp is shared with other users of the broker; "
                                 "PostgreSQL: the backends of the season's databases only"})
    totals = {"transactions": counts["transactions"], "round_trips": counts["round_trips"],
              "statements": counts["statements"],
              "publishes": counts["publishes"], "deliveries": counts["deliveries"],
              "deliveries_passed_over": counts["deliveries_passed_over"],
              "events_passed_over": counts["events_passed_over"],
              "delivered_unhandled": counts["delivered_unhandled"], "rpcs": counts["rpcs"]}
    each = per_candidate(totals, n)
    yield Figure("per_candidate_counts", each["deliveries_passed_over"], "passed over/candidate",
                 detail={**common, "per_candidate": each,
                         "totals": {k: v for k, v in counts.items()},
                         "round_trips": "the services' kaowu_db_round_trips_total (counted "
                                        "client-side: statements, begins, commits, rollbacks)"})
    if rss.hwm_kb:
        name = max(rss.hwm_kb, key=rss.hwm_kb.get)
        yield Figure("peak_rss_mb", rss.hwm_kb[name] / 1024, "MiB", ceiling=RSS_CEILING_MB,
                     detail={"service": name, "candidates": n,
                             "peak_rss_mb_by_service": {k: round(v / 1024, 1)
                                                        for k, v in sorted(rss.hwm_kb.items())},
                             "largest_rss_sampled_in_phase": {k: p for k, (_, p) in rss.rss_kb.items()},
                             **machine_load})
