"""Admission's consumer and deadlines in-process, on SQLite and PostgreSQL: registration's
events (appended to a registration log of its own) pulled as the catch-up timer pulls them,
the entrypoints run through nameko's ``worker_factory`` with the real store and clock.

Covers what the broker test cannot time: a confirmation delivered after the plan (next free
seat), rooms running out (refused, visible in the counts), the deadline firing once however
often the timer ticks, voiding before and after a seat, and rebuild == live."""

from datetime import datetime
from types import SimpleNamespace

import pytest
from nameko.testing.services import worker_factory

from services.admission import domain
from services.admission.projection import AdmissionProjection
from services.admission.schemas import REGISTRY
from services.admission.service import AdmissionService, on_registration_event
from services.registration.schemas import REGISTRY as REGISTRATION_REGISTRY
from shared.clock import SHANGHAI, ControlledClock
from shared.deadlines import DeadlineRunner
from shared.dependencies import BoundStore
from shared.errors import NotFound
from shared.events import NewEvent
from shared.eventstore.store import open_store
from shared.eventstore.unit_of_work import Context
from shared.projection import snapshot
from shared.session import reference_session
from shared.tracking import TrackingConsumer, events_answer

pytestmark = pytest.mark.integration


def at(month, day, hour=0, minute=0, second=0):
    return datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


class Tracking:
    """What the TrackingProvider does for the timer: pull registration's log."""

    def __init__(self, consumer, fetch):
        self.consumer, self.fetch = consumer, fetch

    def catch_up(self, _fetchers):
        return self.consumer.catch_up(self.fetch)


@pytest.fixture
def world(db_url, tmp_path):
    clock = ControlledClock(at(4, 17, 10))
    reg = open_store(f"sqlite:///{tmp_path}/registration.db", REGISTRATION_REGISTRY, clock=clock)
    adm = open_store(db_url, REGISTRY, clock=clock, projections=[AdmissionProjection()])

    def fetch(position, limit, types=None):
        if types is not None:  # a consumer's pull: its declared types (the RPC's answer)
            return events_answer(reg, "registration", position, limit, types)
        return [reg.public_view(e, "registration") for e in reg.events_after(position, limit)]

    consumer = TrackingConsumer(adm, "registration", on_registration_event)

    class World:
        pass

    w = World()
    w.clock, w.reg, w.adm, w.consumer = clock, reg, adm, consumer
    w.pump = lambda: consumer.catch_up(fetch)
    w.registration = SimpleNamespace(events_after=fetch)  # registration's RPC, in-process
    w.deadlines = DeadlineRunner("admission")  # the container's, kept between workers
    w.worker = lambda: worker_factory(
        AdmissionService, store=BoundStore(adm, Context(actor="test")), clock=clock,
        tracking=Tracking(consumer, fetch), ticket_key=b"test-key",
        registration_rpc=w.registration, deadline_effects=w.deadlines)
    yield w
    reg.engine.dispose()
    adm.engine.dispose()


def schedule(w, seats=(3, 3)):
    d = reference_session().to_dict()
    d["venues"] = [{"code": "V1", "name": "考点一", "address": "上海市徐汇区",
                    "rooms": [{"code": f"R{i + 1}", "seats": s} for i, s in enumerate(seats)]}]
    w.reg.append([NewEvent("session-s", "ExamSessionScheduled",
                           {"session_id": d["session_id"], "document": d})])
    return d["session_id"]


def confirm(w, sid, n, level="L1"):
    subjects = ["L1-LAW", "L1-DATA", "L1-CASE"] if level == "L1" else ["L2-LAW", "L2-PRACTICE"]
    app = f"{sid}.acct{n}"
    w.reg.append([NewEvent(f"application-{app}", "ApplicationConfirmed", {
        "application_id": app, "account_id": f"acct{n}", "session_id": sid, "level": level,
        "subjects": subjects, "exemption": None, "registration_point": "2916",
        "candidate": {"name": f"考生{n}", "id_type": "resident_id",
                      "id_number": f"31010419880512{n:03d}X"[-18:]},
        "confirmed_at": at(4, 17, 11).isoformat()})])
    return app


