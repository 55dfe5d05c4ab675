"""After the load and the faults: is everything there once, and does every read model equal
its rebuild? Reads each service's own database directly (the log is the truth)."""

from __future__ import annotations

import importlib
import time
from collections import Counter
from dataclasses import dataclass, field

from shared.eventstore.store import open_store
from shared.projection import snapshot
from shared.runner import service_targets


def service_class(name):
    module, _, cls = service_targets(name)[0].partition(":")
    return getattr(importlib.import_module(module), cls)


@dataclass
class Report:
    events: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)


def wait_quiet(system, timeout: float = 180.0) -> dict:
    """Until every relay has published everything and every consumer has applied its
    upstream's whole log, twice in a row."""
    deadline = time.monotonic() + timeout
    last = None
    seen = "no status answered"
    while time.monotonic() < deadline:
        try:
            st = {s: system.call(s, "status", timeout=10) for s in system.services}
        except Exception as exc:
            seen = f"status failed: {type(exc).__name__}: {exc}"
            time.sleep(1)
            continue
        behind = [(s, up) for s, v in st.items() for up, pos in v["tracking"].items()
                  if up in st and pos < st[up]["head"]]
        busy = [s for s, v in st.items() if v["relay_lag"]]
        shape = {s: v["head"] for s, v in st.items()}
        if not behind and not busy and shape == last:
            return st
        last = shape if not behind and not busy else None
        seen = "; ".join(
            [f"{s} tracks {up} at {st[s]['tracking'][up]} of {st[up]['head']}" for s, up in behind]
            + [f"{s} relay lag {st[s]['relay_lag']}" for s in busy]) or "settling"
        time.sleep(1.0)
    raise RuntimeError(f"the services did not catch up with each other in {timeout:.0f} s "
                       f"(last seen: {seen})")


def stores(system):
    out = {}
    for name in system.services:
        provider = service_class(name).store
        out[name] = open_store(system.db_url(name), provider.registry,
                               projections=provider.projections)
    return out


def _all(store):
    events, position = [], 0
    while True:
        batch = store.events_after(position, 5000)
        if not batch:
            return events
        events += batch
        position = batch[-1].position


def check(system, outcomes, status) -> Report:
    rep = Report()
    logs = {name: _all(store) for name, store in stores(system).items()}
    rep.events = sum(len(v) for v in logs.values())

    # every consumer has every upstream event (wait_quiet made sure; say so if not)
    for name, st in status.items():
        for up, pos in st["tracking"].items():
            if up in status and pos != status[up]["head"]:
                rep.lost.append(f"{name} tracked {up} at {pos} of {status[up]['head']}")

    # accepted commands: in the log once; lost replies: at most once
    registered = Counter(e.payload["id_number"] for e in logs["account"]
                         if e.type == "AccountRegistered")
    submitted = Counter(e.payload["account_id"] for e in logs["registration"]
                        if e.type == "ApplicationSubmitted")
    for bucket, most in (("accepted", 1), ("unknown", 1)):
        for id_number in getattr(outcomes, bucket).get("register", []):
            n = registered[id_number]
            if n > most:
                rep.duplicated.append(f"AccountRegistered x{n} for one {bucket} registration")
            elif n == 0 and bucket == "accepted":
                rep.lost.append("an accepted registration has no AccountRegistered")
        for account_id in getattr(outcomes, bucket).get("submit", []):
            n = submitted[account_id]
            if n > most:
                rep.duplicated.append(f"ApplicationSubmitted x{n} for {account_id}")
            elif n == 0 and bucket == "accepted":
                rep.lost.append(f"accepted submission of {account_id} not in the log")
    profiles = {(e.payload["account_id"], e.payload["section"]) for e in logs["account"]
                if e.type == "ProfileUpdated"}
    for key in outcomes.accepted.get("profile", []):
        if tuple(key) not in profiles:
            rep.lost.append(f"accepted profile update {key[1]} not in the log")

    # downstream effects exactly once
    accounts = [e.payload["account_id"] for e in logs["account"] if e.type == "AccountRegistered"]
    candidates = Counter(e.payload["account_id"] for e in logs["registration"]
                         if e.type == "CandidateRegistered")
    for a in accounts:
        if candidates[a] != 1:
            (rep.lost if candidates[a] == 0 else rep.duplicated).append(
                f"registration has CandidateRegistered x{candidates[a]} for one account")
    apps = [e.payload["application_id"] for e in logs["registration"]
            if e.type == "ApplicationSubmitted"]
    if "verification" in logs:
        cases = Counter(e.payload["application_id"] for e in logs["verification"]
                        if e.type == "CaseOpened")
        for a in apps:
            if cases[a] != 1:
                (rep.lost if cases[a] == 0 else rep.duplicated).append(
                    f"verification opened x{cases[a]} cases for one application")

    # any consumer's effect applied twice: same causation, same stream, same type
    for name, events in logs.items():
        seen = Counter((e.metadata.get("causation_id"), e.stream_id, e.type) for e in events
                       if str(e.metadata.get("actor", "")).startswith("service:"))
        for (_cause, stream, type_), n in seen.items():
            if n > 1:
                rep.duplicated.append(f"{name}: {type_} on {stream} x{n} from one upstream event")

    # every read model equals its rebuild (taken while the service runs)
    for name, store in stores(system).items():
        before = {p.name: snapshot(store.engine, p) for p in store.projections}
        system.call(name, "rebuild", timeout=300)
        after = {p.name: snapshot(store.engine, p) for p in store.projections}
        for p in before:
            if before[p] != after[p]:
                rep.mismatched.append(f"{name}.{p}")
    return rep
