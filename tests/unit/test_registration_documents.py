"""Staff and the authority looking at a candidate's documents (registration's get_proof,
candidate_file, candidate_photo) with the store and the account service replaced (nameko's
worker_factory): who may look, that every look is recorded (DocumentViewed) and that
nothing is read or recorded for anyone else."""

import base64
import hashlib
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from nameko.testing.services import worker_factory

from services.registration import domain
from services.registration.projection import audit_entry
from services.registration.schemas import REGISTRY
from services.registration.service import RegistrationService
from shared.errors import NotFound, Unauthorized, ValidationFailed

APP = "S2026.acc1"
PDF = b"%PDF-1.4\nproof\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0 a photo of a certificate"
PDF_ID, JPEG_ID = (hashlib.sha256(b).hexdigest() for b in (PDF, JPEG))
NOW = datetime(2026, 4, 8, 2, 0, tzinfo=UTC)
STAFF = {"staff_id": "st1", "role": "staff", "registration_point": "2916"}
OTHER_STAFF = {"staff_id": "st2", "role": "staff", "registration_point": "3001"}
AUTHORITY = {"staff_id": "au1", "role": "authority"}


def ev(version, type_, **payload):
    return SimpleNamespace(type=type_, payload=payload, stream_version=version,
                           metadata={"occurred_at": "2026-04-07T03:00:00+00:00"})


def history():
    ids = {"application_id": APP, "account_id": "acc1", "session_id": "S2026"}
    return [
        ev(1, "ApplicationSubmitted", **ids, level="L1", subjects=["A"], exemption=None,
           registration_point="2916", commitment=None,
           candidate={"name": "王建国", "id_type": "resident_id", "id_number": "310104198805123455",
                      "education": [], "degrees": [], "work": []},
           submitted_at="2026-04-07T02:40:00+00:00"),
        ev(2, "VerificationRecorded", application_id=APP, outcome="ProofRequested",
           reason="no commitment", rule=None, cause="no_commitment", at=None),
        ev(3, "ProofSubmitted", **ids, submitted_at="2026-04-07T03:00:00+00:00", files=[
            {"sha256": PDF_ID, "name": "工作证明.pdf", "content_type": "application/pdf",
             "size": len(PDF)},
            {"sha256": JPEG_ID, "name": "学历.jpg", "content_type": "image/jpeg",
             "size": len(JPEG)}]),
    ]


class FakeTx:
    def __init__(self):
        self.appended = []

    def append(self, events, expected=None):
        for e in events:
            REGISTRY.validate(e.type, e.payload)  # what the real store does first
        self.appended += events


def worker():
    w = worker_factory(RegistrationService)
    w.clock.now.return_value = NOW
    tx = FakeTx()
    w.store.execute.side_effect = lambda fn: fn(tx)
    blobs = {PDF_ID: PDF, JPEG_ID: JPEG}
    w.store.get_blob.side_effect = lambda sha: (
        {"content_type": "application/pdf" if blobs[sha] is PDF else "image/jpeg",
         "data": blobs[sha]} if sha in blobs else None)

    def read_stream(stream_id):
        if stream_id == domain.application_stream(APP):
            return history()
        if stream_id == domain.candidate_stream("acc1"):
            return [ev(1, "CandidateRegistered", account_id="acc1", name="王建国",
                       id_type="resident_id", id_number="310104198805123455"),
                    ev(2, "CandidateProfileUpdated", account_id="acc1", section="contact",
                       data={"email": "w@example.com"}, completeness=100)]
        return []

    w.store.read_stream.side_effect = read_stream
    return w, tx


