"""``make run``: start every Kaowu service as its own ``nameko run`` process.

    python -m shared.runner              # every services/<name>/service.py
    python -m shared.runner account ...  # only these

Checks that RabbitMQ (and PostgreSQL, when ``DATABASE_URL`` points there) answer first,
prefixes each child's output with its service name, and stops them all on Ctrl-C or
SIGTERM. If one child dies, the others are stopped and the runner exits 1.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from shared.config import amqp_uri, database_url, mask_url

ROOT = Path(__file__).resolve().parent.parent
SERVICES_DIR = ROOT / "services"
CONFIG_FILE = ROOT / "config.yml"
VAR_DIR = ROOT / "var"

GATEWAY = "gateway"
DEFAULT_GATEWAY_PORT = 8000
# Each service's own HTTP port (probes, /metrics; the gateway's API): several services
# share this machine. SERVICE_PORT_BASE + the offset here (8101–8106 by default); services
# not named here get the next free port from SERVICE_PORT_BASE + 7 on. A second copy of
# `make run` beside the first sets SERVICE_PORT_BASE and GATEWAY_PORT of its own.
DEFAULT_SERVICE_PORT_BASE = 8100
HTTP_PORT_OFFSETS = {"account": 1, "registration": 2, "verification": 3, "admission": 4,
                     "scoring": 5, "certificate": 6}
HTTP_PORTS = {name: DEFAULT_SERVICE_PORT_BASE + n for name, n in HTTP_PORT_OFFSETS.items()}
FIRST_SPARE_OFFSET = len(HTTP_PORT_OFFSETS) + 1
CONNECT_TIMEOUT = 3  # seconds, for the broker and database checks
STOP_MARGIN = 10.0  # seconds a stop may take beyond the longest wait (transactions, exit)

# nameko 2.14's CLI warns on every start that pkg_resources and eventlet are deprecated;
# those lines say nothing about Kaowu. (The user's own PYTHONWARNINGS still applies.)
_QUIET = "ignore::UserWarning:nameko.cli.main,ignore::Warning:nameko.cli.commands"

_COLOURS = ("36", "33", "35", "32", "34", "31", "96", "93")


class StartupError(Exception):
    """A precondition failed; the message tells the user what to do."""


# ---------------------------------------------------------------- discovery


def discover_services(services_dir: Path = SERVICES_DIR) -> list[str]:
    """Names of the packages ``services/<name>/`` that have a ``service.py``, sorted."""
    if not services_dir.is_dir():
        return []
    return sorted(
        path.parent.name
        for path in services_dir.glob("*/service.py")
        if path.parent.name.isidentifier() and not path.parent.name.startswith("_")
    )


@cache  # read once per process: the fault harness starts services again and again
def service_targets(name: str, services_dir: Path = SERVICES_DIR) -> list[str]:
    """The ``nameko run`` arguments for one service package, found without importing it.

    A bare module path would make nameko run every class in the module that has
    entrypoints, imported base classes included; so name the classes that set
    ``name = "..."``. Falls back to the module path if none is found (or the file does
    not parse: nameko then shows the error).
    """
    module = f"services.{name}.service"
    try:
        tree = ast.parse((services_dir / name / "service.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return [module]
    classes = [
        node.name for node in tree.body if isinstance(node, ast.ClassDef) and _names_a_service(node)
    ]
    return [f"{module}:{cls}" for cls in classes] or [module]


def _names_a_service(node: ast.ClassDef) -> bool:
    for stmt in node.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        if (
            any(isinstance(t, ast.Name) and t.id == "name" for t in targets)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, str)
        ):
            return True
    return False


def _port_setting(variable: str, default: int, top: int = 65535) -> int:
    raw = (os.environ.get(variable) or "").strip() or str(default)
    try:
        port = int(raw)
    except ValueError:
        raise StartupError(f"{variable} must be a port number, not {raw!r}") from None
    if not 0 < port <= top:
        raise StartupError(f"{variable} must be between 1 and {top}, not {port}")
    return port


def gateway_port() -> int:
    return _port_setting("GATEWAY_PORT", DEFAULT_GATEWAY_PORT)


def service_port_base() -> int:
    """SERVICE_PORT_BASE: the services' HTTP ports are this + 1, + 2, … (8101… by default)."""
    return _port_setting("SERVICE_PORT_BASE", DEFAULT_SERVICE_PORT_BASE, top=65535 - 100)


