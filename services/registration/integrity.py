"""Who may not pledge (告知承诺): registration's own read model of the integrity archive
(诚信档案), fed by the events of verification, which owns the archive.

Verification publishes the reference archive's records (``IntegrityRecordListed``,
``IntegrityRecordDelisted``) and those it writes after a voiding (``IntegrityRecordWritten``).
The consumer keeps each as a private event in registration's own log
(``IntegrityRecordNoted`` / ``IntegrityRecordDropped`` on ``integrity-<record id>``), so the
table ``integrity_records`` is a fold of this log like the rest of the read model.

What a submission can count on: the pledge is refused once registration has applied the
record; until then (verification learned of it a relay cycle and a delivery ago, or a
catch-up interval if the message was lost) the pledge is accepted, and verification's auto
check, which reads the archive itself when it opens the case, fails it on the same record
(rule ``integrity.live-record``): the candidate is asked for proof and goes to the manual
check, as if they had not pledged. So a late read model changes when the candidate hears,
never where the application ends up. The other way round (a record delisted, registration
not caught up) the pledge is refused a moment too long, and the candidate applies without
it. Liveness by date is computed here as verification computes it, on the same clock.
"""

from datetime import date

from sqlalchemy import bindparam, or_, select

from services.registration.projection import integrity_records as t
from shared.events import NewEvent

#: verification's events this read model is fed by (keys of the consumer's dispatch table)
UPSTREAM_TYPES = ("IntegrityRecordListed", "IntegrityRecordDelisted", "IntegrityRecordWritten")


def record_stream(record_id: str) -> str:
    return f"integrity-{record_id}"


def normalised(id_number: str) -> str:
    return (id_number or "").strip().upper()


def record_events(upstream) -> list[NewEvent]:
    """What registration keeps of one of verification's archive events."""
    p = upstream.payload
    stream = record_stream(p["record_id"])
    if upstream.type == "IntegrityRecordDelisted":
        return [NewEvent(stream, "IntegrityRecordDropped", {"record_id": p["record_id"]})]
    if upstream.type == "IntegrityRecordListed":
        bounds = {"recorded_on": p["recorded_on"], "expires_on": p["expires_on"]}
    else:  # written by verification: live from then on, as its own check counts it
        bounds = {"recorded_on": None, "expires_on": None}
    return [NewEvent(stream, "IntegrityRecordNoted", {
        "record_id": p["record_id"], "id_type": p["id_type"],
        "id_number": normalised(p["id_number"]), **bounds})]


# built once: the submission's one read of this table
_LIVE = (select(t.c.record_id)
         .where(t.c.id_type == bindparam("id_type"), t.c.id_number == bindparam("id_number"),
                or_(t.c.recorded_on.is_(None), t.c.recorded_on <= bindparam("on")),
                or_(t.c.expires_on.is_(None), t.c.expires_on >= bindparam("on")))
         .limit(1))


def live(conn, id_type: str, id_number: str, on: date) -> bool:
    """Whether the person has a record live on ``on`` (as far as registration has heard)."""
    return conn.execute(_LIVE, {"id_type": id_type, "id_number": normalised(id_number),
                                "on": on.isoformat()}).first() is not None
