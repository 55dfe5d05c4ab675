"""The admission domain, pure: allocation (format, determinism, capacity, late seats),
printing, forfeiture, check-in and its refusals, absences, voiding, the QR check value."""

import random
from collections import Counter
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.admission import domain, ticket_code
from services.admission.domain import fold_seating, fold_ticket
from services.admission.schemas import REGISTRY, CheckInSchema
from shared.clock import SHANGHAI
from shared.errors import NotFound, Refused, ValidationFailed
from shared.events import StoredEvent
from shared.service import load
from shared.session import reference_session

DOC = reference_session()
SID = DOC.session_id
L1 = ["L1-LAW", "L1-DATA", "L1-CASE"]


def at(month, day, hour=0, minute=0, second=0):
    return datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


def confirmed(n, level="L1", subjects=None, point="2916"):
    subjects = subjects or (L1 if level == "L1" else ["L2-LAW", "L2-PRACTICE"])
    return {"application_id": f"{SID}.acct{n:05d}", "account_id": f"acct{n:05d}",
            "session_id": SID, "level": level, "subjects": list(subjects), "exemption": None,
            "registration_point": point,
            "candidate": {"name": f"考生{n}", "id_type": "resident_id",
                          "id_number": f"3101041988051{n:04d}X"[-18:], "education": []},
            "confirmed_at": at(4, 17, 11).isoformat()}


class Log:
    """Streams of stored events, as the store would keep them (validated by the registry)."""

    def __init__(self):
        self.streams = {}

    def add(self, events):
        for e in events:
            REGISTRY.validate(e.type, e.payload)
            s = self.streams.setdefault(e.stream_id, [])
            s.append(StoredEvent(0, e.stream_id, len(s) + 1, e.type, 1, e.payload,
                                 {"occurred_at": "2026-04-18T08:00:01+00:00"}))
        return events

    def ticket(self, app_id):
        return fold_ticket(self.streams.get(domain.ticket_stream(app_id), []))

    def seating(self):
        return fold_seating(self.streams.get(domain.seating_stream(SID), []))

    def next_seq(self):
        return domain.fold_numbers(self.streams.get(domain.NUMBERS_STREAM, []))


class Allocated:
    def __init__(self, decision, events):
        self.seated, self.unseated = decision.seated, decision.unseated
        self.rooms_opened, self.events = decision.rooms_opened, events


def allocate(log, pending, doc=DOC, batch=7):
    """The plan, then its tickets in batches, as the service runs them."""
    decision = domain.make_plan(doc, pending, log.next_seq())
    events = list(log.add(decision.events))
    while True:
        plan = domain.fold_plan(log.streams[domain.plan_stream(SID)])
        if plan.done == plan.total and events[-1].type == "SeatPlanProgressed":
            return Allocated(decision, events)
        upcoming = (plan.order + plan.unseated)[plan.done:plan.done + batch]
        tickets = {a: log.ticket(a) for a in upcoming}
        events += log.add(domain.issue_batch(doc, plan, tickets, batch))


def season(n=5, **kw):
    log = Log()
    for i in range(n):
        log.add(domain.record_confirmation(confirmed(i, **kw)))
    pending = [log.ticket(f"{SID}.acct{i:05d}") for i in range(n)]
    return log, allocate(log, pending)


# -- allocation --------------------------------------------------------------------------

def test_allocation_issues_a_seat_and_a_ticket_in_the_configured_format():
    log, result = season(3)
    assert (result.seated, result.unseated, result.rooms_opened) == (3, 0, 1)
    types = [e.type for e in result.events]
    # the records that the deadlines ran are the deadline mechanism's (shared.deadlines)
    assert types == ["SeatingPlanned", "SeatPlanMade", "TicketNumbersReserved"] + \
        ["SeatAllocated", "AdmissionTicketIssued"] * 3 + ["SeatPlanProgressed"]
    t = log.ticket(f"{SID}.acct00000")
    assert (t.status, t.ticket_number, t.venue, t.room, t.seat) == \
        ("issued", "20262916L1000001", "SH-SAMPLE-01", "101", 1)
    issued = next(e for e in result.events if e.type == "AdmissionTicketIssued")
    assert issued.payload["candidate"] == {"name": "考生0", "id_type": "resident_id",
                                           "id_number": confirmed(0)["candidate"]["id_number"]}
    assert issued.payload["exam_year"] == 2026 and issued.payload["exemption"] is None
    assert issued.payload["subjects"] == L1


