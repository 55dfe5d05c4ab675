"""Test fixtures: a broker vhost and databases of the test run's own, cleaned up after.

Where a Docker engine answers and ``AMQP_URI`` / ``DATABASE_URL`` are not set, the broker
and the database come from testcontainers. Otherwise the tests use ``AMQP_URI`` and
``DATABASE_URL`` (default: the machine's RabbitMQ and PostgreSQL on 127.0.0.1), and make a
vhost and databases named for this run, which they drop at the end.
"""

import eventlet

eventlet.monkey_patch()  # first, before anything imports socket or threading

import contextlib  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from shared import logging as klogging  # noqa: E402
from shared.config import DEFAULT_AMQP_URI, LOCAL_POSTGRES, resolve_database_url  # noqa: E402
from shared.dependencies import EventStoreProvider  # noqa: E402
from shared.eventstore.store import open_store  # noqa: E402
from tests import servers  # noqa: E402

# tests/run.py gives each shard its own (eight characters, as here: ``LIKE 'kaowu_t<id>_%'``
# below must not match another run's names)
RUN_ID = os.environ.get("KAOWU_TEST_RUN_ID") or uuid.uuid4().hex[:8]

klogging.configure(level=os.environ.get("LOG_LEVEL", "WARNING"))


def pytest_collection_finish(session):
    """No eventlet timer may be left running by collection (an ``eventlet.Timeout`` made in
    a module or a parametrize list starts at once and later fires in whichever test first
    yields to the hub, breaking fixtures far from the cause)."""
    hub = eventlet.hubs.get_hub()
    pending = [t for t in list(hub.timers) + list(hub.next_timers)
               if not getattr(t[-1] if isinstance(t, tuple) else t, "called", False)]
    if pending:
        raise pytest.UsageError(f"{len(pending)} eventlet timer(s) started at collection: "
                                "make a Timeout inside the test, not at import")
    # what collection made (modules, items, fixtures' code) lives as long as the session:
    # kept out of the cyclic collector's walks, and full collections a tenth as often, the
    # collector takes ~6 % of a shard's CPU instead of ~10 % (the pytest process only)
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)


@pytest.fixture(scope="session", autouse=True)
def _dev_secrets_dir(tmp_path_factory):
    """Services started without their secret keys make the development keys in the run's
    own directory, not in the repository's var/ (shared.dev_secrets)."""
    if os.environ.get("KAOWU_DEV_SECRETS_DIR"):
        yield
        return
    os.environ["KAOWU_DEV_SECRETS_DIR"] = str(tmp_path_factory.mktemp("dev-secrets"))
    yield
    os.environ.pop("KAOWU_DEV_SECRETS_DIR", None)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def _containers():
    """Testcontainers, started only where Docker answers and no service URL is given."""
    started = {}
    if (os.environ.get("AMQP_URI") and os.environ.get("DATABASE_URL")) or not _docker_answers():
        yield started
        return
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.rabbitmq import RabbitMqContainer

    if not os.environ.get("AMQP_URI"):
        rmq = RabbitMqContainer("rabbitmq:3.13-alpine").start()
        started["amqp"] = (rmq, f"amqp://guest:guest@{rmq.get_container_host_ip()}:"
                                f"{rmq.get_exposed_port(5672)}/")
    if not os.environ.get("DATABASE_URL"):
        pg = PostgresContainer("postgres:16-alpine", driver="psycopg2").start()
        started["pg"] = (pg, pg.get_connection_url())
    yield started
    for c, _ in started.values():
        c.stop()


@pytest.fixture(scope="session")
def amqp_base(_containers):
    if "amqp" in _containers:
        return _containers["amqp"][1], False
    return os.environ.get("AMQP_URI") or DEFAULT_AMQP_URI, True


