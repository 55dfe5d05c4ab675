"""Schema migrations (Alembic, shared/migrations.py) on SQLite and PostgreSQL, per service:
a fresh database equals one upgraded revision by revision and one made from the models;
the models do not drift from the heads; databases of the scheme before Alembic are
adopted when their tables match, refused otherwise; a database at its heads costs a query."""

import subprocess
import sys

import pytest
from sqlalchemy import Column, DateTime, MetaData, String, Table, event, inspect, text

from shared import migrations
from shared.eventstore.engine import ensure_database, make_engine
from shared.eventstore.store import open_store
from shared.eventstore.tables import meta
from shared.migrate import has_log, store_provider
from shared.runner import discover_services

pytestmark = pytest.mark.integration

SERVICES = [s for s in discover_services() if has_log(s)]


@pytest.fixture(params=["sqlite", "postgresql"])
def new_url(request, tmp_path):
    """Makes fresh databases on one backend."""
    made = []

    def new():
        made.append(len(made))
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path}/db{len(made)}.db"
        url = request.getfixturevalue("databases").new("mig")
        ensure_database(url)
        return url
    return new


@pytest.fixture(scope="module")
def _upgraded():
    return {}


@pytest.fixture
def upgraded(_upgraded, new_url, request):
    """``upgraded(service)``: the URL of a fresh database of this backend upgraded to the
    service's heads, and the revisions that upgrade applied. Made once per module for each
    backend and service: the tests that only read it share it."""
    def get(service):
        key = (request.node.callspec.params["new_url"], service)
        if key not in _upgraded:
            url = new_url()
            engine = engine_of(url)
            try:
                _upgraded[key] = (url, migrations.upgrade(engine, names(service)))
            finally:
                engine.dispose()
        return _upgraded[key]
    return get


def engine_of(url):
    ensure_database(url)
    return make_engine(url)


def schema(engine, exclude=(migrations.VERSION_TABLE,)):
    with engine.connect() as conn:
        return migrations.signature(conn, exclude=set(exclude))


def names(service):
    return migrations.names_of(store_provider(service).projections)


def models(service):
    return migrations.models(store_provider(service).projections)


def test_every_service_projection_has_a_history():
    assert set(migrations.histories()) == {"core", *SERVICES}
    for service in SERVICES:
        (projection,) = store_provider(service).projections
        assert projection.history == service


def test_revisions_are_frozen():
    """A revision writes its tables out: it never imports the models it would follow."""
    for path in migrations.ROOT.glob("*/*.py"):
        source = path.read_text()
        for forbidden in ("from shared", "from services", "import shared", "import services"):
            assert forbidden not in source, f"{path.name} imports today's code"


@pytest.mark.parametrize("service", SERVICES)
def test_fresh_equals_upgraded_step_by_step_equals_models(service, new_url, upgraded):
    url, applied = upgraded(service)
    fresh, stepped, modelled = engine_of(url), engine_of(new_url()), engine_of(new_url())
    try:
        assert sorted(applied) == sorted(migrations.revisions(names(service)))
        for revision in migrations.revisions(names(service)):  # a release at a time
            assert migrations.upgrade(stepped, names(service), to=revision) == [revision]
        assert migrations.upgrade(stepped, names(service)) == []
        with modelled.begin() as conn:
            for m in models(service):
                m.create_all(conn)
        assert schema(fresh) == schema(stepped)
        assert migrations.differences(schema(modelled), schema(fresh)) == []
        for engine in (fresh, stepped):
            with engine.connect() as conn:
                assert migrations.current(conn) == set(migrations.heads(names(service)))
                # the data revisions ran too: counters at 0, one log identity
                assert conn.execute(text("SELECT position FROM log_head")).scalar_one() == 0
                assert conn.execute(text("SELECT position FROM relay_state")).scalar_one() == 0
                assert len(conn.execute(text("SELECT log_id FROM log_identity")).scalar_one()) == 32
    finally:
        for engine in (fresh, stepped, modelled):
            engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_models_do_not_drift_from_the_heads(service, upgraded):
    """What ``alembic check`` does: autogenerate finds nothing to add, drop or change."""
    engine = engine_of(upgraded(service)[0])
    try:
        with engine.connect() as conn:
            assert migrations.drift(store_provider(service).projections, conn) == []
    finally:
        engine.dispose()