def test_same_confirmations_same_plan():
    log = Log()
    for i in range(70):
        log.add(domain.record_confirmation(confirmed(i, level="L1" if i % 3 else "L2")))
    pending = [log.ticket(f"{SID}.acct{i:05d}") for i in range(70)]
    shuffled = list(pending)
    random.Random(1).shuffle(shuffled)
    other = Log()
    other.streams = {k: list(v) for k, v in log.streams.items()}
    first = allocate(log, pending, batch=9).events
    second = allocate(other, shuffled, batch=70).events  # batch size changes nothing either
    key = [(e.stream_id, e.type, e.payload) for e in first if e.type != "SeatPlanProgressed"]
    assert key == [(e.stream_id, e.type, e.payload) for e in second if e.type != "SeatPlanProgressed"]
    # 70 people: three rooms of 24/23/23, 一级 before 二级
    plan = [e.payload for e in first if e.type == "SeatAllocated"]
    assert rooms_filled(plan) == {("SH-SAMPLE-01", "101"): 24, ("SH-SAMPLE-01", "102"): 23,
                                ("SH-SAMPLE-01", "103"): 23}
    levels = [p["level"] for p in plan]
    assert levels == sorted(levels)
    assert [p["ticket_number"][-6:] for p in plan] == [f"{i:06d}" for i in range(1, 71)]


def rooms_filled(plan):
    return dict(Counter((p["venue"], p["room"]) for p in plan))


def test_capacity_short_is_refused_per_candidate_never_seated_twice():
    log, result = season(215)  # 7 rooms of 30 in the reference session
    assert (result.seated, result.unseated) == (210, 5)
    unseated = [e for e in result.events if e.type == "SeatUnavailable"]
    assert len(unseated) == 5 and "full" in unseated[0].payload["reason"]
    seats = {(e.payload["venue"], e.payload["room"], e.payload["seat"])
             for e in result.events if e.type == "SeatAllocated"}
    assert len(seats) == 210
    assert log.ticket(unseated[0].payload["application_id"]).status == "unseated"


def test_colliding_ticket_numbers_are_refused():
    from dataclasses import replace

    doc = replace(DOC, ticket_number_format="{point}{seq}")
    log = Log()
    # point "29" seq 16 and point "291" seq 6 would both print 2916
    tickets = []
    for i in range(16):
        log.add(domain.record_confirmation(confirmed(i, point="29" if i == 15 else "291")))
        tickets.append(log.ticket(f"{SID}.acct{i:05d}"))
    with pytest.raises(Refused) as exc:
        domain.make_plan(doc, tickets, 1)
    assert exc.value.fields == {"ticket_number_format": "numbers collide"}


def test_voided_before_the_plan_is_not_seated():
    log = Log()
    for i in range(3):
        log.add(domain.record_confirmation(confirmed(i)))
    log.add(domain.void(log.ticket(f"{SID}.acct00001"), {"reason": "虚假承诺"}))
    assert log.ticket(f"{SID}.acct00001").status == "voided"
    pending = [log.ticket(f"{SID}.acct{i:05d}") for i in range(3)]
    result = allocate(log, pending)
    assert result.seated == 2
    assert [e.type for e in result.events].count("AdmissionTicketIssued") == 2


