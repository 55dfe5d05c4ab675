"""The seed's last nodes, 领取纸质证书 (X) and 查看/下载电子证书 (Y), over real RabbitMQ and
PostgreSQL with a controllable clock.

The certificate service runs as in production. Its upstreams are SIMULATED here: two small
test-only services named ``scoring`` and ``registration`` append contract events
(``QualificationAttained``, ``QualificationWithdrawn``, ``ExamSessionScheduled``,
``TimetableAmended``) to logs of their own, which their relays publish and whose
``events_after`` the certificate service pulls from, exactly as from the real services.
"""

import base64
import json
from datetime import datetime
from types import SimpleNamespace

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey
from nameko.testing.services import entrypoint_hook
from sqlalchemy import event

from services.certificate import statuslist
from services.certificate.projection import CertificateProjection
from services.certificate.service import CertificateService
from shared.clock import SHANGHAI, ControlledClock, iso
from shared.contracts import INTEGRATION
from shared.dependencies import EventStoreProvider
from shared.errors import NotFound, Refused, Unauthorized, ValidationFailed
from shared.events import NewEvent
from shared.pdf import read_pdf
from shared.projection import snapshot
from shared.service import EventSourcedService, command
from shared.session import REFERENCE_SESSION_PATH, load_session_file
from tests.support import CATCH_UP, DEADLINE, check_reply, wait_for

pytestmark = pytest.mark.integration

SESSION = "2026-shanghai-jiliang"
AUTHORITY = {"staff_id": "authority-07"}
BASE = "https://kaowu.test"
WANG = {"name": "王建国", "id_type": "resident_id", "id_number": "310104198805123455"}
LI = {"name": "李敏", "id_type": "resident_id", "id_number": "31011519920315002X"}


def at(*args):
    return datetime(*args, tzinfo=SHANGHAI)


class _SimulatedUpstream(EventSourcedService):
    """SIMULATED upstream (test only): appends the contract events it is given."""

    store = EventStoreProvider(INTEGRATION)

    @command
    def emit(self, stream, type, payload):
        return self.store.append([NewEvent(stream, type, payload)])[0].position


class SimulatedScoring(_SimulatedUpstream):
    name = "scoring"


class SimulatedRegistration(_SimulatedUpstream):
    name = "registration"


class World:
    def __init__(self, runner, clock):
        self.runner, self.clock = runner, clock

    def container(self, name):
        return next(c for c in self.runner.containers if c.service_name == name)

    def store(self, name="certificate"):
        return next(d for d in self.container(name).dependencies
                    if isinstance(d, EventStoreProvider)).store

    def call(self, service, method, *args):
        with entrypoint_hook(self.container(service), method) as hook:
            return check_reply(service, method, hook(*args))

    def cert(self, method, *args):
        return self.call("certificate", method, *args)

    def wait(self, predicate, timeout=30):  # generous: the test machine is shared
        return wait_for(predicate, timeout)

    def attained(self, qid, account, level, candidate):
        return self.call("scoring", "emit", f"qualification-{qid}", "QualificationAttained", {
            "qualification_id": qid, "account_id": account, "session_id": SESSION,
            "exam_year": 2026, "level": level, "exemption": None,
            "subjects": [{"subject": f"{level}-LAW", "exam_year": 2026, "session_id": SESSION,
                          "score": 88.0}],
            "candidate": candidate})

    def mine(self, account):
        return self.cert("my_certificates", account)


@pytest.fixture
def world(runner_factory, amqp_uri, databases):
    clock = ControlledClock(at(2026, 8, 20, 9, 0))
    key = OKPKey.generate_key("Ed25519")
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("cert") + "_{service}",
              "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "max_workers": 10,
              "CERTIFICATE_SIGNING_KEY": json.dumps(key.as_dict(private=True)),
              "PUBLIC_BASE_URL": BASE, "CERTIFICATE_ISSUER": f"{BASE}/issuer"}
    runner = runner_factory(config, CertificateService, SimulatedScoring, SimulatedRegistration)
    runner.start()
    return World(runner, clock)