def test_drift_is_found():
    """The check is not blind: a column the models have and no revision adds is reported."""
    from sqlalchemy import Integer

    class Widened:
        history = "admission"
        metadata = MetaData()

    for t in store_provider("admission").projections[0].metadata.sorted_tables:
        t.to_metadata(Widened.metadata)
    Widened.metadata.tables["tickets"].append_column(Column("extra", Integer))
    diffs = migrations.drift([Widened()])
    assert [(d[0], d[2], d[3].name) for d in diffs] == [("add_column", "tickets", "extra")]


# -- the scheme before Alembic -------------------------------------------------------------

def old_scheme(url, service, *, ids=None, drop=()):
    """A database as shared/migrations.py made it before Alembic, with the ids it applied in
    ``schema_migrations`` and the counters seeded. Every step it had (``ids`` None): the
    tables the revisions with a ``legacy_id`` make; else today's tables from the models that
    the steps ``ids`` made (not the tables of revisions since, which have no ``legacy_id``)."""
    engine = engine_of(url)
    projection = store_provider(service).projections[0]
    legacy = MetaData()
    record = Table("schema_migrations", legacy, Column("id", String(200), primary_key=True),
                   Column("applied_at", DateTime(timezone=True), nullable=False))
    if ids is None:
        scripts = migrations.script(names(service))
        stepped = [(r, getattr(scripts.get_revision(r).module, "legacy_id", None))
                   for r in migrations.revisions(names(service))]
        ids = [i for _, i in stepped if i]
        for revision, _ in (step for step in stepped if step[1]):
            migrations.upgrade(engine, names(service), to=revision)
        with engine.begin() as conn:
            for name in ("alembic_version", *drop):
                conn.exec_driver_sql(f"DROP TABLE {name}")
            record.create(conn)
            conn.execute(text("UPDATE log_identity SET log_id = :i"), {"i": "a" * 32})
            for i in ids:
                conn.execute(record.insert().values(id=i, applied_at=text("CURRENT_TIMESTAMP")))
        return engine
    made = set(migrations.schema_at(names(service),
                                    migrations.legacy_revisions(names(service), set(ids))))
    with engine.begin() as conn:
        record.create(conn)
        for m in (meta, projection.metadata):
            for table in m.sorted_tables:
                if table.name not in drop and table.name in made:
                    table.create(conn)
        conn.execute(text("INSERT INTO log_head (id, position) VALUES (1, 0)"))
        conn.execute(text("INSERT INTO relay_state (id, position) VALUES (1, 0)"))
        conn.execute(text("INSERT INTO log_identity (id, log_id) VALUES (1, :i)"), {"i": "a" * 32})
        for i in ids:
            conn.execute(record.insert().values(id=i, applied_at=text("CURRENT_TIMESTAMP")))
    return engine


@pytest.mark.parametrize("service", SERVICES)
def test_an_old_scheme_database_is_adopted(service, new_url, upgraded):
    url = new_url()
    old = old_scheme(url, service)
    fresh = engine_of(upgraded(service)[0])
    provider = store_provider(service)
    store = open_store(url, provider.registry, projections=provider.projections)
    try:
        assert store.schema_heads() == set(migrations.heads(names(service)))
        with store.engine.connect() as conn:  # stamped, not re-made: the old log is kept
            assert conn.execute(text("SELECT log_id FROM log_identity")).scalar_one() == "a" * 32
        assert migrations.differences(schema(fresh),
                                      schema(store.engine, ("alembic_version",
                                                            "schema_migrations"))) == []
        assert store.migrate() == []
    finally:
        for engine in (old, fresh, store.engine):
            engine.dispose()


def test_an_old_database_behind_is_stamped_where_it_stood_then_upgraded(tmp_path):
    """Registration before its second step: no open_enquiry, no audit trail."""
    url = f"sqlite:///{tmp_path}/old.db"
    ids = ["core.0001_event_log", "core.0002_seed_counters", "core.0003_log_identity",
           "registration.0001_read_model"]
    old = old_scheme(url, "registration", ids=ids, drop=("audit_trail",))
    with old.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE applications DROP COLUMN open_enquiry")
    try:
        assert migrations.upgrade(old, names("registration")) == ["registration_0002",
                                                                  "registration_0003"]
        fresh = engine_of(f"sqlite:///{tmp_path}/fresh.db")
        migrations.upgrade(fresh, names("registration"))
        assert schema(fresh) == schema(old, ("alembic_version", "schema_migrations"))
        fresh.dispose()
    finally:
        old.dispose()


