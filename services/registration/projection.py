"""Registration's read model: sessions and their windows, candidates, applications, the
integrity archive's records (诚信档案, as verification publishes them) and the audit trail of
the authority's decisions taken here (voiding, timetable amendments)."""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from services.registration.domain import APPLICATION
from shared.evolve import Columns
from shared.projection import Delete, Projection, Update, Upsert

metadata = MetaData()

sessions = Table(
    "sessions", metadata,
    Column("session_id", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("exam_year", Integer, nullable=False),
    Column("document", JSON, nullable=False),  # as scheduled; windows below carry amendments
    Column("scheduled_at", String(40), nullable=False),
)

session_windows = Table(
    "session_windows", metadata,
    Column("session_id", String(100), primary_key=True),
    Column("window", String(30), primary_key=True),
    Column("start", String(40), nullable=False),
    Column("end", String(40), nullable=False),
    Column("amended_reason", String(500)),
)

candidates = Table(
    "candidates", metadata,
    Column("account_id", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("completeness", Integer, nullable=False),
    Column("complete", Boolean, nullable=False),
)

applications = Table(
    "applications", metadata,
    Column("application_id", String(200), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("session_id", String(100), nullable=False),
    Column("version", Integer, nullable=False),  # the stream version: deadline effects expect it
    Column("level", String(4), nullable=False),
    Column("subjects", JSON, nullable=False),
    Column("exemption", JSON),
    Column("registration_point", String(20), nullable=False),
    Column("commitment", Boolean, nullable=False),
    Column("status", String(30), nullable=False),
    Column("reason", String(1000), nullable=False),
    Column("proof_cause", String(40)),
    Column("open_enquiry", String(100)),  # 疑问核实 waiting for the point's answer
    Column("submitted_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Index("ix_applications_session_status", "session_id", "status"),
    Index("ix_applications_account", "account_id"),
)

# 诚信档案 as verification publishes it: who may not pledge (services/registration/integrity.py)
integrity_records = Table(
    "integrity_records", metadata,
    Column("record_id", String(100), primary_key=True),
    Column("id_type", String(32), nullable=False),
    Column("id_number", String(64), nullable=False),
    Column("recorded_on", String(10)),  # ISO dates; None: no bound
    Column("expires_on", String(10)),
    Index("ix_registration_integrity_person", "id_type", "id_number"),
)

# the exam authority's decisions taken here: who, when, what, why
audit_trail = Table(
    "audit_trail", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("at", String(40), nullable=False),
    Column("session_id", String(100)),
    Column("staff_id", String(100), nullable=False),
    Column("action", String(40), nullable=False),
    Column("application_id", String(200)),
    Column("what", String(300), nullable=False),
    Column("why", Text, nullable=False),
    Index("ix_registration_audit_session", "session_id", "at"),
    Index("ix_registration_audit_staff", "staff_id", "at"),
)


def audit_entry(event) -> dict | None:
    """The audit-trail row of a decision taken here, or None."""
    p, t = event.payload, event.type
    if t == "RegistrationVoided":
        return {"session_id": p["session_id"], "staff_id": p["by"], "action": "registration_voided",
                "application_id": p["application_id"],
                "what": "registration voided (报名无效)"
                        + (", integrity record requested" if p["integrity"] else ""),
                "why": p["reason"], "at": p["voided_at"]}
    if t == "TimetableAmended":
        # amend_timetable takes no authority argument: who is the caller the request named
        return {"session_id": p["session_id"],
                "staff_id": event.metadata.get("actor") or "(not recorded)",
                "action": "timetable_amended", "application_id": None,
                "what": f"{p['window']} window moved to {p['start']} – {p['end']}",
                "why": p["reason"], "at": event.metadata.get("occurred_at")}
    if t == "DocumentViewed":
        what = {"proof": f"viewed proof file {p['file_name']} ({(p['file_id'] or '')[:12]})",
                "profile": "viewed the candidate's profile",
                "photo": "viewed the candidate's photo"}[p["document"]]
        why = (f"staff of registration point {p['viewer_point']}" if p["viewer_role"] == "staff"
               else "the exam authority")
        return {"session_id": p["session_id"], "staff_id": p["viewer"],
                "action": "document_viewed", "application_id": p["application_id"],
                "what": what[:300], "why": why, "at": p["viewed_at"]}
    return None


def integrity_change(event) -> Upsert | Delete | None:
    """The integrity_records row change of a private integrity event, or None."""
    if event.type == "IntegrityRecordNoted":
        p = event.payload
        return Upsert("integrity_records", {"record_id": p["record_id"]},
                      {k: p[k] for k in ("id_type", "id_number", "recorded_on", "expires_on")})
    if event.type == "IntegrityRecordDropped":
        return Delete("integrity_records", {"record_id": event.payload["record_id"]})
    return None


class RegistrationProjection(Projection):
    name = "registration"
    metadata = metadata
    history = "registration"  # shared/alembic/registration/

    def handle(self, event):
        p, at = event.payload, event.metadata.get("occurred_at")
        t = event.type
        entry = audit_entry(event)
        if entry is not None:
            yield Upsert("audit_trail", {"event_id": event.metadata["event_id"]}, entry)
        change = integrity_change(event)
        if change is not None:
            yield change
            return
        if t == "ExamSessionScheduled":
            d = p["document"]
            yield Upsert("sessions", {"session_id": p["session_id"]}, {
                "name": d["name"], "exam_year": d["exam_year"], "document": d, "scheduled_at": at})
            for name, w in d["windows"].items():
                yield Upsert("session_windows", {"session_id": p["session_id"], "window": name},
                             {"start": w["start"], "end": w["end"], "amended_reason": None})
        elif t == "TimetableAmended":
            yield Update("session_windows", {"session_id": p["session_id"], "window": p["window"]},
                         {"start": p["start"], "end": p["end"], "amended_reason": p["reason"]})
        elif t == "CandidateRegistered":
            yield Upsert("candidates", {"account_id": p["account_id"]},
                         {"name": p["name"], "completeness": 0, "complete": False})
        elif t == "CandidateProfileUpdated":
            yield Update("candidates", {"account_id": p["account_id"]},
                         {"completeness": p["completeness"], "complete": p["completeness"] == 100})
        elif event.stream_id.startswith("application-"):
            yield from application_row(event)


# an Application's fields as the applications table keeps them (``domain.APPLICATION``)
APPLICATION_COLUMNS = Columns({
    **{name: name for name in ("account_id", "session_id", "level", "subjects", "exemption",
                               "registration_point", "status", "reason", "proof_cause",
                               "open_enquiry")},
    "commitment": ("commitment", lambda commitment: commitment is not None),
})


def application_row(event):
    """The application's row change: what the Application's evolve takes from the event, in
    the row's columns; the version and the time with it."""
    values = APPLICATION_COLUMNS(APPLICATION.changes(event) or {})
    values.update(version=event.stream_version, updated_at=event.metadata.get("occurred_at"))
    if event.type in APPLICATION.opens:
        values["submitted_at"] = event.payload["submitted_at"]
        yield Upsert("applications", {"application_id": event.payload["application_id"]}, values)
    else:
        yield Update("applications",
                     {"application_id": event.stream_id.removeprefix("application-")}, values)
