"""Which failures a command answers as ``Unavailable`` (try again) rather than an error."""

import psycopg2
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.service import database_unavailable


def dbapi(cls, orig, invalidated=False):
    return cls.instance("SELECT 1", {}, orig, psycopg2.Error,
                        connection_invalidated=invalidated)


@pytest.mark.parametrize("exc, transient", [
    (dbapi(DBAPIError, psycopg2.OperationalError("server closed the connection"), True), True),
    (dbapi(DBAPIError, psycopg2.OperationalError("connection refused")), True),  # -> OperationalError
    (dbapi(DBAPIError, psycopg2.extensions.TransactionRollbackError("deadlock")), True),
    (PoolTimeout("QueuePool limit of size 10 overflow 10 reached"), True),
    (dbapi(DBAPIError, psycopg2.IntegrityError("duplicate key")), False),  # a bug, not an outage
    (dbapi(DBAPIError, psycopg2.ProgrammingError("syntax error")), False),
    (KeyError("x"), False),
])
def test_transient_database_failures(exc, transient):
    assert database_unavailable(exc) is transient


def test_wrapping_gives_the_expected_classes():
    assert isinstance(dbapi(DBAPIError, psycopg2.OperationalError("x")), OperationalError)
    assert isinstance(dbapi(DBAPIError, psycopg2.IntegrityError("x")), IntegrityError)
    assert isinstance(dbapi(DBAPIError, psycopg2.ProgrammingError("x")), ProgrammingError)