def old_scheme_at(url, service, last: str):
    """A database as the scheme before Alembic made it when ``last`` was its newest step:
    the tables of the revisions up to ``last`` (core's all), their ``legacy_id``s recorded
    in ``schema_migrations``, no Alembic record."""
    engine = engine_of(url)
    order = migrations.revisions(names(service))
    upto = order[:order.index(last) + 1]
    for revision in upto:
        migrations.upgrade(engine, names(service), to=revision)
    legacy = MetaData()
    record = Table("schema_migrations", legacy, Column("id", String(200), primary_key=True),
                   Column("applied_at", DateTime(timezone=True), nullable=False))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        record.create(conn)
        for r in upto:
            conn.execute(record.insert().values(
                id=migrations.script(names(service)).get_revision(r).module.legacy_id,
                applied_at=text("CURRENT_TIMESTAMP")))
    return engine


def recorded_before_rekeying(service):
    """Events of a ticket as the code before the re-keying revisions wrote them."""
    from shared.events import NewEvent

    ticket = {"ticket_number": "20262916L1000001", "application_id": "s1.wang",
              "account_id": "wang", "session_id": "s1"}
    return {"notification": [NewEvent("ticket-20262916L1000001", "TicketRecorded",
                                      {**ticket, "status": "issued", "upstream_position": 7})],
            "scoring": [NewEvent("ticket-20262916L1000001", "TicketRecorded", {
                **ticket, "level": "L1", "subjects": ["L1-LAW"], "exemption": None,
                "candidate": {"name": "王建国"}, "exam_year": 2026}),
                NewEvent("ticket-20262916L1000001", "CheckInRecorded",
                         {**ticket, "subject": "L1-LAW"})]}.get(service, [])


# the table changes made in the scheme before Alembic after its first steps: (the service,
# the revision its database stood at, the one that changes a table, whether it re-keys)
LATER_STEPS = [("admission", "admission_0001", "admission_0002", False),
               ("verification", "verification_0002", "verification_0003", False),
               ("notification", "notification_0001", "notification_0002", True),
               ("scoring", "scoring_0001", "scoring_0002", True)]


@pytest.mark.parametrize(("service", "before", "change", "rekeys"), LATER_STEPS,
                         ids=[s[2] for s in LATER_STEPS])
def test_an_old_database_before_a_later_step_is_adopted_then_upgraded(
        service, before, change, rekeys, new_url, upgraded):
    """A release changes a table: a database the old scheme made before that step is
    stamped where it stood, upgraded by the new revision, and ends up as a fresh one; a
    revision that re-keys a read model (``rebuild = True``) has it rebuilt from the log."""
    from shared.eventstore.store import EventStore
    from shared.projection import snapshot

    url = new_url()
    old = old_scheme_at(url, service, before)
    provider = store_provider(service)
    (projection,) = provider.projections
    recorded = recorded_before_rekeying(service)
    if recorded:  # the log as the old code wrote it (its read model's key cannot take them)
        EventStore(old, provider.registry).append(recorded)
    fresh = engine_of(upgraded(service)[0])
    store = EventStore(make_engine(url), provider.registry, projections=provider.projections)
    try:
        revisions = migrations.revisions(names(service))
        later = revisions[revisions.index(before) + 1:]  # the change, then any after it
        assert later[0] == change
        assert store.migrate() == later
        assert store.schema_heads() == set(migrations.heads(names(service)))
        assert migrations.differences(schema(fresh), schema(
            store.engine, ("alembic_version", "schema_migrations"))) == []
        assert migrations.rebuilds(names(service), [change]) == ({service} if rekeys else set())
        rows = snapshot(store.engine, projection)
        if rekeys:  # filled again from the log, under the application
            assert [r["application_id"] for r in rows["tickets"]] == ["s1.wang"]
            if service == "scoring":
                assert [(r["application_id"], r["subject"]) for r in rows["attendance"]] == \
                    [("s1.wang", "L1-LAW")]
        assert store.migrate() == []
    finally:
        for engine in (old, fresh, store.engine):
            engine.dispose()


