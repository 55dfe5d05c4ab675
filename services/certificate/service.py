"""The certificate service's entrypoints (thin): electronic certificates (电子证书) issued on
scoring's ``QualificationAttained`` as signed Verifiable Credentials, downloads for their
holders once the certificates window opens, public verification (查询验证) by number,
token or credential, revocation through a Bitstring Status List, and the paper
certificates' pickup notice (领证通知) and collection (领取纸质证书).

Configuration (nameko config, else environment): ``CERTIFICATE_SIGNING_KEY``,
``CERTIFICATE_ISSUER``, ``CERTIFICATE_ISSUER_NAME``, ``PUBLIC_BASE_URL``,
``CERTIFICATE_NUMBER_FORMAT``, ``CERTIFICATE_DEV_KEY_PATH``: see ``keys``.
"""

import base64
import secrets
import uuid
from datetime import datetime

from nameko.extensions import DependencyProvider
from sqlalchemy import and_, func, select

from services.certificate import credential, domain, keys, statuslist
from services.certificate.pdf import render_certificate
from services.certificate.projection import (
    CertificateProjection,
    certificates,
    downloads,
    sessions,
)
from services.certificate.projection import collections as collections_table
from services.certificate.projection import pickup_notices as notices_table
from services.certificate.schemas import (
    REGISTRY,
    AccountSchema,
    AuthoritySchema,
    CollectionSchema,
    CountsRefSchema,
    DownloadSchema,
    PickupNoticeSchema,
    RevokeSchema,
    SessionRefSchema,
    StatusListSchema,
    VerifySchema,
)
from shared.clock import clock_from_config, iso
from shared.dependencies import EventStoreProvider, RpcProxy, TrackingProvider
from shared.errors import Conflict, NotFound
from shared.events import NewEvent
from shared.eventstore.unit_of_work import ConcurrencyConflict
from shared.service import EventSourcedService, command, config_timer, load, upstream_events
from shared.session import SessionDocument
from shared.tracking import dispatch

PDF = "application/pdf"


def session_stream(session_id):
    return f"session-{session_id}"


def fold_session(events) -> SessionDocument | None:
    return SessionDocument.from_dict(events[-1].payload["document"]) if events else None


# -- consuming registration's events: the exam sessions ------------------------------------

def _session_scheduled(tx, event):
    p = event.payload
    tx.append([NewEvent(session_stream(p["session_id"]), "SessionRecorded",
                        {"session_id": p["session_id"], "document": p["document"]})])


def _timetable_amended(tx, event):
    p = event.payload
    stream = session_stream(p["session_id"])
    doc = fold_session(tx.read_stream(stream))
    if doc is not None:
        amended = doc.amended(p["window"], datetime.fromisoformat(p["start"]),
                              datetime.fromisoformat(p["end"]))
        tx.append([NewEvent(stream, "SessionRecorded", {"session_id": p["session_id"],
                                                        "document": amended.to_dict()})])


on_registration_event = dispatch({"ExamSessionScheduled": _session_scheduled,
                                  "TimetableAmended": _timetable_amended})


# -- consuming scoring's events: qualifications ----------------------------------------------

def make_prepare(config, providers):
    """The issuer and number format (the container's, ``IssuerProvider``), the clock and a
    fresh token, before the consumer's transaction opens."""
    issuer, number_format = providers.signer.issuer, providers.signer.number_format
    clock = clock_from_config(config)

    def prepare(event):
        return {"now": clock.now(), "issuer": issuer, "number_format": number_format,
                "token": secrets.token_urlsafe(24)}  # 192 bits: unguessable

    return prepare


def issue_certificate(tx, attained: dict, prepared: dict):
    """电子证书制发: read, decide, sign, append (the consumer's transaction)."""
    issuer = prepared["issuer"]
    stream = domain.qualification_stream(attained["qualification_id"])
    q = domain.fold(tx.read_stream(stream))
    last_seq = tx.stream_version(domain.NUMBERS_STREAM)

    def taken(number):
        return tx.conn.execute(select(certificates.c.certificate_number).where(
            certificates.c.certificate_number == number)).first() is not None

    def credential_for(facts):
        return issuer.sign(credential.certificate_claims(issuer, facts)), issuer.kid

    events = domain.issue(q, attained, last_seq=last_seq, number_format=prepared["number_format"],
                          taken=taken, token=prepared["token"], now=prepared["now"],
                          credential_for=credential_for)
    if events:
        tx.append(events, {stream: q.version if q else 0, domain.NUMBERS_STREAM: last_seq})


def _qualification_withdrawn(tx, event, prepared):
    p = event.payload
    stream = domain.qualification_stream(p["qualification_id"])
    q = domain.fold(tx.read_stream(stream))
    events = domain.withdraw(q, p["reason"], prepared["now"])
    if events:
        tx.append(events, {stream: q.version})


