"""Rebuild figure: ``rebuild_1m_s``, the account service's read model rebuilt from a log of
1,000,000 events on PostgreSQL (``Projection.rebuild``, as ``python -m shared.rebuild
account`` runs it).

The log is the account service's, with its real event shapes: the events come from
``services.account.domain`` itself (``register``, ``update_section``, ``login_failed``,
``change_password``), for synthetic candidates (``bench.common.candidate``: valid resident
ID numbers, unique mobiles and usernames). Per candidate, 12 events on average:

- registering: ``AccountRegistered``, ``CredentialsSet`` and three claims (5 events, one
  transaction);
- the five profile sections, one ``ProfileUpdated`` each, the last one with
  ``ProfileCompleted`` (6 events), each saved a while after registering: spread over the
  time in which ``SPREAD`` other candidates register (a candidate fills in the profile
  while thousands of others sign up: their events interleave);
- one later event, spread over ``LATE_SPREAD`` candidates' time: a login failure, a
  second save of the contact section, or a password change (one in three each).

The log is written straight into the ``events`` table with ``COPY`` (not through
commands: the figure is the rebuild, not the appends); positions follow the events'
times, stream versions their order in each stream, and the log head is set to the last
position. Built once per run (about two minutes); the rebuild is timed ``REPEATS`` times
on it (the first into empty tables, the next replacing the full read model the one before
left), the best kept (the machine is shared). Afterwards the bench checks the read model:
one ``accounts`` row per registered candidate, one ``profile_sections`` row per saved
section, and a sample of rows equal to what the domain's own fold of the stream says.
"""

from __future__ import annotations

import csv
import io
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson

from bench.common import Context, Figure, candidate, fresh_pg, pg_params, pg_url

EVENTS = 1_000_000
EVENTS_PER_CANDIDATE = 12
SPREAD = 2000  # the profile is saved while this many others register
LATE_SPREAD = 20_000  # the late event: within this many others' registrations after that
REPEATS = 2
PASSWORD_HASH = ("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"
                 "Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmE")
SECTIONS = ("photo", "basic", "education", "work", "contact")


def _sections(n: int) -> dict:
    """Candidate ``n``'s five sections as the section schemas load them (see
    ``bench.applicants.sections``; the photo as ``check_photo`` describes it)."""
    from bench.common import birth_date_and_gender, resident_id

    born, gender = birth_date_and_gender(resident_id(n))
    return {
        "photo": {"sha256": f"{n:064x}", "width": 295, "height": 413, "size": 18_000 + n % 5000},
        "basic": {"gender": gender, "birth_date": born, "ethnicity": "汉族"},
        "education": {"education": [{"level": "本科", "school": "同济大学", "major": "测控技术与仪器",
                                     "major_category": "science_engineering",
                                     "graduated_on": "2010-07-01",
                                     "certificate_no": f"BENCH{n:011d}"}],
                      "degrees": []},
        "work": {"entries": [{"employer": "上海市计量测试技术研究院", "position": "工程师",
                              "start": "2010-08-01", "end": None, "metrology": True}]},
        "contact": {"email": f"cand{n}@example.com", "address": f"上海市徐汇区桂箐路{n % 200}号"},
    }