def test_a_late_confirmation_gets_the_next_free_seat():
    log, _ = season(3)
    late = domain.pending_ticket(confirmed(9))
    log.add(domain.record_confirmation(confirmed(9)))
    events = log.add(domain.seat_late(DOC, late, log.seating(), False, [], log.next_seq()))
    assert [e.type for e in events] == ["TicketNumbersReserved", "SeatAdded", "SeatAllocated",
                                        "AdmissionTicketIssued"]
    t = log.ticket(late.application_id)
    assert (t.status, t.room, t.seat, t.ticket_number) == ("issued", "101", 4, "20262916L1000004")
    assert log.next_seq() == 5 and log.seating().rooms[0].used == 4
    # after printing closed and a sitting ended: the same effects as everyone else had
    late2 = domain.pending_ticket(confirmed(10))
    events = domain.seat_late(DOC, late2, log.seating(), True, ["L1-LAW", "L2-LAW"], log.next_seq())
    assert [e.type for e in events][4:] == ["ExamForfeited", "CandidateAbsent"]
    assert events[-1].payload["subject"] == "L1-LAW"


def test_a_late_confirmation_with_every_seat_taken_is_refused():
    log, _ = season(210)
    events = domain.seat_late(DOC, domain.pending_ticket(confirmed(999)), log.seating(), False, [],
                              log.next_seq())
    assert [e.type for e in events] == ["SeatUnavailable"]


def test_voided_between_the_plan_and_its_ticket_leaves_the_seat_empty():
    log = Log()
    for i in range(4):
        log.add(domain.record_confirmation(confirmed(i)))
    pending = [log.ticket(f"{SID}.acct{i:05d}") for i in range(4)]
    log.add(domain.make_plan(DOC, pending, log.next_seq()).events)
    plan = domain.fold_plan(log.streams[domain.plan_stream(SID)])
    tickets = {a: log.ticket(a) for a in plan.order}
    log.add(domain.issue_batch(DOC, plan, tickets, 2))  # the first two
    log.add(domain.void(log.ticket(plan.order[2]), {"reason": "报名无效"}))
    plan = domain.fold_plan(log.streams[domain.plan_stream(SID)])
    assert plan.done == 2
    tickets = {a: log.ticket(a) for a in plan.order}
    events = log.add(domain.issue_batch(DOC, plan, tickets, 10))
    issued = [e.payload for e in events if e.type == "SeatAllocated"]
    assert [(p["application_id"], p["seat"], p["ticket_number"][-6:]) for p in issued] == \
        [(plan.order[3], 4, "000004")]  # seat 3 and number 3 stay unused
    assert log.ticket(plan.order[2]).status == "voided"
    plan = domain.fold_plan(log.streams[domain.plan_stream(SID)])
    assert events[-1].type == "SeatPlanProgressed" and plan.done == plan.total


def test_seating_fold_refuses_a_seat_given_twice():
    log, _ = season(2)
    bad = domain.seat_late(DOC, domain.pending_ticket(confirmed(5)), log.seating(), False, [],
                           log.next_seq())
    log.add(bad)
    again = domain.seat_late(DOC, domain.pending_ticket(confirmed(6)), log.seating(), False, [],
                             log.next_seq())
    again[1].payload["seat"] = bad[1].payload["seat"]
    log.add(again[:2])
    with pytest.raises(ValueError):
        log.seating()


# -- deadlines ---------------------------------------------------------------------------

def test_deadline_times_in_order():
    times = {n: t for t, n in domain.deadline_times(DOC)}
    assert times["confirmation"] == times["seating"] == at(4, 18, 16, 0, 1)
    due = [n for t, n in domain.deadline_times(DOC) if t <= at(6, 13, 11, 30, 1)]
    assert due == ["confirmation", "seating", "ticket_printing", "sitting-L1-LAW", "sitting-L2-LAW"]
    everything = [n for _, n in domain.deadline_times(DOC)]
    assert everything[:3] == ["confirmation", "seating", "ticket_printing"] and len(everything) == 8


# -- printing ----------------------------------------------------------------------------

