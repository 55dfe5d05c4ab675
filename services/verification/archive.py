"""The integrity archive (诚信档案) as verification answers for it: the reference archive
(``reference.ReferenceData``, the seam where the authority's archive plugs in; SIMULATED by
a CSV file today) together with the records this service wrote itself when a registration
or scores were voided with an integrity record (``IntegrityRecordWritten``, kept in the
read model ``integrity_records``).

Records written here carry no expiry (the ``IntegrityRecordWritten`` contract has no
``expires_on``): they stay live until the archive's keeper says otherwise.
"""

from sqlalchemy import bindparam, select

from services.verification.projection import integrity_records

# built once: every automatic check without a reference record reads it
_LATEST_WRITTEN = (select(integrity_records)
                   .where(integrity_records.c.id_type == bindparam("id_type"),
                          integrity_records.c.id_number == bindparam("id_number"))
                   .order_by(integrity_records.c.written_at.desc()).limit(1))


def written_record(conn, id_type: str, id_number: str) -> dict | None:
    """The latest record this service wrote for the person, shaped like the reference's."""
    row = conn.execute(_LATEST_WRITTEN, {"id_type": id_type,
                                         "id_number": (id_number or "").strip().upper()}).first()
    if row is None:
        return None
    return {"record_id": row.record_id, "reason": row.reason,
            "recorded_on": row.written_at[:10], "expires_on": None}