def candidate_history(n: int, rng: random.Random) -> list[tuple[float, int, object]]:
    """Candidate ``n``'s events, from the account domain, each with its time (in candidate
    registration slots) and its order within a transaction: ``(time, order, NewEvent)``."""
    from services.account import domain

    now = datetime(2026, 3, 1, tzinfo=UTC)  # a date for the domain's checks only
    data = candidate(n)
    data = {k: data[k] for k in ("name", "id_type", "id_number", "mobile", "username")}
    account_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
    out = [(float(n), i, e) for i, e in enumerate(domain.register(account_id, data, PASSWORD_HASH, now))]
    account = domain.Account(account_id, version=2, username=data["username"], name=data["name"],
                             id_type=data["id_type"], id_number=data["id_number"],
                             mobile=data["mobile"], registered_at=now, password_hash=PASSWORD_HASH)
    sections = _sections(n)
    t = n
    for section, at in zip(SECTIONS, sorted(rng.uniform(0, SPREAD) for _ in SECTIONS), strict=True):
        t = n + at
        for i, e in enumerate(domain.update_section(account, section, sections[section], now)):
            out.append((t, i, e))
            if e.type == "ProfileUpdated":
                account.sections = {**account.sections, section: e.payload["data"]}
            elif e.type == "ProfileCompleted":
                account.complete = True
    t += rng.uniform(0, LATE_SPREAD)
    match n % 3:
        case 0:
            late = domain.login_failed(account, now)
        case 1:
            content = {**sections["contact"], "address": f"北京市海淀区学院路{n % 300}号"}
            late = domain.update_section(account, "contact", content, now)
        case _:
            late = domain.change_password(account, PASSWORD_HASH.replace("Zm9v", "YmFy"), now)
    out += [(t, i, e) for i, e in enumerate(late)]
    return out


