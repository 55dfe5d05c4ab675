"""The certificate aggregate (证书): one stream per qualification. Pure: no I/O, no clock.

A qualification (资格, scoring's ``qualification_id``: one per account and level) gets an
electronic certificate when scoring says it is attained: a certificate number from the
service's one sequence, a place (``status_index``) in the revocation status list, an
opaque token for the public verification page, and a signed Verifiable Credential. The
signing itself is the caller's (``credential_for``: the key is configuration), the
decision is here.

Rules:

- once per qualification: while a certificate of the qualification is valid, another
  ``QualificationAttained`` issues nothing. Only after a revocation (e.g. the qualification
  was withdrawn) does a new attainment issue a new certificate, with a new number;
- certificate numbers come from one sequence (``NUMBERS_STREAM``: its version is the last
  sequence number handed out), formatted by a configurable format that must use
  ``{seq}``; a number is never reused, not even one a format change would produce again;
- revocation (吊销/撤销) is final; a revoked certificate is neither downloaded nor collected;
- downloads (查看/下载电子证书): only the holder, only once the session's certificates
  window has opened;
- paper certificates (领取纸质证书): only after the pickup notice (领证通知) of the
  certificate's session has been published and its pickup period has begun; collected
  once, by the holder showing the ID document on the certificate, or by a proxy (代领)
  whose name and document are recorded.

Integration events (CertificateIssued, CertificateDownloaded, PaperPickupNoticed,
PaperCertificateCollected, CertificateRevoked) follow ``shared.contracts.certificate``;
CertificateNumberAllocated, CertificateRecorded and CollectorIdentified are private
(``schemas.PRIVATE``): they hold the candidate's ID number, the token and the credential.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from shared.clock import SHANGHAI, iso, parse_iso
from shared.errors import NotFound, Refused, Unauthorized, ValidationFailed
from shared.events import NewEvent
from shared.evolve import Evolve, Step
from shared.session import Window

QUALIFICATION_NAME = "注册计量师"
LEVEL_NAMES = {"L1": "一级", "L2": "二级"}
LEVEL_NUMBERS = {"L1": "1", "L2": "2"}
FORMATS = ("pdf", "vc")

#: JL (计量) + exam year + level digit + 7-digit sequence: JL202610000001
DEFAULT_NUMBER_FORMAT = "JL{year}{level_no}{seq:07d}"
NUMBERS_STREAM = "certificate-numbers"
MAX_NUMBER_LENGTH = 100


def qualification_stream(qualification_id: str) -> str:
    return f"qualification-{qualification_id}"


def pickup_stream(session_id: str) -> str:
    return f"pickup-{session_id}"


def level_title(level: str) -> str:
    """一级注册计量师."""
    return f"{LEVEL_NAMES.get(level, level)}{QUALIFICATION_NAME}"


# --- certificate numbers --------------------------------------------------------------


def check_number_format(fmt: str) -> str:
    """The format, if it makes distinct numbers of at most 100 characters from ``year``,
    ``level`` (L1), ``level_no`` (1) and ``seq``; ``ValueError`` naming what is wrong."""
    if not isinstance(fmt, str) or not fmt.strip():
        raise ValueError("the certificate number format is empty")
    try:
        samples = [format_number(fmt, seq, 2026, "L1") for seq in (1, 2, 9_999_999)]
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise ValueError(f"certificate number format {fmt!r} does not format with year, level, "
                         f"level_no and seq: {type(exc).__name__}: {exc}") from None
    if "{seq" not in fmt or len(set(samples)) != len(samples):
        raise ValueError(f"certificate number format {fmt!r} must use {{seq}}: "
                         "every certificate would get the same number")
    if any(len(s) > MAX_NUMBER_LENGTH or not s.isprintable() or s != s.strip() for s in samples):
        raise ValueError(f"certificate number format {fmt!r} makes numbers that are too long "
                         "or contain blanks")
    return fmt


def format_number(fmt: str, seq: int, year: int, level: str) -> str:
    return fmt.format(seq=seq, year=year, level=level, level_no=LEVEL_NUMBERS.get(level, level))


def allocate_number(last_seq: int, fmt: str, year: int, level: str,
                    taken: Callable[[str], bool]) -> tuple[int, str, list[int]]:
    """The next sequence number after ``last_seq`` and its certificate number; sequence
    numbers whose formatted number is already taken (after a format change) are skipped,
    and returned so that they are recorded as used. Deterministic: the same log gives the
    same numbers."""
    skipped = []
    seq = last_seq + 1
    while True:
        number = format_number(fmt, seq, year, level)
        if not taken(number):
            return seq, number, skipped
        skipped.append(seq)
        seq += 1


# --- the aggregate --------------------------------------------------------------------


@dataclass
class Certificate:
    certificate_number: str
    qualification_id: str
    account_id: str
    session_id: str
    exam_year: int
    level: str
    candidate: dict  # name, id_type, id_number (the holder's document: stays in)
    token: str  # the verification page's opaque id
    credential: str  # the signed VC-JWT
    kid: str
    status_index: int
    issued_at: str
    status: str = "valid"  # valid | revoked
    version: int = 0  # the stream version of the last event about it
    revoked_at: str | None = None
    revoke_reason: str | None = None
    downloads: list[dict] = field(default_factory=list)  # {"format", "at"}
    collection: dict | None = None  # {"collected_by", "by_proxy", "staff", "at"}

    @property
    def revoked(self) -> bool:
        return self.status == "revoked"

    @property
    def name(self) -> str:
        return self.candidate["name"]


@dataclass
class Qualification:
    qualification_id: str
    version: int = 0
    certificates: list[Certificate] = field(default_factory=list)

    @property
    def active(self) -> Certificate | None:
        """The valid certificate, if any (at most one at a time)."""
        return next((c for c in self.certificates if not c.revoked), None)

    def certificate(self, number: str) -> Certificate | None:
        return next((c for c in self.certificates if c.certificate_number == number), None)


def _recorded(event) -> Certificate:
    p = event.payload
    return Certificate(
        certificate_number=p["certificate_number"], qualification_id=p["qualification_id"],
        account_id=p["account_id"], session_id=p["session_id"], exam_year=p["exam_year"],
        level=p["level"], candidate=dict(p["candidate"]), token=p["token"],
        credential=p["credential"], kid=p["kid"], status_index=p["status_index"],
        issued_at=p["issued_at"])


def _downloaded(cert: Certificate, event) -> None:
    cert.downloads.append({"format": event.payload["format"],
                           "at": event.payload["downloaded_at"]})


def _collected_once(cert: Certificate, event) -> None:
    if cert.collection is not None:
        raise ValueError(f"certificate {cert.certificate_number} collected twice")


# a Certificate's evolve (within its qualification's stream): event type -> its step; the
# fold and the certificates row both use it
CERTIFICATE = Evolve("certificate", {
    "CertificateRecorded": Step.opening(_recorded),
    "CertificateRevoked": Step(("valid",), lambda ev: {
        "status": "revoked", "revoked_at": ev.payload["revoked_at"],
        "revoke_reason": ev.payload["reason"]}),
    "CertificateDownloaded": Step(("valid",), then=_downloaded),
    "PaperCertificateCollected": Step(("valid",), lambda ev: {"collection": {
        "collected_by": ev.payload["collected_by"], "by_proxy": ev.payload["by_proxy"],
        "staff": ev.payload["staff"], "at": ev.payload["collected_at"]}}, then=_collected_once),
}, ident=lambda cert: cert.certificate_number)


def fold(events) -> Qualification | None:
    """The qualification's certificates as its stream left them; ``ValueError`` on a move a
    certificate's chart does not have."""
    q = None
    for event in events:
        p, t = event.payload, event.type
        if q is None:
            q = Qualification(p.get("qualification_id") or event.stream_id.split("-", 1)[1])
        q.version = getattr(event, "stream_version", q.version + 1)
        if t in CERTIFICATE.opens:
            q.certificates.append(CERTIFICATE(None, event))
        elif t in CERTIFICATE:
            cert = q.certificate(p.get("certificate_number", ""))
            if cert is not None:
                CERTIFICATE(cert, event)
    return q


