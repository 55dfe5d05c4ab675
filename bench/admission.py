"""Admission figures (issue 4): the seating plan for a big sitting.

- ``seat_allocation_50k_s``: seconds from the confirmation deadline's timer body starting
  until every ticket is issued, for 50,000 confirmed candidates awaiting a seat: read the
  candidates from the read model, decide the plan (``domain.make_plan``: order, even
  filling, ticket numbers; one transaction), then issue its tickets: ~100,000 events
  (SeatAllocated + AdmissionTicketIssued per candidate, at expected versions) appended in
  batches of ``ISSUE_BATCH`` candidates a transaction, the read model updated in each. It
  runs the service's own ``deadlines`` entrypoint in-process (nameko's ``worker_factory``,
  the real store on a fresh PostgreSQL database; no broker needed: the catch-up pull
  before the plan is stubbed out, and registration says it has nothing more: a mock that
  always had more kept the plan waiting its whole minute for it);
- ``seat_allocation_50k_peak_mb``: the process's peak resident memory during that run,
  above what it held before (``VmHWM`` after resetting it through ``/proc/self/clear_refs``;
  ``ru_maxrss`` where that is not possible).

The candidates' confirmations are appended first (not timed), in batches, as admission's
consumer records them: 60% 一级 all subjects, 15% 一级 exempt, 20% 二级, 5% 二级 exempt,
registration point 2916. The session is the reference session with its sample venues
replaced by enough rooms of 30 (40 venues of 45 rooms: 54,000 seats).
``detail.decide_s`` is ``domain.make_plan`` alone on the same rows (measured after);
``detail.process_cpu_s`` the bench process's CPU time over the timed run (PostgreSQL's own
work not included): on a shared machine it says more than the wall time.
"""

from __future__ import annotations

import os
import random
import resource
import time
from datetime import datetime, timedelta
from types import SimpleNamespace

from bench.common import Context, Figure, fresh_pg, pg_url, resident_id

CANDIDATES = 50_000
VENUES, ROOMS_PER_VENUE = 40, 45
BATCH = 2000  # confirmations per setup transaction


