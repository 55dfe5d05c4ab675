"""诚信档案 at submission: registration refuses the pledge (告知承诺) to a person with a live
record in its own read model of the archive, fed by verification's events
(``services/registration/integrity.py``), and asks nobody (nameko's worker_factory; the read
model in an in-memory SQLite database, filled by the projection from the events the
consumer keeps)."""

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import create_engine, select
from sqlalchemy.pool import StaticPool

from services.registration import domain, integrity
from services.registration.projection import RegistrationProjection, integrity_records
from services.registration.schemas import REGISTRY
from services.registration.service import RegistrationService, on_verification_event
from shared.errors import Refused
from shared.events import StoredEvent
from shared.session import REFERENCE_SESSION_PATH, parse_session

SESSION = parse_session(REFERENCE_SESSION_PATH.read_text("utf-8"))
NOW = datetime(2026, 4, 8, 2, 0, tzinfo=UTC)  # the application window is open
ZHANG = "310110198511200037"
PLEDGE = {"pledge_version": SESSION.pledge_version, "signed_name": "张伟", "agreed": True}


def upstream(type_, **payload):
    return SimpleNamespace(type=type_, payload=payload, metadata={})


def listed(record_id="CX-2024-0031", id_number=ZHANG, recorded_on="2024-06-15",
           expires_on="2027-06-14"):
    return upstream("IntegrityRecordListed", record_id=record_id, id_type="resident_id",
                    id_number=id_number, recorded_on=recorded_on, expires_on=expires_on)


class ReadModel:
    """Registration's read model in memory; ``hear`` runs verification's events through the
    consumer's handler and the projection, as the consumer's transaction does."""

    def __init__(self):
        self.engine = create_engine("sqlite://", poolclass=StaticPool)
        integrity_records.create(self.engine)
        self.conn = self.engine.connect()
        self.projection = RegistrationProjection()
        self.kept = []

    def hear(self, *events):
        tx = Tx(self.conn)
        for e in events:
            assert e.type in on_verification_event.handles  # declared where it is dispatched
            on_verification_event(tx, e)
        stored = [StoredEvent(len(self.kept) + i + 1, e.stream_id, 1, e.type, 1, e.payload,
                              {"event_id": f"e{len(self.kept) + i}"})
                  for i, e in enumerate(tx.appended)]
        self.kept += stored
        self.projection.apply(self.conn, stored)
        self.conn.commit()

    def rows(self, conn=None):
        return sorted(tuple(r) for r in (conn or self.conn).execute(select(integrity_records)))


class Tx:
    def __init__(self, conn):
        self.conn, self.appended = conn, []
        self.read_stream = None  # the worker's store's

    def append(self, events, expected=None):
        for e in events:
            REGISTRY.validate(e.type, e.payload)  # what the real store does first
        first = len(self.appended)
        self.appended += events
        # as the real one: the events versioned, with their metadata
        return [SimpleNamespace(type=e.type, payload=e.payload, stream_id=e.stream_id,
                                stream_version=first + i + 1, metadata={})
                for i, e in enumerate(events)]


def worker(model: ReadModel):
    w = worker_factory(RegistrationService)
    w.clock.now.return_value = NOW
    w._session = lambda session_id, tx=None: SESSION
    tx = Tx(model.conn)
    w.store.execute.side_effect = lambda fn: fn(tx)

    def read_stream(stream_id):
        if stream_id == domain.candidate_stream("acc1"):
            return [SimpleNamespace(type="CandidateRegistered", stream_version=1, payload={
                        "account_id": "acc1", "name": "张伟", "id_type": "resident_id",
                        "id_number": ZHANG}),
                    SimpleNamespace(type="CandidateProfileUpdated", stream_version=2, payload={
                        "account_id": "acc1", "section": "contact", "data": {},
                        "completeness": 100})]
        return [SimpleNamespace(type=e.type, payload=e.payload, stream_version=i + 1,
                                metadata={}) for i, e in enumerate(tx.appended)
                if e.stream_id == stream_id]

    w.store.read_stream.side_effect = tx.read_stream = read_stream
    return w, tx


def submit(w, commitment=PLEDGE):
    return w.submit_application("acc1", {"session_id": SESSION.session_id, "level": "L1",
                                         "registration_point": "2916", "commitment": commitment})


def test_a_live_record_in_the_read_model_refuses_the_pledge_without_asking():
    model = ReadModel()
    model.hear(listed())
    w, tx = worker(model)
    with pytest.raises(Refused) as exc:
        submit(w)
    assert exc.value.fields == {"commitment": "not available: integrity record"}
    assert tx.appended == []
    assert not w.verification_rpc.mock_calls  # no RPC on the hot path
    assert submit(w, commitment=None)["status"] == "submitted"  # without it: applies


@pytest.mark.parametrize("events", [
    [],  # never heard of
    [listed(id_number="310104198805123455")],  # someone else's
    [listed(recorded_on="2021-05-10", expires_on="2024-05-09")],  # expired before today
    [listed(recorded_on="2026-05-01", expires_on=None)],  # not yet recorded today
    [listed(), upstream("IntegrityRecordDelisted", record_id="CX-2024-0031")],  # delisted
], ids=["unknown", "another-person", "expired", "not-yet", "delisted"])
def test_no_live_record_in_the_read_model_lets_the_pledge_through(events):
    model = ReadModel()
    model.hear(*events)
    w, tx = worker(model)
    got = submit(w)
    assert got["status"] == "submitted" and got["commitment"]["signed_name"] == "张伟"
    [submitted] = tx.appended
    assert submitted.type == "ApplicationSubmitted"
    assert not w.verification_rpc.mock_calls


def test_a_record_verification_wrote_is_live_for_good_and_ids_compare_normalised():
    model = ReadModel()
    li = "31011519920315002X"
    model.hear(upstream("IntegrityRecordWritten", record_id="IR-1", id_type="resident_id",
                        id_number=f"{li.lower()} ", reason="虚假承诺",
                        source="RegistrationVoided S.acc1",
                        written_at="2026-04-07T02:00:00+00:00"))
    assert integrity.live(model.conn, "resident_id", li, date(2040, 1, 1))
    assert integrity.live(model.conn, "resident_id", f" {li.lower()}", date(2020, 1, 1))
    assert not integrity.live(model.conn, "passport", li, date(2026, 4, 8))


def test_the_read_model_is_a_fold_of_registrations_own_log():
    """Listed, changed, delisted and listed again: replaying what the consumer kept into an
    empty table gives the same rows (what a rebuild does)."""
    model = ReadModel()
    model.hear(listed(), listed(record_id="R2", id_number="31011519920315002X"))
    model.hear(listed(expires_on="2026-04-07"), upstream("IntegrityRecordDelisted", record_id="R2"))
    model.hear(listed(record_id="R2", id_number="31011519920315002X", expires_on=None))
    assert model.rows() == [("CX-2024-0031", "resident_id", ZHANG, "2024-06-15", "2026-04-07"),
                            ("R2", "resident_id", "31011519920315002X", "2024-06-15", None)]
    assert {e.stream_id for e in model.kept} == {"integrity-CX-2024-0031", "integrity-R2"}
    fresh = create_engine("sqlite://", poolclass=StaticPool)
    integrity_records.create(fresh)
    with fresh.begin() as conn:
        model.projection.apply(conn, model.kept)
    with fresh.connect() as conn:
        assert model.rows(conn) == model.rows()
