"""RPC figures: nameko services run as in production (``nameko run``, a process of their
own, PostgreSQL, RabbitMQ), loaded by 4 client processes for a fixed time.

- ``echo_rpc``: a bare echo service (``bench/echo_service.py``): the ceiling of nameko RPC
  on this machine with these clients;
- ``profile_update_rpc``: account ``update_profile_section`` (read the stream, decide,
  append with the read model in the same transaction, answer the profile), on accounts
  pre-registered for the purpose (reported; ``echo_rpc`` of the same run in its detail);
- ``register_rpc``: account ``register`` with production password hashing;
- ``register_hash_share``: the share of the machine's cores that hashing alone takes at
  that rate: ``hash seconds per call * calls per second / cores``.

Every figure gets a fresh service process; the account service a fresh database; the
run a fresh vhost. To try a change: ``BENCH_ACCOUNT_SERVICE`` names another
``module:Class`` to run instead of ``services.account.service:AccountService``;
``BENCH_ACCOUNT_CONFIG`` (a JSON object) is merged into the account service's config
(e.g. ``{"RELAY": false}``); ``BENCH_ACCOUNT_REPLICAS`` runs that many account service
processes (default 1).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml
from hdrh.histogram import HdrHistogram

from bench.accounting import parse_stat
from bench.common import ROOT, Context, Figure, cores_available, fresh_pg, fresh_vhost, pg_url

CLIENTS = 4  # processes
THREADS = 4  # green threads per process, each with its own ClusterRpcProxy
DURATION = 8.0  # seconds of load per figure
ACCOUNTS_PER_THREAD = 8  # pre-registered for profile_update_rpc
MAX_WORKERS = 10  # the service's worker pool, as config.yml
CHEAP_HASH = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}  # for setting up only
START_TIMEOUT = 60.0
SETUP_TIMEOUT = 180.0


def _nameko() -> list[str]:
    script = Path(sys.executable).parent / "nameko"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nameko"]


@contextlib.contextmanager
def service(ctx: Context, name: str, module: str, rpc_name: str, config: dict, amqp: str,
            replicas: int = 1):
    """``nameko run`` of ``module``, in ``replicas`` processes of its own, until its RPC
    queue has that many consumers; stopped (SIGTERM, then SIGKILL) on the way out. Yields
    the processes' ids."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs, logs = [], []
    try:
        for i in range(replicas):
            # HTTP entrypoints (health, metrics) on a free loopback port of each one's own
            cfg = ctx.workdir / f"{name}-{i}.yml"
            web = {"WEB_SERVER_ADDRESS": f"127.0.0.1:{_free_port()}"}
            cfg.write_text(yaml.safe_dump({**config, **web}, allow_unicode=True))
            logs.append(ctx.workdir / f"{name}-{i}.log")
            command = [*_nameko(), "run", "--config", str(cfg), module]
            if os.environ.get("BENCH_PROFILE"):  # cProfile, in the measured windows only
                out = Path(os.environ["BENCH_PROFILE"]).resolve() / f"{name}-{i}.prof"
                out.parent.mkdir(parents=True, exist_ok=True)
                command = [sys.executable, "-m", "bench.profiled", str(out), "run", "--config",
                           str(cfg), module]
            with open(logs[-1], "wb") as log:
                procs.append(subprocess.Popen(
                    command, cwd=ROOT, env=env,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True))
        _wait_for_consumers(amqp, f"rpc-{rpc_name}", procs, logs)
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_consumers(amqp: str, queue: str, procs, logs):
    from kombu import Connection

    deadline = time.monotonic() + START_TIMEOUT
    with Connection(amqp, connect_timeout=5) as conn:
        while time.monotonic() < deadline:
            for proc, log_path in zip(procs, logs, strict=True):
                if proc.poll() is not None:
                    raise RuntimeError(f"the service exited ({proc.returncode}); see {log_path}:\n"
                                       + log_path.read_text()[-3000:])
            try:
                channel = conn.channel()
                ok = channel.queue_declare(queue, passive=True)
                channel.close()
                if ok.consumer_count >= len(procs):
                    return
            except conn.channel_errors:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"{queue} got fewer than {len(procs)} consumers within "
                       f"{START_TIMEOUT:.0f} s; see {logs}")


