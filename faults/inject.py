"""The faults, each a function of the running ``System``; each returns what it did.

All on this machine only: the broker and PostgreSQL are the system's ``Servers`` (restarted
as those say: ``faults.servers``), the services are this run's processes.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid

from kombu import Connection, Exchange, Queue


def kill9(system, rng: random.Random) -> str:
    """kill -9 a consuming service in the middle of its work, then start it again."""
    name = rng.choice([s for s in system.services if s != "account"] or system.services)
    system.kill9(name)  # the supervisor starts it again
    return f"kill -9 {name} (restarted)"


def rabbitmq_restart(system, rng) -> str:
    system.servers.restart_broker()
    return "RabbitMQ restarted (stop_app/start_app)"


def postgres_restart(system, rng) -> str:
    system.servers.restart_database()
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
    registration's ``ApplicationSubmitted`` gets a copy (its routing key, ``shared.routing``),
    and each must dead-letter it and go on."""
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


# -- faults that hit a batch in the middle ---------------------------------------------------
#
# Each waits for its window by watching the service's own PostgreSQL database (this run's)
# and strikes at once: a service's transactions are visible in pg_stat_activity and the
# tables they hold locks on in pg_locks, so the window is seen from outside, with no hook
# in the services. The traffic is the fault's own (profile updates of accounts the load
# made: account's events, which registration consumes), so it does not depend on where the
# load stands.

WINDOW_TIMEOUT = 30.0  # seconds a fault waits for its window before it says it could not

# a transaction of the consumer that has written its tracking record (the first thing an
# applied run does) and read-model rows of the batch, not yet committed
APPLYING_SQL = """
SELECT a.pid FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL
  AND EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
              WHERE l.pid = a.pid AND l.granted AND l.mode = 'RowExclusiveLock'
                AND c.relname = 'tracking')
  AND EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
              WHERE l.pid = a.pid AND l.granted AND l.mode = 'RowExclusiveLock'
                AND c.relname = ANY(:tables))
LIMIT 1"""

# the relay's cycle between reading its events and recording how far it got: it holds
# relay_state's row (FOR UPDATE), has read the events since, and waits on the broker's
# confirm (or has it and is about to record)
RELAY_CYCLE_SQL = """
SELECT a.pid FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND a.state = 'idle in transaction' AND a.query NOT ILIKE '%relay_state%'
  AND EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
              WHERE l.pid = a.pid AND l.granted AND c.relname = 'relay_state')
LIMIT 1"""


def strike(probe, act, timeout: float, interval: float = 0.002, clock=time.monotonic,
           sleep=time.sleep) -> bool:
    """Ask ``probe()`` until it says the window is open, then ``act()`` at once: True. Never
    open within ``timeout``: False, and nothing done."""
    deadline = clock() + timeout
    while True:
        if probe():
            act()
            return True
        if clock() >= deadline:
            return False
        sleep(interval)


class _Probe:
    """``sql`` asked of one service's own database, on a connection of its own."""

    def __init__(self, system, service: str, sql: str, **params):
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        self.engine = create_engine(system.db_url(service), isolation_level="AUTOCOMMIT",
                                    poolclass=NullPool)
        self.conn = self.engine.connect()
        self.sql, self.params = text(sql), params

    def __call__(self) -> bool:
        return self.conn.execute(self.sql, self.params).first() is not None

    def scalar(self, sql: str):
        from sqlalchemy import text

        return self.conn.execute(text(sql)).scalar()

    def close(self):
        self.conn.close()
        self.engine.dispose()


class _Traffic:
    """Profile updates of accounts the load registered, in a thread, until stopped: events
    of account's that registration applies (``ProfileUpdated``)."""

    def __init__(self, system, rng):
        # asked by type: an earlier fault's traffic may fill the log's recent stretch with
        # profile updates alone
        registered = [e["payload"]["account_id"] for e in system.call(
            "account", "events_after", 0, 200, ["AccountRegistered"])["events"]]
        if not registered:
            raise RuntimeError("no accounts yet to update")
        self.system, self.accounts, self.rng = system, registered, rng
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        n = 0
        while not self.done.is_set():
            account_id = self.accounts[n % len(self.accounts)]
            n += 1
            with contextlib.suppress(Exception):  # the service is paused or killed: go on
                self.system.call("account", "update_profile_section", account_id, "contact",
                                 {"email": f"fault{n % 7}@example.com",
                                  "address": f"上海市徐汇区桂箐路{60 + n % 9}号"}, timeout=5)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(10)


