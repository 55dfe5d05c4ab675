"""Memory figures: the season's end (scores and certificates) as the season runs it, in a few
minutes instead of the season's 47, for the two processes that set its ``peak_rss_mb``.

- ``memory_scoring_peak_mb``: the scoring service process's peak resident memory
  (``VmHWM``) through one ``import_scores`` of the season's score file (10,000 candidates:
  29,000 rows for 9,800 tickets) and ``publish_scores``, until its relay has published
  everything, target <= 300 MiB (the season's ceiling);
- ``memory_certificate_peak_mb``: the certificate service process's ``VmHWM`` while it
  issues the certificates of the 9,400 ``QualificationAttained`` that publication sends,
  target <= 300 MiB.

``detail`` has each process's ``VmHWM`` at the end of every phase (start, import, publish,
certification), its ``VmRSS`` at the end, and each phase's seconds.

How. scoring and certificate run as in the season (``bench.season``'s launcher: ``nameko
run`` with the stepped clock, ``shared.runner.service_environment()``, so
``MALLOC_ARENA_MAX=2``), each on a fresh PostgreSQL database, on a fresh vhost (both named
``kaowu_mem_<run>``); no other service runs. Scoring's log is seeded directly with what it
records of admission's events in the season (``bench.season.Plan``: at 10,000 candidates
9,800 tickets, 100 forfeited, 29,000 check-ins, 400 absences), then the certificate
service catches up with it over RPC, as it follows scoring all season. The bench then
moves the clock past the exam window, imports the season's file (``Season.score_file``'s
marks), moves it into the 查询成绩 window and publishes; certificate takes scoring's events
from the broker as in the season. Calls go through a client process (``ClusterRpcProxy``).

``python -m bench memory`` or ``python -m bench.memory`` (``--scale 0.2``: 2,000
candidates).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import ROOT, Context, Figure, drop_databases, fresh_vhost, pg_url, resident_id

CANDIDATES = 10_000  # at --scale 1: the season's
LEAST = 200
PREFIX = "kaowu_mem"  # databases and vhost
CEILING_MB = 300.0  # the season's peak_rss_mb target
SEED_TICKETS = 500  # tickets per set-up transaction
CALL_TIMEOUT = 600.0
WAIT_S = 900.0  # an effect awaited for longer than this: the run failed
SERVED = (("scoring", "services.scoring.service:ScoringService"),
          ("certificate", "services.certificate.service:CertificateService"))

_CALL = ("import eventlet; eventlet.monkey_patch()\n"
         "import sys\nfrom bench.memory import call_main\nsys.exit(call_main())")


def call_main() -> int:
    """A client process (``python -c _CALL``): one RPC call read as JSON on stdin
    (``amqp``, ``service``, ``method``, ``args``), its answer printed as JSON."""
    from nameko.standalone.rpc import ClusterRpcProxy

    spec = json.loads(sys.stdin.read())
    with ClusterRpcProxy({"AMQP_URI": spec["amqp"], "serializer": "json"},
                         timeout=CALL_TIMEOUT) as proxy:
        result = getattr(proxy[spec["service"]], spec["method"])(*spec["args"])
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _call(amqp: str, service: str, method: str, *args) -> dict:
    for attempt in range(4):
        proc = subprocess.run([sys.executable, "-W", "ignore", "-c", _CALL], cwd=ROOT,
                              input=json.dumps({"amqp": amqp, "service": service,
                                                "method": method, "args": list(args)},
                                               ensure_ascii=False),
                              capture_output=True, text=True, timeout=CALL_TIMEOUT + 60)
        # the broker is shared (a test run may restart it): a call never sent is sent again
        if proc.returncode and "ECONNREFUSED" in proc.stderr and attempt < 3:
            time.sleep(10)
            continue
        if proc.returncode:
            raise RuntimeError(f"{service}.{method} failed: {proc.stderr[-2000:]}")
        return json.loads(proc.stdout)


class Exam:
    """The season's exam, as scoring records it (``bench.season.Plan``'s funnel)."""

    def __init__(self, count: int, now: datetime):
        from bench.season import BASE, Plan, session_document
        from shared.session import SessionDocument

        self.plan = Plan(count)
        self.doc = SessionDocument.from_dict(session_document(now, count))
        self.subjects = list(self.doc.levels["L1"].subjects)
        seated = [i for i in range(count)
                  if i not in self.plan.lapse and i not in self.plan.terminated]
        self.tickets = {i: f"{self.doc.exam_year}2916{i:07d}" for i in seated}
        self.accounts = {i: f"m{BASE + i:08d}" for i in seated}
        self.sat = {i: (() if i in self.plan.forfeit else
                        self.subjects[:-1] if i in self.plan.absent else self.subjects)
                    for i in seated}
        self.qualified = sum(1 for i, s in self.sat.items()
                             if len(s) == len(self.subjects) and i not in self.plan.fail)

    def ticket_events(self, i: int) -> list:
        """What scoring records of admission's events about ticket ``i``."""
        from bench.season import BASE
        from services.scoring import domain
        from shared.events import NewEvent

        sid, number = self.doc.session_id, self.tickets[i]
        ids = {"ticket_number": number, "session_id": sid, "account_id": self.accounts[i],
               "application_id": f"{sid}.{self.accounts[i]}"}
        stream = domain.ticket_stream(number)
        events = [NewEvent(stream, "TicketRecorded", {
            **ids, "level": "L1", "subjects": self.subjects, "exemption": None,
            "candidate": {"name": "张三", "id_type": "resident_id",
                          "id_number": resident_id(BASE + i)},
            "exam_year": self.doc.exam_year})]
        if i in self.plan.forfeit:
            events.append(NewEvent(stream, "ForfeitRecorded", {
                **ids, "reason": "逾期未打印准考证，视为放弃考试"}))
        events += [NewEvent(stream, "CheckInRecorded", {**ids, "subject": s})
                   for s in self.sat[i]]
        events += [NewEvent(stream, "AbsenceRecorded", {**ids, "subject": s})
                   for s in self.subjects if s not in self.sat[i]]
        return events

    def score_file(self) -> str:
        """The season's file (``Season.score_file``): a row per check-in; a failing
        candidate has 50 of 120 in the last subject."""
        lines = ["ticket_number,subject,score"]
        for i, subjects in sorted(self.sat.items()):
            for s in subjects:
                fail = i in self.plan.fail and s == self.subjects[-1]
                lines.append(f"{self.tickets[i]},{s},{50 if fail else 75 + (i * 7 + len(s)) % 40}")
        return "\n".join(lines) + "\n"