def build_log(url: str, events: int, log=print) -> dict:
    """The account service's store at ``url`` (migrated), its log filled with ``events``
    events by ``COPY``. Returns facts about the log."""
    import psycopg2

    from services.account.projection import AccountProjection
    from services.account.schemas import REGISTRY
    from shared.eventstore.store import open_store

    store = open_store(url, REGISTRY, projections=[AccountProjection()], create_database=False)
    store.engine.dispose()
    rng = random.Random(20260301)
    candidates = -(-events // EVENTS_PER_CANDIDATE)
    t0 = time.perf_counter()
    timed = []
    for n in range(candidates):
        timed += [(t, n, i, e) for t, i, e in candidate_history(n, rng)]
    timed.sort(key=lambda x: (x[0], x[1], x[2]))
    del timed[events:]
    for _, _, _, e in timed[:50]:  # the shapes the service would have accepted
        REGISTRY.validate(e.type, e.payload)
    made = time.perf_counter() - t0

    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    slot = timedelta(seconds=30 * 86400 / candidates)  # registrations over 30 days
    versions: dict[str, int] = {}
    dumps = orjson.dumps
    db = psycopg2.connect(**pg_params(url.rsplit("/", 1)[1]))
    t1 = time.perf_counter()
    try:
        with db, db.cursor() as cur:
            # the log's keys are built after the load, as a restore would (faster than per row)
            cur.execute("ALTER TABLE events DROP CONSTRAINT uq_events_stream_version")
            cur.execute("ALTER TABLE events DROP CONSTRAINT events_pkey")
            chunk = 100_000
            for lo in range(0, len(timed), chunk):
                buf = io.StringIO()
                w = csv.writer(buf, lineterminator="\n")
                for position, (t, n, _i, e) in enumerate(timed[lo:lo + chunk], start=lo + 1):
                    v = versions[e.stream_id] = versions.get(e.stream_id, 0) + 1
                    md = {"event_id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                          "correlation_id": f"{n:032x}", "causation_id": None,
                          "actor": e.payload.get("account_id"),
                          "occurred_at": (start + slot * t).isoformat(timespec="microseconds")}
                    w.writerow((position, e.stream_id, v, e.type, REGISTRY.get(e.type).version,
                                dumps(e.payload).decode(), dumps(md).decode()))
                buf.seek(0)
                cur.copy_expert("COPY events (position, stream_id, stream_version, type, "
                                "schema_version, payload, metadata) FROM STDIN WITH (FORMAT csv)",
                                buf)
            cur.execute("ALTER TABLE events ADD PRIMARY KEY (position)")
            cur.execute("ALTER TABLE events ADD CONSTRAINT uq_events_stream_version "
                        "UNIQUE (stream_id, stream_version)")
            cur.execute("UPDATE log_head SET position = %s WHERE id = 1", (len(timed),))
        with db.cursor() as cur:
            db.autocommit = True
            cur.execute("VACUUM ANALYZE events")
            cur.execute("SELECT pg_total_relation_size('events')")
            size = cur.fetchone()[0]
    finally:
        db.close()
    registered = sum(1 for *_, e in timed if e.type == "AccountRegistered")
    sections = sum(1 for *_, e in timed if e.type == "ProfileUpdated")
    log(f"log of {len(timed)} events ({size / 2**20:.0f} MiB): made in {made:.1f} s, "
        f"loaded in {time.perf_counter() - t1:.1f} s")
    return {"events": len(timed), "candidates": registered, "log_mib": round(size / 2**20),
            "profile_saves": sections, "streams": len(versions)}


def check_read_model(store, facts: dict, samples: int = 20):
    """The rebuilt model has a row per account and per saved section, and sampled accounts
    agree with the domain's fold of their streams."""
    from sqlalchemy import func, select

    from services.account import domain
    from services.account.projection import accounts, profile_sections

    with store.engine.connect() as c:
        n_accounts = c.execute(select(func.count()).select_from(accounts)).scalar_one()
        n_sections = c.execute(select(func.count()).select_from(profile_sections)).scalar_one()
        ids = c.execute(select(accounts.c.account_id).order_by(accounts.c.account_id)
                        .limit(samples)).scalars().all()
        assert n_accounts == facts["candidates"], (n_accounts, facts)
        assert 0 < n_sections <= 5 * n_accounts, (n_sections, n_accounts)
        for account_id in ids:
            account = domain.fold(store.read_stream(domain.account_stream(account_id)))
            row = c.execute(select(accounts).where(accounts.c.account_id == account_id)).one()
            assert (row.password_hash, row.completeness, row.failures) == (
                account.password_hash, account.completeness, account.failures), account_id
            saved = dict(c.execute(select(profile_sections.c.section, profile_sections.c.data)
                                   .where(profile_sections.c.account_id == account_id)).all())
            assert saved == account.sections, account_id


def rebuild_once(url: str) -> tuple[float, int, float]:
    """Seconds, events replayed, and CPU seconds of this process (all its threads)."""
    from services.account.projection import AccountProjection
    from services.account.schemas import REGISTRY
    from shared.eventstore.store import open_store

    projection = AccountProjection()
    store = open_store(url, REGISTRY, projections=[projection], create_database=False)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        n = projection.rebuild(store)
        return time.perf_counter() - t0, n, time.process_time() - c0
    finally:
        store.engine.dispose()


def run(ctx: Context):
    if not ctx.wanted("rebuild_1m_s"):
        return
    events = ctx.n(EVENTS, 10_000)
    with fresh_pg(ctx, "rebuild") as db:
        url = pg_url(db)
        ctx.log(f"rebuild_1m_s: building the account service's log of {events} events")
        facts = build_log(url, events, log=ctx.log)
        runs, cpu = [], []
        for r in range(ctx.n(REPEATS)):
            # the first into empty tables, the next ones replacing a full read model
            seconds, n, cpu_s = rebuild_once(url)
            assert n == facts["events"], (n, facts)
            ctx.log(f"rebuild_1m_s: run {r + 1}: {seconds:.2f} s ({n / seconds:,.0f} events/s, "
                    f"{cpu_s:.1f} s of CPU in Python)")
            runs.append(round(seconds, 2))
            cpu.append(round(cpu_s, 1))
        from services.account.projection import AccountProjection
        from services.account.schemas import REGISTRY
        from shared.eventstore.store import open_store

        store = open_store(url, REGISTRY, projections=[AccountProjection()], create_database=False)
        try:
            check_read_model(store, facts)
        finally:
            store.engine.dispose()
        best = min(runs)
        yield Figure("rebuild_1m_s", best, "s", ceiling=10.0,
                     detail={**facts, "runs_s": runs, "python_cpu_s": cpu,
                             "events_per_s": round(facts["events"] / best)})
