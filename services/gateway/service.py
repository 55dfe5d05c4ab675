"""The HTTP gateway (网关): Kaowu's JSON API for candidates, registration-point staff, the
exam authority and operators, over the services' RPC. Thin: each route authenticates (in
``web.ApiRoute``, before the worker runs), reads its input, calls a service and answers.

The gateway keeps no state beyond what a token carries. Who acts is always taken from the
token, never from the URL or the body: a candidate's ``account_id``, a staff member's
registration point. Its API is described at ``GET /api/openapi.json`` (built from the
routes below); the operator dashboard is the web site's page ``/#/dashboard`` (``GET
/dashboard`` redirects there).
"""

from __future__ import annotations

import base64
from datetime import datetime
from urllib.parse import quote, urlencode

from nameko.rpc import RpcProxy
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.exposition import generate_latest
from werkzeug.wrappers import Response

from services.account import schemas as account
from services.admission import schemas as admission
from services.certificate import schemas as certificate
from services.gateway import dashboard, openapi, pages, rpc
from services.gateway import schemas as s
from services.gateway.auth import (
    AUTHORITY,
    CANDIDATE,
    OPERATOR,
    OVERSIGHT,
    PUBLIC,
    SIGNED_IN,
    STAFF,
    identity_key,
    mobile_key,
)
from services.gateway.errors import ApiError, ServiceUnavailable
from services.gateway.uploads import (
    JPEG,
    MAX_CSV,
    MAX_JSON,
    MAX_PHOTO,
    MAX_PROOF_FILE,
    MAX_PROOF_FILES,
    MAX_YAML,
    PDF,
    decode_text,
    media_type,
    read_body,
    read_files,
    read_json,
    read_text_file,
)
from services.gateway.web import Gate, route, routes_of
from services.notification import schemas as notification
from services.registration import schemas as registration
from services.scoring import schemas as scoring
from services.verification import schemas as verification
from shared.contracts.account import SECTIONS
from shared.errors import KaowuError, Unauthorized
from shared.health import Health, liveness
from shared.masking import mask
from shared.metrics import Metrics
from shared.service import EventReply

SECTION_RULE = f"any({', '.join(SECTIONS)})"
EDITABLE_RULE = f"any({', '.join(s.EDITABLE_SECTIONS)})"  # the photo: PUT /api/me/photo
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
MAX_RULES_YAML = 100_000  # characters, verification's limit for a rules document
DASHBOARD_TIMEOUT = 3.0  # seconds per source: a dead service must not stall the page

# OpenAPI response bits used again and again
ERRORS = (400, 404, 409, 503)
SESSION_QUERY = {"session_id": {"schema": {"type": "string"},
                                "description": "only this exam session"}}


def _document(doc: dict, inline: bool = False) -> Response:
    """A binary document from a service (``{filename, content_type, data: base64}``)."""
    data = base64.b64decode(doc["data"])
    name = doc.get("filename") or "document"
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = (f'{"inline" if inline else "attachment"}; filename="{ascii_name}"; '
                   f"filename*=UTF-8''{quote(name)}")
    return Response(data, mimetype=doc.get("content_type") or "application/octet-stream",
                    headers={"Content-Disposition": disposition})


def _merged(body: dict, **path) -> dict:
    """The body with the path's values; a body that names another value is refused."""
    clash = {k: "given in the path; leave it out of the body or give the same value"
             for k, v in path.items() if k in body and body[k] != v}
    if clash:
        raise ApiError("validation_failed", "The body disagrees with the path.", clash)
    return {**body, **path}