def test_an_old_database_whose_tables_differ_is_refused_untouched(new_url):
    url = new_url()
    old = old_scheme(url, "registration", drop=("audit_trail",))  # ids say it was made
    try:
        with pytest.raises(migrations.SchemaRefused) as refused:
            migrations.upgrade(old, names("registration"))
        assert "table audit_trail missing" in str(refused.value)
        assert "make clean" in str(refused.value)
        with old.connect() as conn:
            assert not inspect(conn).has_table("alembic_version")
            assert not inspect(conn).has_table("audit_trail")
    finally:
        old.dispose()


def test_the_signature_sees_every_part_a_revision_can_change(new_url):
    """What the comparisons above rest on: each table's columns (type, nullable), primary
    key, indexes and unique constraints, read alike from SQLite and PostgreSQL."""
    engine = engine_of(new_url())
    try:
        with engine.begin() as c:
            c.exec_driver_sql("CREATE TABLE t (a INTEGER NOT NULL PRIMARY KEY, b VARCHAR(20), "
                              "c TEXT NOT NULL, UNIQUE (b, c))")
            c.exec_driver_sql("CREATE INDEX ix_t_c ON t (c)")
            c.exec_driver_sql("CREATE UNIQUE INDEX ux_t_cb ON t (c, b)")
            c.exec_driver_sql("CREATE TABLE u (x INTEGER)")
        made = schema(engine)
        assert made == {
            "t": {"columns": {"a": ("Integer", False), "b": ("String(20)", True),
                              "c": ("Text", False)},
                  "primary key": ("a",),
                  "indexes": [("ix_t_c", ("c",), False), ("ux_t_cb", ("c", "b"), True)],
                  "unique": [("b", "c")]},
            "u": {"columns": {"x": ("Integer", True)}, "primary key": (), "indexes": [],
                  "unique": []}}
        with engine.begin() as c:
            c.exec_driver_sql("DROP INDEX ix_t_c")
        assert migrations.differences(made, schema(engine)) == [
            "t indexes [('ux_t_cb', ('c', 'b'), True)], "
            "expected [('ix_t_c', ('c',), False), ('ux_t_cb', ('c', 'b'), True)]"]
    finally:
        engine.dispose()


def test_another_services_old_database_is_refused(tmp_path):
    old = old_scheme(f"sqlite:///{tmp_path}/old.db", "account")
    try:
        with pytest.raises(migrations.SchemaRefused, match="account.0001_read_model"):
            migrations.upgrade(old, names("scoring"))
    finally:
        old.dispose()


def test_tables_without_any_record_are_refused(tmp_path):
    engine = engine_of(f"sqlite:///{tmp_path}/x.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE events (position INTEGER PRIMARY KEY)")
    try:
        with pytest.raises(migrations.SchemaRefused, match="no record of migrations"):
            migrations.upgrade(engine, names("account"))
    finally:
        engine.dispose()


# -- start-up ------------------------------------------------------------------------------

def test_a_database_at_its_heads_costs_two_reads(upgraded):
    """Services start often (tests start hundreds): at the heads nothing is locked, no
    DDL runs, Alembic's environment is not set up."""
    engine = engine_of(upgraded("scoring")[0])
    try:
        statements = []
        event.listen(engine, "before_cursor_execute",
                     lambda _c, _cur, stmt, *_a: statements.append(stmt))
        assert migrations.upgrade(engine, names("scoring")) == []
        assert len(statements) <= 2, statements
        assert not any("CREATE" in s or "lock" in s for s in statements)
    finally:
        engine.dispose()


def test_replicas_starting_together_migrate_once(pg_url):
    """Two processes starting at once on a fresh PostgreSQL database: one migrates, the
    other waits on the advisory lock and finds the work done."""
    code = ("import sys; from shared import migrations; from shared.eventstore.engine import "
            "make_engine; print(len(migrations.upgrade(make_engine(sys.argv[1]), ['account'])))")
    ensure_database(pg_url)
    starts = [subprocess.Popen([sys.executable, "-c", code, pg_url], stdout=subprocess.PIPE,
                               text=True) for _ in range(2)]
    applied = sorted(int(p.communicate(timeout=120)[0].strip()) for p in starts)
    assert applied == [0, len(migrations.revisions(names("account")))]