class Profiling:
    """Profiles of the services over a measured window only (set-up left out), on request:

    - ``BENCH_PROFILE=DIR``: cProfile in each service process (``bench.profiled``, told by
      SIGUSR1 / SIGUSR2), ``DIR/<name>-<i>.prof``. Under eventlet it counts time spent
      waiting in the hub against whatever frame switched to it: cumulative times mislead.
      With ``BENCH_PROFILE_MODE=sample`` the same files hold CPU-time stack samples instead
      (collapsed stacks; see ``bench.profiled``);
    - ``BENCH_PYSPY=DIR``: ``py-spy record`` (if on ``PATH`` or named by ``PYSPY``) of each
      service process, ``DIR/<name>-<pid>.txt`` in py-spy's raw (collapsed stacks) format.
      It counts a process waiting for a CPU as busy: on a saturated machine its shares
      approximate CPU shares."""

    def __init__(self, services: dict[str, list[int]]):
        self.services = services
        self.spies = []

    def start(self):
        if os.environ.get("BENCH_PROFILE"):
            for pids in self.services.values():
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGUSR1)
        spy_dir = os.environ.get("BENCH_PYSPY")
        spy = os.environ.get("PYSPY") or shutil.which("py-spy")
        if spy_dir and spy:
            Path(spy_dir).mkdir(parents=True, exist_ok=True)
            for name, pids in self.services.items():
                for pid in pids:
                    self.spies.append(subprocess.Popen(
                        [spy, "record", "--pid", str(pid), "--rate", "250",
                         "--format", "raw", "--output", str(Path(spy_dir) / f"{name}-{pid}.txt")],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self):
        if os.environ.get("BENCH_PROFILE"):
            for pids in self.services.values():
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGUSR2)
        for spy in self.spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        for spy in self.spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        self.spies = []


