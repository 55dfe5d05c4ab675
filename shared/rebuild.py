"""Rebuild a service's read models from its log, then exit (the Kubernetes rebuild Job).

    python -m shared.rebuild verification                      # every projection
    python -m shared.rebuild verification --projection verification

Each projection's read model is replaced by a replay of the whole log, in one transaction
(``Projection.rebuild``): the service keeps running, its readers see the old read model
until the new one commits, and nothing is missed or applied twice. On PostgreSQL the new
model is built in tables of its own while the service goes on appending; only the last
step (the events appended meanwhile, then the swap) holds up the service's appends and
the read model's readers. On SQLite appends wait for the whole rebuild (they take the
same log head lock). The RPC ``rebuild`` does the same from inside a running service; this
is for an operator who wants it as a Job with its own progress output. The database URL
comes from ``DATABASE_URL`` (see ``shared.config``). Exit status: 0 on success, 1 on
failure (nothing changes: the transaction rolls back).
"""

from __future__ import annotations

import argparse
import sys
import time

from shared.config import mask_url
from shared.migrate import open_service_store


class Progress:
    """Prints ``position/head (percent)`` at most every ``every`` seconds, and the end; or,
    given a structlog ``log``, logs it (``projection.rebuild_progress``)."""

    def __init__(self, label: str, out=None, every: float = 2.0, log=None):
        self.label, self.out, self.every, self.log = label, out, every, log
        self.started = time.monotonic()
        self._last = 0.0

    def __call__(self, position: int, head: int):
        now = time.monotonic()
        if now - self._last >= self.every or position >= head:
            self._last = now
            pct = 100.0 * position / head if head else 100.0
            if self.log is not None:
                self.log.info("projection.rebuild_progress", projection=self.label,
                              position=position, head=head, percent=round(pct, 1),
                              seconds=round(now - self.started, 1))
                return
            print(f"{self.label}: {position}/{head} ({pct:.1f} %) in {now - self.started:.1f} s",
                  file=self.out, flush=True)


def rebuild_service(service: str, projection: str | None = None, out=None) -> dict[str, int]:
    store, url = open_service_store(service, create_database=False, migrate=True)
    try:
        names = [p.name for p in store.projections]
        if projection is not None and projection not in names:
            raise LookupError(f"{service} has no projection {projection!r}; it has {names}")
        print(f"{service}: rebuilding {projection or ', '.join(names) or 'nothing'} "
              f"from {mask_url(url)} (log head {store.head()})", file=out, flush=True)
        done = {}
        for p in store.projections:
            if projection not in (None, p.name):
                continue
            done[p.name] = p.rebuild(store, progress=Progress(f"{service}/{p.name}", out))
            print(f"{service}/{p.name}: rebuilt from {done[p.name]} events", file=out, flush=True)
        return done
    finally:
        store.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.rebuild",
                                     description="Rebuild a service's read models from its log.")
    parser.add_argument("service", help="service name (services/<name>/)")
    parser.add_argument("--projection", help="only this projection (default: all)")
    args = parser.parse_args(argv)
    try:
        rebuild_service(args.service, args.projection)
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        print(f"{args.service}: rebuild failed: {type(exc).__name__}: "
              f"{mask_url(lines[0]) if lines else ''}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
