"""The short version of ``make faults``: a few candidates, each fault once, then all at
once (kill -9, a RabbitMQ restart, a PostgreSQL restart, duplicates, reordering, poison,
relay cycles split mid-way, kill -9 of a consumer while it applies a batch and of an upstream
whose relay has published a batch it has not recorded);
nothing lost, nothing twice, every read model equal to its rebuild, poison kept.

Where ``make faults`` restarts the machine's RabbitMQ and PostgreSQL, this one restarts a
RabbitMQ node and a PostgreSQL server of its own (``tests/servers.py``: started for it in a
temporary folder, on free ports, and removed after), so it runs in a shard beside the
other tests."""

import logging

import pytest

from faults.__main__ import run
from faults.servers import Servers

pytestmark = pytest.mark.integration


def test_nothing_is_lost_under_faults(tmp_path, private_broker, private_postgres):
    logging.getLogger("amqp").setLevel(logging.ERROR)
    asked = []  # what the harness asked of the broker's rabbitmqctl

    def rabbitmqctl(*args, **kwargs):
        asked.append(next(a for a in args if not a.startswith("-")))
        return private_broker.rabbitmqctl(*args, **kwargs)

    servers = Servers(amqp=private_broker.amqp, pg_admin=private_postgres.url,
                      rabbitmqctl=rabbitmqctl, restart_database=private_postgres.restart)
    postmaster = private_postgres.proc.pid
    summary = run(candidates=8, workdir=tmp_path, threads=2, servers=servers)
    # the restarts were of the servers given: the broker's alone and with the others
    assert asked.count("stop_app") >= 2 and asked.count("start_app") >= 2
    assert private_postgres.proc.pid != postmaster
    assert summary["injected"] == 18  # nine faults one at a time, then nine together
    assert summary["accepted"] > 8 * 5  # registrations, profile sections, submissions
    assert summary["report"].lost == []
    assert summary["report"].duplicated == []
    assert summary["report"].mismatched == []
    assert summary["dead_letters"] >= summary["poison"] == 2

    # the services' own logs of the whole run: no ID number or mobile whole
    from bench.common import candidate

    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
    assert logs.count("call.ok") > 40  # the services logged every call (LOG_LEVEL=DEBUG)
    for n in summary["numbers"]:
        c = candidate(n)
        assert c["id_number"] not in logs and c["mobile"] not in logs