def http_ports(names: list[str]) -> dict[str, int]:
    """The HTTP port of each service: the gateway's GATEWAY_PORT, SERVICE_PORT_BASE plus
    the fixed offset of ``HTTP_PORT_OFFSETS``, and for any other service the next port
    that is free."""
    base = service_port_base()
    fixed = {name: base + n for name, n in HTTP_PORT_OFFSETS.items()}
    ports = {}
    for name in names:
        if name == GATEWAY:
            ports[name] = gateway_port()
        elif name in fixed:
            ports[name] = fixed[name]
    taken = {port: name for name, port in ports.items() if name != GATEWAY}
    if ports.get(GATEWAY) in taken:
        raise StartupError(f"GATEWAY_PORT {ports[GATEWAY]} is {taken[ports[GATEWAY]]}'s port "
                           f"(SERVICE_PORT_BASE {base} + {HTTP_PORT_OFFSETS[taken[ports[GATEWAY]]]}): "
                           "choose another for one of them")
    for name, port in ports.items():
        if not _port_free(port):
            hint = "GATEWAY_PORT" if name == GATEWAY else "SERVICE_PORT_BASE"
            raise StartupError(
                f"port {port} ({name}'s HTTP: probes, /metrics) is already in use: is Kaowu "
                f"running already?  To run a second copy beside it, set {hint} "
                "(and an AMQP_URI vhost and DATABASE_URL of its own)."
            )
    spare = base + FIRST_SPARE_OFFSET
    for name in names:
        if name not in ports:
            while spare in ports.values() or spare in fixed.values() or not _port_free(spare):
                spare += 1
            ports[name] = spare
    return ports


def _port_free(port: int) -> bool:
    """Could a service listen on ``port``? Bound as the services' server binds (eventlet's
    listen sets SO_REUSEADDR): connections of a stopped run waiting out TIME_WAIT do not
    hold the port, a listening socket does."""
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------- preflight


def check_broker(uri: str) -> None:
    """Open and close one AMQP connection; raise StartupError if the broker does not answer."""
    from kombu import Connection

    try:
        with Connection(uri, connect_timeout=CONNECT_TIMEOUT) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # any failure means "not usable"; say why
        if type(exc).__name__ in ("AccessRefused", "NotAllowed"):
            raise StartupError(
                f"RabbitMQ at {mask_url(uri)} refused the connection: {_reason(exc)}\n"
                "  Check the user, password and vhost in AMQP_URI."
            ) from None
        raise StartupError(
            f"RabbitMQ does not answer at {mask_url(uri)}: {_reason(exc)}\n"
            "  Start a local broker with:  rabbitmq-server -detached\n"
            "  or point AMQP_URI at a running one, e.g.\n"
            "      AMQP_URI=amqp://user:password@host:5672/ make run"
        ) from None


def check_postgres(urls: dict[str, str]) -> list[str]:
    """Check every PostgreSQL server in ``urls`` answers; create missing service databases.

    Returns notes for the banner (databases created). Raises StartupError with a clear
    message if a server cannot be reached.
    """
    from sqlalchemy.engine import make_url

    by_server: dict[tuple, list[tuple[str, str]]] = {}
    for service, url in urls.items():
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            continue
        server = (parsed.host, parsed.port, parsed.username, parsed.password)
        by_server.setdefault(server, []).append((service, parsed.database or service))

    notes = []
    for (host, port, user, password), wanted in by_server.items():
        shown = mask_url(urls[wanted[0][0]])
        try:
            import psycopg2
            from psycopg2 import sql

            conn = psycopg2.connect(
                host=host,
                port=port,
                user=user,
                password=password,
                dbname="postgres",
                connect_timeout=CONNECT_TIMEOUT,
            )
        except Exception as exc:
            raise StartupError(
                f"PostgreSQL does not answer for {shown}: {_reason(exc)}\n"
                "  Start the local cluster with:\n"
                "      pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
                "  or unset DATABASE_URL to use SQLite files under var/"
            ) from None
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for service, name in wanted:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                    if cur.fetchone() is None:
                        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                        notes.append(f"created database {name} for {service}")
        except Exception as exc:
            raise StartupError(
                f"PostgreSQL at {shown} answered, but creating the service databases "
                f"failed: {_reason(exc)}"
            ) from None
        finally:
            conn.close()
    return notes


def check_reference_data(names: list[str]) -> None:
    """The verification service's reference files (REFERENCE_EDUCATION_CSV,
    REFERENCE_INTEGRITY_CSV) exist: a wrong path is refused here, before anything starts."""
    if "verification" not in names:
        return
    from services.verification.reference import ReferenceFileMissing, configured_paths

    try:
        configured_paths(os.environ)
    except ReferenceFileMissing as exc:
        raise StartupError(f"{exc}\n  Unset it to use the simulated registry in deploy/reference/, "
                           "or point it at an existing CSV file.") from None