def test_services_starting_together_in_one_process(databases):
    """Alembic's ``op`` is one per process: migrations of several databases started at
    once in green threads (the tests' runners) take turns instead of crossing connections."""
    import eventlet

    urls = [databases.new("together") for _ in range(3)]
    engines = [engine_of(u) for u in urls]
    try:
        pool = eventlet.GreenPool()
        results = list(pool.imap(lambda e: migrations.upgrade(e, names("registration")), engines))
        assert [sorted(r) for r in results] == [sorted(migrations.revisions(
            names("registration")))] * 3
    finally:
        for e in engines:
            e.dispose()


# -- a rebuild owed by an upgrade survives the process ---------------------------------------

REKEYING = [("notification", "notification_0001", "notification_0002"),
            ("scoring", "scoring_0001", "scoring_0002")]

# an upgrade in a process that dies (SIGKILL: no clean-up runs) once the upgrade has
# committed, as its projection's rebuild begins
DIES_BEFORE_THE_REBUILD = """
import os, signal, sys
from shared.eventstore.engine import make_engine
from shared.eventstore.store import EventStore
from shared.migrate import store_provider
service, url = sys.argv[1:]
provider = store_provider(service)
(projection,) = provider.projections
projection.rebuild = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
EventStore(make_engine(url), provider.registry, projections=provider.projections).migrate()
"""


def database_before(url, service, before):
    """A database at ``before`` (core's heads, the service's branch up to it) whose log
    holds a ticket its read model had under the old key."""
    from shared.eventstore.store import EventStore

    engine = engine_of(url)
    order = migrations.revisions(names(service))
    for revision in order[:order.index(before) + 1]:
        migrations.upgrade(engine, names(service), to=revision)
    EventStore(engine, store_provider(service).registry).append(recorded_before_rekeying(service))
    return engine


def tickets(engine, service):
    from shared.projection import snapshot

    (projection,) = store_provider(service).projections
    return [r["application_id"] for r in snapshot(engine, projection)["tickets"]]


def owed_now(engine):
    with engine.connect() as conn:
        return migrations.owed(conn)


@pytest.mark.parametrize(("service", "before", "change"), REKEYING, ids=[s[0] for s in REKEYING])
def test_a_process_killed_between_upgrade_and_rebuild_leaves_the_rebuild_to_the_next_start(
        service, before, change, new_url, monkeypatch, capsys):
    """kill -9 after the re-keying upgrade committed: the mark committed with it, so the
    migration Job's command (``shared.migrate``) finds it and rebuilds, with progress."""
    import shared.migrate

    url = new_url()
    engine = database_before(url, service, before)
    try:
        died = subprocess.run([sys.executable, "-c", DIES_BEFORE_THE_REBUILD, service, url],
                              capture_output=True, text=True, timeout=120)
        assert died.returncode == -9, died.stderr
        with engine.connect() as conn:  # upgraded, read model made anew and empty, mark kept
            assert migrations.current(conn) == set(migrations.heads(names(service)))
        assert tickets(engine, service) == []
        (projection,) = store_provider(service).projections
        assert owed_now(engine) == {projection.name}

        monkeypatch.setattr(shared.migrate, "database_url", lambda _service: url)
        assert shared.migrate.main([service]) == 0
        out = capsys.readouterr().out
        assert f"{service}: 0 applied" in out
        assert f"{service}/{projection.name}: rebuilding from the log" in out
        events = len(recorded_before_rekeying(service))
        assert f"{service}/{projection.name}: {events}/{events} (100.0 %)" in out  # progress
        assert f"{service}/{projection.name}: rebuilt from {events} events" in out
        assert tickets(engine, service) == ["s1.wang"]
        assert owed_now(engine) == set()

        assert shared.migrate.main([service]) == 0  # owed no more: nothing rebuilt again
        assert "rebuilding" not in capsys.readouterr().out
    finally:
        engine.dispose()


