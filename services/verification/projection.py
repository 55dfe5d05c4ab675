"""Verification's read model: sessions, cases with their status and queue, enquiries
(疑问核实), the integrity records this service wrote (诚信档案), the eligibility rules loaded
per exam year (报考条件) and the audit trail of staff and authority decisions (who, when,
what, why)."""

from sqlalchemy import JSON, Boolean, Column, Index, Integer, MetaData, String, Table, Text

from services.verification.domain import CASE, ENQUIRY_FIELDS, VOIDED_ENQUIRY
from shared.evolve import Columns
from shared.projection import Projection, Update, Upsert

metadata = MetaData()

sessions = Table(
    "sessions", metadata,
    Column("session_id", String(100), primary_key=True),
    Column("document", JSON, nullable=False),
)

cases = Table(
    "cases", metadata,
    Column("application_id", String(200), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("session_id", String(100), nullable=False),
    Column("registration_point", String(20), nullable=False),
    Column("level", String(4), nullable=False),
    Column("candidate_name", String(100), nullable=False),
    Column("commitment", Boolean, nullable=False),
    Column("status", String(30), nullable=False),
    Column("proof_cause", String(40)),
    Column("reason", String(1000), nullable=False),
    Column("rule", String(100)),
    Column("spot_checked", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("opened_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Index("ix_cases_queue", "session_id", "registration_point", "status"),
    Index("ix_cases_status", "session_id", "status"),
)

enquiries = Table(
    "enquiries", metadata,
    Column("enquiry_id", String(100), primary_key=True),
    Column("application_id", String(200), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("session_id", String(100), nullable=False),
    Column("registration_point", String(20), nullable=False),
    Column("about", String(40), nullable=False),
    Column("text", Text, nullable=False),
    Column("raised_at", String(40), nullable=False),
    Column("status", String(20), nullable=False),  # open | answered | closed
    Column("answer", Text),
    Column("staff", String(100)),
    Column("reopened", Boolean),
    Column("answered_at", String(40)),
    Column("closed_reason", String(500)),
    Index("ix_enquiries_queue", "registration_point", "status", "raised_at"),
    Index("ix_enquiries_candidate", "account_id", "session_id"),
)

# records written by this service; the simulated reference archive stays behind reference.py
integrity_records = Table(
    "integrity_records", metadata,
    Column("record_id", String(100), primary_key=True),
    Column("id_type", String(32), nullable=False),
    Column("id_number", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("source", String(300), nullable=False),
    Column("written_at", String(40), nullable=False),
    Index("ix_integrity_person", "id_type", "id_number"),
)

# every staff or authority decision: who, when, what, why
audit_trail = Table(
    "audit_trail", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("at", String(40), nullable=False),
    Column("session_id", String(100)),
    Column("staff_id", String(100), nullable=False),
    Column("registration_point", String(20)),
    Column("action", String(40), nullable=False),
    Column("application_id", String(200)),
    Column("what", String(300), nullable=False),
    Column("why", Text, nullable=False),
    Index("ix_audit_session", "session_id", "at"),
    Index("ix_audit_staff", "staff_id", "at"),
)

# 报考条件: every version of an exam year's rules the authority loaded (the shipped file,
# version 0, is not in the log and not here)
eligibility_rules = Table(
    "eligibility_rules", metadata,
    Column("exam_year", Integer, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("document", JSON, nullable=False),
    Column("yaml", Text, nullable=False),
    Column("loaded_by", String(100), nullable=False),
    Column("loaded_at", String(40), nullable=False),
    Column("reason", String(500)),
)

# a Case's fields as the cases table keeps them (what ``domain.CASE`` says of each event)
CASE_COLUMNS = Columns({
    "account_id": "account_id", "session_id": "session_id",
    "registration_point": "registration_point", "level": "level",
    "candidate": ("candidate_name", lambda candidate: candidate["name"]),
    "commitment": "commitment", "status": "status", "proof_cause": "proof_cause",
    "reason": "reason", "rule": "rule", "spot_checked": "spot_checked",
})


def audit_entry(event) -> dict | None:
    """The audit-trail row of a staff or authority decision, or None."""
    p, t = event.payload, event.type
    who, point, what, why = None, None, None, None
    if t in ("ManualCheckPassed", "ManualCheckRejected"):
        who, point, why = p["staff"], p["registration_point"], p["reason"]
        what = ("manual check passed" if t == "ManualCheckPassed" else
                "manual check rejected" + (", final (报名终止)" if p["final"] else ""))
        action = "manual_check"
    elif t in ("SpotCheckPassed", "SpotCheckRejected"):
        who, why, action = p["by"], p["reason"], "spot_check"
        what = "spot check passed" if t == "SpotCheckPassed" else "spot check rejected"
    elif t == "SpotCheckDrawn":
        who, action = p["by"], "spot_check_draw"
        what = (f"drew {len(p['selected'])} of {len(p['population'])} passed cases "
                f"(draw {p['draw_id']})")
        why = f"random draw at rate {p['rate']} with seed {p['seed']} (reproducible)"
    elif t == "EnquiryAnswered":
        who, point, why, action = p["staff"], p["registration_point"], p["answer"], "enquiry_answer"
        what = f"answered enquiry {p['enquiry_id']}" + (", case reopened" if p["reopened"] else "")
    elif t == "CaseVoided":
        who, why, action = p["by"], p["reason"], "registration_voided"
        what = "registration voided (报名无效)" + (", integrity record" if p["integrity"] else "")
    elif t == "ScoresVoidedRecorded":
        who, why, action = p["by"], p["reason"], "scores_voided"
        what = "scores voided (成绩无效), integrity record"
    elif t == "EligibilityRulesLoaded":
        who, action = p["by"], "rules_loaded"
        why = p.get("reason") or "（未说明 no reason given）"
        what = f"报考条件 {p['exam_year']} version {p['version']} loaded (digest {p['digest'][:12]})"
    else:
        return None
    return {"at": event.metadata.get("occurred_at"), "session_id": p.get("session_id"),
            "staff_id": who, "registration_point": point, "action": action,
            "application_id": p.get("application_id"), "what": what[:300], "why": why}


class VerificationProjection(Projection):
    name = "verification"
    metadata = metadata
    history = "verification"  # shared/alembic/verification/

    def handle(self, event):
        p, t, at = event.payload, event.type, event.metadata.get("occurred_at")
        entry = audit_entry(event)
        if entry is not None:
            yield Upsert("audit_trail", {"event_id": event.metadata["event_id"]}, entry)
        if t == "SessionRecorded":
            yield Upsert("sessions", {"session_id": p["session_id"]}, {"document": p["document"]})
            return
        if t == "EligibilityRulesLoaded":
            yield Upsert("eligibility_rules", {"exam_year": p["exam_year"], "version": p["version"]},
                         {"digest": p["digest"], "document": p["document"], "yaml": p["yaml"],
                          "loaded_by": p["by"], "loaded_at": p["loaded_at"],
                          "reason": p.get("reason")})
            return
        if t == "IntegrityRecordWritten":
            yield Upsert("integrity_records", {"record_id": p["record_id"]}, {
                k: p[k] for k in ("id_type", "id_number", "reason", "source", "written_at")})
            return
        if not event.stream_id.startswith("case-"):
            return
        yield from self._enquiry(event)
        values = CASE_COLUMNS(CASE.changes(event) or {})
        values.update(version=event.stream_version, updated_at=at)
        key = {"application_id": p["application_id"]}
        if t in CASE.opens:
            yield Upsert("cases", key, {**values, "opened_at": at})
        else:
            yield Update("cases", key, values)

    @staticmethod
    def _enquiry(event):
        """The enquiry row an event changes, with the fields ``domain.ENQUIRY_FIELDS`` says
        (the case's own list is folded from the same table)."""
        p, t = event.payload, event.type
        key = {"enquiry_id": p.get("enquiry_id")}
        if t == "EnquiryRaised":
            yield Upsert("enquiries", key, {
                k: p[k] for k in ("application_id", "account_id", "session_id",
                                  "registration_point")} | ENQUIRY_FIELDS[t](p))
        elif t in ENQUIRY_FIELDS:
            yield Update("enquiries", key, ENQUIRY_FIELDS[t](p))
        elif t == "CaseVoided" and p.get("enquiry_id"):
            yield Update("enquiries", key, VOIDED_ENQUIRY)
