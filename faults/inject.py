"""The faults, each a function of the running ``System``; each returns what it did.

All on this machine only: the broker and PostgreSQL are the local ones (restarted through
their own tools), the services are this run's processes.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from pathlib import Path

from kombu import Connection, Exchange


def kill9(system, rng: random.Random) -> str:
    """kill -9 a consuming service in the middle of its work, then start it again."""
    name = rng.choice([s for s in system.services if s != "account"] or system.services)
    system.kill9(name)  # the supervisor starts it again
    return f"kill -9 {name} (restarted)"


def rabbitmq_restart(system, rng) -> str:
    ctl = shutil.which("rabbitmqctl")
    subprocess.run([ctl, "-q", "stop_app"], check=True, timeout=120)
    time.sleep(1.0)
    subprocess.run([ctl, "-q", "start_app"], check=True, timeout=120)
    subprocess.run([ctl, "-q", "await_startup"], check=False, timeout=120)
    return "RabbitMQ restarted (stop_app/start_app)"


def postgres_restart(system, rng) -> str:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"]
    if shutil.which("pg_ctlcluster") is None:
        raise RuntimeError("pg_ctlcluster not found: cannot restart PostgreSQL here")
    subprocess.run(cmd, check=True, timeout=120)
    return "PostgreSQL restarted"


def _recent(system, upstream: str, count: int) -> list[dict]:
    head = system.call(upstream, "status")["head"]
    return system.call(upstream, "events_after", max(0, head - count), count)


def _publish(system, upstream: str, messages: list[dict]):
    with Connection(system.amqp) as conn:
        producer = conn.Producer()
        ex = Exchange(f"{upstream}.events", type="topic", durable=True)
        for m in messages:
            producer.publish(m, exchange=ex, routing_key=m.get("type", "batch"), serializer="json",
                             delivery_mode=2, declare=[ex], retry=True)


def duplicates(system, rng) -> str:
    """Deliver recent events of every upstream again (as a broker redelivery would)."""
    total = 0
    for upstream in ("account", "registration", "verification"):
        if upstream in system.services:
            msgs = _recent(system, upstream, 30)
            _publish(system, upstream, msgs + msgs)
            total += 2 * len(msgs)
    return f"{total} duplicated deliveries"


def reordered(system, rng) -> str:
    """Deliver recent events out of order (newest first, shuffled)."""
    total = 0
    for upstream in ("account", "registration"):
        msgs = _recent(system, upstream, 40)
        rng.shuffle(msgs)
        _publish(system, upstream, msgs)
        total += len(msgs)
    return f"{total} reordered deliveries"


def poison(system, rng) -> str:
    """A message no consumer can decode, on the registration exchange: every consumer of
    registration's events gets a copy, and each must dead-letter it and go on."""
    with Connection(system.amqp) as conn:
        ex = Exchange("registration.events", type="topic", durable=True)
        conn.Producer().publish(b"\x00\xffnot json{", exchange=ex, routing_key="ApplicationSubmitted",
                                content_type="application/json", content_encoding="utf-8",
                                declare=[ex], retry=True)
    return "1 poison message (undecodable) on registration.events"


def _cycle(events: list[dict]) -> dict:
    """The message one relay cycle publishes with these (consecutive) events."""
    return {"events": events, "after": events[0]["position"] - 1, "last": events[-1]["position"],
            "log_id": events[0]["log_id"]}


def split_batches(system, rng) -> str:
    """Relay cycles hit in the middle: recent events of every upstream published again as
    batches cut at random places, overlapping (a cycle sent again from a later start, as
    after a lost confirm and a shorter read), late and out of order."""
    total = 0
    for upstream in ("account", "registration", "verification"):
        if upstream not in system.services:
            continue
        evs = _recent(system, upstream, 40)
        if len(evs) < 2:
            continue
        cuts = sorted(rng.sample(range(1, len(evs)), min(3, len(evs) - 1)))
        pieces = [evs[a:b] for a, b in zip([0, *cuts], [*cuts, len(evs)], strict=True)]
        middle = rng.randrange(len(evs) - 1)
        messages = [_cycle(p) for p in pieces] + [_cycle(evs[middle:])]
        rng.shuffle(messages)
        _publish(system, upstream, messages)
        total += len(messages)
    return f"{total} batches split, overlapping and reordered"


FAULTS = {"kill9": kill9, "rabbitmq_restart": rabbitmq_restart,
          "postgres_restart": postgres_restart, "duplicates": duplicates,
          "reordered": reordered, "poison": poison, "split_batches": split_batches}