def void(w, sid, n, reason="虚假承诺"):
    app = f"{sid}.acct{n}"
    w.reg.append([NewEvent(f"application-{app}", "RegistrationVoided", {
        "application_id": app, "account_id": f"acct{n}", "session_id": sid, "reason": reason,
        "by": "authority-01", "integrity": True,
        "candidate": {"name": f"考生{n}", "id_type": "resident_id", "id_number": "x"},
        "voided_at": at(4, 18).isoformat()})])


def types(store, after=0):
    return [e.type for e in store.events_after(after, 10_000)]


def test_plan_late_seats_capacity_voids_and_rebuild(world):
    w = world
    sid = schedule(w)
    for n in range(1, 6):
        confirm(w, sid, n, level="L2" if n == 5 else "L1")
    void(w, sid, 3)  # before the plan: never seated
    w.pump()
    worker = w.worker()
    counts = worker.admission_counts(sid)
    assert counts["awaiting_seat"] == 4 and counts["seats_allocated"] == 0
    with pytest.raises(NotFound):
        worker.get_ticket("acct1", sid)

    w.clock.set(at(4, 18, 16, 0, 0))  # the close's last second: nothing yet
    w.worker().deadlines()
    assert "SeatAllocated" not in types(w.adm)
    w.clock.set(at(4, 18, 16, 0, 1))
    w.worker().deadlines()
    head = w.adm.head()
    w.worker().deadlines()  # once, however often the timer ticks
    assert w.adm.head() == head
    assert types(w.adm).count("AdmissionTicketIssued") == 4
    # operators see which deadline effects ran, and when (on the service's clock)
    ran = w.worker().status()["deadlines"]
    assert [(r["window"], r["ran_at_local"]) for r in ran["ran"]] == [
        ("confirmation", "2026-04-18 16:00:01"), ("seating", "2026-04-18 16:00:01")]
    assert ran["overdue"] == []
    rooms = w.worker().room_list({"staff_id": "a1"}, sid, "V1", "R1")
    assert [c["seat"] for c in rooms["candidates"]] == [1, 2] and rooms["seats"] == 3
    assert rooms["candidates"][0]["id_number"].count("*") > 5  # masked for the door list
    assert [c["seat"] for c in w.worker().room_list({"staff_id": "a1"}, sid, "V1", "R2")["candidates"]] == [1, 2]
    ticket = w.worker().get_ticket("acct1", sid)
    assert ticket["ticket_number"] == "20262916L1000001" and ticket["status"] == "issued"
    assert [s["code"] for s in ticket["subjects"]] == ["L1-LAW", "L1-DATA", "L1-CASE"]
    assert ticket["venue"] == {"code": "V1", "name": "考点一", "address": "上海市徐汇区"}
    assert w.worker().get_ticket("acct5", sid)["level"] == "L2"
    with pytest.raises(NotFound):
        w.worker().get_ticket("acct3", sid)  # voided before a seat

    # confirmed in time, delivered after the plan: the next free seats, then none left
    for n in (6, 7, 8):
        confirm(w, sid, n)
    w.pump()
    got = {n: w.worker().get_ticket(f"acct{n}", sid) for n in (6, 7)}
    assert {(t["room"], t["seat"]) for t in got.values()} == {("R1", 3), ("R2", 3)}
    assert {t["ticket_number"][-6:] for t in got.values()} == {"000005", "000006"}
    with pytest.raises(NotFound) as exc:
        w.worker().get_ticket("acct8", sid)
    assert exc.value.fields == {"status": "unseated"}

    void(w, sid, 1, reason="替考")  # after the seat: the ticket is cancelled
    w.pump()
    assert w.worker().get_ticket("acct1", sid)["status"] == "cancelled"
    counts = w.worker().admission_counts(sid)
    assert counts == {"seats_allocated": 6, "tickets_issued": 6, "printed": 0, "forfeited": 0,
                      "checked_in": 0, "absent": 0, "cancelled": 1, "awaiting_seat": 0,
                      "unseated": 1}
    assert w.worker().business_counts()["tickets"] == {"issued": 5, "cancelled": 1, "unseated": 1,
                                                       "voided": 1}
    seats = [(e.payload["room"], e.payload["seat"]) for e in w.adm.events_after(0, 10_000)
             if e.type == "SeatAllocated"]
    assert len(seats) == len(set(seats)) == 6

    # printing closes: the five live tickets were never printed; the exam's sittings end
    w.clock.set(at(6, 14, 12))
    w.worker().deadlines()
    counts = w.worker().admission_counts(sid)
    assert counts["forfeited"] == 5
    # forfeited still count as absent: 4 L1 tickets × 3 subjects + 1 L2 × 2
    assert counts["absent"] == 4 * 3 + 2

    projection = w.adm.projections[0]
    live = snapshot(w.adm.engine, projection)
    projection.rebuild(w.adm)
    assert snapshot(w.adm.engine, projection) == live
    assert domain.fold_seating(w.adm.read_stream(domain.seating_stream(sid))).next_seq == 7


