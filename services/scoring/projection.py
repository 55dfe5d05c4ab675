"""Scoring's read model, a pure fold of its log: sessions, tickets and exam-day records,
imports and their score rows, published results per candidate and sitting, qualifications.

The score rows themselves are not copied here: they stay in the log (private
ScoreRowsRecorded events of the import in force, read back for the authority's view and at
publication), so an import of a whole session writes one row of read model, not one per
candidate. Published results are kept per candidate and sitting (``results``).
"""

from sqlalchemy import JSON, Boolean, Column, Index, Integer, MetaData, String, Table

from services.scoring.domain import QUALIFICATION
from shared.evolve import Columns
from shared.projection import Projection, Update, Upsert

metadata = MetaData()

sessions = Table(
    "sessions", metadata,
    Column("session_id", String(100), primary_key=True),
    Column("document", JSON, nullable=False),
    Column("exam_year", Integer, nullable=False),
    Column("current_import", String(100)),
    Column("imported_rows", Integer),
    Column("import_candidates", Integer),
    Column("published_at", String(40)),
)

# Keyed by the application (``<session>.<account>``): two sessions never share one, where
# they once shared ticket numbers. A score file names tickets by number within its session.
tickets = Table(
    "tickets", metadata,
    Column("application_id", String(200), primary_key=True),
    Column("ticket_number", String(100), nullable=False),
    Column("session_id", String(100), nullable=False),
    Column("account_id", String(100), nullable=False),
    Column("level", String(4), nullable=False),
    Column("subjects", JSON, nullable=False),
    Column("exemption", JSON),
    Column("candidate", JSON, nullable=False),
    Column("exam_year", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("reason", String(500)),
    Index("ix_tickets_session", "session_id", "ticket_number"),
    Index("ix_tickets_account", "account_id", "session_id"),
)

attendance = Table(
    "attendance", metadata,
    Column("application_id", String(200), primary_key=True),
    Column("subject", String(100), primary_key=True),
    Column("ticket_number", String(100), nullable=False),
    Column("session_id", String(100), nullable=False),
    Column("status", String(20), nullable=False),  # checked_in | absent
    Index("ix_attendance_session", "session_id", "status"),
)

imports = Table(
    "imports", metadata,
    Column("import_id", String(100), primary_key=True),
    Column("session_id", String(100), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("candidates", Integer, nullable=False),
    Column("absent_rows", Integer, nullable=False),
    Column("missing", Integer, nullable=False),
    Column("imported_by", String(100), nullable=False),
    Column("imported_at", String(40), nullable=False),
    Column("status", String(20), nullable=False),  # current | superseded
    Index("ix_imports_session", "session_id"),
)

results = Table(
    "results", metadata,
    Column("account_id", String(100), primary_key=True),
    Column("session_id", String(100), primary_key=True),
    Column("application_id", String(100), nullable=False),
    Column("ticket_number", String(100)),
    Column("exam_year", Integer),
    Column("level", String(4)),
    Column("subjects", JSON),  # null until published
    Column("passed_count", Integer),
    Column("published_at", String(40)),
    Column("voided", Boolean, nullable=False),
    Column("void_reason", String(600)),
    Index("ix_results_session", "session_id"),
)

qualifications = Table(
    "qualifications", metadata,
    Column("qualification_id", String(120), primary_key=True),
    Column("account_id", String(100), nullable=False),
    Column("level", String(4), nullable=False),
    Column("session_id", String(100), nullable=False),
    Column("exam_year", Integer, nullable=False),
    Column("subjects", JSON, nullable=False),
    Column("status", String(20), nullable=False),  # attained | withdrawn
    Column("attained_at", String(40)),
    Column("withdrawn_reason", String(700)),
    Index("ix_qualifications_account", "account_id", "level"),
    Index("ix_qualifications_session", "session_id"),
)


# a Qualification's fields as the qualifications table keeps them (``domain.QUALIFICATION``)
QUALIFICATION_COLUMNS = Columns({name: name for name in (
    "account_id", "level", "session_id", "exam_year", "subjects", "status", "withdrawn_reason")})


def _ticket_key(p):
    return {"application_id": p["application_id"]}


class ScoringProjection(Projection):
    name = "scoring"
    metadata = metadata
    history = "scoring"  # shared/alembic/scoring/

    def handle(self, event):
        p, t, at = event.payload, event.type, event.metadata.get("occurred_at")
        if t == "SessionRecorded":
            yield Upsert("sessions", {"session_id": p["session_id"]},
                         {"document": p["document"], "exam_year": p["document"]["exam_year"]})
        elif t == "TicketRecorded":
            yield Upsert("tickets", _ticket_key(p), {
                "ticket_number": p["ticket_number"], "session_id": p["session_id"],
                "account_id": p["account_id"], "level": p["level"],
                "subjects": p["subjects"], "exemption": p["exemption"],
                "candidate": p["candidate"], "exam_year": p["exam_year"], "status": "issued",
                "reason": None})
        elif t in ("CheckInRecorded", "AbsenceRecorded"):
            yield Upsert("attendance", {"application_id": p["application_id"],
                                        "subject": p["subject"]},
                         {"ticket_number": p["ticket_number"], "session_id": p["session_id"],
                          "status": "checked_in" if t == "CheckInRecorded" else "absent"})
        elif t in ("ForfeitRecorded", "TicketCancellationRecorded"):
            yield Update("tickets", _ticket_key(p), {
                "status": "forfeited" if t == "ForfeitRecorded" else "cancelled",
                "reason": p["reason"][:500]})
        elif t == "ImportRecorded":
            if p["supersedes"]:
                yield Update("imports", {"import_id": p["supersedes"]}, {"status": "superseded"})
            yield Upsert("imports", {"import_id": p["import_id"]}, {
                "session_id": p["session_id"], "filename": p["filename"], "sha256": p["sha256"],
                "rows": p["rows"], "candidates": p["candidates"],
                "absent_rows": p["absent_rows"], "missing": p["missing"],
                "imported_by": p["imported_by"], "imported_at": p["imported_at"],
                "status": "current"})
            yield Update("sessions", {"session_id": p["session_id"]}, {
                "current_import": p["import_id"], "imported_rows": p["rows"],
                "import_candidates": p["candidates"]})
        elif t == "ScoresPublished":
            yield Update("sessions", {"session_id": p["session_id"]},
                         {"published_at": p["published_at"]})
        elif t == "SittingResulted":
            yield Upsert("results", {"account_id": p["account_id"], "session_id": p["session_id"]}, {
                "application_id": p["application_id"], "ticket_number": p["ticket_number"],
                "exam_year": p["exam_year"], "level": p["level"], "subjects": p["subjects"],
                "passed_count": sum(1 for s in p["subjects"] if s["passed"]),
                "published_at": p["published_at"], "voided": p["voided"] is not None,
                "void_reason": p["voided"]})
        elif t == "ScoresVoided":
            yield Upsert("results", {"account_id": p["account_id"], "session_id": p["session_id"]},
                         {"application_id": p["application_id"], "voided": True,
                          "void_reason": p["reason"]})
        elif t in QUALIFICATION:
            values = QUALIFICATION_COLUMNS(QUALIFICATION.changes(event))
            key = {"qualification_id": p["qualification_id"]}
            if t in QUALIFICATION.opens:
                yield Upsert("qualifications", key, {**values, "attained_at": at})
            else:
                yield Update("qualifications", key, values)
