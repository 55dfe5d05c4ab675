"""``python -m faults`` (``make faults``): run candidates through the running system while
injecting faults, then prove nothing was lost, nothing happened twice, and every read model
equals its rebuild.

1. Start account, registration and verification as their own processes (this run's own
   PostgreSQL databases and RabbitMQ vhost), schedule a demo session (application open).
2. Round 1: a load of candidates (register, complete the profile, apply) while the faults
   are injected one at a time: kill -9 of a consuming service mid-work (then restarted), a
   RabbitMQ restart, a PostgreSQL restart, duplicated deliveries, reordered deliveries, an
   undecodable (poison) message, relay cycles split mid-way (overlapping, reordered), and
   two that hit a batch in the middle: kill -9 of a consumer while it applies a batch (its
   transaction open with the tracking record and read-model rows written), kill -9 of an
   upstream whose relay has published a batch and not yet recorded its position.
3. Round 2: another load with all of them at once.
4. Wait until every consumer has caught up, then check (``faults.check``): every accepted
   command's events are in the log once (a command whose reply a fault swallowed: at most
   once), every downstream effect happened exactly once, every projection equals its
   rebuild; the poison messages sit in the dead-letter queue, shown and replayed through
   ``shared.deadletter`` (what ``kaowu dlq`` uses).

Ends with one line, and exits 1 if anything was lost, duplicated or mismatched:
``faults: N injected, commands: C accepted, events: E, lost: 0, duplicated: 0, mismatched projections: 0``

Bounded (``--timeout``), on loopback only. It restarts the machine's RabbitMQ and
PostgreSQL: run it where nothing else depends on them at that moment. (``run(servers=...)``
takes other servers instead: the tests give it their own, ``tests/servers.py``.)
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from faults.check import check, wait_quiet
from faults.inject import FAULTS
from faults.load import Load
from faults.servers import Servers
from faults.system import System
from shared import deadletter
from shared.session import demo_session


def say(msg):
    print(f"[faults {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(candidates: int = 60, seed: int = 7, workdir: Path | None = None,
        faults: list[str] | None = None, threads: int = 4, keep: bool = False,
        servers: Servers | None = None) -> dict:
    """The run on ``servers`` (default: the machine's own, ``faults.servers.machine``)."""
    rng = random.Random(seed)
    names = faults or list(FAULTS)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="kaowu-faults-"))
    system = System(workdir, servers=servers)
    injected = []
    say(f"work dir {workdir}; creating databases and vhost {system.vhost}")
    system.create()
    try:
        system.start()
        system.supervise()
        doc = demo_session(datetime.now(UTC), minutes_per_window=120)
        system.call("registration", "load_session",
                    {"yaml": yaml.safe_dump(doc.to_dict(), allow_unicode=True, sort_keys=False)})
        half = candidates // 2
        numbers = list(range(7_000_000 + seed * 10_000, 7_000_000 + seed * 10_000 + candidates))

        # round 1: one fault at a time, while the load runs
        load1 = Load(system, doc.session_id, numbers[:half], threads)
        workers = load1.run()
        for name in names:
            _wait_progress(load1, 0.3 if name == names[0] else None)
            injected.append(_inject(name, system, rng))
            say(f"injected: {injected[-1]}")
            time.sleep(1.0)
        for w in workers:
            w.join()
        say(f"round 1 load done: {load1.outcomes.commands} commands accepted")

        # round 2: all together
        load2 = Load(system, doc.session_id, numbers[half:], threads)
        load2.outcomes = load1.outcomes
        workers = load2.run()
        _wait_progress(load2, 0.3)
        together = [threading.Thread(target=lambda n=n: injected.append(_inject(n, system, rng)))
                    for n in names]
        for t in together:
            t.start()
        for t in together:
            t.join()
        say(f"injected together: {', '.join(injected[len(names):])}")
        for w in workers:
            w.join()
        outcomes = load1.outcomes
        say("round 2 load done; waiting for the services to catch up")
        status = wait_quiet(system)
        report = check(system, outcomes, status)
        failed = [i for i in injected if i.startswith(NOT_INJECTED)]
        injected = [i for i in injected if not i.startswith(NOT_INJECTED)]
        report.lost += failed  # a fault that could not be injected is a failed run, not a pass

        # the poison: kept, shown, replayable (an undecodable one comes back, still poison)
        letters = deadletter.peek(system.amqp, limit=200)
        poison = sum(1 for i in injected if "poison" in i)
        replay = deadletter.replay(system.amqp, lambda s, m, a: system.call(s, m, *a))
        kept = deadletter.counts(system.amqp)[deadletter.NAME]
        say(f"dead letters: {len(letters)} shown ({poison} poison messages injected), "
            f"{replay['replayed']} replayed, {kept} back in the queue")
        if len(letters) < poison:
            report.lost.append(f"{poison - len(letters)} poison message(s) not in the dead-letter queue")
        for line in report.lost + report.duplicated + report.mismatched:
            say(f"PROBLEM: {line}")
        if system.restarts:
            say(f"crashed and restarted by the supervisor: {', '.join(system.restarts)}")
        if outcomes.unknown:
            say(f"replies lost to faults (checked: at most once): "
                f"{ {k: len(v) for k, v in outcomes.unknown.items()} }")
        summary = {"injected": len(injected), "accepted": outcomes.commands,
                   "events": report.events, "lost": len(report.lost),
                   "duplicated": len(report.duplicated),
                   "mismatched": len(report.mismatched), "report": report,
                   "dead_letters": len(letters), "poison": poison, "numbers": numbers}
        print(f"faults: {summary['injected']} injected, commands: {summary['accepted']} accepted, "
              f"events: {summary['events']}, lost: {summary['lost']}, "
              f"duplicated: {summary['duplicated']}, "
              f"mismatched projections: {summary['mismatched']}", flush=True)
        return summary
    finally:
        if keep:
            system.stop()
            say(f"kept: databases {list(system.databases.values())}, vhost {system.vhost}")
        else:
            system.destroy()


NOT_INJECTED = "could not inject"


def _inject(name, system, rng, timeout=60.0) -> str:
    """Inject a fault; one that needs the system (e.g. to read recent events) while another
    fault has it down is tried again until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return FAULTS[name](system, rng)
        except Exception as exc:
            if time.monotonic() > deadline:
                return f"{NOT_INJECTED} {name}: {type(exc).__name__}: {exc}"
            time.sleep(1.0)


def _wait_progress(load, fraction, timeout=120):
    """Let the load get going before the first fault (and between faults, a little)."""
    if fraction is None:
        return
    target = max(1, int(len(load.numbers) * fraction))
    deadline = time.monotonic() + timeout
    while load.done < target and time.monotonic() < deadline:
        time.sleep(0.2)


def main(argv=None) -> int:
    import logging

    logging.getLogger("amqp").setLevel(logging.ERROR)  # channel-closing chatter of dead proxies
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=60)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(FAULTS)}")
    parser.add_argument("--keep", action="store_true", help="keep databases and vhost to inspect")
    args = parser.parse_args(argv)
    only = [f for f in args.only.split(",") if f] or None
    unknown = [f for f in only or [] if f not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {unknown}: choose from {', '.join(FAULTS)}")
    summary = run(args.candidates, args.seed, faults=only, threads=args.threads, keep=args.keep)
    return 0 if not (summary["lost"] or summary["duplicated"] or summary["mismatched"]) else 1


if __name__ == "__main__":
    sys.exit(main())
