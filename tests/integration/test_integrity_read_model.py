"""诚信档案 from verification to registration over real RabbitMQ and PostgreSQL: a record in
the reference archive verification loads at start is published (IntegrityRecordListed),
reaches registration's read model through its tracked consumer, and changes what a
submission gets: the pledge (告知承诺) is refused to that person, and only to them."""

import csv

import pytest

from services.registration.projection import RegistrationProjection
from services.verification.reference import DEFAULT_INTEGRITY_CSV, REPO_ROOT
from shared.errors import Refused
from shared.projection import snapshot
from shared.session import REFERENCE_SESSION_PATH
from tests.integration.test_application_flow import PEOPLE, at, start_season

pytestmark = pytest.mark.integration

RECORD = "CX-2026-0099"


@pytest.fixture
def archive(tmp_path):
    """The shipped archive and one more record: 王建国's, from 2026-01-05, never expiring."""
    path = tmp_path / "integrity-archive.csv"
    shipped = (REPO_ROOT / DEFAULT_INTEGRITY_CSV).read_text("utf-8")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(shipped if shipped.endswith("\n") else shipped + "\n")
        csv.writer(f).writerow([RECORD, "resident_id", PEOPLE["wang"][1], PEOPLE["wang"][0],
                                "2025年度考试违纪", "2026-01-05", ""])
    return path


def test_a_record_verification_loads_reaches_registration_and_refuses_the_pledge(
        runner_factory, amqp_uri, databases, archive):
    s = start_season(runner_factory, amqp_uri, databases, name="integ",
                     REFERENCE_INTEGRITY_CSV=str(archive))
    s.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    for key in ("wang", "li"):
        s.candidate(key)
        s.known_complete(key)
    s.clock.set(at(2026, 4, 7, 10, 0))

    s.wait(lambda: s.integrity_known("wang"))
    assert not s.integrity_known("li")
    with pytest.raises(Refused) as exc:
        s.apply("wang")
    assert exc.value.fields == {"commitment": "not available: integrity record"}
    s.apply("li")  # 李敏 has no record: her pledge stands and the auto check passes it
    s.status("li", "auto_passed")
    s.apply("wang", commitment=False)  # without the pledge: proof and the manual check
    s.status("wang", "proof_requested")

    # verification listed each archive record once; registration kept each once
    listed = [e.payload["record_id"] for e in s.store("verification").events_after(0, 10_000)
              if e.type == "IntegrityRecordListed"]
    assert sorted(listed) == ["CX-2021-0007", "CX-2024-0031", RECORD]
    noted = [e.payload for e in s.store("registration").events_after(0, 10_000)
             if e.type == "IntegrityRecordNoted"]
    assert sorted(n["record_id"] for n in noted) == sorted(listed)
    assert next(n for n in noted if n["record_id"] == RECORD)["expires_on"] is None

    # the read model is a fold of registration's own log
    store = s.store("registration")
    projection = next(p for p in store.projections if isinstance(p, RegistrationProjection))
    live = snapshot(store.engine, projection)
    assert len(live["integrity_records"]) == 3
    projection.rebuild(store)
    assert snapshot(store.engine, projection) == live
