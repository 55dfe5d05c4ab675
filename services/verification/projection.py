"""Verification's read model: sessions, and cases with their status and queue."""

from sqlalchemy import JSON, Boolean, Column, Index, Integer, MetaData, String, Table

from shared.migrations import Migration, create_tables
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

# event type -> the case status it leads to (the others leave it as it is)
STATUS_AFTER = {
    "CaseOpened": "auto_check",
    "AutoCheckPassed": "passed",
    "ProofRequested": "awaiting_proof",
    "ProofReceived": "awaiting_manual",
    "ManualCheckPassed": "passed",
    "SpotCheckSelected": "spot_check",
    "EligibilityConfirmed": "confirmed",
}


class VerificationProjection(Projection):
    name = "verification"
    metadata = metadata
    migrations = [Migration("verification.0001_read_model", create_tables(sessions, cases))]

    def handle(self, event):
        p, t, at = event.payload, event.type, event.metadata.get("occurred_at")
        if t == "SessionRecorded":
            yield Upsert("sessions", {"session_id": p["session_id"]}, {"document": p["document"]})
            return
        if not event.stream_id.startswith("case-"):
            return
        key = {"application_id": p["application_id"]}
        if t == "CaseOpened":
            yield Upsert("cases", key, {
                "account_id": p["account_id"], "session_id": p["session_id"],
                "registration_point": p["registration_point"], "level": p["level"],
                "candidate_name": p["candidate"]["name"], "commitment": p["commitment"],
                "status": "auto_check", "proof_cause": None, "reason": "", "rule": None,
                "spot_checked": False, "version": event.stream_version, "opened_at": at,
                "updated_at": at})
            return
        values = {"version": event.stream_version, "updated_at": at}
        if t in STATUS_AFTER:
            values["status"] = STATUS_AFTER[t]
        if t == "ManualCheckRejected":
            values["status"] = "terminated" if p["final"] else "manual_rejected"
        if t == "ProofRequested":
            values["proof_cause"] = p["cause"]
        if t in ("SpotCheckPassed", "SpotCheckRejected"):
            values["spot_checked"] = True
        if t == "CommitmentWithdrawnRecorded":
            values["commitment"] = False
        if p.get("reason"):
            values["reason"] = p["reason"]
        if p.get("rule"):
            values["rule"] = p["rule"]
        yield Update("cases", key, values)
