"""Who may call what (DESIGN §6), over HTTP, with every service running behind the gateway.

``RULES`` is the one table: every operation of the gateway's OpenAPI document has a rule
here and a request to make. The test calls every operation as every role — anonymous, a
candidate, another candidate, staff of the case's registration point, staff of another
point, the exam authority, an operator — and checks each answer: refused with 401 (no
token) or 403 (a role the operation is not for, or staff of another point), or let
through (anything but 401/403: the service's own answer, e.g. 404 or 409). An operation
the document lists without a rule here, or a rule for one it does not list, fails the test.

The candidate's records are reached through the token only: the other candidate, asking
the same URLs, gets their own records, never the first candidate's.
"""

import base64
import hashlib
import json

import pytest
from joserfc.jwk import OKPKey

from services.account.service import AccountService
from services.admission.service import AdmissionService
from services.certificate.service import CertificateService
from services.notification.service import NotificationService
from services.registration.service import RegistrationService
from services.scoring.service import ScoringService
from services.verification.rules import RULES_DIR
from services.verification.service import VerificationService
from shared.clock import ControlledClock
from shared.session import REFERENCE_SESSION_PATH
from tests.integration.test_account_flow import jpeg
from tests.integration.test_application_flow import SESSION, at
from tests.integration.test_gateway_flow import (
    PASSWORD,
    PDF,
    STAFF_PEOPLE,
    make_config,
    start_stack,
)

pytestmark = pytest.mark.integration

ROLES = ("anonymous", "candidate", "other_candidate", "other_staff", "staff", "authority",
         "operator")

# who may call (DESIGN §6)
PUBLIC = "public"                  # anyone, signed in or not
SIGNED_IN = "signed_in"            # anyone with a good token
CANDIDATE = "candidate"            # candidates: their own records, by the token
STAFF = "staff"                    # registration-point staff: their own point, by the token
STAFF_OWN_POINT = "staff_own_point"  # ... about one case: staff of another point get 403
AUTHORITY = "authority"            # the exam authority
OPERATOR = "operator"              # operators
OVERSIGHT = "oversight"            # operators and the exam authority (the dashboard's data)

ALLOWED = {
    PUBLIC: set(ROLES),
    SIGNED_IN: set(ROLES) - {"anonymous"},
    CANDIDATE: {"candidate", "other_candidate"},
    STAFF: {"staff", "other_staff"},
    STAFF_OWN_POINT: {"staff"},
    AUTHORITY: {"authority"},
    OPERATOR: {"operator"},
    OVERSIGHT: {"operator", "authority"},
}
# what the document says each rule's roles are (x-kaowu-roles)
DOCUMENTED_ROLES = {PUBLIC: ["anyone"], SIGNED_IN: ["authority", "candidate", "operator", "staff"],
                    CANDIDATE: ["candidate"], STAFF: ["staff"], STAFF_OWN_POINT: ["staff"],
                    AUTHORITY: ["authority"], OPERATOR: ["operator"],
                    OVERSIGHT: ["authority", "operator"]}


def expected(rule, role):
    if role in ALLOWED[rule]:
        return "through"
    return 401 if role == "anonymous" else 403


def J(body):
    return {"json_body": body}


CSV = "ticket_number,subject,score\n"
S = SESSION

