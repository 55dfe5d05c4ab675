"""报名无效 and 成绩无效 over real RabbitMQ and PostgreSQL, with account, registration and
verification running, a controllable clock, and a small test-only ``scoring`` service that
publishes ``ScoresVoided`` from a log of its own (as the real scoring service will).

- the exam authority voids 王建国's registration with an integrity record: registration
  publishes RegistrationVoided (with his identity), the application is 报名无效 and refuses
  every further action, voiding twice is refused; verification closes the case (voided)
  and writes IntegrityRecordWritten (诚信档案); once registration's read model of the archive
  has it, applying to another session under the commitment scheme is refused (and the auto
  check of an application that slipped past would fail on the same record);
- scoring voids 李敏's scores with ``integrity``: verification writes the record from the
  candidate on her case, once;
- the audit trails list the voiding (who, when, why).
"""

import pytest
from nameko.testing.services import entrypoint_hook

from services.registration.projection import RegistrationProjection
from services.verification.projection import VerificationProjection
from shared.contracts import INTEGRATION, EventRegistry
from shared.dependencies import EventStoreProvider
from shared.errors import Refused
from shared.events import NewEvent
from shared.projection import snapshot
from shared.service import EventSourcedService, command
from shared.session import REFERENCE_SESSION_PATH
from tests.integration.test_application_flow import (
    AUTHORITY,
    PEOPLE,
    SESSION,
    at,
    start_season,
)

pytestmark = pytest.mark.integration

OTHER_SESSION = "2026-shanghai-jiliang-extra"


class ScoringUpstream(EventSourcedService):
    """Test-only stand-in for the scoring service: a log of its own, relayed to
    ``scoring.events``, and ``events_after`` for gap filling (from the base class)."""

    name = "scoring"
    store = EventStoreProvider(EventRegistry().include(INTEGRATION))

    @command
    def void_scores(self, payload):
        self.store.append([NewEvent(f"scores-{payload['application_id']}", "ScoresVoided", payload)])


@pytest.fixture
def season(runner_factory, amqp_uri, databases):
    return start_season(runner_factory, amqp_uri, databases, ScoringUpstream, name="void")


