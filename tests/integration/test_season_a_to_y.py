"""The whole chart, A to Y, over real RabbitMQ and PostgreSQL: every service running
(account, registration, verification, admission, scoring, certificate, notification) on
one controllable clock, through the 2026 Shanghai reference timetable.

Four candidates who all confirm:
- 王建国 (wang): prints his ticket, sits all three 一级 papers, passes all: qualified (X),
  certificate (Y) issued, downloaded, verified; later his registration is voided for a
  false commitment: the certificate is revoked and he is told.
- 李敏 (li): prints, misses 计量专业案例分析 (absent): two passes, not qualified this year.
- 陈静 (chen): no commitment, proof, manual pass; shows the wrong document at the door
  first; fails one paper.
- 周婷 (zhou): never prints her ticket: forfeited, refused at the door, absent everywhere.

And the logs of the whole season never hold a whole ID or mobile number.
"""

import base64
import io

import pytest

from services.admission.service import AdmissionService
from services.certificate.service import CertificateService
from services.notification.service import NotificationService
from services.scoring.service import ScoringService
from shared import logging as klogging
from shared.errors import Refused, ValidationFailed
from shared.pdf import read_pdf
from shared.session import REFERENCE_SESSION_PATH
from tests.integration.test_application_flow import (
    AUTHORITY,
    PEOPLE,
    SESSION,
    AccountService,
    ControlledClock,
    RegistrationService,
    Season,
    VerificationService,
    at,
)
from tests.support import CATCH_UP, DEADLINE

pytestmark = pytest.mark.integration


@pytest.fixture
def season(amqp_uri, databases, runner_factory, tmp_path):  # the vhost outlives the services
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate().private_bytes(  # a signing key of this test's own
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    clock = ControlledClock(at(2026, 4, 1, 9, 0))
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("atoy") + "_{service}",
              "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "DEADLINE_INTERVAL": DEADLINE,
              "max_workers": 10, "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024},
              "CERTIFICATE_SIGNING_KEY": key,
              "SMS_GATEWAY": "sink", "SMS_SINK_PATH": str(tmp_path / "sms.jsonl"),
              "DELIVERY_INTERVAL": 0.2}
    runner = runner_factory(config, AccountService, RegistrationService, VerificationService,
                            AdmissionService, ScoringService, CertificateService,
                            NotificationService)
    runner.start()
    return Season(runner, clock)


def test_chart_a_to_y(season):
    s = season
    logs = io.StringIO()
    klogging.configure(stream=logs, level="DEBUG")  # every call and event of the season
    try:
        _season(s)
    finally:
        klogging.configure(level="WARNING")
    # the logs of the whole season: no whole ID number or mobile number
    text = logs.getvalue()
    assert text.count("call.ok") > 100
    for key in PEOPLE:
        assert PEOPLE[key][1] not in text
    for account_id in s.accounts.values():
        mobile = s.call("account", "get_profile", account_id)["mobile"]
        assert mobile not in text