def test_download_only_in_the_printing_window_and_counted():
    log, _ = season(1)
    app = f"{SID}.acct00000"
    for when in (at(6, 10, 9, 59, 59), at(6, 12, 16, 0, 1)):
        with pytest.raises(Refused) as exc:
            domain.record_download(log.ticket(app), DOC, when)
        assert exc.value.fields["window"] == "ticket_printing"
        assert "打印准考证" in exc.value.message
    log.add(domain.record_download(log.ticket(app), DOC, at(6, 10, 10)))
    second = log.add(domain.record_download(log.ticket(app), DOC, at(6, 12, 16, 0, 0)))
    assert second[0].payload["download"] == 2
    assert log.ticket(app).status == "printed" and log.ticket(app).printed_count == 2
    with pytest.raises(NotFound):
        domain.record_download(None, DOC, at(6, 10, 10))


def test_unprinted_tickets_are_forfeited_when_printing_closes():
    log, _ = season(3)
    log.add(domain.record_download(log.ticket(f"{SID}.acct00000"), DOC, at(6, 10, 10)))
    log.add(domain.void(log.ticket(f"{SID}.acct00002"), {"reason": "报名无效"}))
    rows = [log.ticket(f"{SID}.acct{i:05d}") for i in range(3)]
    events = log.add(domain.forfeit_unprinted(DOC, rows))
    assert [(e.type, e.payload.get("application_id")) for e in events] == \
        [("ExamForfeited", f"{SID}.acct00001")]
    t = log.ticket(f"{SID}.acct00001")
    assert t.forfeited and t.status == "forfeited"
    with pytest.raises(Refused):
        domain.require_printable(t, DOC, at(6, 11))


# -- exam day ----------------------------------------------------------------------------

def _check(log, n, subject="L1-LAW", when=at(6, 13, 8, 30), id_number=None, id_type="resident_id"):
    t = log.ticket(f"{SID}.acct{n:05d}")
    id_number = id_number or confirmed(n)["candidate"]["id_number"]
    return domain.check_in(t, DOC, id_type, id_number, subject, when, "staff-7")


def test_check_in_succeeds_once_and_answers_a_repeat_idempotently():
    log, _ = season(2)
    events, record = _check(log, 0)
    assert [e.type for e in events] == ["CandidateCheckedIn"] and record.new
    log.add(events)
    events, again = _check(log, 0, when=at(6, 13, 9, 10))
    assert events == [] and not again.new and again.checked_in_at == record.checked_in_at
    # the ID number's check letter in lower case is the same document
    events, _ = _check(log, 1, id_number=confirmed(1)["candidate"]["id_number"].lower())
    assert events


def test_check_in_refusals_say_why():
    log, _ = season(4)
    with pytest.raises(Refused) as exc:
        _check(log, 0, id_number="110105194912310021")
    assert exc.value.fields == {"id_number": "does not match the ticket"}
    with pytest.raises(Refused):
        _check(log, 0, id_type="passport")
    with pytest.raises(Refused) as exc:
        _check(log, 0, subject="L2-LAW")
    assert exc.value.fields == {"subject": "not on this ticket"}
    for when in (at(6, 13, 7, 59, 59), at(6, 13, 11, 30, 1)):  # 60 min before 09:00 .. 11:30
        with pytest.raises(Refused) as exc:
            _check(log, 0, when=when)
        assert exc.value.fields["subject"] == "outside its sitting"
    assert _check(log, 0, when=at(6, 13, 8, 0))[0]
    assert _check(log, 0, when=at(6, 13, 11, 30, 0))[0]
    log.add(domain.forfeit_unprinted(DOC, [log.ticket(f"{SID}.acct00001")]))
    with pytest.raises(Refused) as exc:
        _check(log, 1)
    assert exc.value.fields == {"ticket": "forfeited"}
    log.add(domain.void(log.ticket(f"{SID}.acct00002"), {"reason": "替考"}))
    with pytest.raises(Refused) as exc:
        _check(log, 2)
    assert exc.value.fields == {"ticket": "cancelled"} and "替考" in exc.value.message
    with pytest.raises(NotFound):
        domain.check_in(None, DOC, "resident_id", "x", "L1-LAW", at(6, 13, 8), "s")


