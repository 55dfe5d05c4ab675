"""What every benchmark module shares: figures, the run context, fresh databases and vhosts,
machine facts, and test data (valid resident ID numbers, profile payloads)."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from shared.config import DEFAULT_AMQP_URI, LOCAL_POSTGRES

ROOT = Path(__file__).resolve().parent.parent
PG_BASE = os.environ.get("BENCH_PG", LOCAL_POSTGRES)
AMQP_BASE = os.environ.get("BENCH_AMQP", DEFAULT_AMQP_URI)


@dataclass
class Figure:
    """One measured number. ``ratio`` is value / baseline (both from this run);
    ``target`` is the ratio it should reach, ``ceiling`` the value it should stay at or
    under (a latency), ``floor`` the value it should reach (a rate), or none: reported
    only."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: float | None = None
    detail: dict = field(default_factory=dict)
    ceiling: float | None = None
    floor: float | None = None

    @property
    def met(self) -> bool | None:
        """Whether the figure reaches its target (None: no target, or no ratio to judge)."""
        if self.ceiling is not None:
            return self.value <= self.ceiling
        if self.floor is not None:
            return self.value >= self.floor
        if self.target is None or self.ratio is None:
            return None
        return self.ratio >= self.target

    @property
    def target_text(self) -> str | None:
        if self.ceiling is not None:
            return f"value <= {self.ceiling:g}"
        if self.floor is not None:
            return f"value >= {self.floor:g}"
        return None if self.target is None else f"ratio >= {self.target:g}"

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    def as_json(self) -> dict:
        ratio = self.ratio
        return {
            "value": _round(self.value),
            "unit": self.unit,
            "baseline": None if self.baseline is None else _round(self.baseline),
            "ratio": None if ratio is None else round(ratio, 3),
            "target": self.target_text,
            "detail": self.detail,
        }


def _round(x: float) -> float:
    return round(x, 4) if abs(x) < 10 else round(x, 1)


@dataclass
class Context:
    """Run-wide settings. ``scale`` shrinks every size and duration (quick trial runs)."""

    run_id: str
    workdir: Path
    scale: float = 1.0
    log: Callable[[str], None] = print
    only: tuple[str, ...] = ()  # figure name prefixes to take; empty: all
    taken: dict[str, Figure] = field(default_factory=dict)  # figures of this run so far, by name

    def wanted(self, *names: str) -> bool:
        """Whether any of these figures is to be taken (``--only``)."""
        return not self.only or any(n.startswith(o) for n in names for o in self.only)

    def n(self, full: int, least: int = 1) -> int:
        return max(least, int(full * self.scale))

    def seconds(self, full: float, least: float = 1.0) -> float:
        return max(least, full * self.scale)


def new_context(scale: float = 1.0, only: tuple[str, ...] = ()) -> Context:
    run_id = uuid.uuid4().hex[:8]
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"kaowu-bench-{run_id}"
    workdir.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    return Context(run_id=run_id, workdir=workdir, scale=scale, log=log, only=only)


# -- PostgreSQL -----------------------------------------------------------------------------

def _admin_engine():
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def pg_url(database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_BASE).set(database=database).render_as_string(hide_password=False)


def pg_params(database: str) -> dict:
    """host, port, user, password, dbname: for drivers other than SQLAlchemy's."""
    from sqlalchemy.engine import make_url

    u = make_url(PG_BASE)
    return {"host": u.host or "127.0.0.1", "port": u.port or 5432, "user": u.username or "postgres",
            "password": u.password or "", "dbname": database}


def drop_databases(names):
    from sqlalchemy import text

    engine = _admin_engine()
    try:
        with engine.connect() as c:
            for name in names:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_pg(ctx: Context, name: str, create: bool = True, prefix: str = "kaowu_bench"):
    """A database of this run's own (made here, or by whoever opens it when ``create`` is
    False), dropped on the way out. Yields its name."""
    from sqlalchemy import text

    db = f"{prefix}_{ctx.run_id}_{name}"
    if create:
        engine = _admin_engine()
        try:
            with engine.connect() as c:
                c.execute(text(f'CREATE DATABASE "{db}"'))
        finally:
            engine.dispose()
    try:
        yield db
    finally:
        drop_databases([db])


def postgres_version() -> str | None:
    from sqlalchemy import text

    try:
        engine = _admin_engine()
        with engine.connect() as c:
            return c.execute(text("SHOW server_version")).scalar()
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            engine.dispose()


# -- RabbitMQ ---------------------------------------------------------------------------------

@contextlib.contextmanager
def fresh_vhost(ctx: Context, prefix: str = "kaowu_bench"):
    """A vhost of this run's own (``rabbitmqctl``; the management API may be off). Yields
    the AMQP URI for it."""
    ctl = shutil.which("rabbitmqctl")
    if not ctl:
        raise RuntimeError("rabbitmqctl not found: it makes the benchmark's own vhost")
    vhost = f"{prefix}_{ctx.run_id}"
    subprocess.run([ctl, "-q", "add_vhost", vhost], check=True, capture_output=True)
    try:
        subprocess.run([ctl, "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                       check=True, capture_output=True)
        yield AMQP_BASE.rstrip("/") + "/" + vhost
    finally:
        subprocess.run([ctl, "-q", "delete_vhost", vhost], check=False, capture_output=True)


# -- machine ----------------------------------------------------------------------------------

def cores_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_average() -> float | None:
    """The 1-minute load average (the machine may be shared: a busy one slows every figure)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def machine() -> dict:
    from importlib.metadata import version

    def v(pkg):
        try:
            return version(pkg)
        except Exception:
            return None

    return {
        "cpu_count": os.cpu_count(),
        "cores_available": cores_available(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgres": postgres_version(),
        "eventsourcing": v("eventsourcing"),
        "nameko": v("nameko"),
        "sqlalchemy": v("SQLAlchemy"),
    }


# -- test data --------------------------------------------------------------------------------

def resident_id(n: int) -> str:
    """The ``n``-th of a set of distinct, valid mainland resident ID numbers (GB 11643),
    for n below 30 million: area code, a birth date from 1950 on, sequence, check digit."""
    from services.account.identity import check_digit

    born = date(1950, 1, 1) + timedelta(days=(n // 1000) % 20_000)
    first17 = f"310104{born:%Y%m%d}{n % 1000:03d}"
    return first17 + check_digit(first17)


def birth_date_and_gender(id_number: str) -> tuple[str, str]:
    from services.account.identity import resident_id_birth_date, resident_id_gender

    return resident_id_birth_date(id_number).isoformat(), resident_id_gender(id_number)


def candidate(n: int, password: str = "Secret123pass") -> dict:
    """Registration data of candidate ``n``: unique ID number, mobile and username."""
    return {"name": "张三", "id_type": "resident_id", "id_number": resident_id(n),
            "mobile": f"13{n:09d}", "username": f"cand{n:07d}", "password": password}


def profile_payload(account_id: str, n: int) -> dict:
    """A ProfileUpdated payload of the account service's shape (~230 bytes of JSON)."""
    return {"account_id": account_id, "section": "contact",
            "data": {"email": f"candidate{n % 100000}@example.com",
                     "address": f"上海市徐汇区桂箐路{n % 1000}号 3号楼 1203室"},
            "completeness": 40, "missing": ["photo", "education", "work"]}
