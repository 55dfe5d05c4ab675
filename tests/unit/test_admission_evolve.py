"""The Ticket's evolve (``domain.TICKET``): for random legal histories the fold and the
tickets row agree on the status and every field they share."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.admission import domain
from services.admission.projection import TICKET_COLUMNS, AdmissionProjection
from shared.events import StoredEvent
from tests.unit.evolve_check import history, rows

IDS = {"application_id": "S1.acc1", "account_id": "acc1", "session_id": "S1"}
TICKET = {**IDS, "ticket_number": "2026000001"}
OPENING = ("ConfirmationRecorded", {
    **IDS, "level": "L1", "subjects": ["A", "B"], "exemption": None, "registration_point": "2916",
    "candidate": {"name": "张三", "id_type": "resident_id", "id_number": "11010519491231002X"},
    "confirmed_at": "2026-05-01T10:00:00+08:00"})
reasons = st.sampled_from(["registration voided: x", "逾期未打印准考证"])


def with_(base, **drawn):
    return lambda ticket: st.fixed_dictionaries(drawn).map(lambda d: {**base, **d})


PAYLOADS = {
    "ConfirmationVoided": with_(IDS, reason=reasons),
    "SeatUnavailable": with_(IDS, reason=reasons),
    "SeatAllocated": with_(TICKET, venue=st.just("V1"), room=st.sampled_from(["101", "102"]),
                           seat=st.integers(1, 30)),
    "AdmissionTicketIssued": with_(TICKET),
    "AdmissionTicketPrinted": with_(TICKET, download=st.integers(1, 5)),
    "ExamForfeited": with_(TICKET, reason=reasons),
    "AdmissionTicketCancelled": with_(TICKET, reason=reasons),
    "CandidateCheckedIn": with_(TICKET, subject=st.sampled_from(["A", "B"]),
                                checked_in_at=st.just("t"), staff=st.just("s1")),
    "CandidateAbsent": with_(TICKET, subject=st.sampled_from(["A", "B"])),
}
RARE = frozenset({"ConfirmationVoided", "AdmissionTicketCancelled"})


def test_every_step_of_the_evolve_has_a_payload_here():
    assert set(domain.TICKET) - domain.TICKET.opens == set(PAYLOADS)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fold_and_row_agree(data):
    events, ticket = history(data, domain.TICKET, domain.ticket_stream(IDS["application_id"]),
                             OPENING, PAYLOADS, rare=RARE)
    [row] = rows(AdmissionProjection(), events)["tickets"].values()
    assert row["name"] == ticket.candidate["name"]
    for name in TICKET_COLUMNS:
        assert row[name] == getattr(ticket, name), name
    assert row["version"] == ticket.version


def test_the_fold_refuses_a_move_the_chart_does_not_have():
    opened = StoredEvent(1, "ticket-S1.acc1", 1, *OPENING[:1], 1, OPENING[1], {})
    printed = StoredEvent(2, "ticket-S1.acc1", 2, "AdmissionTicketPrinted", 1,
                          {**TICKET, "download": 1}, {})
    with pytest.raises(ValueError, match="cannot follow status 'awaiting_seat'"):
        domain.fold_ticket([opened, printed])