def kill9_applying(system, rng) -> str:
    """kill -9 a consumer while it applies a batch: registration, in the transaction that
    has written its tracking record and read-model rows of account's events and not
    committed. A pause first lets a backlog gather, so the pull after it is a large batch.
    Nothing of that batch may stay, and all of it must be applied once after the restart."""
    from faults.check import service_class

    consumer = "registration"
    tables = sorted(service_class(consumer).store.projections[0].tables)
    probe = _Probe(system, consumer, APPLYING_SQL, tables=tables)
    try:
        with _Traffic(system, rng):
            system.pause(consumer)
            time.sleep(1.5)  # account's relay goes on: messages queue up for registration
            system.resume(consumer)
            hit = strike(probe, lambda: system.kill9(consumer), WINDOW_TIMEOUT)
        tracked = probe.scalar("SELECT position FROM tracking WHERE upstream = 'account'") or 0
    finally:
        probe.close()
    if not hit:
        raise RuntimeError(f"{consumer} was never seen applying a batch")
    behind = system.call("account", "status")["head"] - tracked
    return (f"kill -9 {consumer} while it applied a batch of account's events ({behind} "
            f"behind; restarted)")


def kill9_relay_published(system, rng) -> str:
    """kill -9 an upstream whose relay has published a batch and not yet recorded its
    position: account's relay is paused (SIGSTOP) in its cycle, and killed only if a
    witness queue on ``account.events`` holds the cycle's message (``after`` = the position
    recorded); otherwise it is let go and the next cycle is tried. After the restart the
    relay publishes that batch again: consumers must skip it."""
    from kombu.simple import SimpleQueue

    upstream = "account"
    probe = _Probe(system, upstream, RELAY_CYCLE_SQL)
    deadline = time.monotonic() + WINDOW_TIMEOUT
    try:
        with Connection(system.amqp) as conn, _Traffic(system, rng):
            ex = Exchange(f"{upstream}.events", type="topic", durable=True)
            witness = SimpleQueue(conn, Queue(f"faults.witness.{uuid.uuid4().hex[:8]}", ex,
                                              routing_key="#", auto_delete=True, durable=False))
            try:
                while time.monotonic() < deadline:
                    if not strike(probe, lambda: system.pause(upstream),
                                  deadline - time.monotonic()):
                        break
                    recorded = probe.scalar("SELECT position FROM relay_state WHERE id = 1")
                    if _published_after(witness, recorded, wait=1.5):
                        system.kill9(upstream)  # a stopped process dies as well
                        return (f"kill -9 {upstream} after its relay published a batch (after "
                                f"{recorded}) and before it recorded that (restarted)")
                    system.resume(upstream)  # paused before the publish: the next cycle
            finally:
                witness.close()
    finally:
        probe.close()
        with contextlib.suppress(Exception):
            system.resume(upstream)
    raise RuntimeError(f"{upstream}'s relay was never caught between publishing and recording")


def _published_after(witness, recorded: int, wait: float) -> bool:
    """Whether the relay's message of the cycle after ``recorded`` is on the witness queue
    (the relay's own: nameko's correlation header; the other faults publish without it)."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = witness.get(block=True, timeout=min(left, 0.2))
        except witness.Empty:
            continue
        message.ack()
        body = message.payload
        if (isinstance(body, dict) and "events" in body and body.get("after") == recorded
                and "nameko.correlation_id" in (message.headers or {})):
            return True
    return False


FAULTS = {"kill9": kill9, "rabbitmq_restart": rabbitmq_restart,
          "postgres_restart": postgres_restart, "duplicates": duplicates,
          "reordered": reordered, "poison": poison, "split_batches": split_batches,
          "kill9_applying": kill9_applying, "kill9_relay_published": kill9_relay_published}


