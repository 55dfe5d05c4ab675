"""Ticket numbers are unique across every session (DESIGN §5): one sequence for every
session admission seats, and a session format that ends with it, checked at load."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.admission import domain
from shared.errors import Refused, ValidationFailed
from shared.events import StoredEvent
from shared.session import (
    REFERENCE_SESSION_PATH,
    SEQ_DIGITS,
    SessionDocument,
    parse_session,
    reference_session,
    unique_ticket_format,
)
from tests.unit.test_admission_domain import Log, confirmed

DOC = reference_session()
REFERENCE_TEXT = REFERENCE_SESSION_PATH.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["{year}{point}{level}{seq:06d}", "{seq:06d}", "KW{year}-{seq:010d}",
                                 "{level}{point}{year}{seq:06d}"])
def test_a_format_ending_with_the_padded_sequence_is_accepted(fmt):
    assert unique_ticket_format(fmt) is None
    doc = parse_session(REFERENCE_TEXT.replace("{year}{point}{level}{seq:06d}", fmt))
    assert doc.ticket_number_format == fmt


@pytest.mark.parametrize("fmt", ["{year}{point}{level}{seq}", "{seq:05d}", "{seq:06d}{point}",
                                 "{seq:06d}-", "{seq:6d}", "{seq:06x}", "{seq!s:>06}",
                                 "{seq:06d}{seq:06d}"])
def test_a_format_that_could_repeat_a_number_is_refused_at_load(fmt):
    with pytest.raises(ValidationFailed) as caught:
        parse_session(REFERENCE_TEXT.replace("{year}{point}{level}{seq:06d}", fmt))
    assert f"{{seq:0{SEQ_DIGITS}d}}" in caught.value.fields["ticket_number_format"]


def test_a_document_recorded_before_the_rule_still_reads():
    """Sessions recorded in older logs (``from_dict``: every service's copy) keep working."""
    d = DOC.to_dict()
    d["ticket_number_format"] = "{year}{point}{level}{seq}"
    assert SessionDocument.from_dict(d).ticket_number_format == "{year}{point}{level}{seq}"


def allocate(log, doc, pending):
    """The plan and all its tickets, as the service runs them: the SeatAllocated events."""
    log.add(domain.make_plan(doc, pending, log.next_seq()).events)
    plan = domain.fold_plan(log.streams[domain.plan_stream(doc.session_id)])
    events = log.add(domain.issue_batch(doc, plan, {a: log.ticket(a) for a in plan.order},
                                        plan.total))
    return [e.payload["ticket_number"] for e in events if e.type == "SeatAllocated"]


def two_sessions():
    """The reference session and a demo of the same exam year, seated one after the other
    on one admission log."""
    log = Log()
    other = replace(DOC, session_id="2026-demo")
    numbers = {}
    for doc, n in ((DOC, 5), (other, 4)):
        for i in range(n):
            c = dict(confirmed(i), session_id=doc.session_id,
                     application_id=f"{doc.session_id}.acct{i:05d}")
            log.add(domain.record_confirmation(c))
        pending = [log.ticket(f"{doc.session_id}.acct{i:05d}") for i in range(n)]
        numbers[doc.session_id] = allocate(log, doc, pending)
    return log, numbers


def test_two_sessions_of_one_exam_year_never_share_a_number():
    log, numbers = two_sessions()
    assert numbers[DOC.session_id] == [f"20262916L1{i:06d}" for i in range(1, 6)]
    assert numbers["2026-demo"] == [f"20262916L1{i:06d}" for i in range(6, 10)]
    assert log.next_seq() == 10
    # a late seat in the first session takes the next number after the second's
    late = domain.pending_ticket(confirmed(7))
    log.add(domain.record_confirmation(confirmed(7)))
    events = domain.seat_late(DOC, late, log.seating(), False, [], log.next_seq())
    assert events[0].payload == {"session_id": DOC.session_id, "first": 10, "count": 1}
    assert events[2].payload["ticket_number"] == "20262916L1000010"


def stored(type_, **payload):
    return StoredEvent(0, "s", 1, type_, 1, payload, {})


def test_a_log_from_before_the_shared_sequence_starts_it_above_every_number_it_used():
    events = [stored("SeatingPlanned", next_seq=31), stored("SeatAdded", seq=40),
              stored("SeatingPlanned", next_seq=12), stored("SeatPlanMade")]
    assert domain.legacy_next_seq(events) == 41
    assert domain.legacy_next_seq([]) == 1


def test_the_sequence_used_up_is_refused():
    assert domain.reserve_numbers("s", domain.MAX_SEQ, 1).payload["first"] == domain.MAX_SEQ
    with pytest.raises(Refused) as caught:
        domain.reserve_numbers("s", domain.MAX_SEQ, 2)
    assert caught.value.fields == {"ticket_number": "sequence used up"}


def test_a_plan_of_a_legacy_log_issues_from_one():
    """A plan made before the sequence was shared (no ``first_seq``) issues what it planned."""
    plan = domain.fold_plan([StoredEvent(0, "plan-x", 1, "SeatPlanMade", 1, {
        "session_id": "x", "order": ["a"], "unseated": [],
        "rooms": [{"venue": "v", "room": "r", "count": 1}]}, {})])
    assert plan.first_seq == 1


_code = st.text("0123456789ABL-", min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["{year}{point}{level}", "{point}", "", "{level}-",
                                           "{year}{level}{point}"]),
                          st.integers(SEQ_DIGITS, SEQ_DIGITS + 3), _code, _code,
                          st.integers(2000, 2100)), min_size=2, max_size=6),
       st.data())
def test_property_accepted_formats_never_give_two_sequence_numbers_one_number(sessions, data):
    """Whatever each session's accepted format, year, points and levels: distinct sequence
    numbers (below 10**SEQ_DIGITS) print distinct ticket numbers."""
    seqs = data.draw(st.lists(st.integers(1, 10 ** SEQ_DIGITS - 1), min_size=len(sessions),
                              max_size=len(sessions), unique=True))
    seen = {}
    for (prefix, width, point, level, year), seq in zip(sessions, seqs, strict=True):
        fmt = f"{prefix}{{seq:0{width}d}}"
        assert unique_ticket_format(fmt) is None
        number = fmt.format(year=year, point=point, level=level, seq=seq)
        assert number not in seen, (number, seen)
        seen[number] = seq