class CpuMeter:
    """CPU seconds spent by the service, the clients, PostgreSQL, RabbitMQ and the whole
    machine between ``start`` and ``stop`` (Linux ``/proc``; empty elsewhere)."""

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, service_pids: list[int], client_pids: list[int],
                 parts: dict[str, list[int]] | None = None, databases: str | None = None):
        self.groups = {"service": set(service_pids), "clients": set(client_pids)}
        # several services: each one's share of "service" too (cpu_service_<name>)
        self.parts = {name: set(pids) for name, pids in (parts or {}).items()}
        # the backends serving databases whose names start so (cpu_postgres_own): on a
        # shared machine "postgres" also counts everyone else's
        self.databases = databases

    def _sample(self) -> dict:
        out = {"service": 0.0, "clients": 0.0, "postgres": 0.0, "rabbitmq": 0.0,
               **{f"service_{name}": 0.0 for name in self.parts}}
        if self.databases:
            out["postgres_own"] = 0.0
        try:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        stat = f.read()
                except OSError:
                    continue
                comm, cpu = parse_stat(stat, self.TICK)
                if pid in self.groups["service"]:
                    out["service"] += cpu
                    for name, pids in self.parts.items():
                        if pid in pids:
                            out[f"service_{name}"] += cpu
                elif pid in self.groups["clients"]:
                    out["clients"] += cpu
                elif comm.startswith("postgres"):
                    out["postgres"] += cpu
                    if self.databases and self._serves(pid):
                        out["postgres_own"] += cpu
                elif comm.startswith("beam"):
                    out["rabbitmq"] += cpu
            with open("/proc/stat") as f:
                ticks = [int(x) for x in f.readline().split()[1:]]
            out["machine"] = (sum(ticks) - ticks[3] - ticks[4]) / self.TICK  # less idle, iowait
        except OSError:
            return {}
        return out

    def _serves(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().decode(errors="replace")
        except OSError:
            return False
        return f" {self.databases}" in title  # "postgres: 15/main: user db host …"

    def start(self):
        self._t0, self._s0 = time.perf_counter(), self._sample()

    def seconds(self) -> dict:
        """CPU seconds of each group since ``start`` (``cpu_other`` left out)."""
        s1 = self._sample()
        if not s1 or not self._s0:
            return {}
        return {k: s1[k] - self._s0.get(k, 0.0) for k in s1}

    def stop(self) -> dict:
        """Each group's share of one core over the window (1.0 = one core busy)."""
        elapsed, s1 = time.perf_counter() - self._t0, self._sample()
        if not s1 or not self._s0:
            return {}
        out = {f"cpu_{k}": round((s1[k] - self._s0[k]) / elapsed, 2) for k in s1}
        # anything else busy meanwhile (the machine is shared): a warning sign for the figure
        out["cpu_other"] = round(max(0.0, out["cpu_machine"] - sum(
            v for k, v in out.items() if k not in ("cpu_machine", "cpu_postgres_own")
            and not k.startswith("cpu_service_"))), 2)
        return out


def load(ctx: Context, amqp: str, mode: str, duration: float, service_pids: list[int],
         threads: int = THREADS, parts: dict[str, list[int]] | None = None, per_proc=None,
         **extra) -> dict:
    """Start CLIENTS client processes (``threads`` green threads each; ``extra`` and
    ``per_proc(proc)`` go into each one's spec), wait until all are set up, let them run
    for ``duration`` seconds together, and merge what they report (``parts``: the service
    processes by name, for CPU and profiles per service)."""
    clients = []
    try:
        for proc in range(CLIENTS):
            spec = {"amqp": amqp, "mode": mode, "threads": threads, "duration": duration,
                    "proc": proc, **extra, **(per_proc(proc) if per_proc else {})}
            clients.append(subprocess.Popen(
                [sys.executable, "-W", "ignore", "-m", "bench.rpc_client", json.dumps(spec)], cwd=ROOT,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for c in clients:
            line = _readline(c, SETUP_TIMEOUT)
            if line.strip() != "ready":
                raise RuntimeError(f"an RPC client did not get ready: {line.strip()!r}")
        meter = CpuMeter(service_pids, [c.pid for c in clients], parts)
        profiles = Profiling(parts or {"service": service_pids})
        profiles.start()
        meter.start()
        for c in clients:
            c.stdin.write("go\n")
            c.stdin.flush()
        reports = [json.loads(_readline(c, duration + 120)) for c in clients]
        cpu = meter.stop()
        profiles.stop()
        for c in clients:
            c.wait(30)
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
                c.wait()
    hist = HdrHistogram(1, 120_000_000, 3)
    for r in reports:
        hist.decode_and_add(r["histogram"])
    calls = sum(r["calls"] for r in reports)
    rate = sum(r["calls"] / r["elapsed"] for r in reports)
    errors = sum(r["errors"] for r in reports)
    exhausted = sum(r.get("exhausted", 0) for r in reports)
    if errors:
        ctx.log(f"{mode}: {errors} calls failed, first: {next(r['first_error'] for r in reports if r['first_error'])}")
    if cpu.get("cpu_service") and rate:
        cpu["service_cpu_ms_per_call"] = round(cpu["cpu_service"] / rate * 1000, 3)
    return {
        "rate": rate,
        "detail": {"clients": CLIENTS, "threads_per_client": threads, "seconds": duration,
                   "calls": calls, "errors": errors,
                   **({"threads_out_of_work": exhausted} if exhausted else {}),
                   "p50_ms": hist.get_value_at_percentile(50) / 1000,
                   "p99_ms": hist.get_value_at_percentile(99) / 1000,
                   "max_ms": hist.get_max_value() / 1000, **cpu},
    }


def _readline(proc, timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"an RPC client said nothing for {timeout:.0f} s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"an RPC client exited ({proc.wait()}) without a report")
    return line


def hash_seconds(repeat: int = 20) -> float:
    """Median wall time of one production ``PasswordHasher().hash``, alone, one thread."""
    from shared.passwords import PasswordHasher

    hasher = PasswordHasher()
    for _ in range(2):
        hasher.hash("Secret123pass")
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        hasher.hash("Secret123pass")
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _account_config(amqp: str, database_template: str, hashing: dict | None) -> dict:
    cfg = {"AMQP_URI": amqp, "DATABASE_URL": database_template,
           "max_workers": MAX_WORKERS, "serializer": "json"}
    if hashing is not None:
        cfg["PASSWORD_HASH"] = hashing
    cfg.update(json.loads(os.environ.get("BENCH_ACCOUNT_CONFIG") or "{}"))
    return cfg


def run(ctx: Context):
    take_echo = ctx.wanted("echo_rpc", "profile_update_rpc")  # echo is profile's baseline
    take_profile = ctx.wanted("profile_update_rpc")
    take_register = ctx.wanted("register_rpc", "register_hash_share")
    if not (take_echo or take_profile or take_register):
        return
    duration = ctx.seconds(DURATION, 2.0)
    account_module = os.environ.get("BENCH_ACCOUNT_SERVICE",
                                    "services.account.service:AccountService")
    replicas = int(os.environ.get("BENCH_ACCOUNT_REPLICAS") or 1)
    with fresh_vhost(ctx) as amqp:
        echo = None
        if take_echo:
            ctx.log(f"echo_rpc: {CLIENTS} client processes x {THREADS} green threads, "
                    f"{duration:g} s")
            echo_cfg = {"AMQP_URI": amqp, "max_workers": MAX_WORKERS, "serializer": "json"}
            with service(ctx, "echo", "bench.echo_service:EchoService", "echo", echo_cfg,
                         amqp) as svc:
                echo = load(ctx, amqp, "echo", duration, svc)
            yield Figure("echo_rpc", echo["rate"], "calls/s", detail=echo["detail"])

        if take_profile:
            accounts = ctx.n(ACCOUNTS_PER_THREAD, 2)
            ctx.log(f"profile_update_rpc: {CLIENTS * THREADS * accounts} accounts registered "
                    f"first ({account_module})")
            with fresh_pg(ctx, "profile_account", create=False) as db:
                template = pg_url(db).replace(db, f"kaowu_bench_{ctx.run_id}_profile_{{service}}")
                cfg = _account_config(amqp, template, CHEAP_HASH)
                with service(ctx, "account_profile", account_module, "account", cfg, amqp,
                             replicas) as svc:
                    prof = load(ctx, amqp, "profile", duration, svc,
                                accounts_per_thread=accounts)
            # reported: the ratio-to-echo target is retired (issue 18)
            yield Figure("profile_update_rpc", prof["rate"], "calls/s",
                         detail={**prof["detail"], "accounts": CLIENTS * THREADS * accounts,
                                 "echo_rpc": echo["rate"] if echo else None,
                                 "service_processes": replicas})

        if take_register:
            ctx.log("register_rpc: production password hashing")
            with fresh_pg(ctx, "register_account", create=False) as db:
                template = pg_url(db).replace(db,
                                              f"kaowu_bench_{ctx.run_id}_register_{{service}}")
                cfg = _account_config(amqp, template, None)
                with service(ctx, "account_register", account_module, "account", cfg, amqp,
                             replicas) as svc:
                    reg = load(ctx, amqp, "register", duration, svc)
            yield Figure("register_rpc", reg["rate"], "calls/s",
                         detail={**reg["detail"], "service_processes": replicas})

            per_hash = hash_seconds()
            cores = cores_available()
            detail = {"hash_ms": round(per_hash * 1000, 2), "cores": cores,
                      "register_calls_per_s": round(reg["rate"], 1)}
            busy = reg["detail"].get("cpu_machine", 0) - reg["detail"].get("cpu_other", 0)
            if busy > 0:  # the same hashing as a share of the CPU this benchmark spent
                detail["share_of_bench_cpu"] = round(per_hash * reg["rate"] / busy, 3)
            yield Figure("register_hash_share", per_hash * reg["rate"] / cores,
                         "share of cores", detail=detail)
