"""A RabbitMQ node and a PostgreSQL server of a test's own, for the tests that restart them
(a broker restart under the relay, ``make faults``'s restarts): started in a temporary
folder on free ports, stopped and removed after, so those tests run beside the others
without disturbing the machine's servers (``rabbit@localhost``, PostgreSQL's ``main``).

Each is started from the machine's installed binaries, with nothing of the machine's
configuration: the node reads no ``/etc/rabbitmq`` file (its own empty environment,
configuration and plugins files) and has a name, ports, cookie (``HOME``) and data of its
own, driven by ``rabbitmqctl -n <node>``; PostgreSQL is a fresh ``initdb`` (as the
``postgres`` user where we are root: it refuses root), durability off (a throwaway). The
fixtures (``tests/conftest.py``) skip, saying why, where the binaries are not installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.support import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # the scripts themselves, not /usr/sbin's su wrappers
POSTGRESQL_LIB = Path("/usr/lib/postgresql")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# a throwaway server: nothing needs to survive a crash of the machine
PG_SETTINGS = {"listen_addresses": "'127.0.0.1'", "fsync": "off", "synchronous_commit": "off",
               "full_page_writes": "off", "shared_buffers": "'32MB'", "max_connections": "100",
               "logging_collector": "off"}


class Unavailable(Exception):
    """The server cannot be started here (its binaries are not installed)."""


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _stop(proc: subprocess.Popen, sig: int):
    """``sig`` to the server, and SIGKILL to its whole session if it outlives STOP_TIMEOUT."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: the group is the server's
    proc.wait()


def _wait_until(ready, proc: subprocess.Popen, log: Path, what: str):
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}) at start:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start in {START_TIMEOUT:.0f} s:\n{_tail(log)}")
        time.sleep(0.1)


class Broker:
    """A RabbitMQ node in ``folder``; guest/guest on its default vhost."""

    def __init__(self, folder: Path):
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise Unavailable(f"RabbitMQ is not installed ({RABBITMQ_BIN}/rabbitmq-server)")
        self.folder = folder
        self.node = f"kaowu-{uuid.uuid4().hex[:8]}@localhost"
        self.port, dist_port = free_port(), free_port()
        self.amqp = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.log = folder / "rabbitmq.log"
        (folder / "rabbitmq-env.conf").touch()
        (folder / "rabbitmq.conf").touch()
        (folder / "enabled_plugins").write_text("[].\n")
        self.env = {
            **os.environ, "HOME": str(folder),  # its Erlang cookie, shared with rabbitmqctl
            "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"), "RABBITMQ_PID_FILE": str(folder / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}"}
        self.proc: subprocess.Popen | None = None

    def start(self):
        booted = self._booted()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(RABBITMQ_BIN / "rabbitmq-server")], cwd=self.folder,
                                         env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        # booted when this start's "Starting broker... completed" is in its own output (no
        # rabbitmqctl: a VM each); a listener on the port alone may be another process's that
        # took the free port first, while the node is still booting, unknown to rabbitmqctl
        _wait_until(lambda: self._booted() > booted and self._listening(), self.proc, self.log,
                    f"RabbitMQ node {self.node}")

    def _booted(self) -> int:
        """How many times the node's output says its boot completed."""
        try:
            return self.log.read_text(errors="replace").count("Starting broker... completed")
        except FileNotFoundError:
            return 0

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def rabbitmqctl(self, *args, check=False, timeout=None) -> subprocess.CompletedProcess:
        """rabbitmqctl on this node only (``-n``; its own cookie and environment)."""
        return subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args],
                              env=self.env, cwd=self.folder, check=check, timeout=timeout,
                              stdout=subprocess.DEVNULL)

    def stop(self):
        """SIGTERM: the server's script stops the node properly."""
        if self.proc is not None:
            _stop(self.proc, signal.SIGTERM)


class Postgres:
    """A PostgreSQL server in ``folder``, user ``postgres`` trusted."""

    def __init__(self, folder: Path):
        bins = sorted((p / "bin" for p in POSTGRESQL_LIB.glob("*") if (p / "bin/initdb").exists()),
                      key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0)
        if not bins:
            raise Unavailable(f"PostgreSQL is not installed ({POSTGRESQL_LIB}/*/bin/initdb)")
        self.bin = bins[-1]
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.log = folder / "postgresql.log"
        # initdb and the server refuse to run as root: as postgres, who owns the folder
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(folder, self.user, self.user)
        self.proc: subprocess.Popen | None = None

    def _as_owner(self) -> dict:
        return {"user": self.user, "group": self.user, "extra_groups": []} if self.user else {}

    def start(self):
        if self.proc is None:
            with open(self.log, "ab") as log:
                initdb = subprocess.run(
                    [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A",
                     "trust", "-E", "UTF8", "--no-locale", "--no-sync"], **self._as_owner(),
                    cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, timeout=START_TIMEOUT)
            if initdb.returncode != 0:
                raise RuntimeError(f"initdb failed:\n{_tail(self.log)}")
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.writelines(f"{k} = {v}\n" for k, v in {
                    **PG_SETTINGS, "port": str(self.port),
                    "unix_socket_directories": f"'{self.folder}'"}.items())
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(self.data)], **self._as_owner(),
                cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        _wait_until(self._accepting, self.proc, self.log, "PostgreSQL")

    def _accepting(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self.url, connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False

    def restart(self):
        """As ``pg_ctl restart -m fast``: every session ended, then the server back."""
        self.stop()
        self.start()

    def stop(self):
        if self.proc is not None:
            _stop(self.proc, signal.SIGINT)  # PostgreSQL's fast shutdown


FOLDER_PREFIX = "kaowu-servers-"


@contextlib.contextmanager
def private_folder(run_id: str = ""):
    """A temporary folder others may enter (the PostgreSQL server runs as another user),
    removed after. Named for the test run, so that the runner can stop a killed shard's
    servers (``stop_leftovers``)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{run_id}-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stop_leftovers(run_prefix: str) -> int:
    """SIGKILL to the servers left running from folders named for runs starting with
    ``run_prefix`` (a shard killed before its fixtures stopped them), and the folders
    removed; how many processes were killed."""
    marker = f"/{FOLDER_PREFIX}{run_prefix}"
    killed = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)
                killed += 1
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}{run_prefix}*"):
        shutil.rmtree(folder, ignore_errors=True)
    return killed
