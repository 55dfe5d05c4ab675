"""The integrity archive (诚信档案) as verification publishes it, so that registration can
refuse the pledge (告知承诺) at submission from a read model of its own, without asking.

Verification owns the archive: the reference archive (``reference.IntegrityArchive``,
SIMULATED by a CSV file today) and the records it writes itself after a voiding
(``IntegrityRecordWritten``, published as they are written). The reference part is
published on the stream ``integrity-archive``: ``IntegrityRecordListed`` for a record the
archive has and the stream does not (or has otherwise), ``IntegrityRecordDelisted`` for one
the stream lists and the archive no longer has. ``archive_changes`` is that difference,
pure; ``ArchiveFeed`` appends it once per process, after the adapter has read the archive
(the CSV adapter reads it once, at start; a real archive's adapter would be asked again
on a timer, or page the archive's own change feed).

Replicas: each compares against the stream at the version it read and appends expecting
that version, so two that start together list a record once (the second re-reads and finds
nothing to add).
"""

from collections.abc import Iterable

from nameko.extensions import DependencyProvider

from shared.events import NewEvent

ARCHIVE_STREAM = "integrity-archive"
_FIELDS = ("record_id", "id_type", "id_number", "recorded_on", "expires_on")


def listed(events) -> dict[str, dict]:
    """The records the archive stream lists now: record id -> the listing's payload."""
    records: dict[str, dict] = {}
    for ev in events:
        if ev.type == "IntegrityRecordListed":
            records[ev.payload["record_id"]] = dict(ev.payload)
        elif ev.type == "IntegrityRecordDelisted":
            records.pop(ev.payload["record_id"], None)
    return records


def archive_changes(listed_now: dict[str, dict], records: Iterable[dict]) -> list[NewEvent]:
    """What to append so that the stream lists exactly ``records`` (the reference archive's,
    each with ``_FIELDS``): new and changed ones listed, vanished ones delisted."""
    current = {r["record_id"]: {k: r.get(k) for k in _FIELDS} for r in records}
    events = [NewEvent(ARCHIVE_STREAM, "IntegrityRecordListed", record)
              for rid, record in sorted(current.items()) if listed_now.get(rid) != record]
    events += [NewEvent(ARCHIVE_STREAM, "IntegrityRecordDelisted", {"record_id": rid})
               for rid in sorted(listed_now) if rid not in current]
    return events


class ArchiveFeed(DependencyProvider):
    """Publishes the reference archive into the log once per process (``publish``, from a
    timer until it has succeeded once: the database may not answer at start)."""

    def setup(self):
        self.published = False

    def get_dependency(self, worker_ctx):
        return self

    def publish(self, store, archive) -> int | None:
        """Append the archive's changes (None: done already in this process)."""
        if self.published:
            return None

        def decide(tx):
            history = tx.read_stream(ARCHIVE_STREAM)
            events = archive_changes(listed(history), archive.integrity_records())
            tx.append(events, {ARCHIVE_STREAM: history[-1].stream_version if history else 0})
            return len(events)

        appended = store.execute(decide)
        self.published = True
        return appended