def test_absent_at_the_end_of_a_sitting_forfeited_included_cancelled_not():
    log, _ = season(4)
    log.add(_check(log, 0)[0])
    log.add(domain.forfeit_unprinted(DOC, [log.ticket(f"{SID}.acct00001")]))
    log.add(domain.void(log.ticket(f"{SID}.acct00002"), {"reason": "报名无效"}))
    rows = [log.ticket(f"{SID}.acct{i:05d}") for i in range(4)]
    events = log.add(domain.mark_absent(DOC, "L1-LAW", rows, [f"{SID}.acct00000"]))
    assert sorted(e.payload["application_id"] for e in events) == \
        [f"{SID}.acct00001", f"{SID}.acct00003"]
    assert log.ticket(f"{SID}.acct00003").absent == {"L1-LAW"}
    assert domain.mark_absent(DOC, "L2-LAW", rows, []) == []  # nobody sits 二级 here


def test_void_is_once_and_ignores_unknown_applications():
    log, _ = season(1)
    app = f"{SID}.acct00000"
    first = log.add(domain.void(log.ticket(app), {"reason": "报名无效"}))
    assert first[0].type == "AdmissionTicketCancelled"
    assert first[0].payload["ticket_number"] == "20262916L1000001"
    assert domain.void(log.ticket(app), {"reason": "again"}) == []
    assert domain.void(None, {"reason": "x"}) == []


# -- the QR code and inputs ----------------------------------------------------------------

def test_qr_payload_round_trip_and_forgery_detected():
    key = b"k" * 32
    text = ticket_code.payload(key, SID, "20262916L1000001")
    assert ticket_code.read_payload(key, text) == (SID, "20262916L1000001")
    forged = text.replace("000001", "000002")
    with pytest.raises(Refused) as exc:
        ticket_code.read_payload(key, forged)
    assert exc.value.fields == {"qr": "check value does not match"}
    with pytest.raises(Refused):
        ticket_code.read_payload(b"other key", text)
    with pytest.raises(Refused):
        ticket_code.read_payload(key, "https://example.com")


def test_check_in_input_needs_a_ticket_number_or_a_code():
    with pytest.raises(ValidationFailed) as exc:
        load(CheckInSchema(), {"id_type": "resident_id", "id_number": "1", "subject": "L1-LAW"})
    assert "ticket_number" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        load(CheckInSchema(), {"ticket_number": "1", "id_type": "driver", "id_number": "1",
                               "subject": "L1-LAW"})
    assert "id_type" in exc.value.fields


def test_check_in_window_margin_is_data():
    from services.admission.exam_rules import CHECK_IN_OPENS_BEFORE

    w = domain.check_in_window(DOC, "L1-CASE")
    assert w.start == at(6, 14, 9) - CHECK_IN_OPENS_BEFORE and w.end == at(6, 14, 11, 30)


def test_plan_seats_follow_the_rooms_in_order():
    plan = domain.Plan("s", [f"a{i}" for i in range(7)], [], [("V", "1", 3), ("V", "2", 2), ("W", "9", 2)])
    assert [plan.seat_of(i) for i in range(7)] == [
        ("V", "1", 1), ("V", "1", 2), ("V", "1", 3), ("V", "2", 1), ("V", "2", 2),
        ("W", "9", 1), ("W", "9", 2)]
    with pytest.raises(IndexError):
        plan.seat_of(7)


# -- the property, through the events: plan, then tickets in batches -----------------------

def _doc_with_rooms(caps):
    from dataclasses import replace

    venues = ({"code": "V1", "name": "考点", "address": "上海",
               "rooms": [{"code": f"R{i}", "seats": c} for i, c in enumerate(caps)]},)
    return replace(DOC, venues=venues)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["L1", "L1x", "L2"]), max_size=120),
       st.lists(st.sampled_from([30, 30, 5, 12]), min_size=1, max_size=6),
       st.integers(1, 50), st.sets(st.integers(0, 119), max_size=10))
