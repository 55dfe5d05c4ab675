"""``kaowu rebuild``: rebuild a service's read models while it runs, and watch it happen.

The ``rebuild`` RPC runs in a background thread with a client (proxy) of its own; the
foreground polls ``status()`` with another client and reports, per projection, how far the
rebuild has come against the log head taken at the start:

- if the service reports a running rebuild's progress (``status()["rebuilding"] =
  {projection: {"position": p, "head": h}}``, or a projection position short of the
  head), that drives the bar;
- otherwise the bar can only say the rebuild is running (a rebuild replays the log in one
  transaction, so nothing outside it can see how far it got) and completes when the RPC
  answers with the number of events it replayed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cli.rpc import STATUS_TIMEOUT, CliError

REBUILD_TIMEOUT = 3600.0  # seconds the rebuild RPC may take before we stop waiting


@dataclass
class Progress:
    projection: str
    head: int  # the log head when the rebuild started: the total to replay
    position: int | None  # how far it is (None: the service does not say)
    done: bool = False


@dataclass
class RebuildResult:
    service: str
    head_before: int
    replayed: dict[str, int]
    positions_after: dict[str, int]
    head_after: int
    seconds: float
    polls: int = 0
    progress_seen: dict[str, int] = field(default_factory=dict)


def plan(status: dict, projection: str | None) -> list[str]:
    """The projections a rebuild will touch; a name the service lacks is refused here,
    with the names it has."""
    names = list((status.get("projections") or {}).keys())
    if projection is None:
        return names
    if projection not in names:
        raise CliError(f"the {status.get('service', 'service')} service has no projection "
                       f"{projection!r}; it has: {', '.join(names) or 'none'}")
    return [projection]


def reported(status: dict, names: list[str], head: int) -> dict[str, int | None]:
    """How far each projection's rebuild is, if the service says: its ``rebuilding``
    progress, or else a projection position short of the log head."""
    running = status.get("rebuilding") or {}
    positions = status.get("projections") or {}
    now_head = status.get("head") or head
    out = {}
    for n in names:
        r = running.get(n)
        if isinstance(r, dict) and "position" in r:
            out[n] = int(r["position"])
        elif isinstance(positions.get(n), int) and positions[n] < now_head:
            out[n] = positions[n]
        else:
            out[n] = None
    return out


def rebuild(service: str, projection: str | None, client_factory,
            on_progress: Callable[[list[Progress]], None] | None = None,
            interval: float = 0.2, timeout: float | None = REBUILD_TIMEOUT) -> RebuildResult:
    with client_factory(timeout=STATUS_TIMEOUT) as watcher:
        before = watcher.call(service, "status")
        names = plan(before, projection)
        head = int(before.get("head") or 0)
        box: dict = {}

        def run():
            try:
                with client_factory(timeout=timeout) as worker:
                    box["result"] = worker.call(service, "rebuild", projection)
            except BaseException as exc:  # handed to the foreground, which reports it
                box["error"] = exc

        started = time.monotonic()
        thread = threading.Thread(target=run, name=f"rebuild-{service}", daemon=True)
        thread.start()
        polls, seen = 0, {}
        if on_progress:
            on_progress([Progress(n, head, None) for n in names])
        while thread.is_alive():
            thread.join(interval)
            if not thread.is_alive():
                break
            try:
                now = watcher.call(service, "status")
            except CliError:
                continue  # busy: the rebuild holds the service's attention; try again
            polls += 1
            positions = reported(now, names, head)
            for n, p in positions.items():
                if p is not None:
                    seen[n] = p
            if on_progress:
                on_progress([Progress(n, head, positions[n]) for n in names])
        seconds = time.monotonic() - started
        if "error" in box:
            raise box["error"]
        replayed = {k: int(v) for k, v in (box.get("result") or {}).items()}
        after = watcher.call(service, "status")
    if on_progress:
        on_progress([Progress(n, head, replayed.get(n, head), done=True) for n in names])
    return RebuildResult(service, head, replayed, dict(after.get("projections") or {}),
                         int(after.get("head") or 0), seconds, polls, seen)