def check_secrets(names: list[str]) -> list[str]:
    """The secret keys the services to start hold (shared.dev_secrets): each not set is
    the development key in var/, made here before they start so that every process reads
    the one file; refused where keys are required (KAOWU_SECRETS_REQUIRED)."""
    from shared.dev_secrets import ALL, USED_BY, KeyRequired, dev_path, secret

    notes = []
    for spec in ALL:
        if not USED_BY[spec] & set(names):
            continue
        try:
            _key, configured = secret(spec, {}, announce=False)  # the banner says it
        except KeyRequired as exc:
            raise StartupError(str(exc)) from None
        if not configured:
            notes.append(f"{spec.setting}: development key {dev_path(spec)}")
    return notes


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def describe_database(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return f"{mask_url(url)}  ({(ROOT / parsed.database).resolve()})"
    return mask_url(url)


# ---------------------------------------------------------------- children


def service_environment() -> dict[str, str]:
    """The environment a service process runs with (here, in the benchmarks and the fault
    runs alike; the Dockerfile sets the same)."""
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        # argon2 hashes in worker threads: glibc keeps a 19 MiB arena per thread without
        # this (account peaked at ~500 MiB in the season benchmark; 2 arenas: ~225 MiB)
        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
    }


def nameko_command() -> list[str]:
    script = Path(sys.executable).parent / "nameko"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "nameko"]


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    reader: threading.Thread | None = None
    stopped: bool = field(default=False)