class Vhosts:
    """The run's vhosts on the test broker, made with rabbitmqctl (the management API may be
    off). Each rabbitmqctl call starts an Erlang VM (~0.5 s wall, 0.7 s of CPU), and three
    calls a test cost more than most tests take: vhosts are made a batch at a time by one
    ``import_definitions`` (the first batch as many as the process's tests may want, a
    shard's share of the run's), and deleted a batch at a time too, by one ``eval`` (rabbitmqctl
    has no command deleting several; ``delete_vhost`` one by one where ``eval`` fails) in a
    background (green) thread while later tests run. A vhost given back waits for its
    batch: its services are gone, and nothing else knows it. ``close`` deletes the last
    batch with the vhosts never taken, and waits for the thread (where a deletion failed, it
    then lists the broker's vhosts for any of the run's left)."""

    BATCH = 16

    def __init__(self, ctl: str, base: str, wanted: int):
        """``wanted``: how many this process's tests may take (the first batch)."""
        self.ctl, self.base, self.wanted = ctl, base, max(wanted, 1)
        self.user = make_url(base.replace("amqp://", "postgresql://")).username or "guest"
        self.prefix = f"kaowu_test_{RUN_ID}_"
        self.made, self.ready = 0, []
        self.unsure = False  # a deletion failed: the run's vhosts are listed at the end
        self.doomed = queue.Queue()
        self.sweeper = threading.Thread(target=self._sweep, name="vhost-sweeper", daemon=True)
        self.sweeper.start()

    def take(self) -> str:
        if not self.ready:
            self._make(self.wanted if self.made == 0 else self.BATCH)
        return self.base.rstrip("/") + "/" + self.ready.pop()

    def give_back(self, uri: str) -> None:
        self.doomed.put(uri.rsplit("/", 1)[1])

    def _make(self, n: int) -> None:
        names = [f"{self.prefix}{self.made + i}" for i in range(n)]
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        definitions = {"vhosts": [{"name": v} for v in names],
                       "permissions": [{"user": self.user, "vhost": v, **everything}
                                       for v in names]}
        # on stdin: rabbitmqctl may run as another user, who cannot read our temporary files
        subprocess.run([self.ctl, "-q", "import_definitions", "--format", "json"],
                       input=json.dumps(definitions), text=True, check=True,
                       stdout=subprocess.DEVNULL)
        self.made += n
        self.ready.extend(reversed(names))

    def _delete(self, vhosts: list[str]) -> None:
        names = ", ".join(f'<<"{v}">>' for v in vhosts)  # ours: letters, digits, underscores
        done = subprocess.run(
            [self.ctl, "-q", "eval",
             f'[rabbit_vhost:delete(V, <<"kaowu-tests">>) || V <- [{names}]].'],
            capture_output=True, text=True, check=False)
        if done.returncode != 0:  # one of them failed (a broker restart, say): one at a time
            self.unsure = True
            for vhost in vhosts:
                subprocess.run([self.ctl, "-q", "delete_vhost", vhost], check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _sweep(self) -> None:
        doomed, closing = [], False
        while not closing:
            vhost = self.doomed.get()
            closing = vhost is None
            doomed += [] if closing else [vhost]
            if doomed and (closing or len(doomed) >= self.BATCH):
                self._delete(doomed)
                doomed = []

    def close(self) -> None:
        for vhost in self.ready:  # made and never taken: with the last batch
            self.doomed.put(vhost)
        self.ready = []
        self.doomed.put(None)
        self.sweeper.join()
        if self.unsure:  # what a failed deletion left
            listed = subprocess.run([self.ctl, "-q", "list_vhosts", "name"],
                                    capture_output=True, text=True, check=False).stdout.split()
            if left := [v for v in listed if v.startswith(self.prefix)]:
                self._delete(left)


@pytest.fixture(scope="session")
def _vhosts(amqp_base, request):
    base, needs_vhost = amqp_base
    if not needs_vhost:
        yield None
        return
    ctl = shutil.which("rabbitmqctl")
    if not ctl:
        pytest.skip("no rabbitmqctl to make a test vhost with; set AMQP_URI to a broker of your own")
    items = request.session.items
    # a shard runs about its share of the files (tests/run.py): that share, and some more
    shards = int(os.environ.get("KAOWU_TEST_SHARDS", "1"))
    wanted = sum("amqp_uri" in i.fixturenames for i in items) + \
        len({i.module for i in items if "module_amqp_uri" in i.fixturenames})
    vhosts = Vhosts(ctl, base, wanted if shards == 1 else -(-wanted // shards) + Vhosts.BATCH // 2)
    yield vhosts
    vhosts.close()


def _vhost(amqp_base, vhosts):
    """A vhost of its own on the test broker, deleted after; the broker as given where it is
    not the machine's own."""
    if vhosts is None:
        yield amqp_base[0]
        return
    uri = vhosts.take()
    yield uri
    vhosts.give_back(uri)


@pytest.fixture
def amqp_uri(amqp_base, _vhosts):
    """A vhost of this test's own: durable event queues and their messages must not leak
    from one test's services into the next."""
    yield from _vhost(amqp_base, _vhosts)


@pytest.fixture(scope="module")
def module_amqp_uri(amqp_base, _vhosts):
    """One vhost for a module whose tests share one set of running services."""
    yield from _vhost(amqp_base, _vhosts)


@pytest.fixture(scope="session")
def pg_base(_containers):
    if "pg" in _containers:
        return _containers["pg"][1]
    return os.environ.get("DATABASE_URL") or LOCAL_POSTGRES


class Databases:
    """Hands out fresh PostgreSQL databases for this run and drops them: a test file's in the
    background once the file is done (``retire_file``, while the next file runs), the rest
    (the templates) at the end."""

    def __init__(self, base):
        self.base = make_url(base)
        if self.base.drivername == "postgresql":
            self.base = self.base.set(drivername="postgresql+psycopg2")
        self.created = []
        self.keep = set()  # the session's own (the services' templates): dropped at the end
        self.retired = set()
        self.dropper = None

    def new(self, name="db") -> str:
        db = f"kaowu_t{RUN_ID}_{name}_{len(self.created)}"
        self.created.append(db)
        return self.base.set(database=db).render_as_string(hide_password=False)

    def _made(self) -> list[str]:
        """Every database of this run (with the per-service ones services made from
        "<db>_{service}")."""
        admin = create_engine(self.base.set(database="postgres"), isolation_level="AUTOCOMMIT",
                              poolclass=NullPool)
        with admin.connect() as c:
            made = c.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                             {"p": f"kaowu\\_t{RUN_ID}\\_%"}).scalars().all()
        admin.dispose()
        return sorted(set(made) | set(self.created))

    def retire_file(self):
        """A test file is done and its services are gone: its databases are dropped while
        the next file runs, not all at the end (where each shard waited ~8 s for them)."""
        doomed = [db for db in self._made() if db not in self.keep | self.retired]
        self.retired.update(doomed)
        if doomed:
            self.dropper = self.dropper or Dropper(self.base, RETIRERS)
            self.dropper.put(doomed)

    def drop_all(self):
        if self.dropper is not None:
            self.dropper.close()
        names = self._made()
        left = Dropper(self.base, min(DROPPERS, len(names)))
        left.put(names)
        left.close()


DROPPERS, RETIRERS = 8, 2


class Dropper:
    """Drops the databases ``put`` to it over ``n`` connections at once; ``close`` waits for
    them. Each DROP DATABASE waits for a checkpoint of the whole server (PostgreSQL 15),
    which takes seconds on a busy machine; drops waiting together share one. OS threads (the
    driver blocks in C) and the driver itself, not SQLAlchemy's (green-patched) locks."""

    def __init__(self, base, n: int):
        threading_ = eventlet.patcher.original("threading")
        self.todo = eventlet.patcher.original("queue").Queue()
        self.dsn = base.set(drivername="postgresql", database="postgres").render_as_string(
            hide_password=False)
        self.threads = [threading_.Thread(target=self._drop, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def put(self, names):
        for name in names:
            self.todo.put(name)

    def close(self):
        for _ in self.threads:
            self.todo.put(None)
        for t in self.threads:
            t.join()

    def _drop(self):
        import psycopg2

        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        try:
            while (db := self.todo.get()) is not None:
                try:
                    with conn.cursor() as cur:
                        cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                except psycopg2.Error as exc:  # the next run's leftover sweep tries again
                    print(f"could not drop {db}: {exc}".strip(), file=sys.stderr)
        finally:
            conn.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    # the file's module fixtures are torn down by now; the session's (nextitem None) drop all
    dbs = item.config.stash.get(_DATABASES, None)
    if dbs is not None and nextitem is not None and nextitem.path != item.path:
        dbs.retire_file()


_DATABASES = pytest.StashKey[Databases]()


@pytest.fixture(scope="session")
def databases(pg_base, pytestconfig):
    dbs = Databases(pg_base)
    try:
        admin = create_engine(dbs.base.set(database="postgres"), poolclass=NullPool)
        with admin.connect() as c:
            c.execute(text("SELECT 1"))
        admin.dispose()
    except Exception as exc:
        pytest.fail(f"PostgreSQL does not answer at {dbs.base.render_as_string()}: {exc}. "
                    "Start it (pg_ctlcluster ... main start) or set DATABASE_URL.")
    pytestconfig.stash[_DATABASES] = dbs
    yield dbs
    del pytestconfig.stash[_DATABASES]
    dbs.drop_all()


class ServiceTemplates:
    """A migrated database per service class, made once per run and copied for every test
    that starts the service: ``CREATE DATABASE … TEMPLATE`` on PostgreSQL (a fifth of the
    time of running the revisions), a file copy on SQLite. The template is made by the same
    ``open_store`` the service calls at start, so the copy is what the service would have
    made itself; it then finds its database at its heads (one query). Each test still gets
    databases of its own. Only databases named for this run, and only where they do not
    exist yet: a test that prepared a database itself (an old schema, say) keeps it."""

    def __init__(self, databases: "Databases | None", folder):
        self.databases, self.folder = databases, folder
        self.made: dict = {}

    def prepare(self, config, classes):
        template = config.get("DATABASE_URL") if isinstance(config, dict) else None
        if not isinstance(template, str):
            return
        for cls in classes:
            provider = _store_provider(cls)
            if provider is None:
                continue
            url = make_url(resolve_database_url(template, cls.name))
            backend = url.get_backend_name()
            if backend == "postgresql" and self.databases is not None \
                    and (url.database or "").startswith(f"kaowu_t{RUN_ID}_"):
                self._postgresql(url, cls, provider)
            elif backend == "sqlite" and url.database and url.database != ":memory:" \
                    and not url.query and not os.path.exists(url.database):
                self._sqlite(url, cls, provider)

    def _made(self, key, url, provider):
        if key not in self.made:
            store = open_store(url.render_as_string(hide_password=False), provider.registry,
                               projections=provider.projections)
            store.engine.dispose()  # a template must have no connections to be copied
            self.made[key] = url
        return self.made[key]

    def _postgresql(self, url, cls, provider):
        name = f"kaowu_t{RUN_ID}_tpl{len(self.made)}_{cls.name}"[:63]
        template = self._made(("pg", cls), url.set(database=name), provider).database
        self.databases.keep.add(template)  # copied for later files too
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT",
                              poolclass=NullPool)
        try:
            with admin.connect() as c:
                if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                 {"n": url.database}).scalar():
                    c.exec_driver_sql(f'CREATE DATABASE "{url.database}" TEMPLATE "{template}"')
        finally:
            admin.dispose()

    def _sqlite(self, url, cls, provider):
        path = self.folder / f"tpl{len(self.made)}_{cls.name}.db"
        template = self._made(("sqlite", cls), url.set(database=str(path)), provider).database
        os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
        shutil.copyfile(template, url.database)


def _store_provider(cls):
    for klass in getattr(cls, "__mro__", ()):
        for value in vars(klass).values():
            if isinstance(value, EventStoreProvider):
                return value
    return None


@pytest.fixture(scope="session")
def _templates(request, tmp_path_factory):
    try:
        databases = request.getfixturevalue("databases")
    except pytest.fail.Exception:
        databases = None  # no PostgreSQL: SQLite templates still help
    return ServiceTemplates(databases, tmp_path_factory.mktemp("templates"))


class Started:
    """The services a test (or a module) starts: each service's database copied from its
    template first (``ServiceTemplates``); at the end killed, and their connections closed
    (not whenever the garbage collector gets to it: parallel shards must stay well under
    PostgreSQL's 100 connections). ``new_runner`` and ``new_container`` make them, as
    nameko's ``runner_factory`` and ``container_factory`` do."""

    def __init__(self, templates, new_runner=None, new_container=None):
        self.templates, self.new_runner, self.new_container = templates, new_runner, new_container
        self.runners, self.containers = [], []

    def runner(self, config, *service_classes):
        self.templates.prepare(config, service_classes)
        self.runners.append(self.new_runner(config, *service_classes))
        return self.runners[-1]

    def container(self, service_cls, config):
        self.templates.prepare(config, [service_cls])
        self.containers.append(self.new_container(service_cls, config))
        return self.containers[-1]

    def close(self):
        for it in [*self.runners, *self.containers]:  # nameko's fixtures kill them again: a no-op
            with contextlib.suppress(Exception):
                it.kill()
        for container in [*(c for r in self.runners for c in r.containers), *self.containers]:
            for dep in container.dependencies:
                if isinstance(dep, EventStoreProvider) and dep.store is not None:
                    dep.store.engine.dispose()


@pytest.fixture
def runner_factory(runner_factory, _templates):
    """nameko's, the services started as ``Started`` says."""
    started = Started(_templates, new_runner=runner_factory)
    yield started.runner
    started.close()


@pytest.fixture
def container_factory(container_factory, _templates):
    """nameko's, as ``runner_factory`` above."""
    started = Started(_templates, new_container=container_factory)
    yield started.container
    started.close()


def _new_runner(config, *service_classes):
    from nameko.runners import ServiceRunner

    runner = ServiceRunner(config)
    for cls in service_classes:
        runner.add_service(cls)
    return runner


def _new_container(service_cls, config):
    from nameko.containers import get_container_cls

    return get_container_cls(config)(service_cls, config)


@pytest.fixture(scope="module")
def module_factories(_templates):
    """``(runner_factory, container_factory)`` as the two above, for a module whose tests
    share one set of running services (with ``module_amqp_uri``), killed when it ends."""
    started = Started(_templates, _new_runner, _new_container)
    yield started.runner, started.container
    started.close()


# Services' PostgreSQL pools in the tests: the same ceiling of 20 connections at once as
# shared.eventstore.engine.make_engine gives them (10 + 10 overflow), but only 2 kept open while
# idle. Eight services idle at 10 each, in four shards, would pass 100 connections.
TEST_POOL = {"pool_size": 2, "max_overflow": 18}


@pytest.fixture(scope="session", autouse=True)
def _small_idle_pools():
    from shared.eventstore import store  # open_store's engines: every service's

    made = store.make_engine

    def make_engine(url, **kwargs):
        if not str(url).startswith("sqlite"):
            kwargs = {**TEST_POOL, **kwargs}
        return made(url, **kwargs)

    store.make_engine = make_engine
    yield
    store.make_engine = made


#: how long an idle queue consumer waits on the broker before it looks again whether a
#: provider is to be cancelled or it is to stop (kombu's ``ConsumerMixin.consume``,
#: ``safety_interval``: 1 s). A stop does not wait for that look: it wakes the
#: consumer (``_wake``), so a test's services stop at once without their consumers waking
#: ten times a second while idle, as they did at 0.1 s (a third of an idle stack's CPU).
CONSUMER_WAKE = 1.0


def _consume(self, limit=None, timeout=None, safety_interval=CONSUMER_WAKE, **kwargs):
    """kombu's ``ConsumerMixin.consume`` (5.x) for nameko's ``QueueConsumer``: it marks the
    wait on the broker (``_draining``), so that ``_wake`` knows the consumer is parked there
    and nowhere else, and does not begin a wait while a cancel or a stop is asked of it."""
    from itertools import count

    elapsed = 0
    with self.consumer_context(**kwargs) as (conn, _channel, _consumers):
        for _ in limit and range(limit) or count():
            if self.should_stop:
                break
            self.on_iteration()
            if self.should_stop or self._pending_remove_providers:
                continue  # asked while it was busy (cancelling, say): no wait on the broker
            try:
                self._draining = True
                try:
                    conn.drain_events(timeout=safety_interval)
                finally:
                    self._draining = False
            except TimeoutError:
                conn.heartbeat_check()
                elapsed += safety_interval
                if timeout and elapsed >= timeout:
                    raise
            except OSError:
                if not self.should_stop:
                    raise
            else:
                yield
                elapsed = 0


def _wake(consumer) -> None:
    """Make a queue consumer look at once for providers to cancel or its stop: where it is
    parked reading from the broker (and only there: not in a cancel's wait for its answer,
    not waiting for a worker), what its read timeout would do, earlier: a ``TimeoutError``
    thrown into it from the hub, as eventlet's own timeouts are."""
    from eventlet.hubs import get_hub

    hub = get_hub()

    def throw():
        gt = consumer._gt
        if gt is None or gt.dead or not getattr(consumer, "_draining", False):
            return
        if any(getattr(listener.tb, "__self__", None) is gt
               for listener in list(hub.listeners[hub.READ].values())):
            gt.throw(TimeoutError("timed out"))

    hub.schedule_call_global(0, throw)


@pytest.fixture(scope="session", autouse=True)
def _consumers_stop_promptly():
    from nameko.messaging import QueueConsumer

    unregister = QueueConsumer.unregister_provider

    def unregister_provider(self, provider):
        _wake(self)  # runs once this waits for the consumer to cancel the provider
        return unregister(self, provider)

    QueueConsumer.consume, QueueConsumer.unregister_provider = _consume, unregister_provider
    yield
    del QueueConsumer.consume
    QueueConsumer.unregister_provider = unregister


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """One fresh database per test, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    return request.getfixturevalue("databases").new(request.node.name[:20].replace("[", "_")
                                                    .replace("]", "").replace("-", "_").lower())


@pytest.fixture
def pg_url(databases, request):
    return databases.new(request.node.name[:20].replace("[", "_").replace("]", "")
                         .replace("-", "_").lower())


@pytest.fixture
def private_broker():
    """A RabbitMQ node of this test's own, for a test that restarts it (``tests/servers.py``)."""
    yield from _private(servers.Broker)


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of this test's own, for a test that restarts it."""
    yield from _private(servers.Postgres)


def _private(kind):
    with servers.private_folder(RUN_ID) as folder:
        try:
            server = kind(folder)
        except servers.Unavailable as exc:
            pytest.skip(f"no server of the test's own to restart: {exc}")
        try:
            server.start()
            yield server
        finally:
            server.stop()