def test_staff_of_the_point_see_a_proof_file_and_the_look_is_recorded():
    w, tx = worker()
    got = w.get_proof(STAFF, APP, PDF_ID)
    assert got["filename"] == "工作证明.pdf" and got["content_type"] == "application/pdf"
    assert base64.b64decode(got["data"]) == PDF
    [viewed] = tx.appended
    assert viewed.type == "DocumentViewed" and viewed.stream_id == f"views-{APP}"
    assert viewed.payload == {
        "application_id": APP, "session_id": "S2026", "account_id": "acc1",
        "registration_point": "2916", "viewer": "st1", "viewer_role": "staff",
        "viewer_point": "2916", "document": "proof", "file_id": PDF_ID,
        "file_name": "工作证明.pdf", "viewed_at": "2026-04-08T02:00:00+00:00"}
    row = audit_entry(SimpleNamespace(type=viewed.type, payload=viewed.payload, metadata={}))
    assert row["staff_id"] == "st1" and row["action"] == "document_viewed"
    assert row["application_id"] == APP and "工作证明.pdf" in row["what"]
    assert row["at"] == "2026-04-08T02:00:00+00:00"


def test_the_authority_sees_proof_but_not_the_profile_or_photo():
    w, tx = worker()
    assert base64.b64decode(w.get_proof(AUTHORITY, APP, JPEG_ID)["data"]) == JPEG
    assert tx.appended[0].payload["viewer_role"] == "authority"
    for method in (w.candidate_file, w.candidate_photo):
        with pytest.raises(Unauthorized):
            method(AUTHORITY, APP)
    assert len(tx.appended) == 1
    w.account_rpc.get_photo.assert_not_called()


def test_staff_of_another_point_see_nothing_and_nothing_is_recorded():
    w, tx = worker()
    with pytest.raises(Unauthorized) as exc:
        w.get_proof(OTHER_STAFF, APP, PDF_ID)
    assert exc.value.error_code == "wrong_point"
    for method in (w.candidate_file, w.candidate_photo):
        with pytest.raises(Unauthorized):
            method(OTHER_STAFF, APP)
    assert tx.appended == []
    w.store.get_blob.assert_not_called()
    w.account_rpc.get_photo.assert_not_called()


def test_a_file_not_of_this_application_is_not_found():
    w, tx = worker()
    stranger = hashlib.sha256(b"someone else's proof").hexdigest()
    with pytest.raises(NotFound):
        w.get_proof(STAFF, APP, stranger)
    with pytest.raises(NotFound):
        w.get_proof(STAFF, "S2026.nobody", PDF_ID)
    assert tx.appended == []


@pytest.mark.parametrize("viewer,app_id,file_id", [
    ({"staff_id": "st1", "role": "staff"}, APP, PDF_ID),  # staff without a point
    ({"staff_id": "st1", "role": "candidate"}, APP, PDF_ID),
    ({"role": "authority"}, APP, PDF_ID),
    ("st1", APP, PDF_ID),
    (STAFF, "", PDF_ID),
    (STAFF, APP, "../../etc/passwd"),
    (STAFF, APP, PDF_ID.upper()),
])
def test_bad_input_is_refused_before_the_store(viewer, app_id, file_id):
    w, tx = worker()
    with pytest.raises(ValidationFailed):
        w.get_proof(viewer, app_id, file_id)
    w.store.read_stream.assert_not_called()
    assert tx.appended == []


def test_the_case_file_has_the_profile_and_the_proof_files_and_is_recorded():
    w, tx = worker()
    got = w.candidate_file(STAFF, APP)
    assert got["application"]["application_id"] == APP
    assert got["profile"]["sections"]["contact"] == {"email": "w@example.com"}
    assert got["at_application"]["name"] == "王建国"
    assert [(f["file_id"], f["name"], f["content_type"], f["size"], f["round"])
            for f in got["proof_files"]] == [
        (PDF_ID, "工作证明.pdf", "application/pdf", len(PDF), 1),
        (JPEG_ID, "学历.jpg", "image/jpeg", len(JPEG), 1)]
    assert got["proof_files"][0]["uploaded_at"] == "2026-04-07T03:00:00+00:00"
    assert [e.payload["document"] for e in tx.appended] == ["profile"]


def test_the_photo_comes_from_the_account_service_and_is_recorded():
    w, tx = worker()
    w.account_rpc.get_photo.return_value = {"content_type": "image/jpeg", "jpeg_base64": "/9j/"}
    assert w.candidate_photo(STAFF, APP)["jpeg_base64"] == "/9j/"
    w.account_rpc.get_photo.assert_called_once_with("acc1")
    assert [e.payload["document"] for e in tx.appended] == ["photo"]
