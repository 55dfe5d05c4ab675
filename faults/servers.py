"""The broker and the database a fault run uses, and how each is restarted (a fault).

``make faults`` uses the machine's own (``machine()``): RabbitMQ on 5672 driven by
``rabbitmqctl``, PostgreSQL's ``main`` cluster restarted by ``pg_ctlcluster``. The tests give
the harness servers of their own instead (``tests/servers.py``), so that restarting them
disturbs nothing else that runs on the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.config import DEFAULT_AMQP_URI, LOCAL_POSTGRES


@dataclass(frozen=True)
class Servers:
    amqp: str  # the broker, its default vhost (a run makes a vhost of its own)
    pg_admin: str  # a database of the server's, to create a run's databases from
    rabbitmqctl: Callable[..., subprocess.CompletedProcess]  # rabbitmqctl(*args) on this broker
    restart_database: Callable[[], None]

    def restart_broker(self):
        """As a broker's restart looks to its clients: every connection closed, the node's
        queues and messages kept."""
        self.rabbitmqctl("-q", "stop_app", check=True, timeout=120)
        time.sleep(1.0)
        self.rabbitmqctl("-q", "start_app", check=True, timeout=120)
        self.rabbitmqctl("-q", "await_startup", check=False, timeout=120)


def machine() -> Servers:
    """The machine's RabbitMQ (or ``AMQP_URI``'s broker, with the machine's rabbitmqctl) and
    PostgreSQL."""
    return Servers(amqp=os.environ.get("AMQP_URI") or DEFAULT_AMQP_URI, pg_admin=LOCAL_POSTGRES,
                   rabbitmqctl=_machine_rabbitmqctl, restart_database=_restart_machine_postgres)


def _machine_rabbitmqctl(*args, check=False, timeout=None) -> subprocess.CompletedProcess:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise RuntimeError("rabbitmqctl not found: it makes the run's vhost and restarts the broker")
    return subprocess.run([ctl, *args], check=check, timeout=timeout)


def _restart_machine_postgres():
    if shutil.which("pg_ctlcluster") is None:
        raise RuntimeError("pg_ctlcluster not found: cannot restart PostgreSQL here")
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                   check=True, timeout=120)