# --- commands -------------------------------------------------------------------------


def issue(q: Qualification | None, attained: dict, *, last_seq: int, number_format: str,
          taken: Callable[[str], bool], token: str, now: datetime,
          credential_for: Callable[[dict], tuple[str, str]]) -> list[NewEvent]:
    """电子证书制发 on ``QualificationAttained``: the events that issue the certificate, or
    none if the qualification already has a valid one (once per qualification).

    ``credential_for(facts)`` signs the Verifiable Credential of the certificate's facts
    and returns ``(jwt, kid)``."""
    if q is not None and q.active is not None:
        return []
    candidate = attained.get("candidate") or {}
    missing = [k for k in ("name", "id_type", "id_number")
               if not isinstance(candidate.get(k), str) or not candidate[k].strip()]
    if missing:
        raise Refused(f"QualificationAttained {attained['qualification_id']} names no candidate "
                      f"{', '.join(missing)}: a certificate needs the holder's name and document.",
                      {"candidate": f"missing {', '.join(missing)}"})
    seq, number, skipped = allocate_number(last_seq, number_format, attained["exam_year"],
                                           attained["level"], taken)
    facts = {
        "certificate_number": number,
        "qualification_id": attained["qualification_id"],
        "account_id": attained["account_id"],
        "session_id": attained["session_id"],
        "exam_year": attained["exam_year"],
        "level": attained["level"],
        "candidate": {"name": candidate["name"].strip(), "id_type": candidate["id_type"],
                      "id_number": candidate["id_number"].strip()},
        "status_index": seq - 1,
        "issued_at": iso(now),
    }
    jwt, kid = credential_for(facts)
    stream = qualification_stream(attained["qualification_id"])
    events = [NewEvent(NUMBERS_STREAM, "CertificateNumberAllocated",
                       {"seq": s, "certificate_number": format_number(
                           number_format, s, attained["exam_year"], attained["level"]),
                        "qualification_id": None}) for s in skipped]
    events += [
        NewEvent(NUMBERS_STREAM, "CertificateNumberAllocated",
                 {"seq": seq, "certificate_number": number,
                  "qualification_id": attained["qualification_id"]}),
        NewEvent(stream, "CertificateRecorded", {**facts, "token": token, "credential": jwt,
                                                 "kid": kid}),
        NewEvent(stream, "CertificateIssued", {
            "certificate_number": number, "account_id": attained["account_id"],
            "qualification_id": attained["qualification_id"],
            "session_id": attained["session_id"], "level": attained["level"],
            "issued_at": facts["issued_at"], "status_index": facts["status_index"]}),
    ]
    return events


