"""The short version of ``make faults``: a few candidates, each fault once, then all at
once (kill -9, a RabbitMQ restart, a PostgreSQL restart, duplicates, reordering, poison,
relay cycles split mid-way, kill -9 of a consumer while it applies a batch and of an upstream
whose relay has published a batch it has not recorded);
nothing lost, nothing twice, every read model equal to its rebuild, poison kept.

It restarts the machine's RabbitMQ (``stop_app``/``start_app``) and PostgreSQL
(``pg_ctlcluster restart``), as ``make faults`` does: marked ``serial``, so ``make test``
(``tests/run.py``) runs it alone, after every other test has finished."""

import logging
import shutil

import pytest

from faults.__main__ import run

pytestmark = [pytest.mark.integration, pytest.mark.serial]


@pytest.mark.skipif(not (shutil.which("rabbitmqctl") and shutil.which("pg_ctlcluster")),
                    reason="makes a vhost and restarts the servers with their own tools")
def test_nothing_is_lost_under_faults(tmp_path):
    logging.getLogger("amqp").setLevel(logging.ERROR)
    summary = run(candidates=8, workdir=tmp_path, threads=2)
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