def test_property_every_confirmed_candidate_gets_one_seat_or_a_refusal(kinds, caps, batch, voids):
    doc = _doc_with_rooms(caps)
    log = Log()
    for i, kind in enumerate(kinds):
        level = "L2" if kind == "L2" else "L1"
        log.add(domain.record_confirmation(confirmed(i, level=level,
                                                     subjects=["L1-DATA", "L1-CASE"] if kind == "L1x" else None)))
    apps = [f"{SID}.acct{i:05d}" for i in range(len(kinds))]
    decision = domain.make_plan(doc, [log.ticket(a) for a in apps], log.next_seq())
    log.add(decision.events)
    voided = set()
    while (plan := domain.fold_plan(log.streams[domain.plan_stream(SID)])).done < plan.total \
            or len(log.streams[domain.plan_stream(SID)]) == 1:
        for v in sorted(voids):  # voided between batches: that seat stays empty
            if v < len(apps) and log.ticket(apps[v]).status == "awaiting_seat" and v % 2:
                log.add(domain.void(log.ticket(apps[v]), {"reason": "x"}))
                voided.add(apps[v])
                break
        upcoming = (plan.order + plan.unseated)[plan.done:plan.done + batch]
        log.add(domain.issue_batch(doc, plan, {a: log.ticket(a) for a in upcoming}, batch))
    tickets = {a: log.ticket(a) for a in apps}
    seated = [t for t in tickets.values() if t.seat is not None]
    # every confirmed candidate: exactly one seat, or refused (no room), or voided first
    assert all((t.seat is not None) + (t.status == "unseated") + (t.status == "voided") == 1
               for t in tickets.values())
    assert len(seated) + sum(t.status == "unseated" for t in tickets.values()) + len(voided) == len(apps)
    # no seat twice, within the room's size; numbers unique
    seats = [(t.room, t.seat) for t in seated]
    assert len(set(seats)) == len(seats)
    size = {f"R{i}": c for i, c in enumerate(caps)}
    assert all(1 <= t.seat <= size[t.room] for t in seated)
    assert len({t.ticket_number for t in seated}) == len(seated)
    assert decision.seated == min(len(apps), sum(caps))
    # balanced within one among the opened rooms of equal size (before any void)
    plan = domain.fold_plan(log.streams[domain.plan_stream(SID)])
    counts = [c for _, room, c in plan.rooms if size[room] == 30]
    if len(set(caps)) == 1 and counts:
        assert max(counts) - min(counts) <= 1


# -- the check-in screen (考场签到) ---------------------------------------------------------

@pytest.mark.parametrize("query,ticket,name,found", [
    (None, "JL2026000001", "王建国", True),
    ("  ", "JL2026000001", "王建国", True),
    ("000001", "JL2026000001", "王建国", True),
    ("jl2026", "JL2026000001", "王建国", True),
    ("建国", "JL2026000001", "王建国", True),
    ("王 建", "JL2026000001", "王 建国", True),
    ("000002", "JL2026000001", "王建国", False),
    ("李", "JL2026000001", "王建国", False),
    ("JL", None, "王建国", False),
])
def test_roster_search_by_ticket_number_or_name(query, ticket, name, found):
    assert domain.roster_matches(query, ticket, name) is found


def test_check_in_sittings_in_time_order_with_the_one_open_now():
    first = min(DOC.exam_schedule, key=lambda e: e["start"])
    now = first["start"] - domain.CHECK_IN_OPENS_BEFORE
    got = domain.check_in_sittings(DOC, now)
    assert [s["start"] for s in got] == sorted(s["start"] for s in got)
    assert len(got) == len(DOC.exam_schedule)
    opened = [s["subject"] for s in got if s["open"]]
    assert first["subject"] in opened
    assert all(s["start"] == got[0]["start"] for s in got if s["open"])
    s = next(s for s in got if s["subject"] == first["subject"])
    assert s["name"] == DOC.subjects[first["subject"]].name
    assert s["check_in_opens"] < s["start"] < s["end"] == s["check_in_closes"]
    assert not any(s["open"] for s in domain.check_in_sittings(DOC, now - timedelta(seconds=1)))