def _int_arg(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ApiError("validation_failed", f"{name} must be a whole number from {low} to {high}.",
                       {name: f"a whole number {low}..{high}"})
    return value


def _time_arg(request, name: str) -> str | None:
    """A query parameter that is a time with its zone (ISO 8601), or None."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ApiError("validation_failed", f"{name} must be a time with its zone, e.g. "
                       "2026-04-07T09:30:00+08:00.", {name: "an ISO 8601 time with its zone"})
    return value.isoformat()


def _viewer(caller) -> dict:
    """Who looks at a candidate's documents, as registration takes it (from the token)."""
    if caller.role == "staff":
        return {**caller.staff(), "role": "staff"}
    return {**caller.authority(), "role": "authority"}


def _page(text: str, status: int = 200) -> Response:
    return Response(text, status=status, mimetype="text/html")


class GatewayService:
    name = "gateway"

    gate = Gate()
    health = Health()
    metrics = Metrics()

    account_rpc = RpcProxy("account")
    registration_rpc = RpcProxy("registration")
    verification_rpc = RpcProxy("verification")
    admission_rpc = RpcProxy("admission")
    scoring_rpc = RpcProxy("scoring")
    certificate_rpc = RpcProxy("certificate")
    notification_rpc = RpcProxy("notification")

    def _call(self, service: str, method: str, *args, **kwargs):
        return rpc.call(getattr(self, f"{service}_rpc"), service, method, *args,
                        timeout=self.gate.rpc_timeout, **kwargs)

    # ================================================================ probes and documents

    @route("GET", "/health/live", access=PUBLIC, tags=["operations"], ok_content=None,
           summary="Liveness probe: the process answers.")
    def health_live(self, request, caller):
        return Response(liveness(self.name)[2], mimetype="application/json")

    @route("GET", "/health/ready", access=PUBLIC, reply=s.ReadinessReply, tags=["operations"], errors=(503,),
           summary="Readiness probe: the broker answers (the gateway has no database).")
    def health_ready(self, request, caller):
        broker = self.health.broker()  # cached a few seconds: probes do not churn connections
        body = {"service": self.name, "status": "unavailable" if broker else "ready",
                "down": ["broker"] if broker else [], "checks": {"broker": broker or "ok"}}
        return 503 if broker else 200, body

    @route("GET", "/metrics", access=PUBLIC, tags=["operations"], ok_content="text/plain",
           summary="Prometheus metrics of the gateway's requests (in-cluster only).")
    def prometheus_metrics(self, request, caller):
        return Response(generate_latest(self.metrics.metrics.registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})

    @route("GET", "/api/openapi.json", access=PUBLIC, reply=s.OpenApiReply, tags=["documents"],
           summary="This API's OpenAPI 3.1 document.")
    def openapi_document(self, request, caller):
        return openapi.document(routes_of(type(self)))

    # ================================================================ accounts

    @route("POST", "/api/accounts", access=PUBLIC, reply=account.AccountCreatedReply, tags=["accounts"], body=s.REGISTER, ok=201,
           errors=(*ERRORS, 429), summary="注册账号: register a candidate account.",
           description="Limited per client address and per ID number and mobile (every "
                       "attempt counts: each says whether they are registered): beyond the "
                       "limit 429 with Retry-After (GATEWAY_SIGNUP_LIMIT).")
    def register(self, request, caller):
        data = read_json(request)
        gate, now = self.gate, self.gate.clock.now().timestamp()
        # every attempt counts: each one says whether an ID number or mobile is registered
        keys = {"address": gate.client(request)}
        if data.get("id_number"):
            keys["id_number"] = identity_key(data["id_number"])
        if data.get("mobile"):
            keys["mobile"] = mobile_key(data["mobile"])
        gate.signup_limiter.check(keys, now)
        gate.signup_limiter.hit(keys, now)
        return 201, self._call("account", "register", data)

    @route("POST", "/api/login", access=PUBLIC, reply=s.TokenReply, tags=["accounts"], body=s.LOGIN,
           errors=(400, 401, 429, 503),
           unauthorized="unauthorized",
           summary="登录: candidates and staff sign in; answers a 15-minute bearer token.",
           description="Failed logins are limited per (username, client address) pair (5 "
                       "in 15 minutes: the lockout) and per client address (20 a minute), in "
                       "memory per gateway process: beyond either 429 with Retry-After, alike "
                       "for usernames that exist and that do not. The owner signing in from "
                       "another address is not affected.")
    def login(self, request, caller):
        data = read_json(request)
        gate = self.gate
        now = gate.clock.now()
        address = gate.client(request)
        gate.limiter.check(data.get("username"), address, now.timestamp())
        try:
            who = self._call("account", "login", data)
        except Unauthorized:
            gate.limiter.failed(data.get("username"), address, now.timestamp())
            raise
        gate.limiter.succeeded(data.get("username"), address)
        return self._token_answer(who, *gate.tokens.issue(who, now), now)

    @staticmethod
    def _token_answer(who: dict, token: str, expires_at: int, now) -> dict:
        account = {k: who.get(k) for k in ("account_id", "role", "name", "username",
                                           "registration_point")}
        if "completeness" in who:
            account["completeness"] = who["completeness"]
        return {"token": token, "token_type": "Bearer", "expires_at": expires_at,
                "expires_in": expires_at - int(now.timestamp()), "account": account}

    @route("POST", "/api/token/renew", access=SIGNED_IN, reply=s.TokenReply, tags=["accounts"],
           errors=(503,),
           summary="续期: a fresh token for a good one (same claims, a new expiry).",
           description="For pages that stay open (the operator dashboard). A token of a "
                       "sign-in before the account's last password change is refused (401), "
                       "as is one of a sign-in older than GATEWAY_SESSION_MAX (12 hours): "
                       "then sign in again.")
    def renew_token(self, request, caller):
        gate = self.gate
        now = gate.clock.now()
        if now.timestamp() - caller.signed_in_at > gate.session_max:
            raise ApiError("unauthorized", "You signed in too long ago; sign in again. "
                           "登录时间过长，请重新登录。", reason="session_too_old",
                           headers={"WWW-Authenticate": 'Bearer realm="kaowu"'})
        return self._token_answer(caller.public(), *gate.tokens.renew(caller, now), now)

    # ---------------------------------------------------------------- forgotten password

    def _reset_keys(self, request, data: dict) -> dict:
        return {"address": self.gate.client(request),
                "account": identity_key(data.get("username"))}

    @route("POST", "/api/password-reset/start", access=PUBLIC, reply=account.PasswordResetStartedReply, tags=["accounts"],
           body=s.RESET_START, ok=202, errors=(400, 429, 503),
           summary="找回密码 (1): send a six-digit code by SMS to the account's mobile.",
           description="Give the username and the account's mobile. The answer is the same "
                       "whether or not they name an account (no SMS then). The code is valid "
                       "for 10 minutes, once; a new one replaces the previous one. Limited "
                       "per account (one a minute, five an hour, silently) and per client "
                       "address and username (429 with Retry-After).")
    def start_password_reset(self, request, caller):
        data = read_json(request)
        gate, now = self.gate, self.gate.clock.now().timestamp()
        keys = self._reset_keys(request, data)
        gate.reset_limiter.check(keys, now)
        gate.reset_limiter.hit(keys, now)
        return 202, self._call("account", "start_password_reset", data)

    @route("POST", "/api/password-reset/finish", access=PUBLIC, reply=account.PasswordResetReply, tags=["accounts"],
           body=s.RESET_FINISH, errors=(400, 429, 503), unauthorized="validation_failed",
           summary="找回密码 (2): set a new password with the code (ends every sign-in).",
           description="A wrong, expired or used code, or an unknown username, answers 400 "
                       "with reason `invalid_code` (field `code`); five wrong codes use a code "
                       "up. Every token of the account issued before stops working (within "
                       "GATEWAY_REVOCATION_CACHE seconds on other gateway replicas).")
    def finish_password_reset(self, request, caller):
        data = read_json(request)
        gate, now = self.gate, self.gate.clock.now().timestamp()
        keys = self._reset_keys(request, data)
        gate.reset_limiter.check(keys, now)
        try:
            done = self._call("account", "finish_password_reset", data)
        except Unauthorized:
            gate.reset_limiter.hit(keys, now)
            raise
        gate.forget_credentials(done["account_id"])
        # who proved the mobile may sign in at once, even after locking themselves out
        gate.limiter.succeeded(data.get("username"), keys["address"])
        return done

    @route("GET", "/api/whoami", access=SIGNED_IN, reply=s.WhoamiReply, tags=["accounts"],
           summary="Who the token says you are, and when it expires.")
    def whoami(self, request, caller):
        return caller.public()

    @route("POST", "/api/password", access=SIGNED_IN, reply=account.PasswordChangedReply, tags=["accounts"],
           body=s.CHANGE_PASSWORD, errors=ERRORS, unauthorized="validation_failed",
           summary="修改密码: change your own password (the current one is checked).",
           description="Every token of the account issued before, this one too, stops "
                       "working (at once on this gateway, within GATEWAY_REVOCATION_CACHE "
                       "seconds on other replicas): sign in again with the new password.")
    def change_password(self, request, caller):
        done = self._call("account", "change_password", caller.account_id, read_json(request))
        self.gate.forget_credentials(caller.account_id)
        return done

    # ================================================================ exam sessions (public)

    @route("GET", "/api/sessions", access=PUBLIC, reply=registration.SessionListReply(many=True), tags=["sessions"], errors=(503,), summary="The exam sessions scheduled.")
    def list_sessions(self, request, caller):
        return self._call("registration", "list_sessions")

    @route("GET", "/api/sessions/<session_id>", access=PUBLIC, reply=s.SessionNowReply, tags=["sessions"],
           errors=ERRORS, summary="An exam session: timetable (windows), levels, subjects, "
                                  "registration points, the pledge text, the current phase.",
           description="`now`: the gateway's clock (ISO 8601), so a page judges which windows "
                       "are open by the server's time, not the browser's.")
    def get_session(self, request, caller, session_id):
        session = self._call("registration", "get_session", session_id)
        return {**session, "now": self.gate.clock.now().isoformat()}

    @route("GET", "/api/sessions/<session_id>/pickup-notices", access=PUBLIC, reply=certificate.PickupNoticeReply(many=True),
           tags=["sessions"], errors=ERRORS,
           summary="领证通知: where and when paper certificates are collected.")
    def pickup_notices(self, request, caller, session_id):
        return self._call("certificate", "pickup_notices", session_id)

    # ================================================================ the candidate (考生)

    @route("GET", "/api/me/profile", access=CANDIDATE, reply=account.ProfileReply, tags=["candidate"], errors=ERRORS,
           summary="信息维护: your whole profile with its completeness.")
    def my_profile(self, request, caller):
        return self._call("account", "get_profile", caller.account_id)

    @route("GET", f"/api/me/profile/<{SECTION_RULE}:section>", access=CANDIDATE, reply=s.ProfileSectionReply,
           tags=["candidate"], errors=ERRORS, summary="One section of your profile.")
    def my_profile_section(self, request, caller, section):
        profile = self._call("account", "get_profile", caller.account_id)
        return {"section": section, "data": profile["sections"].get(section),
                "completeness": profile["completeness"], "missing": profile["missing"]}

    @route("PUT", f"/api/me/profile/<{EDITABLE_RULE}:section>", access=CANDIDATE, reply=account.ProfileSectionSavedReply,
           tags=["candidate"], body=s.PROFILE_SECTION, errors=ERRORS,
           summary="Save one section of your profile (a draft may be partial).")
    def save_profile_section(self, request, caller, section):
        return self._call("account", "update_profile_section", caller.account_id, section,
                          read_json(request))

    @route("PUT", "/api/me/photo", access=CANDIDATE, reply=account.ProfileSectionSavedReply, tags=["candidate"], errors=ERRORS,
           uploads={"multipart/form-data": s.upload("photo"), JPEG: s.BINARY},
           summary="Upload your photo: JPEG, 295×413 px, white background, at most 200 KiB.",
           description="multipart/form-data with the file as field `photo`, or the JPEG as "
                       "the body (Content-Type: image/jpeg).")
    def upload_photo(self, request, caller):
        [photo] = read_files(request, field="photo", allowed=(JPEG,), max_file=MAX_PHOTO,
                             max_files=1, what="photo", default_name="photo.jpg")
        return self._call("account", "update_profile_section", caller.account_id, "photo",
                          {"jpeg_base64": photo.base64()})

    @route("GET", "/api/me/photo", access=CANDIDATE, tags=["candidate"], ok_content=JPEG,
           errors=(404, 503), summary="Your photo as uploaded.")
    def my_photo(self, request, caller):
        photo = self._call("account", "get_photo", caller.account_id)
        return _document({"filename": "photo.jpg", "content_type": photo["content_type"],
                          "data": photo["jpeg_base64"]}, inline=True)

    @route("POST", "/api/me/applications", access=CANDIDATE, reply=registration.ApplicationReply, tags=["candidate"],
           body=s.APPLICATION, ok=201, errors=ERRORS,
           summary="网上报名: apply for an exam session (a 100% profile, in the window).")
    def apply(self, request, caller):
        return 201, self._call("registration", "submit_application", caller.account_id,
                               read_json(request))

    @route("GET", "/api/me/applications/<session_id>", access=CANDIDATE, reply=registration.ApplicationReply, tags=["candidate"],
           errors=ERRORS, summary="Your application: status, reasons and its whole history.")
    def my_application(self, request, caller, session_id):
        return self._call("registration", "get_application", caller.account_id, session_id)

    @route("POST", "/api/me/applications/<session_id>/withdraw-commitment", access=CANDIDATE, reply=registration.ApplicationReply,
           tags=["candidate"], errors=ERRORS,
           summary="撤回承诺: withdraw the pledge; the application then needs proof.")
    def withdraw_commitment(self, request, caller, session_id):
        return self._call("registration", "withdraw_commitment", caller.account_id, session_id)

    @route("POST", "/api/me/applications/<session_id>/proof", access=CANDIDATE, reply=registration.ApplicationReply,
           tags=["candidate"], errors=ERRORS,
           uploads={"multipart/form-data": s.upload("files", many=MAX_PROOF_FILES), PDF: s.BINARY,
                    JPEG: s.BINARY},
           summary="提交证明材料: upload proof (PDF or JPEG, up to 5 files of 5 MiB).",
           description="multipart/form-data with each file as field `files`, or one file as "
                       "the body (Content-Type application/pdf or image/jpeg; its name in "
                       "`?filename=` or Content-Disposition).")
    def submit_proof(self, request, caller, session_id):
        files = read_files(request, field="files", allowed=(PDF, JPEG), max_file=MAX_PROOF_FILE,
                           max_files=MAX_PROOF_FILES, what="proof file", default_name="proof")
        return self._call("registration", "submit_proof", caller.account_id, {
            "session_id": session_id,
            "files": [{"name": f.name, "content_base64": f.base64()} for f in files]})

    @route("POST", "/api/me/applications/<session_id>/confirm", access=CANDIDATE, reply=registration.ApplicationReply,
           tags=["candidate"], errors=ERRORS, summary="核对确认: confirm, in its window.")
    def confirm(self, request, caller, session_id):
        return self._call("registration", "confirm_application", caller.account_id, session_id)

    @route("POST", "/api/me/applications/<session_id>/enquiries", access=CANDIDATE, reply=verification.EnquiryReply,
           tags=["candidate"], body=s.ENQUIRY, ok=201, errors=ERRORS,
           summary="疑问核实: question the rejection on your case.")
    def raise_enquiry(self, request, caller, session_id):
        return 201, self._call("verification", "raise_enquiry", caller.account_id,
                               _merged(read_json(request), session_id=session_id))

    @route("GET", "/api/me/applications/<session_id>/enquiries", access=CANDIDATE, reply=verification.EnquiryReply(many=True),
           tags=["candidate"], errors=ERRORS,
           summary="Your enquiries in a session, with their answers.")
    def my_enquiries(self, request, caller, session_id):
        return self._call("verification", "get_enquiries", caller.account_id, session_id)

    @route("GET", "/api/me/tickets/<session_id>", access=CANDIDATE, reply=admission.TicketReply, tags=["candidate"],
           errors=ERRORS, summary="Your admission ticket: number, seat, subjects, status.")
    def my_ticket(self, request, caller, session_id):
        return self._call("admission", "get_ticket", caller.account_id, session_id)

    @route("GET", "/api/me/tickets/<session_id>/pdf", access=CANDIDATE, tags=["candidate"],
           ok_content=PDF, errors=ERRORS,
           summary="打印准考证: the ticket as PDF (in the printing window; recorded).")
    def my_ticket_pdf(self, request, caller, session_id):
        return _document(self._call("admission", "download_ticket", caller.account_id,
                                    session_id))

    @route("GET", "/api/me/results/<session_id>", access=CANDIDATE, reply=scoring.CandidateResultsReply, tags=["candidate"],
           errors=ERRORS, summary="查询成绩: your results (after publication).")
    def my_results(self, request, caller, session_id):
        return self._call("scoring", "candidate_results", caller.account_id, session_id)

    @route("GET", "/api/me/certificates", access=CANDIDATE, reply=certificate.MyCertificateReply(many=True), tags=["candidate"],
           errors=(503,), summary="Your certificates.")
    def my_certificates(self, request, caller):
        return self._call("certificate", "my_certificates", caller.account_id)

    @route("GET", "/api/me/certificates/<number>/<any(pdf, vc):format>", access=CANDIDATE,
           tags=["candidate"], ok_content="application/octet-stream", errors=ERRORS,
           summary="下载电子证书: your certificate as PDF, or as the signed credential (vc).")
    def my_certificate_document(self, request, caller, number, format):
        return _document(self._call("certificate", "download_certificate", caller.account_id,
                                    number, format))

    @route("GET", "/api/me/messages", access=CANDIDATE, reply=notification.MessageReply(many=True), tags=["candidate"], query={"limit": {"schema": {"type": "integer", "minimum": 1, "maximum": 500}}},
           errors=(400, 503), summary="站内消息: your messages, newest first.")
    def my_messages(self, request, caller):
        return self._call("notification", "messages", caller.account_id,
                          _int_arg(request, "limit", 100, 1, 500))

    @route("POST", "/api/me/messages/<message_id>/read", access=CANDIDATE, reply=notification.MessageReply, tags=["candidate"],
           errors=ERRORS, summary="Mark one of your messages read.")
    def read_message(self, request, caller, message_id):
        return self._call("notification", "mark_read", caller.account_id, message_id)

    # ================================================================ registration-point staff

    @route("GET", "/api/staff/manual-queue", access=STAFF, reply=verification.QueuedCaseReply(many=True), tags=["staff"], query=SESSION_QUERY, errors=ERRORS,
           summary="人工核查: the cases waiting for your point's manual check.")
    def manual_queue(self, request, caller):
        return self._call("verification", "manual_queue", caller.staff(),
                          request.args.get("session_id") or None)

    @route("GET", "/api/staff/cases/<application_id>", access=STAFF, reply=verification.CaseReply, tags=["staff"],
           errors=ERRORS, summary="A case of your point, with its history.")
    def staff_case(self, request, caller, application_id):
        case = self._call("verification", "get_case", application_id)
        if case.get("registration_point") != caller.registration_point:
            raise ApiError("forbidden", "This case belongs to another registration point.")
        return case

    @route("POST", "/api/staff/cases/<application_id>/decision", access=STAFF, reply=verification.CaseReply, tags=["staff"],
           body=s.MANUAL_DECISION, errors=ERRORS,
           summary="Decide a case of your point: pass, or reject with a reason (final: 报名终止).")
    def decide_manual(self, request, caller, application_id):
        return self._call("verification", "decide_manual", caller.staff(),
                          _merged(read_json(request), application_id=application_id))

    # the case page: the candidate and their documents; every look is in the audit trail

    @route("GET", "/api/staff/cases/<application_id>/candidate", access=STAFF, reply=registration.CandidateFileReply, tags=["staff"],
           errors=ERRORS, summary="A case of your point: the application, the candidate's "
                                  "profile and the proof files (recorded in the audit trail).")
    def staff_candidate(self, request, caller, application_id):
        return self._call("registration", "candidate_file", _viewer(caller), application_id)

    @route("GET", "/api/staff/cases/<application_id>/photo", access=STAFF, tags=["staff"],
           ok_content=JPEG, errors=ERRORS,
           summary="The candidate's photo, for a case of your point (recorded in the audit trail).")
    def staff_candidate_photo(self, request, caller, application_id):
        photo = self._call("registration", "candidate_photo", _viewer(caller), application_id)
        return _document({"filename": "photo.jpg", "content_type": photo["content_type"],
                          "data": photo["jpeg_base64"]}, inline=True)

    @route("GET", "/api/staff/cases/<application_id>/proof/<file_id>", access=STAFF,
           tags=["staff"], ok_content="application/octet-stream", errors=ERRORS,
           summary="A proof file of a case of your point, PDF or JPEG, to view in the page "
                   "(recorded in the audit trail).")
    def staff_proof(self, request, caller, application_id, file_id):
        return _document(self._call("registration", "get_proof", _viewer(caller),
                                    application_id, file_id), inline=True)

    @route("GET", "/api/staff/enquiries", access=STAFF, reply=verification.QueuedEnquiryReply(many=True), tags=["staff"], query=SESSION_QUERY, errors=ERRORS, summary="疑问核实: your point's open enquiries.")
    def enquiry_queue(self, request, caller):
        return self._call("verification", "enquiry_queue", caller.staff(),
                          session_id=request.args.get("session_id") or None)

    @route("POST", "/api/staff/enquiries/<enquiry_id>/answer", access=STAFF, reply=verification.EnquiryReply, tags=["staff"],
           body=s.ENQUIRY_ANSWER, errors=ERRORS,
           summary="Answer an enquiry of your point (reopen: back to proof and manual check).")
    def answer_enquiry(self, request, caller, enquiry_id):
        return self._call("verification", "answer_enquiry", caller.staff(),
                          _merged(read_json(request), enquiry_id=enquiry_id))

    # ================================================================ the exam authority

    @route("POST", "/api/authority/sessions", access=AUTHORITY, reply=registration.SessionReply, tags=["authority"],
           body=s.SESSION_YAML, ok=201, errors=ERRORS,
           uploads={t: {"type": "string", "maxLength": MAX_YAML} for t in YAML_TYPES},
           summary="Schedule an exam session from its YAML document (checked whole).",
           description="JSON `{\"yaml\": ...}`, or the YAML itself as the body "
                       "(Content-Type: application/yaml).")
    def load_session(self, request, caller):
        kind = media_type(request)
        if kind in YAML_TYPES:
            data = {"yaml": decode_text(read_body(request, MAX_YAML * 4, "session document"),
                                        "session document")}
        else:
            data = read_json(request, MAX_JSON)
        return 201, self._call("registration", "load_session", data)

    @route("POST", "/api/authority/sessions/<session_id>/amendments", access=AUTHORITY, reply=registration.SessionReply,
           tags=["authority"], body=s.AMENDMENT, errors=ERRORS,
           summary="Amend a window of the timetable (TimetableAmended), with a reason.",
           description="Only a window that has not closed (else `refused`, reason "
                       "`window_closed`), never to open or close in the past (reason "
                       "`amendment_in_past`; an open window keeps its start).")
    def amend_timetable(self, request, caller, session_id):
        return self._call("registration", "amend_timetable",
                          _merged(read_json(request), session_id=session_id))

    @route("POST", "/api/authority/sessions/<session_id>/spot-check", access=AUTHORITY, reply=verification.SpotCheckDrawReply,
           tags=["authority"], body=s.SPOT_CHECK_DRAW, errors=ERRORS,
           summary="抽查: draw the spot-check sample (reproducible from its seed), in its window.")
    def draw_spot_check(self, request, caller, session_id):
        return self._call("verification", "draw_spot_check", caller.authority(),
                          _merged(read_json(request), session_id=session_id))

    @route("GET", "/api/authority/sessions/<session_id>/spot-check", access=AUTHORITY, reply=verification.SpotCheckReply,
           tags=["authority"], errors=ERRORS,
           summary="抽查: the session's draw (rate, seed, sample) and the drawn cases' decisions.")
    def spot_check(self, request, caller, session_id):
        return self._call("verification", "spot_check", caller.authority(), session_id)

    @route("GET", "/api/authority/cases/<application_id>", access=AUTHORITY, reply=verification.CaseReply,
           tags=["authority"], errors=ERRORS, summary="Any verification case, with its history.")
    def authority_case(self, request, caller, application_id):
        return self._call("verification", "get_case", application_id)

    @route("GET", "/api/authority/cases/<application_id>/proof/<file_id>", access=AUTHORITY,
           tags=["authority"], ok_content="application/octet-stream", errors=ERRORS,
           summary="A proof file of any case, PDF or JPEG (recorded in the audit trail).")
    def authority_proof(self, request, caller, application_id, file_id):
        return _document(self._call("registration", "get_proof", _viewer(caller),
                                    application_id, file_id), inline=True)

    @route("POST", "/api/authority/cases/<application_id>/spot-check", access=AUTHORITY, reply=verification.CaseReply,
           tags=["authority"], body=s.SPOT_CHECK_DECISION, errors=ERRORS,
           summary="抽查复核: decide a case drawn for the spot check.")
    def decide_spot_check(self, request, caller, application_id):
        return self._call("verification", "decide_spot_check", caller.authority(),
                          _merged(read_json(request), application_id=application_id))

    @route("POST", "/api/authority/applications/<application_id>/void", access=AUTHORITY, reply=registration.ApplicationReply,
           tags=["authority"], body=s.VOID_REGISTRATION, errors=ERRORS,
           summary="报名无效: void a registration, for a reason (integrity: 诚信档案 record).")
    def void_registration(self, request, caller, application_id):
        return self._call("registration", "void_registration", caller.authority(),
                          _merged(read_json(request), application_id=application_id))

    @route("POST", "/api/authority/check-in", access=AUTHORITY, reply=admission.CheckInReply, tags=["authority"],
           body=s.CHECK_IN, errors=ERRORS,
           summary="身份核验: check a candidate in at the door (ticket and identity document).")
    def check_in(self, request, caller):
        return self._call("admission", "check_in", caller.authority(), read_json(request))

    @route("GET", "/api/authority/sessions/<session_id>/tickets", access=AUTHORITY,
           reply=admission.RosterReply, tags=["authority"], errors=ERRORS,
           query={"q": {"schema": {"type": "string", "maxLength": 100},
                        "description": "part of a ticket number or of a name"},
                  "limit": {"schema": {"type": "integer", "minimum": 1, "maximum": 500,
                                       "default": 200},
                            "description": "at most this many ticket holders (by number)"}},
           summary="考场签到: a session's ticket holders (room, seat, check-ins and absences "
                   "per subject) and its sittings with their check-in windows.")
    def session_tickets(self, request, caller, session_id):
        return self._call("admission", "session_tickets", caller.authority(), session_id,
                          request.args.get("q") or None, _int_arg(request, "limit", 200, 1, 500))

    @route("GET", "/api/authority/sessions/<session_id>/rooms/<venue>/<room>",
           access=AUTHORITY, reply=admission.RoomListReply, tags=["authority"], errors=ERRORS,
           summary="考场座次表: one room's candidates by seat, with exam-day marks.")
    def room_list(self, request, caller, session_id, venue, room):
        return self._call("admission", "room_list", caller.authority(), session_id, venue, room)

    @route("POST", "/api/authority/sessions/<session_id>/scores", access=AUTHORITY, reply=scoring.ImportedReply,
           tags=["authority"], errors=ERRORS,
           uploads={"multipart/form-data": s.upload("file"),
                    "text/csv": {"type": "string", "contentMediaType": "text/csv"}},
           summary="Import the marking centre's scores (CSV: ticket_number,subject,score).",
           description="multipart/form-data with the file as field `file`, or the CSV as the "
                       "body (Content-Type: text/csv; its name in `?filename=`). UTF-8; a "
                       "re-import before publication replaces the earlier one.")
    def import_scores(self, request, caller, session_id):
        name, text = read_text_file(request, field="file", kinds=("text/csv",), limit=MAX_CSV,
                                    what="score file", default_name="scores.csv")
        return self._call("scoring", "import_scores", caller.authority(),
                          {"session_id": session_id, "filename": name, "csv": text})

    @route("POST", "/api/authority/sessions/<session_id>/scores/publish", access=AUTHORITY, reply=scoring.PublishedReply,
           tags=["authority"], errors=ERRORS,
           summary="Publish the scores (in the 查询成绩 window, once).")
    def publish_scores(self, request, caller, session_id):
        return self._call("scoring", "publish_scores", caller.authority(), session_id)

    @route("GET", "/api/authority/sessions/<session_id>/results", access=AUTHORITY, reply=scoring.SessionResultsReply,
           tags=["authority"], errors=ERRORS,
           query={"ticket_number": {"schema": {"type": "string"},
                                    "description": "only this ticket"}},
           summary="The results of a session as imported (before and after publication).")
    def session_results(self, request, caller, session_id):
        return self._call("scoring", "session_results", caller.authority(), session_id,
                          request.args.get("ticket_number") or None)

    @route("POST", "/api/authority/scores/void", access=AUTHORITY, reply=scoring.ScoresVoidedReply, tags=["authority"],
           body=s.VOID_SCORES, errors=ERRORS,
           summary="成绩无效: void a candidate's scores of a sitting.")
    def void_scores(self, request, caller):
        return self._call("scoring", "void_scores", caller.authority(), read_json(request))

    @route("POST", "/api/authority/certificates/<number>/revoke", access=AUTHORITY, reply=certificate.VerdictReply,
           tags=["authority"], body=s.REVOKE, errors=ERRORS,
           summary="证书撤销: revoke a certificate (its status-list bit is set for good).")
    def revoke_certificate(self, request, caller, number):
        return self._call("certificate", "revoke", caller.authority(),
                          _merged(read_json(request), certificate_number=number))

    @route("POST", "/api/authority/sessions/<session_id>/pickup-notices", access=AUTHORITY, reply=certificate.PickupNoticeReply,
           tags=["authority"], body=s.PICKUP_NOTICE, ok=201, errors=ERRORS,
           summary="领证通知: announce where and when paper certificates are collected.")
    def notice_paper_pickup(self, request, caller, session_id):
        return 201, self._call("certificate", "notice_paper_pickup", caller.authority(),
                               _merged(read_json(request), session_id=session_id))

    @route("POST", "/api/authority/certificates/<number>/collection", access=AUTHORITY, reply=certificate.CollectionReply,
           tags=["authority"], body=s.COLLECTION, errors=ERRORS,
           summary="领取纸质证书: record a paper certificate handed out at the counter.")
    def record_collection(self, request, caller, number):
        return self._call("certificate", "record_collection", caller.authority(),
                          _merged(read_json(request), certificate_number=number))

    @route("GET", "/api/authority/audit", access=AUTHORITY, reply=s.AuditReply, tags=["authority"],
           query={**SESSION_QUERY,
                  "staff_id": {"schema": {"type": "string"}, "description": "only this person"},
                  "application_id": {"schema": {"type": "string"},
                                     "description": "only this application"},
                  "account_id": {"schema": {"type": "string"},
                                 "description": "only this candidate (every session)"},
                  "since": {"schema": {"type": "string", "format": "date-time"},
                            "description": "from this time on (with its zone)"},
                  "until": {"schema": {"type": "string", "format": "date-time"},
                            "description": "before this time (with its zone)"},
                  "limit": {"schema": {"type": "integer", "minimum": 1, "maximum": 1000}}},
           errors=ERRORS,
           summary="The audit trail: staff and authority decisions and every look at a "
                   "candidate's documents (who, when, what, why).")
    def audit_trail(self, request, caller):
        query = {k: request.args.get(k) or None
                 for k in ("session_id", "staff_id", "application_id", "account_id")}
        if query["account_id"] and not query["account_id"].isalnum():
            raise ApiError("validation_failed", "account_id is an account id.",
                           {"account_id": "letters and digits"})
        query.update(since=_time_arg(request, "since"), until=_time_arg(request, "until"),
                     limit=_int_arg(request, "limit", 200, 1, 1000))
        query = {k: v for k, v in query.items() if v is not None}
        found = rpc.gather({
            **{name: (getattr(self, f"{name}_rpc"), name, "audit_trail",
                      (caller.authority(), query)) for name in ("registration", "verification")},
            "staff": (self.account_rpc, "account", "list_staff", ())}, self.gate.rpc_timeout)
        state, staff = found.pop("staff")
        # who is who: the staff member's or the authority's name beside the id (None when
        # the account service does not answer, or the id is no staff account's)
        names = {p["account_id"]: p["name"] for p in staff} if state == "ok" else {}
        return {name: [{**e, "staff_name": names.get(e["staff_id"])} for e in value]
                if state == "ok" else None for name, (state, value) in found.items()}

    # ---------------------------------------------------------------- 报考条件 (eligibility rules)

    @route("GET", "/api/authority/rules", access=AUTHORITY, reply=verification.RulesYearReply(many=True), tags=["authority"], errors=(503,),
           summary="报考条件: every exam year with eligibility rules and the version in force.")
    def list_rules(self, request, caller):
        return self._call("verification", "list_rules")

    @route("GET", "/api/authority/rules/<int:exam_year>", access=AUTHORITY, reply=verification.RulesReply, tags=["authority"],
           errors=ERRORS,
           query={"version": {"schema": {"type": "integer", "minimum": 0},
                              "description": "this version (0: the shipped default); "
                                             "default the one in force"}},
           summary="报考条件 of an exam year as a document: the version in force (or "
                   "`?version=`), its YAML, and every version's who, when and why.")
    def get_rules(self, request, caller, exam_year):
        version = (None if request.args.get("version") in (None, "")
                   else _int_arg(request, "version", 0, 0, 1_000_000))
        return self._call("verification", "get_rules", exam_year, version)

    @route("PUT", "/api/authority/rules/<int:exam_year>", access=AUTHORITY, reply=verification.RulesLoadedReply, tags=["authority"],
           body=s.RULES_DOCUMENT, errors=ERRORS,
           uploads={t: {"type": "string", "maxLength": MAX_RULES_YAML} for t in YAML_TYPES},
           query={"reason": {"schema": {"type": "string", "maxLength": 500},
                             "description": "why (with a YAML body)"}},
           summary="Load a new version of an exam year's 报考条件 (YAML, checked whole: every "
                   "problem with its path). The same rules as those in force add no version "
                   "(`changed` false).",
           description="JSON `{\"yaml\": ..., \"reason\": ...}`, or the YAML itself as the "
                       "body (Content-Type: application/yaml; the reason in `?reason=`). "
                       "Applications are checked against the version in force when their "
                       "case opens.")
    def load_rules(self, request, caller, exam_year):
        if media_type(request) in YAML_TYPES:
            data = {"yaml": decode_text(read_body(request, MAX_RULES_YAML * 4, "rules document"),
                                        "rules document")}
            if request.args.get("reason"):
                data["reason"] = request.args["reason"]
        else:
            data = read_json(request, MAX_JSON)
        return self._call("verification", "load_rules", caller.authority(),
                          _merged(data, exam_year=exam_year))

    # ================================================================ public verification

    @route("GET", "/api/verify", access=PUBLIC, reply=certificate.VerdictReply, tags=["verification"], errors=ERRORS,
           query={"number": {"schema": {"type": "string"}, "description": "证书编号"},
                  "token": {"schema": {"type": "string"},
                            "description": "the token in a certificate's QR code link"}},
           summary="证书查询验证: check a certificate by its number or its link's token.")
    def verify_get(self, request, caller):
        number, token = request.args.get("number"), request.args.get("token")
        if bool(number) == bool(token):
            raise ApiError("validation_failed", "Give either number= or token=.",
                           {"number": "number or token, one of them"})
        data = {"certificate_number": number} if number else {"token": token}
        return self._call("certificate", "verify", data)

    @route("POST", "/api/verify", access=PUBLIC, reply=certificate.VerdictReply, tags=["verification"], body=s.VERIFY,
           errors=ERRORS, summary="Check a certificate's signed credential (VC-JWT).")
    def verify_post(self, request, caller):
        return self._call("certificate", "verify", read_json(request))

    @route("GET", "/api/status-list", access=PUBLIC, reply=certificate.StatusListReply, tags=["verification"], errors=ERRORS,
           query={"list": {"schema": {"type": "integer", "minimum": 0, "maximum": 10_000}}},
           summary="The revocation status list (a signed BitstringStatusListCredential).")
    def status_list(self, request, caller):
        return self._call("certificate", "status_list", _int_arg(request, "list", 0, 0, 10_000))

    @route("GET", "/credentials/status/<int:list_no>", access=PUBLIC, tags=["verification"],
           ok_content="application/vc+jwt", errors=(400, 404, 503),
           path={"list_no": {"schema": {"maximum": 10_000}}},
           summary="A status list as the credentials reference it (application/vc+jwt).")
    def status_list_credential(self, request, caller, list_no):
        got = self._call("certificate", "status_list", list_no)
        return Response(got["credential"], mimetype=got.get("content_type")
                        or "application/vc+jwt")

    @route("GET", "/issuer", access=PUBLIC, reply=certificate.IssuerReply, tags=["verification"], errors=(503,),
           summary="The certificate issuer: its id, name and public keys (JWKS).")
    def issuer(self, request, caller):
        return self._call("certificate", "issuer")

    @route("GET", "/verify/<token>", access=PUBLIC, tags=["verification"],
           ok_content="text/html", page=True, errors=(503,),
           summary="The verification page a certificate's QR code opens (HTML).")
    def verify_page(self, request, caller, token):
        try:
            result = self._call("certificate", "verify", {"token": token})
        except ServiceUnavailable as exc:
            return _page(pages.verify_page(None, exc.message), 503)
        except KaowuError:  # a malformed token: no certificate has it
            result = {"result": "not_ours"}
        issuer_name = None
        if result.get("issuer"):  # shown by its name, not its id
            try:
                issuer_name = self._call("certificate", "issuer").get("name")
            except (KaowuError, ApiError):
                issuer_name = None
        return _page(pages.verify_page(result, issuer_name=issuer_name))

    # ================================================================ operators

    @route("GET", "/api/ops/status", access=OPERATOR, reply=s.OpsStatusReply, tags=["operations"], errors=(503,),
           summary="Every service's status(): up or down, log head, relay and consumer lag.")
    def ops_status(self, request, caller):
        statuses = rpc.gather({name: (getattr(self, f"{name}_rpc"), name, "status", ())
                               for name in dashboard.SERVICES}, DASHBOARD_TIMEOUT)
        out = {name: ({"up": True, **body} if state == "ok" else {"up": False, "error": body})
               for name, (state, body) in statuses.items()}
        out["gateway"] = {"up": True, "token_key": "development key"
                          if self.gate.tokens.development else "configured"}
        return mask({"services": out})

    @route("GET", f"/api/ops/events/<any({', '.join(dashboard.SERVICES)}):service>",
           access=OPERATOR, reply=EventReply(many=True), tags=["operations"], errors=ERRORS,
           query={"after": {"schema": {"type": "integer", "minimum": 0, "maximum": 2**62},
                            "description": "log position to read after (default 0)"},
                  "limit": {"schema": {"type": "integer", "minimum": 1, "maximum": 5000}}},
           summary="A service's event log after a position (public views of its events; "
                   "personal data masked as in kaowu events).")
    def ops_events(self, request, caller, service):
        return mask(self._call(service, "events_after", _int_arg(request, "after", 0, 0, 2**62),
                               _int_arg(request, "limit", 100, 1, 5000)))

    @route("GET", "/api/ops/dashboard", access=OVERSIGHT, reply=s.DashboardReply, tags=["operations"], errors=(400,),
           query=SESSION_QUERY,
           summary="The dashboard's figures: phase and next deadline, the funnel, queues, lags.",
           description="Each source that does not answer within 3 s is shown as unavailable.")
    def ops_dashboard(self, request, caller):
        now = self.gate.clock.now()
        proxies = {name: getattr(self, f"{name}_rpc") for name in dashboard.SERVICES}
        first = rpc.gather({"sessions": (proxies["registration"], "registration",
                                         "list_sessions", ()),
                            **{f"status.{n}": (proxies[n], n, "status", ())
                               for n in dashboard.SERVICES}}, DASHBOARD_TIMEOUT)
        listed = first["sessions"][1] if first["sessions"][0] == "ok" else []
        details = rpc.gather({x["session_id"]: (proxies["registration"], "registration",
                                                "get_session", (x["session_id"],))
                              for x in listed}, DASHBOARD_TIMEOUT)
        sessions = [d for state, d in details.values() if state == "ok"]
        wanted = request.args.get("session_id")
        session = (next((x for x in sessions if x["session_id"] == wanted), None) if wanted
                   else dashboard.pick_session(sessions, now))
        if wanted and session is None:
            raise ApiError("validation_failed", f"No exam session {wanted!r} is scheduled.",
                           {"session_id": "unknown"})
        calls = {"accounts": (proxies["account"], "account", "account_counts", ())}
        queues = {}
        if session is not None:
            sid = session["session_id"]
            per_session = {"applications": ("registration", "application_counts"),
                           "cases": ("verification", "case_counts"),
                           "enquiries": ("verification", "enquiry_counts"),
                           "admission": ("admission", "admission_counts"),
                           "scoring": ("scoring", "score_counts"),
                           "certificates": ("certificate", "certificate_counts"),
                           "notifications": ("notification", "notification_counts")}
            for key, (service, method) in per_session.items():
                calls[key] = (proxies[service], service, method, (sid,))
            calls["arrivals.account"] = (proxies["account"], "account", "arrivals_per_hour", ())
            calls["arrivals.registration"] = (proxies["registration"], "registration",
                                              "arrivals_per_hour", (sid,))
            # the queue per point, as that point's staff see it (only its length is shown)
            for code in session.get("registration_points") or {}:
                calls[f"queue.{code}"] = (
                    proxies["verification"], "verification", "manual_queue",
                    ({"staff_id": f"dashboard:{caller.account_id}", "registration_point": code},
                     sid))
        answers = rpc.gather(calls, DASHBOARD_TIMEOUT)
        queues = {k.split(".", 1)[1]: v for k, v in answers.items() if k.startswith("queue.")}
        statuses = {k.split(".", 1)[1]: v for k, v in first.items() if k.startswith("status.")}
        return mask(dashboard.shape(now, sessions, session, answers, queues, statuses))

    # ================================================================ the gateway's pages' style

    @route("GET", "/verify/style.css", access=PUBLIC, tags=["site"], ok_content="text/css",
           summary="The style sheet of the verification page (and of the page saying the "
                   "web site is not built).")
    def page_style(self, request, caller):
        return Response(pages.static_file("verify.css"), mimetype="text/css",
                        headers={"Cache-Control": "no-cache"})

    # ================================================================ the web site (报名网站)
    # One page (index.html, hash routes: /#/apply) and its hashed assets, built from web/.

    @route("GET", "/", access=PUBLIC, tags=["site"], ok_content="text/html", page=True,
           errors=(503,), summary="报名网站: the web site for candidates, staff and the authority.",
           description="503 with a page saying to run `make site` when the site is not built.")
    def site_index(self, request, caller):
        index = pages.site_index()
        if index is None:
            return _page(pages.SITE_MISSING, 503)
        return Response(index, mimetype="text/html", headers={"Cache-Control": "no-cache"})

    @route("GET", "/dashboard", access=PUBLIC, tags=["site"], ok=302, ok_content=None,
           ok_description="Redirects to the web site's dashboard, /#/dashboard (its query kept).",
           page=True, summary="运维看板: the operator dashboard is the web site's page "
                              "/#/dashboard (?wall=1 for a wall screen); old links land there.")
    def dashboard_page(self, request, caller):
        query = urlencode(list(request.args.items(multi=True)))
        return Response(status=302, headers={"Location": "/#/dashboard" + (f"?{query}" if query
                                                                           else "")})

    @route("GET", "/assets/<path:path>", access=PUBLIC, tags=["site"],
           ok_content="application/octet-stream", page=True, errors=(404,),
           summary="The web site's built files (names carry a content hash: cached a year).")
    def site_asset(self, request, caller, path):
        found = pages.site_asset(path)
        if found is None:
            raise ApiError("not_found", f"There is no site file {path!r}; run make site.")
        data, kind = found
        return Response(data, mimetype=kind,
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})


# reads the routes once at import: a route the document cannot describe fails here
openapi.document(routes_of(GatewayService))