def _season(s):
    who = ("wang", "li", "chen", "zhou")
    s.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    for key in who:  # A→B→D
        s.candidate(key)
    for key in who:
        s.known_complete(key)

    # E..T: apply, checks, no spot-check sample drawn (all pass through), confirm
    s.clock.set(at(2026, 4, 7, 10, 0))
    for key in who:
        s.apply(key)
    s.status("wang", "auto_passed")
    s.status("li", "auto_passed")
    s.status("chen", "proof_requested")
    s.status("zhou", "proof_requested")
    s.clock.set(at(2026, 4, 8, 10, 0))
    for key in ("chen", "zhou"):
        s.proof(key)
        s.case_status(key, "awaiting_manual")
        s.manual(key, "pass")
    s.clock.set(at(2026, 4, 17, 10, 0))  # past the spot check: the passed pass through
    for key in who:
        s.wait(lambda key=key: s.app(key)["status"] == "eligible")
        s.call("registration", "confirm_application", s.accounts[key], SESSION)

    # U: confirmation closes; seats and tickets
    s.clock.set(at(2026, 4, 18, 16, 0, 1))
    tickets = {k: s.wait(lambda k=k: _ticket(s, k)) for k in who}
    assert len({(t["venue"]["code"], t["room"], t["seat"]) for t in tickets.values()}) == 4

    # V: printing only in its window; 周婷 never prints
    s.clock.set(at(2026, 6, 10, 9, 59, 59))
    with pytest.raises(Refused):
        s.call("admission", "download_ticket", s.accounts["wang"], SESSION)
    s.clock.set(at(2026, 6, 10, 10, 0))
    for key in ("wang", "li", "chen"):
        doc = s.call("admission", "download_ticket", s.accounts[key], SESSION)
        pdf = read_pdf(base64.b64decode(doc["data"]))
        assert PEOPLE[key][0] in pdf.text and tickets[key]["ticket_number"] in pdf.text
        assert pdf.qr_codes  # the QR decodes
    s.clock.set(at(2026, 6, 12, 16, 0, 1))
    s.wait(lambda: _ticket(s, "zhou")["status"] == "forfeited")
    assert s.call("admission", "get_ticket", s.accounts["wang"], SESSION)["status"] == "printed"

    # W: exam day
    def check_in(key, subject, id_number=None):
        return s.call("admission", "check_in", AUTHORITY, {
            "ticket_number": tickets[key]["ticket_number"], "id_type": "resident_id",
            "id_number": id_number or PEOPLE[key][1], "subject": subject})

    s.clock.set(at(2026, 6, 13, 8, 45))
    with pytest.raises(Refused):  # 周婷: forfeited
        check_in("zhou", "L1-LAW")
    with pytest.raises(Refused):  # 陈静 shows someone else's ID card
        check_in("chen", "L1-LAW", id_number=PEOPLE["wang"][1])
    for key in ("wang", "li", "chen"):
        check_in(key, "L1-LAW")
    s.clock.set(at(2026, 6, 13, 13, 45))
    for key in ("wang", "li", "chen"):
        check_in(key, "L1-DATA")
    s.clock.set(at(2026, 6, 14, 8, 45))
    for key in ("wang", "chen"):  # 李敏 does not come
        check_in(key, "L1-CASE")
    s.clock.set(at(2026, 6, 14, 11, 30, 1))
    counts = s.wait(lambda: (c := s.call("admission", "admission_counts", SESSION))["absent"] == 4 and c)
    assert counts["checked_in"] == 8 and counts["forfeited"] == 1  # 周婷 x3, 李敏 x1 absent

    # X: the marking centre's file; a bad one is refused whole, storing nothing
    s.clock.set(at(2026, 7, 1, 10, 0))
    t = {k: tickets[k]["ticket_number"] for k in who}
    bad = (f"ticket_number,subject,score\n{t['wang']},L1-LAW,130\n"
           f"{t['li']},L1-CASE,80\nNOPE,L1-LAW,70\n")
    _quiet(s)
    head = s.store("scoring").head()
    with pytest.raises((ValidationFailed, Refused)) as exc:
        s.call("scoring", "import_scores", AUTHORITY, {"session_id": SESSION,
                                                       "filename": "bad.csv", "csv": bad})
    assert len(exc.value.fields) == 3 and s.store("scoring").head() == head
    rows = [("wang", "L1-LAW", 90), ("wang", "L1-DATA", 88), ("wang", "L1-CASE", 75),
            ("li", "L1-LAW", 100), ("li", "L1-DATA", 72),
            ("chen", "L1-LAW", 71.5), ("chen", "L1-DATA", 95), ("chen", "L1-CASE", 80)]
    good = "ticket_number,subject,score\n" + "".join(f"{t[k]},{sub},{sc}\n" for k, sub, sc in rows)
    s.call("scoring", "import_scores", AUTHORITY, {"session_id": SESSION, "filename": "marks.csv",
                                                   "csv": good})
    with pytest.raises(Refused):  # nobody but the authority before publication
        s.call("scoring", "candidate_results", s.accounts["wang"], SESSION)
    s.clock.set(at(2026, 8, 15, 9, 0, 1))  # the published time: the timer publishes
    wang = s.wait(lambda: _results(s, "wang"))
    assert all(x["passed"] for x in wang["subjects"]) and wang["qualification"]
    li = _results(s, "li")
    assert sum(x["passed"] for x in li["subjects"]) == 2 and not li["qualification"]
    chen = _results(s, "chen")
    assert [x["passed"] for x in sorted(chen["subjects"], key=lambda x: x["code"])] == \
        [True, True, False]  # L1-CASE 80, L1-DATA 95 pass; L1-LAW 71.5 < 72 fails

    # Y: the certificate, after its window opens
    certs = s.wait(lambda: s.call("certificate", "my_certificates", s.accounts["wang"]))
    number = certs[0]["certificate_number"]
    assert s.call("certificate", "my_certificates", s.accounts["li"]) == []
    with pytest.raises(Refused):
        s.call("certificate", "download_certificate", s.accounts["wang"], number, "pdf")
    s.clock.set(at(2026, 9, 15, 10, 0))
    pdf = s.call("certificate", "download_certificate", s.accounts["wang"], number, "pdf")
    content = read_pdf(base64.b64decode(pdf["data"]))
    assert number in content.text and "王建国" in content.text
    token = content.qr_codes[0].rsplit("/", 1)[-1]
    assert s.call("certificate", "verify", {"token": token})["result"] == "valid"
    vc = base64.b64decode(s.call("certificate", "download_certificate", s.accounts["wang"],
                                 number, "vc")["data"]).decode()
    assert s.call("certificate", "verify", {"credential": vc})["result"] == "valid"
    head, payload, sig = vc.split(".")
    forged = base64.urlsafe_b64decode(payload + "==").replace("王建国".encode(), "王建民".encode())
    forged = base64.urlsafe_b64encode(forged).decode().rstrip("=")
    assert s.call("certificate", "verify", {"credential": f"{head}.{forged}.{sig}"})["result"] == "invalid"

    # voiding after certification: a false commitment found later
    s.call("registration", "void_registration", AUTHORITY, {
        "application_id": s.app_id("wang"), "reason": "虚假承诺：学历与学信网记录不符",
        "integrity": True})
    revoked = s.wait(lambda: (v := s.call("certificate", "verify", {"certificate_number": number}))
                     ["result"] == "revoked" and v)
    assert "虚假承诺" in revoked["reason"]
    s.wait(lambda: any("撤销" in m["title"] or "撤销" in m["body"] or "无效" in m["body"]
                       for m in s.call("notification", "messages", s.accounts["wang"])))
    s.wait(lambda: s.integrity_known("wang"))  # verification's record reached registration


def _quiet(s):
    """Every consumer has applied its upstream's whole log."""
    names = [c.service_name for c in s.runner.containers]

    def caught_up():
        st = {n: s.call(n, "status") for n in names}
        return all(pos >= st[up]["head"] for v in st.values()
                   for up, pos in v["tracking"].items() if up in st)

    s.wait(caught_up)


def _ticket(s, key):
    try:
        t = s.call("admission", "get_ticket", s.accounts[key], SESSION)
    except Exception:
        return None
    return t if t.get("seat") else None


def _results(s, key):
    try:
        return s.call("scoring", "candidate_results", s.accounts[key], SESSION)
    except Refused:
        return None