on_scoring_event = dispatch({
    "QualificationAttained": lambda tx, event, prepared: issue_certificate(tx, event.payload,
                                                                           prepared),
    "QualificationWithdrawn": _qualification_withdrawn,
}, prepared=True)


class IssuerProvider(DependencyProvider):
    """The issuer (key, id, URLs) and the number format; a bad key stops the start with a
    message that says what to fix."""

    def setup(self):
        self.issuer = keys.issuer_from_config(self.container.config)
        self.number_format = keys.number_format_from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.issuer


class CertificateService(EventSourcedService):
    name = "certificate"
    store = EventStoreProvider(REGISTRY, projections=[CertificateProjection()])
    tracking = TrackingProvider({"registration": on_registration_event,
                                 "scoring": (make_prepare, on_scoring_event)})
    registration_rpc = RpcProxy("registration")
    scoring_rpc = RpcProxy("scoring")
    signer = IssuerProvider()

    # -- consumers -----------------------------------------------------------------------

    @upstream_events("registration")
    def on_registration(self, message):
        self.tracking.receive("registration", message, self.registration_rpc.events_after)

    @upstream_events("scoring")
    def on_scoring(self, message):
        self.tracking.receive("scoring", message, self.scoring_rpc.events_after)

    @config_timer()
    def catch_up(self):
        self.tracking.catch_up({"registration": self.registration_rpc.events_after,
                                "scoring": self.scoring_rpc.events_after})

    # -- public: the issuer and verification (no login) --------------------------------

    @command
    def issuer(self):
        """The issuer's id and public keys (JWKS): what verifiers check signatures with."""
        return {"issuer": self.signer.issuer_id, "name": self.signer.name,
                "jwks": self.signer.jwks()}

    @command
    def status_list(self, list_no=0):
        """Revocation status list ``list_no`` as a signed BitstringStatusListCredential."""
        n = load(StatusListSchema(), {"list_no": list_no})["list_no"]
        with self.store.read_engine.connect() as c:
            top = c.execute(select(func.max(certificates.c.status_index))).scalar()
        if n > (top or 0) // statuslist.LIST_SIZE:
            raise NotFound(f"No status list {n}.", {"list_no": "unknown"})
        bits = self._bits(n)
        claims = credential.status_list_claims(self.signer, n, bits, self.clock.now())
        return {"id": self.signer.status_list_url(n), "list": n,
                "content_type": credential.MEDIA_TYPE, "credential": self.signer.sign(claims)}

    @command
    def verify(self, data):
        """证书查询验证: by certificate number, verification token or the credential itself."""
        cmd = load(VerifySchema(), data)
        if cmd.get("credential"):
            return self._verify_credential(cmd["credential"])
        col = certificates.c.certificate_number if cmd.get("certificate_number") else certificates.c.token
        with self.store.read_engine.connect() as c:
            row = c.execute(select(certificates).where(
                col == (cmd.get("certificate_number") or cmd.get("token")))).first()
        if row is None:
            return {"result": "not_ours",
                    "detail": "no certificate with this number or link was issued here"}
        return self._verdict(row)

    def _verify_credential(self, jwt):
        ins = credential.inspect(jwt, self.signer)
        if ins.result != "ok":
            return {"result": ins.result, "why": ins.why, "detail": ins.detail} \
                if ins.result == "invalid" else {"result": ins.result, "detail": ins.detail}
        number = ins.claims["credentialSubject"]["certificateNumber"]
        with self.store.read_engine.connect() as c:
            row = c.execute(select(certificates).where(
                certificates.c.certificate_number == number)).first()
        stored = None
        if row is not None:
            q = domain.fold(self.store.read_stream(domain.qualification_stream(row.qualification_id)))
            stored = q.certificate(number)
        if stored is None or stored.credential != jwt.strip():
            # signed with our key, yet not what the register holds for that number
            return {"result": "invalid", "why": "tampered",
                    "detail": "the credential does not match the certificate on record"}
        return self._verdict(row)

    def _verdict(self, row):
        # The row's status is its bit in the status list (status_list is built from the same
        # column). Deciding from the row alone keeps the verdict and the reason from one read:
        # a second read could see a revocation the first did not.
        revoked = row.status == "revoked"
        out = {"result": "revoked" if revoked else "valid",
               "certificate_number": row.certificate_number,
               "name": domain.mask_name(row.name), "level": row.level,
               "level_name": domain.level_title(row.level),
               "qualification": domain.QUALIFICATION_NAME, "exam_year": row.exam_year,
               "issued_at": row.issued_at, "issuer": self.signer.issuer_id}
        if revoked:
            out.update(revoked_at=row.revoked_at, reason=row.revoke_reason)
        return out

    def _bits(self, list_no: int) -> bytes:
        lo = list_no * statuslist.LIST_SIZE
        with self.store.read_engine.connect() as c:
            revoked = c.execute(select(certificates.c.status_index).where(
                certificates.c.status == "revoked", certificates.c.status_index >= lo,
                certificates.c.status_index < lo + statuslist.LIST_SIZE)).scalars().all()
        return statuslist.bitstring(i - lo for i in revoked)

    # -- candidates ----------------------------------------------------------------------

    @command
    def my_certificates(self, account_id):
        who = load(AccountSchema(), {"account_id": account_id})
        with self.store.read_engine.connect() as c:
            rows = c.execute(select(certificates).where(
                certificates.c.account_id == who["account_id"]).order_by(
                certificates.c.issued_at)).all()
            docs = self._documents(c, {r.session_id for r in rows})
        now = self.clock.now()
        out = []
        for r in rows:
            window = docs[r.session_id].window("certificates") if r.session_id in docs else None
            out.append({
                "certificate_number": r.certificate_number, "qualification_id": r.qualification_id,
                "session_id": r.session_id, "exam_year": r.exam_year, "level": r.level,
                "level_name": domain.level_title(r.level), "name": r.name,
                "issued_at": r.issued_at, "status": r.status, "revoked_at": r.revoked_at,
                "revoke_reason": r.revoke_reason, "paper_collected": r.collected,
                "downloads_open_at": iso(window.start) if window else None,
                "downloadable": bool(window and now >= window.start and r.status == "valid"),
                "verify_url": self.signer.verify_url(r.token)})
        return out

    @command
    def download_certificate(self, account_id, certificate_number, format):
        cmd = load(DownloadSchema(), {"account_id": account_id,
                                      "certificate_number": certificate_number, "format": format})
        row = self._row(cmd["certificate_number"])
        stream = domain.qualification_stream(row.qualification_id)
        for _ in range(5):
            q = domain.fold(self.store.read_stream(stream))
            window = self._window(row.session_id)
            events = domain.download(q, cmd["certificate_number"], cmd["account_id"],
                                     cmd["format"], self.clock.now(), window)
            cert = q.certificate(cmd["certificate_number"])
            document = self._document(cert, cmd["format"])  # rendered outside any transaction
            try:
                self.store.append(events, {stream: q.version})
            except ConcurrencyConflict:
                continue  # revoked or downloaded meanwhile: decide again
            return document
        raise Conflict("The certificate changed while it was being prepared; please try again.",
                       {"certificate_number": cmd["certificate_number"]})

    def _document(self, cert: domain.Certificate, fmt: str) -> dict:
        if fmt == "vc":
            data, filename, ctype = cert.credential.encode(), f"{cert.certificate_number}.jwt", \
                credential.MEDIA_TYPE
        else:
            data = render_certificate({
                "certificate_number": cert.certificate_number, "name": cert.name,
                "id_type": cert.candidate["id_type"], "id_number": cert.candidate["id_number"],
                "level": cert.level, "exam_year": cert.exam_year, "issued_at": cert.issued_at,
            }, self.signer.verify_url(cert.token), self.signer.name)
            filename, ctype = f"{cert.certificate_number}.pdf", PDF
        return {"filename": filename, "content_type": ctype,
                "data": base64.b64encode(data).decode("ascii")}

    # -- the exam authority --------------------------------------------------------------

    @command
    def revoke(self, authority, data):
        """证书撤销: the certificate's bit in the status list is set, for good."""
        self._authority(authority)
        cmd = load(RevokeSchema(), data)
        row = self._row(cmd["certificate_number"])
        stream = domain.qualification_stream(row.qualification_id)
        now = self.clock.now()

        def decide(tx):
            q = domain.fold(tx.read_stream(stream))
            tx.append(domain.revoke(q, cmd["certificate_number"], cmd["reason"], now),
                      {stream: q.version})

        self.store.execute(decide)
        return self.verify({"certificate_number": cmd["certificate_number"]})

    @command
    def notice_paper_pickup(self, authority, data):
        """领证通知: publish where and when a session's paper certificates are collected."""
        self._authority(authority)
        cmd = load(PickupNoticeSchema(), data)
        cmd["text"] = cmd["text"].strip()
        notice_id = uuid.uuid4().hex

        def decide(tx):
            known = tx.conn.execute(select(sessions.c.session_id).where(
                sessions.c.session_id == cmd["session_id"])).first() is not None
            tx.append(domain.notice_pickup(known, cmd, notice_id))

        self.store.execute(decide)
        return next(n for n in self.pickup_notices(cmd["session_id"]) if n["notice_id"] == notice_id)

    @command
    def pickup_notices(self, session_id):
        ref = load(SessionRefSchema(), {"session_id": session_id})
        with self.store.read_engine.connect() as c:
            rows = c.execute(select(notices_table).where(
                notices_table.c.session_id == ref["session_id"]).order_by(
                notices_table.c.start, notices_table.c.notice_id)).all()
        return [{"notice_id": r.notice_id, "session_id": r.session_id, "place": r.place,
                 "start": r.start, "end": r.end, "text": r.text, "noticed_at": r.noticed_at}
                for r in rows]

    @command
    def record_collection(self, authority, data):
        """领取纸质证书, at the counter: the collector's document is checked against the
        holder's (or a proxy's name and document recorded); once per certificate."""
        who = self._authority(authority)
        cmd = load(CollectionSchema(), data)
        row = self._row(cmd["certificate_number"])
        stream = domain.qualification_stream(row.qualification_id)
        notices = self.pickup_notices(row.session_id)
        now = self.clock.now()

        def decide(tx):
            q = domain.fold(tx.read_stream(stream))
            events = domain.collect(q, cmd, who["staff_id"], now, notices)
            tx.append(events, {stream: q.version})
            return events[-1].payload

        got = self.store.execute(decide)
        return {k: got[k] for k in ("certificate_number", "collected_by", "by_proxy", "staff",
                                    "collected_at")}

    @command
    def collections(self, authority, session_id):
        self._authority(authority)
        ref = load(SessionRefSchema(), {"session_id": session_id})
        with self.store.read_engine.connect() as c:
            rows = c.execute(select(collections_table, certificates.c.name, certificates.c.level).join(
                certificates, certificates.c.certificate_number == collections_table.c.certificate_number
            ).where(certificates.c.session_id == ref["session_id"]).order_by(
                collections_table.c.collected_at)).all()
        return [{"certificate_number": r.certificate_number, "holder": r.name, "level": r.level,
                 "collected_by": r.collected_by, "by_proxy": r.by_proxy, "staff": r.staff,
                 "collected_at": r.collected_at} for r in rows]

    # -- dashboard -----------------------------------------------------------------------

    @command
    def certificate_counts(self, session_id, account_ids=None):
        """A session's certificates; of every candidate, or only of ``account_ids`` (a
        demo tells its own from the others')."""
        ref = load(CountsRefSchema(), {"session_id": session_id, "account_ids": account_ids})
        in_session = certificates.c.session_id == ref["session_id"]
        if ref["account_ids"] is not None:
            in_session = in_session & certificates.c.account_id.in_(ref["account_ids"])
        with self.store.read_engine.connect() as c:
            issued = c.execute(select(func.count()).where(in_session)).scalar()
            revoked = c.execute(select(func.count()).where(
                in_session, certificates.c.status == "revoked")).scalar()
            collected = c.execute(select(func.count()).where(
                in_session, certificates.c.collected.is_(True))).scalar()
            downloaded = c.execute(select(func.count(func.distinct(downloads.c.certificate_number)))
                                   .select_from(downloads.join(certificates, and_(
                                       certificates.c.certificate_number
                                       == downloads.c.certificate_number, in_session)))).scalar()
        return {"issued": issued, "downloaded": downloaded, "collected": collected,
                "revoked": revoked}

    def business_counts(self):
        with self.store.read_engine.connect() as c:
            return {
                "certificates": dict(c.execute(select(certificates.c.status, func.count())
                                               .group_by(certificates.c.status)).all()),
                "certificate_downloads": dict(c.execute(select(downloads.c.format, func.count())
                                                        .group_by(downloads.c.format)).all()),
                "paper_certificates_collected": c.execute(
                    select(func.count()).select_from(collections_table)).scalar(),
            }

    # -- helpers -------------------------------------------------------------------------

    def _authority(self, authority):
        who = load(AuthoritySchema(), authority)
        if self.store.context.actor is None:
            self.store.context.actor = f"authority:{who['staff_id']}"
        return who

    def _row(self, number):
        with self.store.read_engine.connect() as c:
            row = c.execute(select(certificates).where(
                certificates.c.certificate_number == number)).first()
        if row is None:
            raise NotFound(f"No certificate {number}.", {"certificate_number": "unknown"})
        return row

    @staticmethod
    def _documents(conn, session_ids) -> dict[str, SessionDocument]:
        if not session_ids:
            return {}
        return {sid: SessionDocument.from_dict(doc) for sid, doc in conn.execute(
            select(sessions.c.session_id, sessions.c.document).where(
                sessions.c.session_id.in_(sorted(session_ids))))}

    def _window(self, session_id):
        with self.store.read_engine.connect() as c:
            docs = self._documents(c, {session_id})
        return docs[session_id].window("certificates") if session_id in docs else None