def _seed(url: str, exam: Exam, log) -> int:
    from services.scoring import domain
    from services.scoring.projection import ScoringProjection
    from services.scoring.schemas import REGISTRY
    from shared.eventstore.store import open_store

    store = open_store(url, REGISTRY, projections=[ScoringProjection()])
    try:
        store.append([domain.session_recorded(exam.doc)])
        ticketed = sorted(exam.tickets)
        for k in range(0, len(ticketed), SEED_TICKETS):
            events = [e for i in ticketed[k:k + SEED_TICKETS] for e in exam.ticket_events(i)]
            store.append(events, {e.stream_id: 0 for e in events})
        head = store.head()
    finally:
        store.engine.dispose()
    log(f"memory: scoring seeded with {len(exam.tickets)} tickets ({head} events)")
    return head


def _processes(ctx: Context, amqp: str, template: str, clock_file: Path):
    """scoring and certificate, each ``nameko run`` as the season starts them."""
    from bench.season import PRODUCTION_POOL, Services, _configs

    configs = _configs(amqp, template, ctx.workdir / "unused-registry.csv", ctx.workdir)
    return Services(ctx, amqp, configs, clock_file, PRODUCTION_POOL, services=SERVED,
                    prefix="memory")


def _check(procs):
    exited = procs.exited()
    if exited:
        name = exited[0]
        raise RuntimeError(f"{name} exited ({procs.procs[name].returncode}); see "
                           f"{procs.logs[name]}:\n" + procs.logs[name].read_text()[-3000:])


