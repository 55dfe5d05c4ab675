"""The system under test: every event-sourced service as its own ``nameko run`` process, on
loopback, with databases and a broker vhost of this run's own (created here, dropped after).

Processes are what a fault can kill (``kill -9``) and restart; the broker and PostgreSQL are
the ``Servers`` given (the machine's own by default: ``faults.servers``), whose restarts are
faults too (``faults.inject``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, text

from faults.servers import Servers, machine
from shared.runner import CONFIG_FILE, ROOT, nameko_command, service_environment, service_targets

# the services the load reaches; the others need the later phases of a season
SERVICES = ("account", "registration", "verification")
RPC_TIMEOUT = 20.0


class System:
    def __init__(self, workdir: Path, services=SERVICES, servers: Servers | None = None):
        self.run_id = uuid.uuid4().hex[:8]
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.services = list(services)
        self.servers = servers or machine()
        self.vhost = f"kaowu_faults_{self.run_id}"
        self.amqp = self.servers.amqp.rstrip("/") + "/" + self.vhost
        self.databases = {s: f"kaowu_faults_{self.run_id}_{s}" for s in self.services}
        self.procs: dict[str, subprocess.Popen] = {}
        self._local = threading.local()
        self._lock = threading.RLock()
        self._supervising = False
        self.restarts: list[str] = []  # services the supervisor restarted after a crash
        self.ports = {}

    # -- resources ---------------------------------------------------------------------

    def db_url(self, service: str) -> str:
        base = self.servers.pg_admin.rsplit("/", 1)[0]
        return f"{base}/{self.databases[service]}"

    def create(self):
        ctl = self.servers.rabbitmqctl
        ctl("-q", "add_vhost", self.vhost, check=True)
        ctl("-q", "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*", check=True)
        engine = create_engine(self.servers.pg_admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            for name in self.databases.values():
                c.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()

    def destroy(self):
        self.stop()
        self.servers.rabbitmqctl("-q", "delete_vhost", self.vhost, check=False)
        engine = create_engine(self.servers.pg_admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            for name in self.databases.values():
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    # -- processes ---------------------------------------------------------------------

    def env(self, service: str) -> dict:
        env = service_environment()
        env.update(AMQP_URI=self.amqp, DATABASE_URL=self.db_url(service),
                   WEB_SERVER_ADDRESS=f"127.0.0.1:{self.port(service)}", MAX_WORKERS="10",
                   PYTHONUNBUFFERED="1", LOG_LEVEL="DEBUG")  # every call logged: scanned for PII
        return env

    def port(self, service: str) -> int:
        if service not in self.ports:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.ports[service] = s.getsockname()[1]
        return self.ports[service]

    def start(self, service: str | None = None):
        with self._lock:
            self._spawn(service)
        self.wait_ready([service] if service else self.services)

    def _spawn(self, service: str | None):
        for name in [service] if service else self.services:
            log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it)
            self.procs[name] = subprocess.Popen(
                [*nameko_command(), "run", "--config", str(CONFIG_FILE), *service_targets(name)],
                cwd=ROOT, env=self.env(name), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, services, timeout=90.0):
        deadline = time.monotonic() + timeout
        for name in services:
            while True:
                try:
                    self.call(name, "status", timeout=5)
                    break
                except Exception:
                    if self.procs[name].poll() is not None:
                        raise RuntimeError(f"{name} exited; see {self.workdir / (name + '.log')}") from None
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not answer in {timeout:.0f} s") from None
                    time.sleep(0.3)

    def kill9(self, service: str):
        with self._lock:
            proc = self.procs[service]
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def pause(self, service: str):
        """SIGSTOP: the process stands still where it is (a transaction stays open)."""
        os.killpg(self.procs[service].pid, signal.SIGSTOP)

    def resume(self, service: str):
        os.killpg(self.procs[service].pid, signal.SIGCONT)

    def supervise(self, interval: float = 1.0):
        """Restart a service whose process died, as Kubernetes restarts a crashed pod (a
        broker restart can end a nameko container in the middle of sending a reply)."""
        self._supervising = True

        def loop():
            while self._supervising:
                time.sleep(interval)
                with self._lock:
                    dead = [n for n, p in self.procs.items() if p.poll() is not None]
                for name in dead:
                    if not self._supervising:
                        return
                    self.restarts.append(name)
                    with contextlib.suppress(Exception):  # retried on the next round
                        self.start(name)

        threading.Thread(target=loop, daemon=True).start()

    def stop(self):
        self._supervising = False
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.items() if p.poll() is None}

    # -- RPC -----------------------------------------------------------------------------

    def call(self, service: str, method: str, *args, timeout: float = RPC_TIMEOUT):
        """An RPC on this thread's own proxy (a standalone proxy is not shared across
        threads); a broken proxy (a broker restart) is replaced on the next call."""
        key = timeout
        proxies = getattr(self._local, "proxies", None)
        if proxies is None:
            proxies = self._local.proxies = {}
        if key not in proxies:
            cm = ClusterRpcProxy({"AMQP_URI": self.amqp}, timeout=timeout)
            proxies[key] = (cm, cm.start())
        cm, proxy = proxies[key]
        try:
            return getattr(proxy[service], method)(*args)
        except Exception as exc:
            if not _is_answer(exc):
                with contextlib.suppress(Exception):
                    cm.stop()
                proxies.pop(key, None)
            raise


def _is_answer(exc) -> bool:
    """A service answered (a refusal is an answer); otherwise the proxy may be broken."""
    from nameko.exceptions import RemoteError

    from shared.errors import KaowuError

    return isinstance(exc, (KaowuError, RemoteError))
