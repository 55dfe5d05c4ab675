"""``kaowu status``: each service up or down, its log, its relay, its consumers.

Pure parts (``lags``, ``summarize``) take what the services answered and compute the
figures; ``gather`` asks every service at once, each from its own thread and proxy, with a
short timeout, so one service that is down costs one timeout, not one per service.

Lags, all in events:
- relay lag: the service's log head minus what its relay has published (``status()``);
- consumer lag per upstream: the upstream's head (its own ``status()``) minus the position
  the service has dealt with (its tracking record, or further where the answering process
  has passed over events the record shows only at its next write). Unknown when the
  upstream is down.
"""

from __future__ import annotations

import difflib
import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cli.rpc import STATUS_TIMEOUT, CliError, ServiceUnavailable

# the pipeline's order: upstream before downstream (others follow, sorted)
PIPELINE = ("account", "registration", "verification", "admission", "scoring", "certificate",
            "notification")
NOT_EVENT_SOURCED = ("gateway",)
GATEWAY = "gateway"


def known_services() -> list[str]:
    """The event-sourced services of this installation (``services/<name>/service.py``), in
    pipeline order; the gateway holds no log and answers no ``status()``."""
    from shared.runner import discover_services

    found = [s for s in discover_services() if s not in NOT_EVENT_SOURCED]
    return order(found)


def all_services() -> list[str]:
    """Every service of this installation, the gateway last."""
    from shared.runner import discover_services

    found = discover_services()
    return known_services() + [s for s in NOT_EVENT_SOURCED if s in found]


def check_names(names, allowed: list[str], what: str = "service") -> list[str]:
    """``names`` if each is one of ``allowed``; else a CliError naming the valid ones (and
    the likeliest meant), instead of asking the broker for a service that cannot exist."""
    unknown = [n for n in names if n not in allowed]
    if unknown:
        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise CliError(f"no {what} {', '.join(map(repr, unknown))}{hint}; the {what}s are: "
                       f"{', '.join(allowed)}")
    return list(names)


def gateway_url() -> str:
    """KAOWU_GATEWAY_URL, else the local gateway on GATEWAY_PORT (``make run``'s)."""
    url = os.environ.get("KAOWU_GATEWAY_URL")
    return (url or f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT') or 8000}").rstrip("/")


def probe_gateway(url: str, timeout: float) -> dict | Exception:
    """The gateway holds no log and answers no ``status()``: its ``/health/ready`` says
    whether it is up (and reaches the broker). An answer, or the error that says why not."""
    try:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=timeout) as response:
            return {"service": GATEWAY, "http": response.status, "url": url}
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        down = ", ".join(body.get("down") or []) if isinstance(body, dict) else ""
        return CliError(f"{url}/health/ready answered {exc.code}" + (f": down: {down}" if down else ""))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return CliError(f"no answer at {url}/health/ready ({reason})")


def rank(name: str) -> tuple[int, str]:
    return (PIPELINE.index(name) if name in PIPELINE else len(PIPELINE), name)


def order(names) -> list[str]:
    return sorted(set(names), key=rank)


@dataclass
class Consumer:
    upstream: str
    tracked: int
    upstream_head: int | None  # None: the upstream did not answer

    @property
    def lag(self) -> int | None:
        return None if self.upstream_head is None else max(self.upstream_head - self.tracked, 0)


@dataclass
class ServiceState:
    service: str
    up: bool
    error: str | None = None
    head: int | None = None
    relay_position: int | None = None
    relay_lag: int | None = None
    projections: dict[str, int] = field(default_factory=dict)
    consumers: list[Consumer] = field(default_factory=list)
    keeps_log: bool = True  # the gateway: no log, its /health/ready instead

    @property
    def projection_lag(self) -> int:
        if self.head is None or not self.projections:
            return 0
        return max(max(self.head - p, 0) for p in self.projections.values())


def lags(answers: dict[str, dict | Exception]) -> list[ServiceState]:
    """From each service's ``status()`` answer (or the error asking it gave), the table's rows."""
    heads = {s: a.get("head") for s, a in answers.items() if isinstance(a, dict)}
    rows = []
    for service in order(answers):
        a = answers[service]
        if not isinstance(a, dict):
            rows.append(ServiceState(service, up=False, error=_why(a),
                                     keeps_log=service not in NOT_EVENT_SOURCED))
            continue
        if service in NOT_EVENT_SOURCED:
            rows.append(ServiceState(service, up=True, keeps_log=False))
            continue
        head = a.get("head")
        relay = a.get("relay_position")
        relay_lag = a.get("relay_lag")
        if relay_lag is None and head is not None and relay is not None:
            relay_lag = head - relay
        tracking = a.get("tracking") or {}
        consumers = [Consumer(u, int(tracking[u] or 0), heads.get(u)) for u in order(tracking)]
        rows.append(ServiceState(service, up=True, head=head, relay_position=relay,
                                 relay_lag=relay_lag, projections=dict(a.get("projections") or {}),
                                 consumers=consumers))
    return rows


def _why(exc: Exception) -> str:
    if isinstance(exc, ServiceUnavailable):
        return exc.reason
    if isinstance(exc, CliError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def gather(services: list[str], client_factory, timeout: float = STATUS_TIMEOUT,
           gateway=None) -> dict[str, dict | Exception]:
    """``status()`` of every service, in parallel, each on its own thread with its own proxy;
    the gateway's ``/health/ready`` through ``gateway(timeout)``. A broker that cannot be
    reached is raised (nothing else can be said then)."""
    from cli.rpc import BrokerUnavailable

    def ask(service):
        if service in NOT_EVENT_SOURCED:
            return (gateway or (lambda t: probe_gateway(gateway_url(), t)))(timeout)
        with client_factory(timeout=timeout) as client:
            try:
                return client.call(service, "status")
            except BrokerUnavailable:
                raise
            except Exception as exc:  # down, refusing, or not a Kaowu service: say so
                return exc

    if not services:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(services), 8)) as pool:
        answers = dict(zip(services, pool.map(ask, services), strict=True))
    return answers


def summarize(rows: list[ServiceState]) -> tuple[int, str]:
    """Exit code and a one-line verdict: 0 all up, 1 something down."""
    down = [r.service for r in rows if not r.up]
    if down:
        return 1, f"{len(down)} of {len(rows)} services down: {', '.join(down)}"
    behind = [r.service for r in rows if (r.relay_lag or 0) > 0 or any((c.lag or 0) > 0 for c in r.consumers)]
    if behind:
        return 0, f"all {len(rows)} services up; catching up: {', '.join(behind)}"
    return 0, f"all {len(rows)} services up"