# (method, OpenAPI path) -> (rule, the request: fn(ctx) -> (concrete path, requests kwargs))
RULES = {
    ("GET", "/health/live"): (PUBLIC, lambda c: ("/health/live", {})),
    ("GET", "/health/ready"): (PUBLIC, lambda c: ("/health/ready", {})),
    ("GET", "/metrics"): (PUBLIC, lambda c: ("/metrics", {})),
    ("GET", "/api/openapi.json"): (PUBLIC, lambda c: ("/api/openapi.json", {})),
    ("GET", "/dashboard"): (PUBLIC, lambda c: ("/dashboard", {})),
    ("GET", "/verify/style.css"): (PUBLIC, lambda c: ("/verify/style.css", {})),
    ("GET", "/"): (PUBLIC, lambda c: ("/", {})),
    ("GET", "/assets/{path}"): (PUBLIC, lambda c: ("/assets/missing.js", {})),
    ("POST", "/api/accounts"): (PUBLIC, lambda c: ("/api/accounts", J({
        "name": "赵六", "id_type": "passport", "id_number": "E12345678", "mobile": "13700000009",
        "username": "zhao_liu", "password": PASSWORD}))),
    ("POST", "/api/login"): (PUBLIC, lambda c: ("/api/login", J({
        "username": STAFF_PEOPLE["operator"]["username"],
        "password": STAFF_PEOPLE["operator"]["password"]}))),
    ("GET", "/api/whoami"): (SIGNED_IN, lambda c: ("/api/whoami", {})),
    ("POST", "/api/token/renew"): (SIGNED_IN, lambda c: ("/api/token/renew", {})),
    # an unknown username: no SMS goes out and no password changes, whoever asks
    ("POST", "/api/password-reset/start"): (PUBLIC, lambda c: ("/api/password-reset/start", J({
        "username": "nosuch_user", "mobile": "13900000001"}))),
    ("POST", "/api/password-reset/finish"): (PUBLIC, lambda c: ("/api/password-reset/finish", J({
        "username": "nosuch_user", "code": "123456", "new_password": "Reset2026pw"}))),
    ("POST", "/api/password"): (SIGNED_IN, lambda c: ("/api/password", J({
        "old_password": "not-the-password1", "new_password": "Another2026pw"}))),
    ("GET", "/api/sessions"): (PUBLIC, lambda c: ("/api/sessions", {})),
    ("GET", "/api/sessions/{session_id}"): (PUBLIC, lambda c: (f"/api/sessions/{S}", {})),
    ("GET", "/api/sessions/{session_id}/pickup-notices"): (
        PUBLIC, lambda c: (f"/api/sessions/{S}/pickup-notices", {})),
    # the candidate
    ("GET", "/api/me/profile"): (CANDIDATE, lambda c: ("/api/me/profile", {})),
    ("GET", "/api/me/profile/{section}"): (CANDIDATE, lambda c: ("/api/me/profile/basic", {})),
    ("PUT", "/api/me/profile/{section}"): (CANDIDATE, lambda c: ("/api/me/profile/contact", J({
        "email": "me@example.com", "address": "上海市黄浦区"}))),
    ("PUT", "/api/me/photo"): (CANDIDATE, lambda c: ("/api/me/photo", {
        "data": base64.b64decode(jpeg()), "headers": {"Content-Type": "image/jpeg"}})),
    ("GET", "/api/me/photo"): (CANDIDATE, lambda c: ("/api/me/photo", {})),
    ("POST", "/api/me/applications"): (CANDIDATE, lambda c: ("/api/me/applications", J({
        "session_id": S, "level": "L1", "registration_point": "2916", "commitment": None}))),
    ("GET", "/api/me/applications/{session_id}"): (
        CANDIDATE, lambda c: (f"/api/me/applications/{S}", {})),
    ("POST", "/api/me/applications/{session_id}/withdraw-commitment"): (
        CANDIDATE, lambda c: (f"/api/me/applications/{S}/withdraw-commitment", {})),
    ("POST", "/api/me/applications/{session_id}/proof"): (
        CANDIDATE, lambda c: (f"/api/me/applications/{S}/proof", {
            "files": [("files", ("证明.pdf", PDF, "application/pdf"))]})),
    ("POST", "/api/me/applications/{session_id}/confirm"): (
        CANDIDATE, lambda c: (f"/api/me/applications/{S}/confirm", {})),
    ("POST", "/api/me/applications/{session_id}/enquiries"): (
        CANDIDATE, lambda c: (f"/api/me/applications/{S}/enquiries", J({"text": "为何不通过？"}))),
    ("GET", "/api/me/applications/{session_id}/enquiries"): (
        CANDIDATE, lambda c: (f"/api/me/applications/{S}/enquiries", {})),
    ("GET", "/api/me/tickets/{session_id}"): (CANDIDATE, lambda c: (f"/api/me/tickets/{S}", {})),
    ("GET", "/api/me/tickets/{session_id}/pdf"): (
        CANDIDATE, lambda c: (f"/api/me/tickets/{S}/pdf", {})),
    ("GET", "/api/me/results/{session_id}"): (CANDIDATE, lambda c: (f"/api/me/results/{S}", {})),
    ("GET", "/api/me/certificates"): (CANDIDATE, lambda c: ("/api/me/certificates", {})),
    ("GET", "/api/me/certificates/{number}/{format}"): (
        CANDIDATE, lambda c: ("/api/me/certificates/JL2026-000001/pdf", {})),
    ("GET", "/api/me/messages"): (CANDIDATE, lambda c: ("/api/me/messages", {})),
    ("POST", "/api/me/messages/{message_id}/read"): (
        CANDIDATE, lambda c: ("/api/me/messages/nosuchmessage/read", {})),
    # registration-point staff
    ("GET", "/api/staff/manual-queue"): (STAFF, lambda c: ("/api/staff/manual-queue", {})),
    ("GET", "/api/staff/cases/{application_id}"): (
        STAFF_OWN_POINT, lambda c: (f"/api/staff/cases/{c['application_id']}", {})),
    ("POST", "/api/staff/cases/{application_id}/decision"): (
        STAFF_OWN_POINT, lambda c: (f"/api/staff/cases/{c['application_id']}/decision", J({
            "decision": "reject", "reason": "材料不清晰"}))),
    ("GET", "/api/staff/cases/{application_id}/candidate"): (
        STAFF_OWN_POINT, lambda c: (f"/api/staff/cases/{c['application_id']}/candidate", {})),
    ("GET", "/api/staff/cases/{application_id}/photo"): (
        STAFF_OWN_POINT, lambda c: (f"/api/staff/cases/{c['application_id']}/photo", {})),
    ("GET", "/api/staff/cases/{application_id}/proof/{file_id}"): (
        STAFF_OWN_POINT, lambda c: (
            f"/api/staff/cases/{c['application_id']}/proof/{c['file_id']}", {})),
    ("GET", "/api/staff/enquiries"): (STAFF, lambda c: ("/api/staff/enquiries", {})),
    ("POST", "/api/staff/enquiries/{enquiry_id}/answer"): (
        STAFF_OWN_POINT, lambda c: (f"/api/staff/enquiries/{c['enquiry_id']}/answer", J({
            "answer": "请补交盖章的工作证明", "reopen": False}))),
    # the exam authority
    ("POST", "/api/authority/sessions"): (AUTHORITY, lambda c: ("/api/authority/sessions", J({
        "yaml": REFERENCE_SESSION_PATH.read_text("utf-8")}))),
    ("POST", "/api/authority/sessions/{session_id}/amendments"): (
        AUTHORITY, lambda c: (f"/api/authority/sessions/{S}/amendments", J({
            "window": "scores", "start": "2026-08-15T09:00:00+08:00",
            "end": "2026-12-31T23:59:59+08:00", "reason": "公告确认查询成绩时间"}))),
    ("POST", "/api/authority/sessions/{session_id}/spot-check"): (
        AUTHORITY, lambda c: (f"/api/authority/sessions/{S}/spot-check", J({
            "rate": 0.5, "seed": 2026}))),
    ("GET", "/api/authority/sessions/{session_id}/spot-check"): (
        AUTHORITY, lambda c: (f"/api/authority/sessions/{S}/spot-check", {})),
    ("GET", "/api/authority/cases/{application_id}"): (
        AUTHORITY, lambda c: (f"/api/authority/cases/{c['application_id']}", {})),
    ("GET", "/api/authority/cases/{application_id}/proof/{file_id}"): (
        AUTHORITY, lambda c: (
            f"/api/authority/cases/{c['application_id']}/proof/{c['file_id']}", {})),
    ("POST", "/api/authority/cases/{application_id}/spot-check"): (
        AUTHORITY, lambda c: (f"/api/authority/cases/{c['application_id']}/spot-check", J({
            "decision": "pass"}))),
    ("POST", "/api/authority/applications/{application_id}/void"): (
        AUTHORITY, lambda c: (f"/api/authority/applications/{c['void_id']}/void", J({
            "reason": "虚假承诺", "integrity": False}))),
    ("POST", "/api/authority/check-in"): (AUTHORITY, lambda c: ("/api/authority/check-in", J({
        "ticket_number": "none", "id_type": "resident_id", "id_number": "310104198805123455",
        "subject": "L1-LAW"}))),
    ("GET", "/api/authority/sessions/{session_id}/tickets"): (
        AUTHORITY, lambda c: (f"/api/authority/sessions/{S}/tickets?q=王", {})),
    ("GET", "/api/authority/sessions/{session_id}/rooms/{venue}/{room}"): (
        AUTHORITY, lambda c: (f"/api/authority/sessions/{S}/rooms/V1/R1", {})),
    ("POST", "/api/authority/sessions/{session_id}/scores"): (
        AUTHORITY, lambda c: (f"/api/authority/sessions/{S}/scores", {
            "files": {"file": ("scores.csv", CSV.encode(), "text/csv")}})),
    ("POST", "/api/authority/sessions/{session_id}/scores/publish"): (
        AUTHORITY, lambda c: (f"/api/authority/sessions/{S}/scores/publish", {})),
    ("GET", "/api/authority/sessions/{session_id}/results"): (
        AUTHORITY, lambda c: (f"/api/authority/sessions/{S}/results", {})),
    ("POST", "/api/authority/scores/void"): (AUTHORITY, lambda c: ("/api/authority/scores/void", J({
        "account_id": c["candidate_id"], "session_id": S, "reason": "违纪"}))),
    ("POST", "/api/authority/certificates/{number}/revoke"): (
        AUTHORITY, lambda c: ("/api/authority/certificates/JL2026-000001/revoke", J({
            "reason": "成绩无效"}))),
    ("POST", "/api/authority/sessions/{session_id}/pickup-notices"): (
        AUTHORITY, lambda c: (f"/api/authority/sessions/{S}/pickup-notices", J({
            "place": "徐汇区桂箐路69号", "start": "2026-10-10T09:00:00+08:00",
            "end": "2026-10-20T16:00:00+08:00", "text": "请携带身份证领取纸质证书"}))),
    ("POST", "/api/authority/certificates/{number}/collection"): (
        AUTHORITY, lambda c: ("/api/authority/certificates/JL2026-000001/collection", J({
            "id_type": "resident_id", "id_number": "310104198805123455"}))),
    ("GET", "/api/authority/audit"): (AUTHORITY, lambda c: ("/api/authority/audit", {})),
    ("GET", "/api/authority/rules"): (AUTHORITY, lambda c: ("/api/authority/rules", {})),
    ("GET", "/api/authority/rules/{exam_year}"): (
        AUTHORITY, lambda c: ("/api/authority/rules/2026", {})),
    ("PUT", "/api/authority/rules/{exam_year}"): (
        AUTHORITY, lambda c: ("/api/authority/rules/2026", J({
            "yaml": (RULES_DIR / "2026.yml").read_text("utf-8"), "reason": "与公告一致"}))),
    # public verification of certificates
    ("GET", "/api/verify"): (PUBLIC, lambda c: ("/api/verify?number=JL2026-000001", {})),
    ("POST", "/api/verify"): (PUBLIC, lambda c: ("/api/verify", J({"credential": "a.b.c"}))),
    ("GET", "/api/status-list"): (PUBLIC, lambda c: ("/api/status-list", {})),
    ("GET", "/credentials/status/{list_no}"): (PUBLIC, lambda c: ("/credentials/status/0", {})),
    ("GET", "/issuer"): (PUBLIC, lambda c: ("/issuer", {})),
    ("GET", "/verify/{token}"): (PUBLIC, lambda c: ("/verify/notatoken", {})),
    # operators
    ("GET", "/api/ops/status"): (OPERATOR, lambda c: ("/api/ops/status", {})),
    ("GET", "/api/ops/events/{service}"): (
        OPERATOR, lambda c: ("/api/ops/events/registration?after=0&limit=5", {})),
    ("GET", "/api/ops/dashboard"): (OVERSIGHT, lambda c: ("/api/ops/dashboard", {})),
}


