"""Process configuration read from the environment: broker URI and per-service databases.

Every service has its own event log in its own database. One ``DATABASE_URL`` template
serves them all; :func:`resolve_database_url` turns it into the URL for one service.
"""

from __future__ import annotations

import os
import posixpath
import re
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "sqlite:///var/{service}.db"
#: this machine's PostgreSQL server (its ``postgres`` database): where the tests, the
#: benchmarks and the fault harness make their own databases when not told otherwise
LOCAL_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"

SERVICE_PLACEHOLDER = "{service}"
MASK = "***"


def amqp_uri() -> str:
    """The broker URI: ``AMQP_URI`` from the environment, or the local default."""
    return os.environ.get("AMQP_URI") or DEFAULT_AMQP_URI


def database_url(service: str) -> str:
    """The database URL of one service, from the ``DATABASE_URL`` template or the default."""
    template = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    return resolve_database_url(template, service)


def resolve_database_url(template: str, service: str) -> str:
    """Turn a ``DATABASE_URL`` template into the database URL of ``service``.

    - A ``{service}`` placeholder anywhere in the template is replaced by the name.
    - Otherwise a server database (PostgreSQL, …) gets the suffix ``_<service>``:
      ``postgresql://h/kaowu`` → ``postgresql://h/kaowu_account``; no database name
      at all → the service name.
    - A SQLite file gets ``-<service>`` before its extension:
      ``sqlite:///var/kaowu.db`` → ``sqlite:///var/kaowu-account.db``; a path ending in
      ``/`` names a directory: ``sqlite:///var/`` → ``sqlite:///var/account.db``.
      In-memory SQLite URLs are returned unchanged.

    Resolving is idempotent: a URL whose database already is the service's
    (``kaowu_account``, ``account.db``, ``kaowu-account.db``) is returned unchanged, so
    a child process handed an already-resolved URL may resolve it again safely.
    """
    if not service.isidentifier():
        raise ValueError(f"not a service name: {service!r}")
    if SERVICE_PLACEHOLDER in template:
        return template.replace(SERVICE_PLACEHOLDER, service)

    url = make_url(template)
    database = url.database
    if url.get_backend_name() == "sqlite":
        if not database or database == ":memory:" or url.query.get("mode") == "memory":
            return template
        resolved = _sqlite_file_for(database, service)
    else:
        resolved = _server_database_for(database, service)
    if resolved == database:
        return template
    return url.set(database=resolved).render_as_string(hide_password=False)


def _sqlite_file_for(path: str, service: str) -> str:
    if path.endswith("/"):
        return f"{path}{service}.db"
    directory, filename = posixpath.split(path)
    stem, ext = posixpath.splitext(filename)
    if stem == service or stem.endswith(f"-{service}"):
        return path
    return posixpath.join(directory, f"{stem}-{service}{ext}")


def _server_database_for(database: str | None, service: str) -> str:
    if not database:
        return service
    if database == service or database.endswith(f"_{service}"):
        return database
    return f"{database}_{service}"


_PASSWORD_FALLBACK = re.compile(r"(//[^:/@;]*:)[^@/;]*(@)")


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for banners and log lines.

    URLs without a password come back unchanged; kombu's ``;``-separated failover lists
    are masked URL by URL.
    """
    return ";".join(_mask_one(part) for part in url.split(";"))


def _mask_one(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return _PASSWORD_FALLBACK.sub(rf"\1{MASK}\2", url)
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if not at:
        return url
    user, colon, password = userinfo.partition(":")
    if not colon or not password:
        return url
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostinfo}"))