@pytest.mark.parametrize(("service", "before", "change"), REKEYING, ids=[s[0] for s in REKEYING])
def test_a_service_finding_a_rebuild_owed_rebuilds_before_it_serves(
        service, before, change, new_url, monkeypatch):
    """The upgrade at a service's start fails between upgrade and rebuild (the rebuild
    raises): the next start of the service (its ``EventStoreProvider``) rebuilds first."""
    from types import SimpleNamespace

    from shared import dependencies
    from shared.dependencies import EventStoreProvider
    from shared.eventstore.store import EventStore

    url = new_url()
    engine = database_before(url, service, before)
    provider = store_provider(service)
    (projection,) = provider.projections
    try:
        def dies(*_a, **_k):
            raise SystemExit("the pod is evicted")

        monkeypatch.setattr(projection, "rebuild", dies)
        with pytest.raises(SystemExit):
            EventStore(make_engine(url), provider.registry,
                       projections=provider.projections).migrate()
        monkeypatch.undo()
        assert tickets(engine, service) == [] and owed_now(engine) == {projection.name}

        monkeypatch.setattr(dependencies.kconfig, "resolve_database_url", lambda u, _s: u)
        started = EventStoreProvider(provider.registry, projections=provider.projections,
                                     relay=False)
        started.container = SimpleNamespace(config={"DATABASE_URL": url}, service_name=service)
        started.setup()
        try:
            assert tickets(engine, service) == ["s1.wang"]
            assert owed_now(engine) == set()
            with engine.connect() as conn:  # the mark became the position the rebuild reached
                assert conn.execute(text("SELECT position FROM projection_state WHERE name = :n"),
                                    {"n": projection.name}).scalar_one() == \
                    len(recorded_before_rekeying(service))
        finally:
            started.store.engine.dispose()
    finally:
        engine.dispose()


def test_an_upgrade_that_rebuilds_at_once_leaves_nothing_owed(tmp_path):
    """The usual case: the rebuild right after the upgrade clears the mark itself."""
    from shared.eventstore.store import EventStore

    url = f"sqlite:///{tmp_path}/scoring.db"
    engine = database_before(url, "scoring", "scoring_0001")
    provider = store_provider("scoring")
    store = EventStore(make_engine(url), provider.registry, projections=provider.projections)
    try:
        assert store.migrate()[0] == "scoring_0002"  # and any revision since
        assert tickets(engine, "scoring") == ["s1.wang"]
        assert owed_now(engine) == set()
        assert migrations.rebuild_owed(store) == {}
    finally:
        store.engine.dispose()
        engine.dispose()


def test_a_fresh_database_owes_no_rebuild(tmp_path):
    """An empty log: the tables made anew are already what a replay of it makes."""
    engine = engine_of(f"sqlite:///{tmp_path}/fresh.db")
    try:
        assert "scoring_0002" in migrations.upgrade(engine, names("scoring"))
        assert owed_now(engine) == set()
    finally:
        engine.dispose()


# a replica starting on a database owed a rebuild
STARTS_OWING = """
import sys
from shared import migrations
from shared.eventstore.engine import make_engine
from shared.eventstore.store import EventStore
from shared.migrate import store_provider
service, url = sys.argv[1:]
provider = store_provider(service)
store = EventStore(make_engine(url), provider.registry, projections=provider.projections)
print(sorted(migrations.rebuild_owed(store)))
"""


def test_a_replica_that_waited_for_another_s_rebuild_does_not_do_it_again(pg_url):
    """PostgreSQL: the owed rebuild is taken one replica at a time; the one that waited
    finds the mark gone (the other's rebuild committed) and starts without rebuilding."""
    import time

    engine = database_before(pg_url, "scoring", "scoring_0001")
    (projection,) = store_provider("scoring").projections
    migrations.upgrade(engine, names("scoring"))  # a process that died before rebuilding
    key = {"k": f"kaowu-owed-rebuild:{projection.name}"}
    try:
        assert owed_now(engine) == {projection.name}
        with engine.connect() as other:  # another replica, rebuilding
            other.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), key)
            other.commit()
            waiting = subprocess.Popen([sys.executable, "-c", STARTS_OWING, "scoring", pg_url],
                                       stdout=subprocess.PIPE, text=True)
            while True:  # until the starting replica waits for the lock
                with engine.connect() as conn:
                    if conn.execute(text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT "
                            "granted AND database = (SELECT oid FROM pg_database "
                            "WHERE datname = current_database())")).scalar():
                        break
                assert waiting.poll() is None, "it did not wait"
                time.sleep(0.1)
            other.execute(text("UPDATE projection_state SET position = 2 WHERE name = :n"),
                          {"n": projection.name})  # the other's rebuild commits
            other.commit()
            other.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), key)
            other.commit()
            out, _ = waiting.communicate(timeout=120)
        assert out.strip().splitlines()[-1] == "[]"
    finally:
        engine.dispose()