@pytest.fixture
def stack(runner_factory, container_factory, amqp_uri, databases, tmp_path):
    clock = ControlledClock(at(2026, 4, 7, 10, 30))
    # seven services in one process: slow timers keep the machine for the requests (events
    # travel as messages; nothing here waits for a deadline)
    config = {**make_config(amqp_uri, databases, clock, "gwaccess"),
              "CATCH_UP_INTERVAL": 3, "DEADLINE_INTERVAL": 5,
              "CERTIFICATE_SIGNING_KEY": json.dumps(
                  OKPKey.generate_key("Ed25519").as_dict(private=True)),
              "PUBLIC_BASE_URL": "https://kaowu.example.org",
              "SMS_SINK_PATH": str(tmp_path / "sms.jsonl")}
    return start_stack(runner_factory, container_factory, config, [
        AccountService, RegistrationService, VerificationService, AdmissionService,
        ScoringService, CertificateService, NotificationService])


def test_every_operation_as_every_role(stack):
    api = stack.api
    tokens = {key: stack.staff(key) for key in ("staff", "other_staff", "authority", "operator")}
    tokens["anonymous"] = None
    stack.load_session(tokens["authority"])
    tokens["candidate"] = stack.candidate("candidate")
    tokens["other_candidate"] = stack.candidate("other_candidate")
    # the candidate applies without the pledge and sends proof; the point rejects it and the
    # candidate asks why (an enquiry); the other candidate applies with the pledge
    assert stack.apply(tokens["candidate"], "candidate", commitment=False).status_code == 201
    assert stack.apply(tokens["other_candidate"], "other_candidate").status_code == 201
    app_id = f"{SESSION}.{stack.accounts['candidate']}"
    stack.wait(lambda: api.get(f"/api/me/applications/{SESSION}", tokens["candidate"]).json()
               ["status"] == "proof_requested")
    assert api.post(f"/api/me/applications/{SESSION}/proof", tokens["candidate"],
                    files=[("files", ("证明.pdf", PDF, "application/pdf"))]).status_code == 200
    stack.wait(lambda: api.get("/api/staff/manual-queue", tokens["staff"]).json())
    r = api.post(f"/api/staff/cases/{app_id}/decision", tokens["staff"],
                 {"decision": "reject", "reason": "工作证明未盖章"})
    assert r.status_code == 200, r.text
    r = api.post(f"/api/me/applications/{SESSION}/enquiries", tokens["candidate"],
                 {"text": "工作证明已盖章，请再核实。"})
    assert r.status_code == 201, r.text
    ctx = {"application_id": app_id, "enquiry_id": r.json()["enquiry_id"],
           "void_id": f"{SESSION}.{stack.accounts['other_candidate']}",
           "candidate_id": stack.accounts["candidate"],
           "file_id": hashlib.sha256(PDF).hexdigest()}

    # one table, the whole document: nothing without a rule, no rule without an operation
    documented = {(m.upper(), p): op for p, item in api.doc["paths"].items()
                  for m, op in item.items()}
    assert set(documented) - set(RULES) == set(), "operations without a rule in RULES"
    assert set(RULES) - set(documented) == set(), "rules for operations the gateway lacks"
    for key, (rule, _) in RULES.items():
        assert documented[key]["x-kaowu-roles"] == DOCUMENTED_ROLES[rule], key
        assert (documented[key]["security"] == []) == (rule == PUBLIC), key

    wrong = []
    for (method, template), (rule, make) in RULES.items():
        path, kwargs = make(ctx)
        for role in ROLES:
            r = api.call(method, path, tokens[role], **kwargs)
            want = expected(rule, role)
            got = "through" if r.status_code not in (401, 403) else r.status_code
            if got != want:
                wrong.append(f"{method} {template} as {role}: {r.status_code} "
                             f"(expected {want}) {r.text[:160]}")
    assert not wrong, "\n".join(wrong)

    # the same URL gives each candidate their own records
    mine = api.get(f"/api/me/applications/{SESSION}", tokens["candidate"]).json()
    theirs = api.get(f"/api/me/applications/{SESSION}", tokens["other_candidate"]).json()
    assert mine["account_id"] == stack.accounts["candidate"]
    assert theirs["account_id"] == stack.accounts["other_candidate"]
    assert theirs["status"] == "voided"  # the authority's void above
    assert api.get(f"/api/me/applications/{SESSION}/enquiries", tokens["candidate"]).json()
    assert api.get(f"/api/me/applications/{SESSION}/enquiries", tokens["other_candidate"]).json() == []
    assert api.get("/api/me/profile", tokens["other_candidate"]).json()["username"] == "li_2026"
    # staff see their own point only
    assert [q["application_id"] for q in api.get("/api/staff/enquiries", tokens["staff"]).json()] \
        in ([], [app_id])
    assert api.get("/api/staff/enquiries", tokens["other_staff"]).json() == []
    # proof of another point is refused, and the refusal leaves no trace; the looks let
    # through (staff of the point, the authority) are in the audit trail
    r = api.get(f"/api/staff/cases/{app_id}/proof/{ctx['file_id']}", tokens["other_staff"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    trail = api.get(f"/api/authority/audit?application_id={app_id}", tokens["authority"]).json()
    lookers = {e["staff_id"] for e in trail["registration"] if e["action"] == "document_viewed"}
    assert lookers == {stack.accounts["staff"], stack.accounts["authority"]}