class Output:
    """Prints children's lines with a service-name prefix, one whole line at a time."""

    def __init__(self, names: list[str]):
        self._lock = threading.Lock()
        self.width = max((len(n) for n in names), default=0)
        colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        self._prefix = {}
        for i, name in enumerate(names):
            label = f"{name:<{self.width}} |"
            if colour:
                label = f"\033[{_COLOURS[i % len(_COLOURS)]}m{label}\033[0m"
            self._prefix[name] = label

    def line(self, name: str, text: str) -> None:
        with self._lock:
            sys.stdout.write(f"{self._prefix[name]} {text}\n")
            sys.stdout.flush()

    def say(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(f"{text}\n")
            sys.stdout.flush()


def _pump(child: Child, output: Output) -> None:
    stream = child.process.stdout
    assert stream is not None
    for raw in iter(stream.readline, b""):
        output.line(child.name, raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    stream.close()


def start_child(name: str, env: dict[str, str], output: Output) -> Child:
    command = [*nameko_command(), "run", "--config", str(CONFIG_FILE), *service_targets(name)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # own process group: a terminal Ctrl-C reaches only the runner, which then
        # stops the children in order
        start_new_session=True,
    )
    child = Child(name, process)
    child.reader = threading.Thread(target=_pump, args=(child, output), daemon=True)
    child.reader.start()
    return child


def stop_waits(config: dict | None = None) -> dict[str, float]:
    """What a worker may be waiting on when its service is told to stop, in seconds, by the
    setting that bounds it (``config``: the nameko config; SMS settings also from the
    environment, as the notification service reads them). RPC waits end when the stop
    begins (``shared.dependencies.StopWatch``); they are counted all the same, in case a
    call slips past it. An SMS request in flight is not cut short."""
    from services.gateway.web import DEFAULT_RPC_TIMEOUT as GATEWAY_RPC_TIMEOUT
    from services.notification.gateway import (
        DEFAULT_CONNECT_TIMEOUT_S,
        DEFAULT_TIMEOUT_S,
        setting,
    )
    from shared.dependencies import DEFAULT_RPC_TIMEOUT

    config = config or {}
    return {
        "RPC_TIMEOUT": float(config.get("RPC_TIMEOUT") or DEFAULT_RPC_TIMEOUT),
        "GATEWAY_RPC_TIMEOUT": float(config.get("GATEWAY_RPC_TIMEOUT") or GATEWAY_RPC_TIMEOUT),
        "SMS_CONNECT_TIMEOUT_S + SMS_TIMEOUT_S":
            float(setting(config, "SMS_CONNECT_TIMEOUT_S", DEFAULT_CONNECT_TIMEOUT_S))
            + float(setting(config, "SMS_TIMEOUT_S", DEFAULT_TIMEOUT_S)),
    }


def stop_timeout(config: dict | None = None) -> float:
    """Seconds between SIGTERM and SIGKILL: longer than anything the code waits for."""
    return max(stop_waits(config).values()) + STOP_MARGIN


def stop_children(children: list[Child], output: Output, timeout: float | None = None) -> None:
    timeout = stop_timeout() if timeout is None else timeout
    for child in children:
        if child.process.poll() is None:
            _signal(child, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        remaining = max(0.0, deadline - time.monotonic())
        try:
            child.process.wait(remaining)
        except subprocess.TimeoutExpired:
            output.say(f"[runner] {child.name} did not stop within {timeout:.0f} s; killing it")
            _signal(child, signal.SIGKILL)
            child.process.wait()
    for child in children:
        if child.reader is not None:
            child.reader.join(timeout=2)


def _signal(child: Child, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.process.send_signal(signum)


# ---------------------------------------------------------------- main


def run(selected: list[str] | None = None) -> int:
    os.chdir(ROOT)
    available = discover_services()
    if selected:
        unknown = sorted(set(selected) - set(available))
        if unknown:
            raise StartupError(
                f"no such service: {', '.join(unknown)} (found: {', '.join(available) or 'none'})"
            )
        names = [n for n in available if n in selected]
    else:
        names = available
    if not names:
        raise StartupError(f"no services found: no {SERVICES_DIR}/<name>/service.py")
    if not CONFIG_FILE.is_file():
        raise StartupError(f"nameko config missing: {CONFIG_FILE}")

    VAR_DIR.mkdir(exist_ok=True)
    broker = amqp_uri()
    try:
        # the gateway keeps no log: no database for it
        databases = {name: database_url(name) for name in names if name != GATEWAY}
    except Exception as exc:
        raise StartupError(f"DATABASE_URL is not usable: {_reason(exc)}") from None
    ports = http_ports(names)
    port = ports.get(GATEWAY)
    check_reference_data(names)

    check_broker(broker)
    notes = check_postgres(databases)
    notes += check_secrets(names)

    output = Output(names)
    banner = [
        f"Kaowu: starting {len(names)} service(s): {', '.join(names)}",
        f"  broker     {mask_url(broker)}",
        "  databases",
        *(f"    {name:<{output.width}}  {describe_database(databases[name])}"
          for name in names if name in databases),
        *(f"  {note}" for note in notes),
    ]
    if port is not None:
        banner.append(f"  gateway    http://127.0.0.1:{port}/  (listening on 0.0.0.0:{port})")
    banner.append("  http       (/health/live, /health/ready, /metrics)")
    banner += [f"    {name:<{output.width}}  http://127.0.0.1:{ports[name]}/metrics" for name in names]
    banner.append("Ctrl-C stops everything.")
    output.say("\n".join(banner))

    stop = threading.Event()
    signals_seen = []

    def on_signal(signum, _frame):
        signals_seen.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    children: list[Child] = []
    try:
        base_env = {
            **service_environment(),
            "AMQP_URI": broker,
            "PYTHONWARNINGS": ",".join(filter(None, [_QUIET, os.environ.get("PYTHONWARNINGS")])),
        }
        for name in names:
            env = {**base_env, "SERVICE_NAME": name}
            if name in databases:
                env["DATABASE_URL"] = databases[name]
            host = "0.0.0.0" if name == GATEWAY else "127.0.0.1"
            env["WEB_SERVER_ADDRESS"] = f"{host}:{ports[name]}"
            children.append(start_child(name, env, output))

        while not stop.wait(0.2):
            dead = [c for c in children if c.process.poll() is not None]
            if dead:
                for child in dead:
                    if child.reader is not None:
                        child.reader.join(timeout=2)  # let its last words print first
                    output.say(
                        f"[runner] {child.name} exited unexpectedly with code "
                        f"{child.process.returncode}; stopping the others"
                    )
                stop_children(children, output)
                return 1

        name = signal.Signals(signals_seen[0]).name if signals_seen else "stop"
        output.say(f"[runner] {name}: stopping {', '.join(c.name for c in children)}")
        # a second Ctrl-C while stopping kills at once
        signal.signal(signal.SIGINT, lambda *_: [_signal(c, signal.SIGKILL) for c in children])
        stop_children(children, output)
        output.say("[runner] all services stopped")
        return 0
    except BaseException:
        for child in children:
            if child.process.poll() is None:
                _signal(child, signal.SIGKILL)
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.runner",
        description="Run Kaowu's services, each as its own nameko process.",
    )
    parser.add_argument("services", nargs="*", help="only these services (default: all)")
    args = parser.parse_args(argv)
    try:
        return run(args.services)
    except StartupError as exc:
        print(f"kaowu: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kaowu: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