def test_certificates_from_qualification_to_pickup(world):
    w = world
    doc = load_session_file(REFERENCE_SESSION_PATH)
    w.call("registration", "emit", f"session-{SESSION}", "ExamSessionScheduled",
           {"session_id": SESSION, "document": doc.to_dict()})

    # QualificationAttained -> CertificateIssued, once per qualification
    w.attained("q-wang-L1", "acc-wang", "L1", WANG)
    w.attained("q-li-L2", "acc-li", "L2", LI)
    w.attained("q-wang-L1", "acc-wang", "L1", WANG)  # scoring says it again: nothing new
    # the session comes from registration, the qualifications from scoring: two consumers,
    # either may be first; wait for both
    wang = w.wait(lambda: [c for c in w.mine("acc-wang") if c["downloads_open_at"]])[0]
    li = w.wait(lambda: w.mine("acc-li"))[0]
    w.wait(lambda: w.store().tracked_position("scoring") == 3)
    assert len(w.mine("acc-wang")) == 1
    assert (wang["certificate_number"], wang["level_name"], wang["status"]) == \
        ("JL202610000001", "一级注册计量师", "valid")
    assert li["certificate_number"] == "JL202620000002"
    published = [e for e in w.cert("events_after", 0, 100)]
    issued = [e["payload"] for e in published if e["type"] == "CertificateIssued"]
    assert [p["certificate_number"] for p in issued] == ["JL202610000001", "JL202620000002"]
    assert issued[0]["qualification_id"] == "q-wang-L1" and issued[0]["status_index"] == 0
    recorded = [e for e in published if e["type"] == "CertificateRecorded"]
    assert recorded and all(e["private"] and e["payload"] == {} for e in recorded)

    # Y: downloads only from the certificates window (estimated in the reference session)
    assert wang["downloads_open_at"] == iso(at(2026, 9, 15)) and not wang["downloadable"]
    with pytest.raises(Refused) as exc:
        w.cert("download_certificate", "acc-wang", wang["certificate_number"], "pdf")
    assert exc.value.fields["window"] == "certificates" and "证书" in exc.value.message
    # the authority announces the real date: TimetableAmended reaches the service
    w.call("registration", "emit", f"session-{SESSION}", "TimetableAmended", {
        "session_id": SESSION, "window": "certificates", "start": iso(at(2026, 9, 1, 9, 0)),
        "end": iso(at(2027, 12, 31, 23, 59, 59)), "reason": "电子证书9月1日起可下载"})
    w.wait(lambda: w.mine("acc-wang")[0]["downloads_open_at"] == iso(at(2026, 9, 1, 9, 0)))
    w.clock.set(at(2026, 9, 1, 8, 59, 59))
    with pytest.raises(Refused):
        w.cert("download_certificate", "acc-wang", wang["certificate_number"], "pdf")
    w.clock.set(at(2026, 9, 1, 9, 0))
    with pytest.raises(Unauthorized):  # only the holder
        w.cert("download_certificate", "acc-li", wang["certificate_number"], "pdf")
    with pytest.raises(ValidationFailed):
        w.cert("download_certificate", "acc-wang", wang["certificate_number"], "docx")

    pdf = w.cert("download_certificate", "acc-wang", wang["certificate_number"], "pdf")
    assert (pdf["filename"], pdf["content_type"]) == ("JL202610000001.pdf", "application/pdf")
    content = read_pdf(base64.b64decode(pdf["data"]))
    for text in ("王建国", "JL202610000001", "一级注册计量师", "职业资格证书"):
        assert text in content.text, text
    (url,) = content.qr_codes
    assert url == wang["verify_url"] and url.startswith(f"{BASE}/verify/")
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 32
    good = w.cert("verify", {"token": token})
    assert good["result"] == "valid" and good["certificate_number"] == "JL202610000001"
    assert good["name"] == "王*国" and good["level"] == "L1" and good["issued_at"]

    vc = w.cert("download_certificate", "acc-wang", wang["certificate_number"], "vc")
    assert (vc["filename"], vc["content_type"]) == ("JL202610000001.jwt", "application/vc+jwt")
    credential = base64.b64decode(vc["data"]).decode()
    # anyone verifies it with the published keys, without us
    issuer = w.cert("issuer")
    assert issuer["issuer"] == f"{BASE}/issuer"
    claims = jwt.decode(credential, KeySet.import_key_set(issuer["jwks"]),
                        algorithms=["Ed25519"]).claims
    assert claims["credentialSubject"]["certificateNumber"] == "JL202610000001"
    assert claims["credentialSubject"]["name"] == "王建国"
    assert w.cert("verify", {"credential": credential})["result"] == "valid"
    li_vc = base64.b64decode(w.cert("download_certificate", "acc-li", li["certificate_number"],
                                    "vc")["data"]).decode()

    # tampered: one claim changed, signature kept
    head, payload, sig = credential.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["credentialSubject"]["name"] = "王建军"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    bad = w.cert("verify", {"credential": f"{head}.{forged_payload}.{sig}"})
    assert (bad["result"], bad["why"]) == ("invalid", "bad_signature")
    assert w.cert("verify", {"credential": "not-a-jwt"})["why"] == "malformed"
    assert w.cert("verify", {"certificate_number": "JL209990000001"})["result"] == "not_ours"
    assert w.cert("verify", {"token": "x" * 32})["result"] == "not_ours"

    # revocation by the authority: the status list bit flips
    w.clock.set(at(2026, 9, 3, 14, 30))
    got = w.cert("revoke", AUTHORITY, {"certificate_number": li["certificate_number"],
                                       "reason": "证书信息有误，重新制发"})
    assert got["result"] == "revoked"
    revoked = w.cert("verify", {"certificate_number": li["certificate_number"]})
    assert revoked["result"] == "revoked" and revoked["reason"] == "证书信息有误，重新制发"
    assert revoked["revoked_at"] == iso(at(2026, 9, 3, 14, 30))
    assert w.cert("verify", {"credential": li_vc})["result"] == "revoked"
    status = w.cert("status_list")
    status_claims = jwt.decode(status["credential"], KeySet.import_key_set(issuer["jwks"]),
                               algorithms=["Ed25519"]).claims
    bits = statuslist.decode(status_claims["credentialSubject"]["encodedList"])
    assert statuslist.set_indices(bits) == [1]  # 李敏's index, and only it
    with pytest.raises(Refused):
        w.cert("revoke", AUTHORITY, {"certificate_number": li["certificate_number"],
                                     "reason": "again"})
    with pytest.raises(Refused):
        w.cert("download_certificate", "acc-li", li["certificate_number"], "pdf")
    with pytest.raises(NotFound):
        w.cert("status_list", 3)

    # X: paper certificates, by notice
    collect = {"certificate_number": wang["certificate_number"], "id_type": "resident_id",
               "id_number": WANG["id_number"]}
    w.clock.set(at(2026, 10, 9, 10, 0))
    with pytest.raises(Refused) as exc:
        w.cert("record_collection", AUTHORITY, collect)
    assert "领证通知" in exc.value.message
    notice = w.cert("notice_paper_pickup", AUTHORITY, {
        "session_id": SESSION, "place": "上海市职业能力考试院（中山西路1888号）",
        "start": iso(at(2026, 10, 8, 9, 0)), "end": iso(at(2026, 10, 31, 16, 0)),
        "text": "请持本人有效身份证件原件领取纸质证书；委托他人代领的，代领人须持本人身份证件。"})
    assert w.cert("pickup_notices", SESSION) == [notice]
    with pytest.raises(Refused):  # someone else's document
        w.cert("record_collection", AUTHORITY, {**collect, "id_number": LI["id_number"]})
    done = w.cert("record_collection", AUTHORITY, collect)
    assert done == {"certificate_number": "JL202610000001", "collected_by": "王建国",
                    "by_proxy": False, "staff": "authority-07",
                    "collected_at": iso(at(2026, 10, 9, 10, 0))}
    with pytest.raises(Refused) as exc:
        w.cert("record_collection", AUTHORITY, {**collect, "by_proxy": True,
                                                "collected_by": "王小明",
                                                "id_number": "310104201001010011"})
    assert exc.value.fields == {"certificate_number": "already collected"}
    assert [c["holder"] for c in w.cert("collections", AUTHORITY, SESSION)] == ["王建国"]

    # QualificationWithdrawn -> CertificateRevoked
    w.call("scoring", "emit", "qualification-q-wang-L1", "QualificationWithdrawn", {
        "qualification_id": "q-wang-L1", "account_id": "acc-wang", "level": "L1",
        "reason": "虚假承诺，成绩无效"})
    gone = w.wait(lambda: (v := w.cert("verify", {"token": token}))["result"] == "revoked" and v)
    assert "虚假承诺，成绩无效" in gone["reason"]
    assert w.cert("verify", {"credential": credential})["result"] == "revoked"

    assert w.cert("certificate_counts", SESSION) == {"issued": 2, "downloaded": 2,
                                                      "collected": 1, "revoked": 2}
    store = w.store()
    assert CertificateService.business_counts(SimpleNamespace(store=store)) == {
        "certificates": {"revoked": 2}, "certificate_downloads": {"pdf": 1, "vc": 2},
        "paper_certificates_collected": 1}
    types = [e.type for e in store.events_after(0, 1000)]
    assert types.count("CertificateIssued") == 2 and types.count("CertificateRevoked") == 2
    assert types.count("CertificateDownloaded") == 3 and types.count("PaperCertificateCollected") == 1

    # the read model is a fold of the log: rebuilt, it is the live one
    projection = next(p for p in store.projections if isinstance(p, CertificateProjection))
    live = snapshot(store.engine, projection)
    projection.rebuild(store)
    assert snapshot(store.engine, projection) == live