def test_voiding_with_an_integrity_record(season):
    s = season
    yaml_text = REFERENCE_SESSION_PATH.read_text("utf-8")
    s.call("registration", "load_session", {"yaml": yaml_text})
    s.call("registration", "load_session",
           {"yaml": yaml_text.replace(f"session_id: {SESSION}", f"session_id: {OTHER_SESSION}")})
    for key in ("wang", "li"):
        s.candidate(key)
        s.known_complete(key)
    s.clock.set(at(2026, 4, 7, 10, 0))
    for key in ("wang", "li"):
        s.apply(key)
        s.status(key, "auto_passed")
    assert not s.integrity_known("wang")

    # 报名无效, with an integrity record: a false commitment
    void = {"application_id": s.app_id("wang"), "reason": "承诺的计量工作年限与社保记录不符（虚假承诺）",
            "integrity": True}
    voided = s.call("registration", "void_registration", AUTHORITY, void)
    assert voided["status"] == "voided" and voided["status_label"] == "报名无效"
    assert voided["voided"]["integrity"] is True
    with pytest.raises(Refused) as exc:  # twice: refused, naming the first
        s.call("registration", "void_registration", AUTHORITY, {**void, "integrity": False})
    assert "already voided" in exc.value.message
    with pytest.raises(Refused) as exc:  # every further candidate action is refused
        s.call("registration", "withdraw_commitment", s.accounts["wang"], SESSION)
    assert "报名无效" in exc.value.message
    published = [e for e in s.store("registration").events_after(0, 10_000)
                 if e.type == "RegistrationVoided"]
    assert len(published) == 1
    assert published[0].payload["candidate"] == {"name": "王建国", "id_type": "resident_id",
                                                 "id_number": PEOPLE["wang"][1]}
    assert published[0].payload["by"] == AUTHORITY["staff_id"]

    # verification: the case is closed, the record written, the archive reports him
    s.case_status("wang", "voided")
    assert s.case("wang")["voided"]["reason"] == void["reason"]
    s.wait(lambda: s.integrity_known("wang"))
    ver = s.store("verification")
    records = [e for e in ver.events_after(0, 10_000) if e.type == "IntegrityRecordWritten"]
    assert len(records) == 1 and records[0].payload["id_number"] == PEOPLE["wang"][1]
    assert records[0].payload["source"] == f"RegistrationVoided {s.app_id('wang')}"
    assert not s.integrity_known("li")

    # a later application by the same person: no commitment scheme for him
    with pytest.raises(Refused) as exc:
        s.call("registration", "submit_application", s.accounts["wang"], {
            "session_id": OTHER_SESSION, "level": "L1", "registration_point": "2916",
            "commitment": {"pledge_version": "2026-v1", "signed_name": "王建国", "agreed": True}})
    assert exc.value.fields == {"commitment": "not available: integrity record"}
    # and an application that slipped past (its integrity check ran before the record was
    # written) fails the auto check on the same record
    reg = s.store("registration")
    first = next(e for e in reg.events_after(0, 10_000) if e.type == "ApplicationSubmitted"
                 and e.payload["account_id"] == s.accounts["wang"])
    app_id = f"{OTHER_SESSION}.{s.accounts['wang']}"
    reg.append([NewEvent(f"application-{app_id}", "ApplicationSubmitted", {
        **first.payload, "session_id": OTHER_SESSION, "application_id": app_id})],
        {f"application-{app_id}": 0})
    again = s.wait(lambda: (a := s.call("registration", "get_application", s.accounts["wang"],
                                        OTHER_SESSION))["status"] == "proof_requested" and a)
    failed = next(h for h in again["history"] if h["type"] == "AutoCheckFailed")
    assert failed["rule"] == "integrity.live-record"
    assert records[0].payload["record_id"] in again["reason"]

    # 成绩无效 from scoring, with an integrity record: written from the candidate on the case
    scores_voided = {"account_id": s.accounts["li"], "application_id": s.app_id("li"),
                     "session_id": SESSION, "reason": "考试作弊（替考）", "by": "authority-02",
                     "integrity": True}
    with entrypoint_hook(s.container("scoring"), "void_scores") as hook:
        hook(scores_voided)
    s.wait(lambda: s.integrity_known("li"))
    with entrypoint_hook(s.container("scoring"), "void_scores") as hook:  # again: once is enough
        hook({**scores_voided, "application_id": s.app_id("li")})
    s.wait(lambda: s.store("verification").tracked_position("scoring") == 2)
    records = [e for e in ver.events_after(0, 10_000) if e.type == "IntegrityRecordWritten"]
    assert [r.payload["source"] for r in records] == [
        f"RegistrationVoided {s.app_id('wang')}", f"ScoresVoided {s.app_id('li')}"]
    assert records[1].payload["id_number"] == PEOPLE["li"][1]
    assert "成绩无效" in records[1].payload["reason"]
    assert s.case("li")["status"] == "passed"  # verification's outcome stands; the scores do not

    # the audit trails: who, when, why
    trail = s.call("registration", "audit_trail", AUTHORITY, {"session_id": SESSION})
    assert [(t["action"], t["staff_id"], t["why"]) for t in trail] == [
        ("registration_voided", "authority-01", void["reason"])]
    ver_trail = s.call("verification", "audit_trail", AUTHORITY, {"session_id": SESSION})
    assert {(t["action"], t["staff_id"]) for t in ver_trail} == {
        ("registration_voided", "authority-01"), ("scores_voided", "authority-02")}

    # rebuilding either read model gives the live one
    for name, proj in (("registration", RegistrationProjection), ("verification", VerificationProjection)):
        store = s.store(name)
        projection = next(p for p in store.projections if isinstance(p, proj))
        live = snapshot(store.engine, projection)
        projection.rebuild(store)
        assert snapshot(store.engine, projection) == live
