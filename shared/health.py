"""Health of a service process, for Kubernetes' probes, and the web server they reach.

- ``GET /health/live``: the process is up and its hub answers (200).
- ``GET /health/ready``: 200 only if the service's database answers ``SELECT 1`` and the
  broker accepts a connection; else 503 with a JSON body naming what is down. The broker
  check opens a short AMQP connection and is cached for ``ttl`` seconds (default 5,
  ``HEALTH_BROKER_TTL`` in the config), so probes do not churn connections.

Both are nameko ``@http`` entrypoints of ``EventSourcedService`` (with ``GET /metrics``),
served on ``WEB_SERVER_ADDRESS``. ``http`` here is nameko's, with one difference: a
config without ``WEB_SERVER_ADDRESS`` (the tests' dict configs) listens on a free loopback
port instead of nameko's ``0.0.0.0:8000``, so several containers in one process do not
fight over a port. The server is shared with nameko's own ``@http`` entrypoints (a gateway
serves its API and these on one port).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

import eventlet
from kombu import Connection
from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer as NamekoWebServer
from nameko.web.server import parse_address
from sqlalchemy import text

from shared import config as kconfig
from shared.logging import get_logger

log = get_logger(__name__)

UNCONFIGURED_ADDRESS = "127.0.0.1:0"
JSON = {"Content-Type": "application/json"}


class WebServer(NamekoWebServer):
    """nameko's web server; without ``WEB_SERVER_ADDRESS`` it takes a free loopback port."""

    @property
    def sharing_key(self):
        return NamekoWebServer  # one server per container, whichever @http binds first

    @property
    def bind_addr(self):
        if self.container.config.get(WEB_SERVER_CONFIG_KEY):
            return super().bind_addr
        return parse_address(UNCONFIGURED_ADDRESS)


class HttpEndpoint(HttpRequestHandler):
    server = WebServer()


http = HttpEndpoint.decorator


def listening_port(container) -> int | None:
    """The port a container's web server listens on (after start), else None."""
    server = container.shared_extensions.get(NamekoWebServer)
    sock = getattr(server, "_sock", None)
    return sock.getsockname()[1] if sock is not None else None


# -- checks --------------------------------------------------------------------------------

def check_database(engine, timeout: float = 3.0) -> str | None:
    """None if the database answers ``SELECT 1`` within ``timeout`` s, else why not."""
    try:
        with eventlet.Timeout(timeout), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except eventlet.Timeout:
        return f"no answer within {timeout:g} s"
    except Exception as exc:
        return _reason(exc)


class BrokerCheck:
    """Can we open an AMQP connection to the broker? The answer is cached for ``ttl`` s."""

    def __init__(self, amqp_uri: str, ttl: float = 5.0, timeout: float = 3.0):
        self.amqp_uri = amqp_uri
        self.ttl = ttl
        self.timeout = timeout
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._result: str | None = None

    def __call__(self) -> str | None:
        with self._lock:  # concurrent probes share one check
            now = time.monotonic()
            if self._checked_at is None or now - self._checked_at >= self.ttl:
                self._result = self._check()
                self._checked_at = time.monotonic()
            return self._result

    def _check(self) -> str | None:
        conn = Connection(self.amqp_uri, connect_timeout=self.timeout, heartbeat=0)
        try:
            with eventlet.Timeout(self.timeout + 1):
                conn.ensure_connection(max_retries=1, interval_start=0, timeout=self.timeout)
            return None
        except eventlet.Timeout:
            return f"no answer within {self.timeout:g} s"
        except Exception as exc:
            return _reason(exc)
        finally:
            with contextlib.suppress(Exception):  # a connection that never opened
                conn.release()


def readiness(service: str, database: str | None, broker: str | None) -> tuple[int, dict, str]:
    """``(status, headers, body)`` of ``/health/ready`` from the checks' answers (None: ok)."""
    checks = {"database": database, "broker": broker}
    down = [name for name, problem in checks.items() if problem is not None]
    body = {"service": service, "status": "unavailable" if down else "ready", "down": down,
            "checks": {name: problem or "ok" for name, problem in checks.items()}}
    return (503 if down else 200), dict(JSON), json.dumps(body)


def liveness(service: str) -> tuple[int, dict, str]:
    return 200, dict(JSON), json.dumps({"service": service, "status": "live"})


class Health(DependencyProvider):
    """Holds the cached broker check; ``ready(engine)`` answers the readiness probe."""

    def setup(self):
        cfg = self.container.config
        self.broker = BrokerCheck(cfg.get("AMQP_URI") or kconfig.amqp_uri(),
                                  ttl=float(cfg.get("HEALTH_BROKER_TTL", 5.0)))

    def ready(self, engine) -> tuple[int, dict, str]:
        result = readiness(self.container.service_name, check_database(engine), self.broker())
        if result[0] != 200:
            log.warning("health.not_ready", down=json.loads(result[2])["down"])
        return result

    def live(self) -> tuple[int, dict, str]:
        return liveness(self.container.service_name)

    def get_dependency(self, worker_ctx):
        return self


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return kconfig.mask_url(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)