def test_verify_answers_from_one_state_of_the_certificate(world):
    """A revocation committed while verify is reading must not give "revoked" without its
    reason: the verdict and the reason come from the same read of the certificate."""
    w = world
    w.call("registration", "emit", f"session-{SESSION}", "ExamSessionScheduled",
           {"session_id": SESSION, "document": load_session_file(REFERENCE_SESSION_PATH).to_dict()})
    w.attained("q-li-L2", "acc-li", "L2", LI)
    number = w.wait(lambda: w.mine("acc-li"))[0]["certificate_number"]
    engine = w.store().engine
    armed = []

    def revoke_after_the_first_read(conn, cursor, statement, *args):
        if armed and statement.lstrip().upper().startswith("SELECT") and "certificates" in statement:
            armed.clear()  # once; the revocation's own statements pass
            w.cert("revoke", AUTHORITY, {"certificate_number": number, "reason": "证书信息有误"})

    event.listen(engine, "after_cursor_execute", revoke_after_the_first_read)
    try:
        armed.append(True)
        during = w.cert("verify", {"certificate_number": number})
    finally:
        event.remove(engine, "after_cursor_execute", revoke_after_the_first_read)
    assert not armed, "the revocation did not run inside verify"
    assert during["result"] == "valid" and "reason" not in during
    after = w.cert("verify", {"certificate_number": number})
    assert (after["result"], after["reason"]) == ("revoked", "证书信息有误")


