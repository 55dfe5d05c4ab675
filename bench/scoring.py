"""Scoring figures (成绩): a whole session's score file, checked and stored.

- ``score_import_100k_s``: seconds for ``import_scores`` of 100,000 rows (50,000 candidates
  × 2 subjects of 一级, a few 缺考) into the scoring service's store on a fresh PostgreSQL
  database, in-process (no RPC): the CSV read and checked whole against the session's
  tickets and exam-day records, then one transaction appending the import (the rows in
  private events of 1,000 rows, whole tickets each) with its read model (a row for the
  import: the score rows stay in the log until publication); ``detail.cpu_s`` is the
  process's own CPU time, for a shared machine;
- ``score_import_100k_peak_mb``: the peak of Python's heap during that import
  (``tracemalloc``), measured in a second, identical run (tracing slows the first down).

Set-up, not timed: the reference session and 50,000 issued tickets (SessionRecorded,
TicketRecorded, as scoring records admission's events) are appended to a seed database,
which is then copied (``CREATE DATABASE … TEMPLATE``) for each measurement so both start
from the same state. The marking centre's file is SIMULATED (random scores, seed 2026).
"""

from __future__ import annotations

import random
import resource
import time
import tracemalloc
from datetime import datetime

from bench.common import Context, Figure, _admin_engine, drop_databases, fresh_pg, pg_url

CANDIDATES = 50_000
SUBJECTS = ("L1-LAW", "L1-DATA")
SETUP_BATCH = 5000  # events per set-up transaction
AUTHORITY = {"staff_id": "bench-authority"}


def _tickets(doc, n):
    sid = doc.session_id
    for i in range(n):
        number = f"{doc.exam_year}2916L1{i:06d}"
        account = f"b{i:07d}"
        yield {"ticket_number": number, "session_id": sid, "account_id": account,
               "application_id": f"{sid}.{account}", "level": "L1",
               "subjects": list(SUBJECTS), "exemption": None,
               "candidate": {"name": "张三", "id_type": "resident_id",
                             "id_number": f"31010419800101{i % 10000:04d}"},
               "exam_year": doc.exam_year}


def score_file(doc, n, seed=2026) -> str:
    """The simulated marking centre's CSV: every candidate, both subjects; 1% absent."""
    rnd = random.Random(seed)
    lines = ["ticket_number,subject,score"]
    for i in range(n):
        number = f"{doc.exam_year}2916L1{i:06d}"
        for code in SUBJECTS:
            score = "缺考" if rnd.random() < 0.01 else f"{rnd.randint(300, 1200) / 10:g}"
            lines.append(f"{number},{code},{score}")
    return "\ufeff" + "\r\n".join(lines) + "\r\n"


def _seed(url, doc, n, log):
    from services.scoring import domain
    from services.scoring.projection import ScoringProjection
    from services.scoring.schemas import REGISTRY
    from shared.events import NewEvent
    from shared.eventstore.store import open_store

    store = open_store(url, REGISTRY, projections=[ScoringProjection()], create_database=False)
    store.append([domain.session_recorded(doc)])
    batch = []
    for t in _tickets(doc, n):
        batch.append(NewEvent(domain.ticket_stream(t["ticket_number"]), "TicketRecorded", t))
        if len(batch) == SETUP_BATCH:
            store.append(batch, {e.stream_id: 0 for e in batch})
            batch = []
    if batch:
        store.append(batch, {e.stream_id: 0 for e in batch})
    log(f"scoring: seeded {n} tickets, head {store.head()}")
    store.engine.dispose()


def _clone(seed_db: str, name: str):
    from sqlalchemy import text

    engine = _admin_engine()
    try:
        with engine.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{seed_db}"'))
    finally:
        engine.dispose()


def _import(url, doc, text, trace: bool):
    from services.scoring.projection import ScoringProjection
    from services.scoring.schemas import REGISTRY
    from services.scoring.service import run_import
    from shared.clock import SHANGHAI
    from shared.eventstore.store import open_store

    store = open_store(url, REGISTRY, projections=[ScoringProjection()], create_database=False)
    head = store.head()
    cmd = {"session_id": doc.session_id, "filename": "阅卷中心-2026.csv", "csv": text}
    now = datetime(2026, 6, 20, 10, 0, tzinfo=SHANGHAI)  # after the exam, before publication
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        result = run_import(store, AUTHORITY, cmd, now)
    finally:
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = tracemalloc.get_traced_memory()[1] if trace else None
        if trace:
            tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    events = store.head() - head
    store.engine.dispose()
    return {"seconds": seconds, "cpu_seconds": round(cpu, 2), "peak_bytes": peak, "events": events, "result": result,
            "maxrss_growth_mb": round((rss_after - rss_before) / 1024, 1)}


def run(ctx: Context):
    if not ctx.wanted("score_import_100k_s", "score_import_100k_peak_mb"):
        return
    from shared.session import reference_session

    doc = reference_session()
    n = ctx.n(CANDIDATES, 100)
    text = score_file(doc, n)
    rows = n * len(SUBJECTS)
    ctx.log(f"scoring: {rows} rows, {len(text.encode('utf-8')) / 1e6:.1f} MB of CSV")
    with fresh_pg(ctx, "scoring_seed") as seed_db:
        _seed(pg_url(seed_db), doc, n, ctx.log)
        timed_db, traced_db = f"{seed_db}_timed", f"{seed_db}_traced"
        try:
            _clone(seed_db, timed_db)
            timed = _import(pg_url(timed_db), doc, text, trace=False)
            assert timed["result"]["rows"] == rows, timed["result"]
            # the machine is shared: the process's own CPU time says what the import costs it
            detail = {"rows": rows, "candidates": n, "events_appended": timed["events"],
                      "cpu_s": timed["cpu_seconds"],
                      "rows_per_s": round(rows / timed["seconds"]),
                      "csv_bytes": len(text.encode("utf-8")),
                      "maxrss_growth_mb": timed["maxrss_growth_mb"]}
            if ctx.wanted("score_import_100k_s"):
                yield Figure("score_import_100k_s", timed["seconds"], "s", detail=detail)
            if ctx.wanted("score_import_100k_peak_mb"):
                _clone(seed_db, traced_db)
                traced = _import(pg_url(traced_db), doc, text, trace=True)
                yield Figure("score_import_100k_peak_mb", traced["peak_bytes"] / 2**20, "MiB",
                             detail={"rows": rows, "traced_seconds": round(traced["seconds"], 2),
                                     "measured_by": "tracemalloc peak (Python heap)"})
        finally:
            drop_databases([timed_db, traced_db])
