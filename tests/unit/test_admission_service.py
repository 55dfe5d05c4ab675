"""Admission's entrypoints with their dependencies replaced (nameko's worker_factory): bad
input and forged codes are refused before anything touches the store or another service."""

import pytest
from nameko.testing.services import worker_factory

from services.admission import ticket_code
from services.admission.service import AdmissionService
from shared.errors import Refused, ValidationFailed

KEY = b"unit-key"


def worker():
    return worker_factory(AdmissionService, ticket_key=KEY)


@pytest.mark.parametrize("account_id,session_id", [("", "s"), ("../x", "s"), (42, "s"),
                                                   ("abc", ""), ("abc", "a b"), ("abc", None)])
def test_ticket_requests_need_an_account_and_a_session(account_id, session_id):
    w = worker()
    for method in (w.get_ticket, w.download_ticket):
        with pytest.raises(ValidationFailed):
            method(account_id, session_id)
    w.store.read_engine.connect.assert_not_called()
    w.account_rpc.get_photo.assert_not_called()


def test_check_in_refuses_bad_input_before_the_store():
    w = worker()
    with pytest.raises(ValidationFailed) as exc:
        w.check_in({"staff_id": ""}, {"ticket_number": "1", "id_type": "resident_id",
                                      "id_number": "1", "subject": "L1-LAW"})
    assert "staff_id" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        w.check_in({"staff_id": "s1"}, {"id_type": "resident_id", "id_number": "1",
                                        "subject": "L1-LAW"})
    assert "ticket_number" in exc.value.fields
    with pytest.raises(ValidationFailed):
        w.check_in({"staff_id": "s1"}, "20262916L1000001")
    w.store.execute.assert_not_called()


def test_a_forged_or_mismatched_code_is_refused_before_the_store():
    w = worker()
    good = ticket_code.payload(KEY, "sess", "T-1")
    door = {"id_type": "resident_id", "id_number": "1", "subject": "L1-LAW"}
    with pytest.raises(Refused) as exc:
        w.check_in({"staff_id": "s1"}, {**door, "qr": good.replace("T-1", "T-2")})
    assert exc.value.fields == {"qr": "check value does not match"}
    with pytest.raises(Refused) as exc:
        w.check_in({"staff_id": "s1"}, {**door, "qr": good, "ticket_number": "T-9"})
    assert exc.value.fields == {"qr": "another ticket"}
    w.store.read_engine.connect.assert_not_called()
    w.store.execute.assert_not_called()


def test_room_list_and_counts_validate_their_arguments():
    w = worker()
    with pytest.raises(ValidationFailed):
        w.room_list({"staff_id": "s1"}, "sess", "", "101")
    with pytest.raises(ValidationFailed):
        w.room_list({}, "sess", "V1", "101")
    with pytest.raises(ValidationFailed):
        w.admission_counts("")
    w.store.read_engine.connect.assert_not_called()