class SimulatedAdmission(_SimulatedUpstream):
    name = "admission"


@pytest.fixture
def with_scoring(runner_factory, amqp_uri, databases):
    from services.scoring.service import ScoringService

    clock = ControlledClock(at(2026, 6, 10, 10, 0))
    key = OKPKey.generate_key("Ed25519")
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("certsc") + "_{service}",
              "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "DEADLINE_INTERVAL": DEADLINE,
              "max_workers": 10, "CERTIFICATE_SIGNING_KEY": json.dumps(key.as_dict(private=True)),
              "PUBLIC_BASE_URL": BASE}
    runner = runner_factory(config, CertificateService, ScoringService, SimulatedRegistration,
                            SimulatedAdmission)
    runner.start()
    return World(runner, clock)


def test_the_real_scoring_service_drives_issue_and_revocation(with_scoring):
    """scoring (the real one) publishes 周婷's 二级 result (exempt from 实务, so one subject
    qualifies her) -> QualificationAttained -> a certificate; her scores are voided ->
    QualificationWithdrawn -> the certificate is revoked."""
    w = with_scoring
    doc = load_session_file(REFERENCE_SESSION_PATH)
    w.call("registration", "emit", f"session-{SESSION}", "ExamSessionScheduled",
           {"session_id": SESSION, "document": doc.to_dict()})
    ticket, account = "20262916L2000001", "acczhou"  # scoring takes [0-9a-z] ids
    ids = {"ticket_number": ticket, "application_id": f"{SESSION}.{account}",
           "account_id": account, "session_id": SESSION}
    w.call("admission", "emit", f"ticket-{ticket}", "AdmissionTicketIssued", {
        **ids, "level": "L2", "subjects": ["L2-LAW"], "exam_year": 2026,
        "exemption": {"subject": "L2-PRACTICE", "ground": "verifier_certificate"},
        "candidate": {"name": "周婷", "id_type": "resident_id", "id_number": "310104199502210062"}})
    w.call("admission", "emit", f"ticket-{ticket}", "CandidateCheckedIn", {
        **ids, "subject": "L2-LAW", "staff": "door-01",
        "checked_in_at": iso(at(2026, 6, 13, 8, 40))})
    scoring = w.store("scoring")
    w.wait(lambda: scoring.tracked_position("admission") == 2
           and scoring.tracked_position("registration") == 1)
    w.clock.set(at(2026, 6, 20, 9, 0))
    w.call("scoring", "import_scores", AUTHORITY, {
        "session_id": SESSION, "filename": "scores.csv",
        "csv": f"ticket_number,subject,score\r\n{ticket},L2-LAW,66\r\n"})
    assert w.mine(account) == []
    w.clock.set(at(2026, 8, 15, 9, 0))  # 查询成绩 opens: scoring publishes
    cert = w.wait(lambda: w.mine(account))[0]
    assert (cert["level"], cert["name"], cert["status"]) == ("L2", "周婷", "valid")
    assert cert["qualification_id"] == f"{account}-L2"
    token = cert["verify_url"].rsplit("/", 1)[1]
    assert w.cert("verify", {"token": token})["result"] == "valid"

    w.call("scoring", "void_scores", AUTHORITY, {"account_id": account, "session_id": SESSION,
                                                 "reason": "告知承诺不实"})
    gone = w.wait(lambda: (v := w.cert("verify", {"token": token}))["result"] == "revoked" and v)
    assert "告知承诺不实" in gone["reason"]