def revoke(q: Qualification, number: str, reason: str, now: datetime) -> list[NewEvent]:
    """证书撤销: flips the certificate's bit in the status list. Final."""
    cert = _certificate(q, number)
    if cert.revoked:
        raise Refused(f"Certificate {number} was already revoked on "
                      f"{_local(cert.revoked_at)} ({cert.revoke_reason}).",
                      {"certificate_number": "already revoked"})
    return [NewEvent(qualification_stream(q.qualification_id), "CertificateRevoked", {
        "certificate_number": number, "account_id": cert.account_id, "reason": reason,
        "revoked_at": iso(now), "status_index": cert.status_index})]


def withdraw(q: Qualification | None, reason: str, now: datetime) -> list[NewEvent]:
    """QualificationWithdrawn: every valid certificate of the qualification is revoked."""
    if q is None:
        return []
    text = f"资格撤销：{reason}"[:500]  # the candidate reads it (certificate_revoked)
    return [e for c in q.certificates if not c.revoked
            for e in revoke(q, c.certificate_number, text, now)]


def download(q: Qualification, number: str, account_id: str, fmt: str, now: datetime,
             window: Window | None) -> list[NewEvent]:
    """查看/下载电子证书: the holder only, once the certificates window has opened."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"Unknown format {fmt!r}.", {"format": f"one of {', '.join(FORMATS)}"})
    cert = _certificate(q, number)
    if cert.account_id != account_id:
        raise Unauthorized("This certificate belongs to another candidate; only its holder "
                           "may download it.", {"certificate_number": "not yours"})
    if window is None:
        raise Refused(f"The certificates window (证书) of session {cert.session_id} is not known "
                      "yet; downloads open when it starts.",
                      {"window": "certificates", "session_id": cert.session_id})
    if now < window.start:
        raise Refused(f"Electronic certificates can be downloaded from the start of the "
                      f"{window.describe()} window, which has not opened yet; it is now "
                      f"{_local(iso(now))}.",
                      {"window": "certificates", "opens": iso(window.start)})
    if cert.revoked:
        raise Refused(f"Certificate {number} was revoked on {_local(cert.revoked_at)} "
                      f"({cert.revoke_reason}); it can no longer be downloaded.",
                      {"certificate_number": "revoked"})
    return [NewEvent(qualification_stream(q.qualification_id), "CertificateDownloaded", {
        "certificate_number": number, "account_id": cert.account_id, "format": fmt,
        "downloaded_at": iso(now)})]


def notice_pickup(session_known: bool, data: dict, notice_id: str) -> list[NewEvent]:
    """领证通知: where and when the paper certificates of a session are collected."""
    if not session_known:
        raise Refused(f"No exam session {data['session_id']} is known here; a pickup notice "
                      "names a scheduled session.", {"session_id": "unknown"})
    if data["start"] >= data["end"]:
        raise ValidationFailed("The pickup period must start before it ends.",
                               {"end": "must be after start"})
    return [NewEvent(pickup_stream(data["session_id"]), "PaperPickupNoticed", {
        "notice_id": notice_id, "session_id": data["session_id"], "place": data["place"],
        "start": iso(data["start"]), "end": iso(data["end"]), "text": data["text"]})]


def normalize_document(id_number: str) -> str:
    # full-width digits and letters (Chinese input methods) fold to ASCII, x to X
    return unicodedata.normalize("NFKC", id_number).strip().upper()


def collect(q: Qualification, data: dict, staff_id: str, now: datetime,
            notices: list[dict]) -> list[NewEvent]:
    """领取纸质证书, recorded by the authority's staff at the counter.

    ``notices``: the session's pickup notices ({"start", "end"} as ISO strings)."""
    number = data["certificate_number"]
    cert = _certificate(q, number)
    if not notices:
        raise Refused(f"No paper-certificate pickup notice (领证通知) has been published for "
                      f"session {cert.session_id} yet; collection starts after it.",
                      {"session_id": cert.session_id, "notice": "none yet"})
    first = min(parse_iso(n["start"]) for n in notices)
    if now < first:
        raise Refused(f"Paper certificates of session {cert.session_id} can be collected from "
                      f"{_local(iso(first))} (领证通知); it is now {_local(iso(now))}.",
                      {"opens": iso(first)})
    if cert.revoked:
        raise Refused(f"Certificate {number} was revoked on {_local(cert.revoked_at)} "
                      f"({cert.revoke_reason}); it is not handed out.",
                      {"certificate_number": "revoked"})
    if cert.collection is not None:
        c = cert.collection
        raise Refused(f"The paper certificate {number} was already collected on {_local(c['at'])} "
                      f"by {c['collected_by']}{' (proxy)' if c['by_proxy'] else ''}.",
                      {"certificate_number": "already collected"})
    shown_type, shown = data["id_type"], normalize_document(data["id_number"])
    if data["by_proxy"]:
        collected_by = data["collected_by"]
        if shown_type == cert.candidate["id_type"] and \
                shown == normalize_document(cert.candidate["id_number"]):
            raise ValidationFailed("That is the holder's own document: record a collection by the "
                                   "holder (by_proxy false), or the proxy's own document.",
                                   {"id_number": "the holder's, not the proxy's"})
    else:
        if shown_type != cert.candidate["id_type"] or \
                shown != normalize_document(cert.candidate["id_number"]):
            raise Refused("The document shown does not match the certificate holder's; the "
                          "holder collects with the ID document they registered with, or a proxy "
                          "collects (by_proxy) with their own.",
                          {"id_number": "does not match the holder"})
        collected_by = cert.name
    stream = qualification_stream(q.qualification_id)
    return [
        NewEvent(stream, "CollectorIdentified", {
            "certificate_number": number, "by_proxy": data["by_proxy"],
            "collected_by": collected_by, "id_type": shown_type, "id_number": shown}),
        NewEvent(stream, "PaperCertificateCollected", {
            "certificate_number": number, "account_id": cert.account_id,
            "collected_by": collected_by, "by_proxy": data["by_proxy"], "staff": staff_id,
            "collected_at": iso(now)}),
    ]


# --- helpers --------------------------------------------------------------------------


def mask_name(name: str) -> str:
    """张三 -> 张*, 王建国 -> 王*国, 欧阳明华 -> 欧**华: enough to recognize, not to copy."""
    name = name.strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _certificate(q: Qualification, number: str) -> Certificate:
    cert = q.certificate(number) if q is not None else None
    if cert is None:
        raise NotFound(f"No certificate {number}.", {"certificate_number": "unknown"})
    return cert


def _local(at: str) -> str:
    return parse_iso(at).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
