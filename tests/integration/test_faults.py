"""The short version of ``make faults``: a few candidates, every fault once, then all at
once; nothing lost, nothing twice, every read model equal to its rebuild, poison kept."""

import logging
import shutil

import pytest

from faults.__main__ import run

pytestmark = pytest.mark.integration


@pytest.mark.skipif(not (shutil.which("rabbitmqctl") and shutil.which("pg_ctlcluster")),
                    reason="restarts the local RabbitMQ and PostgreSQL through their tools")
def test_nothing_is_lost_under_faults(tmp_path):
    logging.getLogger("amqp").setLevel(logging.ERROR)
    summary = run(candidates=8, workdir=tmp_path, threads=2)
    assert summary["injected"] == 12  # six faults one at a time, then six together
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
