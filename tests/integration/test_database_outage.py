"""A database restart as a service sees it: every pooled connection dropped at once.

``pg_terminate_backend`` on the service's connections does to it what a PostgreSQL restart
does (without restarting the machine's server under the other tests). A command is run
again on a fresh connection by ``EventStore.execute`` and succeeds; a read that meets a
dead connection answers ``Unavailable`` (try again), never the driver's error text; the
next call finds a renewed pool.
"""

import pytest
from marshmallow import Schema, fields
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from services.account.service import AccountService
from shared.clock import ControlledClock
from shared.contracts import EventRegistry
from shared.errors import Unavailable
from shared.events import NewEvent
from shared.eventstore.store import open_store

pytestmark = pytest.mark.integration

CANDIDATE = {"name": "李四", "id_type": "resident_id", "id_number": "11010519491231002X",
             "mobile": "13800138001", "username": "lisi", "password": "secret123"}


class Noted(Schema):
    n = fields.Integer(required=True)


REGISTRY = EventRegistry()
REGISTRY.register("Noted", Noted, public=False)


def terminate_connections(url: str) -> int:
    """Drop every connection to the database of ``url``, as a server restart would."""
    db = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), poolclass=NullPool)
    try:
        with admin.connect() as c:
            return c.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": db}).scalar()
    finally:
        admin.dispose()


def test_a_command_runs_again_on_a_fresh_connection(databases):
    """``EventStore.execute`` after every connection was dropped: done, once."""
    url = databases.new("outage_store")
    store = open_store(url, REGISTRY)
    try:
        store.execute(lambda tx: tx.append([NewEvent("a", "Noted", {"n": 1})]))
        assert terminate_connections(url) >= 1
        store.execute(lambda tx: tx.append([NewEvent("b", "Noted", {"n": 2})]))
        assert [e.stream_id for e in store.events_after(0)] == ["a", "b"]
    finally:
        store.engine.dispose()


def test_a_read_on_a_dead_connection_renews_the_whole_pool(databases):
    """A stream read (on the driver's cursor) that meets a dropped connection fails as a
    disconnect, and the pool's other connections, as old, are not handed out again."""
    url = databases.new("outage_read")
    store = open_store(url, REGISTRY)
    try:
        store.execute(lambda tx: tx.append([NewEvent("a", "Noted", {"n": 1})]))
        held = [store.engine.connect() for _ in range(2)]  # the tests' pools keep two
        for c in held:
            c.exec_driver_sql("SELECT 1")
        for c in held:
            c.close()
        assert terminate_connections(url) >= 2
        with pytest.raises(DBAPIError) as exc:
            store.read_stream("a")
        assert exc.value.connection_invalidated
        assert [e.stream_id for e in store.read_stream("a")] == ["a"]
        assert store.execute(lambda tx: tx.stream_version("a")) == 1
    finally:
        store.engine.dispose()


def test_connections_dropped_under_a_running_service(container_factory, amqp_uri, databases):
    url = databases.new("outage") + "_{service}"
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": url, "CLOCK": ControlledClock(),
              "RELAY": False, "max_workers": 10,
              "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024}}
    container = container_factory(AccountService, config)
    container.start()
    db_url = url.format(service="account")
    with ServiceRpcProxy("account", {"AMQP_URI": amqp_uri}, timeout=20) as account:
        head = account.status()["head"]

        # the first use of a dead connection: "try again", no driver text, nothing written
        assert terminate_connections(db_url) >= 1
        with pytest.raises(Unavailable) as exc:
            account.register(CANDIDATE)
        assert "psycopg2" not in exc.value.message and "server closed" not in exc.value.message
        assert account.status()["head"] == head
        # ...and the pool was renewed: the same call again works, once
        account_id = account.register(CANDIDATE)["account_id"]
        assert account.get_profile(account_id)["account_id"] == account_id
        assert account.status()["head"] > head
