"""Run a service's schema migrations, then exit (the Kubernetes migration Job).

    python -m shared.migrate account                  # one service
    python -m shared.migrate account registration     # several
    python -m shared.migrate --all                    # every services/<name>/service.py

    python -m shared.migrate --check --all            # models and revisions agree? (no writes)

The database URL comes from ``DATABASE_URL`` (a template or the service's own URL, as for
the services; see ``shared.config``). The service module is imported for its event
registry and projections (``store``, an ``EventStoreProvider``, on the service class),
whose Alembic histories (``shared/alembic/``, see ``shared.migrations``) are applied: the
same a service applies when it starts, under the same PostgreSQL advisory lock, so running
this Job while replicas start is safe. A read model an upgrade made anew and whose rebuild
did not finish (the process died) is rebuilt here too, with progress. ``--check`` upgrades a scratch SQLite database and
compares it with the models (Alembic's autogenerate comparison, as ``alembic check``),
printing the operations a new revision would need.
Exit status: 0 when every service is migrated (or agrees), 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from shared.config import database_url, mask_url
from shared.runner import discover_services

# nameko imports eventlet, which announces its deprecation on stderr: not news to a Job log
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


def service_class(service: str):
    """The class of ``services.<service>.service`` whose ``name`` is ``service``."""
    module = importlib.import_module(f"services.{service}.service")
    for obj in vars(module).values():
        if (isinstance(obj, type) and obj.__module__ == module.__name__
                and getattr(obj, "name", None) == service):
            return obj
    raise LookupError(f"services.{service}.service has no service class named {service!r}")


def store_provider(service: str):
    """The service class's ``EventStoreProvider`` (registry, projections)."""
    from shared.dependencies import EventStoreProvider

    cls = service_class(service)
    for klass in cls.__mro__:
        for value in vars(klass).values():
            if isinstance(value, EventStoreProvider):
                return value
    raise LookupError(f"{cls.__name__} declares no EventStoreProvider")


def open_service_store(service: str, *, create_database: bool = True, migrate: bool = False):
    """(store, url) of ``service``'s own database; migrations run only if ``migrate``."""
    from shared.eventstore.engine import ensure_database, make_engine
    from shared.eventstore.store import EventStore

    provider = store_provider(service)
    url = database_url(service)
    if create_database:
        ensure_database(url)
    store = EventStore(make_engine(url), provider.registry, projections=provider.projections)
    if migrate:
        store.migrate()
    return store, url


def migrate_service(service: str, *, create_database: bool = True, out=None) -> list[str]:
    store, url = open_service_store(service, create_database=create_database)
    try:
        print(f"{service}: migrating {mask_url(url)}", file=out, flush=True)
        applied = store.migrate(**rebuild_reports(service, out))
        for migration_id in applied:
            print(f"{service}:   applied {migration_id}", file=out, flush=True)
        print(f"{service}: {len(applied)} applied, at {', '.join(sorted(store.schema_heads()))}; "
              f"log head {store.head()}", file=out, flush=True)
        return applied
    finally:
        store.engine.dispose()


def rebuild_reports(service: str, out=None) -> dict:
    """``progress`` and ``on_start`` for ``EventStore.migrate``: a read model an upgrade made
    anew (now, or one whose rebuild died) is rebuilt with progress lines."""
    from shared.rebuild import Progress

    def started(projection, head):
        print(f"{service}/{projection}: rebuilding from the log (log head {head}): an "
              "upgrade made its tables anew", file=out, flush=True)

    def done(projection, position):
        print(f"{service}/{projection}: rebuilt from {position} events", file=out, flush=True)

    return {"progress": lambda projection: Progress(f"{service}/{projection}", out),
            "on_start": started, "on_done": done}


def check_service(service: str, out=None) -> list:
    """The differences between ``service``'s models and its histories' heads (none: [])."""
    from shared import migrations

    provider = store_provider(service)
    diffs = migrations.drift(provider.projections)
    if diffs:
        print(f"{service}: the models and the migrations differ; a new revision needs:\n"
              f"{migrations.render(diffs)}", file=out, flush=True)
    else:
        print(f"{service}: models and migrations agree", file=out, flush=True)
    return diffs


def has_log(service: str) -> bool:
    """Whether the service keeps an event log (the gateway keeps none)."""
    try:
        store_provider(service)
    except LookupError:
        return False
    return True


def selected_services(args) -> list[str]:
    available = discover_services()
    names = [s for s in available if has_log(s)] if args.all else args.services
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise SystemExit(f"no such service: {', '.join(unknown)} "
                         f"(found: {', '.join(available) or 'none'})")
    if not names:
        raise SystemExit("name at least one service, or --all")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.migrate",
                                     description="Apply a service's schema migrations.")
    parser.add_argument("services", nargs="*", help="service names (services/<name>/)")
    parser.add_argument("--all", action="store_true", help="every service that keeps a log")
    parser.add_argument("--no-create-database", action="store_true",
                        help="fail if the database is missing instead of creating it")
    parser.add_argument("--check", action="store_true",
                        help="compare the models with the migrations' heads; touch no database")
    args = parser.parse_args(argv)
    failed = 0
    for service in selected_services(args):
        if args.check:
            failed += bool(check_service(service))
            continue
        try:
            migrate_service(service, create_database=not args.no_create_database)
        except Exception as exc:
            failed += 1
            print(f"{service}: migration failed: {type(exc).__name__}: "
                  f"{mask_url(str(exc).strip().splitlines()[0] if str(exc).strip() else '')}",
                  file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