def test_the_plan_waits_for_confirmations_not_yet_applied(world):
    """Confirmations registration logged before the close but admission has not applied yet
    (its consumer behind, a pull skipped because a message-driven worker held the consumer)
    are in the plan, not left to the late-seat path."""
    w = world
    sid = schedule(w, seats=(30,))
    w.pump()  # the session only
    for n in range(1, 8):
        confirm(w, sid, n)
    skipped = []
    real = w.consumer.catch_up

    def busy_once(fetch):  # the first pull finds another worker applying: nothing done
        if not skipped:
            skipped.append(True)
            return 0
        return real(fetch)

    w.consumer.catch_up = busy_once
    w.clock.set(at(4, 18, 16, 0, 1))
    w.worker().deadlines()
    assert skipped
    planned = [e for e in w.adm.events_after(0, 10_000) if e.type == "SeatingPlanned"]
    assert [e.payload["seated"] for e in planned] == [7]
    assert "SeatAdded" not in types(w.adm)  # nobody took the late path
    w.worker().deadlines()  # the tickets of the plan
    assert types(w.adm).count("AdmissionTicketIssued") == 7


def test_deadline_schedule_and_overdue_figures(world):
    """What /metrics exports for the KaowuDeadlineNotRun alert: each deadline effect of a
    session, when it falls due and whether it ran; overdue ones by the service's clock."""
    w = world
    sid = schedule(w)
    confirm(w, sid, 1)
    w.pump()
    worker = w.worker()
    due = {name: (at_, done) for s, name, at_, done in worker.deadline_schedule() if s == sid}
    assert due["confirmation"] == (at(4, 18, 16, 0, 1), False)
    assert due["seating"] == (at(4, 18, 16, 0, 1), False)
    assert "ticket_printing" in due and any(n.startswith("sitting-") for n in due)
    assert worker.scrape_gauges()["kaowu_deadline_overdue_seconds"] == []

    w.clock.set(at(4, 18, 16, 1, 31))  # 90 s after the close, the timer has not run
    overdue = dict(worker.scrape_gauges()["kaowu_deadline_overdue_seconds"])
    assert overdue == {(sid, "confirmation"): 90.0, (sid, "seating"): 90.0}

    worker.deadlines()  # the timer runs: nothing is overdue any more
    assert worker.scrape_gauges()["kaowu_deadline_overdue_seconds"] == []
    done = {name for s, name, _, d in worker.deadline_schedule() if s == sid and d}
    assert done == {"confirmation", "seating"}
