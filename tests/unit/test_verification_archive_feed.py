"""诚信档案 published: verification lists the reference archive's records on the stream
``integrity-archive`` (``services/verification/archive_feed.py``), what is new or changed
listed, what vanished delisted, nothing twice; once per process."""

from types import SimpleNamespace

from services.verification import reference
from services.verification.archive_feed import (
    ARCHIVE_STREAM,
    ArchiveFeed,
    archive_changes,
    listed,
)
from services.verification.reference import REPO_ROOT, CsvReferenceData, IntegrityArchive
from services.verification.schemas import REGISTRY

ZHANG = {"record_id": "CX-2024-0031", "id_type": "resident_id", "id_number": "310110198511200037",
         "recorded_on": "2024-06-15", "expires_on": "2027-06-14"}
CHEN = {"record_id": "CX-2021-0007", "id_type": "resident_id", "id_number": "320102199007080044",
        "recorded_on": "2021-05-10", "expires_on": "2024-05-09"}


def stored(events):
    return [SimpleNamespace(type=e.type, payload=e.payload, stream_version=i + 1)
            for i, e in enumerate(events)]


def test_the_shipped_archive_lists_every_record_live_or_not():
    ref = CsvReferenceData(REPO_ROOT / reference.DEFAULT_EDUCATION_CSV,
                           REPO_ROOT / reference.DEFAULT_INTEGRITY_CSV)
    assert isinstance(ref, IntegrityArchive)
    assert sorted(ref.integrity_records(), key=lambda r: r["record_id"]) == [CHEN, ZHANG]


def test_changes_list_new_and_changed_records_and_delist_vanished_ones():
    first = archive_changes({}, [ZHANG, CHEN])
    assert [(e.stream_id, e.type, e.payload["record_id"]) for e in first] == [
        (ARCHIVE_STREAM, "IntegrityRecordListed", "CX-2021-0007"),
        (ARCHIVE_STREAM, "IntegrityRecordListed", "CX-2024-0031")]
    for e in first:
        REGISTRY.validate(e.type, e.payload)
    history = stored(first)
    assert archive_changes(listed(history), [CHEN, ZHANG]) == []  # the same archive: nothing

    extended = {**ZHANG, "expires_on": None}
    later = archive_changes(listed(history), [extended])
    assert [(e.type, e.payload) for e in later] == [
        ("IntegrityRecordListed", extended),
        ("IntegrityRecordDelisted", {"record_id": "CX-2021-0007"})]
    history = stored(first + later)
    assert listed(history) == {"CX-2024-0031": extended}
    assert archive_changes(listed(history), [extended]) == []
    back = archive_changes(listed(history), [extended, CHEN])  # listed again
    assert [(e.type, e.payload) for e in back] == [("IntegrityRecordListed", CHEN)]


class Store:
    def __init__(self):
        self.events, self.expected = [], []

    def execute(self, decide):
        tx = SimpleNamespace(read_stream=lambda s: stored(self.events) if s == ARCHIVE_STREAM else [],
                             append=lambda evs, expected: (self.events.extend(evs),
                                                           self.expected.append(expected)))
        return decide(tx)


def test_the_feed_publishes_once_per_process_expecting_the_version_it_read():
    store, archive = Store(), SimpleNamespace(integrity_records=lambda: [ZHANG, CHEN])
    feed = ArchiveFeed()
    feed.setup()
    assert feed.publish(store, archive) == 2
    assert feed.publish(store, archive) is None  # done in this process
    assert store.expected == [{ARCHIVE_STREAM: 0}]
    again = ArchiveFeed()  # a restart, or another replica: reads the stream, adds nothing
    again.setup()
    assert again.publish(store, archive) == 0
    assert len(store.events) == 2 and store.expected[-1] == {ARCHIVE_STREAM: 2}