def _kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _session(n_rooms_needed: int) -> dict:
    from shared.session import reference_session

    d = reference_session().to_dict()
    venues = max(1, min(VENUES, -(-n_rooms_needed // ROOMS_PER_VENUE) + 1))
    d["venues"] = [{"code": f"BENCH-{v:02d}", "name": f"基准考点{v:02d}", "address": f"上海市第{v}号",
                    "rooms": [{"code": f"{r:03d}", "seats": 30} for r in range(1, ROOMS_PER_VENUE + 1)]}
                   for v in range(1, venues + 1)]
    return d


def _confirmations(session_id: str, n: int, seed: int = 2026):
    rng = random.Random(seed)
    sets = [("L1", ["L1-LAW", "L1-DATA", "L1-CASE"], None)] * 12 + \
        [("L1", ["L1-DATA", "L1-CASE"], {"subject": "L1-LAW", "ground": "senior_title"})] * 3 + \
        [("L2", ["L2-LAW", "L2-PRACTICE"], None)] * 4 + \
        [("L2", ["L2-LAW"], {"subject": "L2-PRACTICE", "ground": "verifier_certificate"})]
    for i in range(n):
        level, subjects, exemption = rng.choice(sets)
        account = f"bench{i:07d}"
        yield {"application_id": f"{session_id}.{account}", "account_id": account,
               "session_id": session_id, "level": level, "subjects": subjects,
               "exemption": exemption, "registration_point": "2916",
               "candidate": {"name": "张三", "id_type": "resident_id", "id_number": resident_id(i)},
               "confirmed_at": "2026-04-17T11:00:00+08:00"}


def allocation(ctx: Context, n: int) -> tuple[float, float, dict]:
    from nameko.testing.services import worker_factory
    from sqlalchemy import func, select

    from services.admission import domain
    from services.admission.projection import AdmissionProjection, tickets
    from services.admission.schemas import REGISTRY
    from services.admission.service import ISSUE_BATCH, AdmissionService
    from shared.clock import SHANGHAI, ControlledClock
    from shared.deadlines import DeadlineRunner
    from shared.dependencies import BoundStore
    from shared.eventstore.store import open_store
    from shared.eventstore.unit_of_work import Context as StoreContext
    from shared.session import SessionDocument

    doc = _session(-(-n // 30))
    sid = doc["session_id"]
    clock = ControlledClock(datetime(2026, 4, 18, 15, 0, tzinfo=SHANGHAI))
    with fresh_pg(ctx, "admission") as db:
        store = open_store(pg_url(db), REGISTRY, clock=clock, projections=[AdmissionProjection()],
                           create_database=False)
        try:
            ctx.log(f"seat_allocation: recording {n} confirmations")
            store.append(domain.record_session(sid, doc))
            batch = []
            for p in _confirmations(sid, n):
                batch += domain.record_confirmation(p)
                if len(batch) == BATCH:
                    store.append(batch, {e.stream_id: 0 for e in batch})
                    batch = []
            if batch:
                store.append(batch, {e.stream_id: 0 for e in batch})
            head = store.head()

            class NoBroker:
                def catch_up(self, _fetchers):
                    return 0

            class CaughtUp:  # registration has logged nothing the plan has not seen
                def events_after(self, _position, _limit):
                    return []

            worker = worker_factory(AdmissionService, store=BoundStore(store, StoreContext(actor="bench")),
                                    clock=clock, tracking=NoBroker(), registration_rpc=CaughtUp(),
                                    ticket_key=b"bench", deadline_effects=DeadlineRunner("admission"))
            clock.set(SessionDocument.from_dict(doc).window("confirmation").end_exclusive
                      + timedelta(seconds=1))
            ctx.log(f"seat_allocation: the confirmation deadline for {n} candidates")
            rss_before, hwm_reset = _kib("VmRSS"), _reset_peak()
            maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t0, cpu0 = time.perf_counter(), time.process_time()
            worker.deadlines()
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            if hwm_reset and rss_before is not None:
                peak_mb, how = (_kib("VmHWM") - rss_before) / 1024, "VmHWM - VmRSS before"
            else:
                peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss_before) / 1024
                how = "ru_maxrss delta"
            appended = store.head() - head
            with store.engine.connect() as c:
                seated = c.execute(select(func.count()).where(
                    tickets.c.session_id == sid, tickets.c.seat.is_not(None))).scalar_one()
                distinct = c.execute(select(func.count()).select_from(select(
                    tickets.c.venue, tickets.c.room, tickets.c.seat).where(
                    tickets.c.session_id == sid).distinct().subquery())).scalar_one()
                rows = c.execute(select(tickets.c.application_id, tickets.c.level, tickets.c.subjects,
                                        tickets.c.registration_point).where(
                    tickets.c.session_id == sid)).all()
            assert seated == n == distinct, (seated, n, distinct)
            batches = -(-n // ISSUE_BATCH)
            # the plan: deadline, seating, plan, its ticket numbers; then per batch + the end
            assert appended == 2 * n + 4 + batches + 1, appended
            waiting = [SimpleNamespace(**r._mapping, status="awaiting_seat") for r in rows]
            t1 = time.perf_counter()
            plan = domain.make_plan(SessionDocument.from_dict(doc), waiting, 1)
            decide = time.perf_counter() - t1
            detail = {"candidates": n, "events_appended": appended, "transactions": 1 + batches,
                      "issue_batch": ISSUE_BATCH, "rooms_opened": plan.rooms_opened,
                      "rooms": sum(len(v["rooms"]) for v in doc["venues"]),
                      "decide_s": round(decide, 2), "process_cpu_s": round(cpu, 1),
                      "load_average": round(os.getloadavg()[0], 1), "peak_rss_mb": round(peak_mb, 1),
                      "peak_measured_by": how}
            return elapsed, peak_mb, detail
        finally:
            store.engine.dispose()


def run(ctx: Context):
    if not ctx.wanted("seat_allocation_50k_s", "seat_allocation_50k_peak_mb"):
        return
    n = ctx.n(CANDIDATES, 1000)
    elapsed, peak_mb, detail = allocation(ctx, n)
    yield Figure("seat_allocation_50k_s", elapsed, "s", detail=detail)
    yield Figure("seat_allocation_50k_peak_mb", peak_mb, "MB", detail={"candidates": n})