def _measure(ctx: Context) -> dict:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from bench.season import AUTHORITY, RssSampler, SteppedClock

    exam = Exam(ctx.n(CANDIDATES, LEAST), datetime.now(UTC))
    csv_text = exam.score_file()
    dbs = {name: f"{PREFIX}_{ctx.run_id}_{name}" for name, _ in SERVED}
    template = pg_url(f"{PREFIX}_{ctx.run_id}_{{service}}")
    ctx.log(f"memory: {len(exam.plan.numbers)} candidates, {len(exam.tickets)} tickets, "
            f"{csv_text.count(chr(10)) - 1} score rows, {exam.qualified} to qualify")
    out: dict = {"candidates": exam.plan.count, "tickets": len(exam.tickets),
                 "score_rows": csv_text.count("\n") - 1, "qualified": exam.qualified,
                 "phases": {}}
    with fresh_vhost(ctx, prefix=PREFIX) as amqp:
        engines = {}
        procs = _processes(ctx, amqp, template, ctx.workdir / "memory-clock")
        clock = SteppedClock(procs.clock_file, writer=True)
        try:
            _seed(pg_url(dbs["scoring"]), exam, ctx.log)
            procs.start()
            engines = {n: create_engine(pg_url(db), poolclass=NullPool) for n, db in dbs.items()}

            def scalar(svc, sql, **params):
                with engines[svc].connect() as c:
                    return c.execute(text(sql), params).scalar()

            def settled():
                """scoring has published its whole log, certificate has applied it."""
                head = scalar("scoring", "SELECT position FROM log_head")
                relay = scalar("scoring", "SELECT position FROM relay_state")
                tracked = scalar("certificate", "SELECT position FROM tracking "
                                 "WHERE upstream = 'scoring'") or 0
                return relay == head and tracked == head

            def wait(what, done):
                deadline = time.monotonic() + WAIT_S
                while not done():
                    _check(procs)
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"memory: {what} did not happen in {WAIT_S:.0f} s")
                    time.sleep(0.5)

            rss = RssSampler(procs.pids)
            rss.start()

            def phase(name, work):
                rss.phase = name
                t = time.monotonic()
                got = work()
                rss.sample()
                out["phases"][name] = {
                    "seconds": round(time.monotonic() - t, 1),
                    "hwm_mb": {k: round(v / 1024, 1) for k, v in rss.hwm_kb.items()}}
                ctx.log(f"memory: {name} {out['phases'][name]}")
                return got

            phase("start", lambda: wait("certificate catching up with scoring", settled))
            clock.jump_to(exam.doc.window("exam").end_exclusive + timedelta(seconds=1))
            sid = exam.doc.session_id
            got = phase("import", lambda: (_call(amqp, "scoring", "import_scores", AUTHORITY, {
                "session_id": sid, "filename": "memory-scores.csv", "csv": csv_text}),
                wait("the import published", settled))[0])
            out["imported"] = {k: got[k] for k in ("rows", "candidates", "absent_rows", "missing")}
            clock.jump_to(exam.doc.window("scores").start + timedelta(seconds=1))
            got = phase("publish", lambda: _call(amqp, "scoring", "publish_scores", AUTHORITY, sid))
            out["published"] = {k: got[k] for k in ("candidates", "passed_subjects", "qualified")}

            def certified():
                return (scalar("certificate", "SELECT count(*) FROM certificates")
                        >= exam.qualified and settled())

            phase("certification", lambda: wait("certificates issued", certified))
            out["certificates"] = scalar("certificate", "SELECT count(*) FROM certificates")
            rss.stop()
            out["hwm_mb"] = {k: round(v / 1024, 1) for k, v in rss.hwm_kb.items()}
            out["rss_end_mb"] = {k: round(RssSampler._status(pid).get("VmRSS", 0) / 1024, 1)
                                 for k, pid in procs.pids.items()}
        finally:
            procs.stop()
            for e in engines.values():
                e.dispose()
            drop_databases(dbs.values())
    return out


def run(ctx: Context):
    names = ("memory_scoring_peak_mb", "memory_certificate_peak_mb")
    if not ctx.wanted(*names):
        return
    out = _measure(ctx)
    if out["certificates"] != out["qualified"]:
        raise RuntimeError(f"{out['certificates']} certificates for {out['qualified']} qualified")
    for name, service in zip(names, ("scoring", "certificate"), strict=True):
        if ctx.wanted(name):
            yield Figure(name, out["hwm_mb"][service], "MiB", ceiling=CEILING_MB,
                         detail={**out, "service": service})


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["memory", *sys.argv[1:]]))
