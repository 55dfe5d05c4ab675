"""The Application aggregate: windows to the second, completeness, one per session,
commitment, proof, confirmation and the close of confirmation."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from services.registration import domain
from services.registration.schemas import REGISTRY
from shared.clock import SHANGHAI
from shared.errors import NotFound, Refused, ValidationFailed
from shared.events import StoredEvent
from shared.session import parse_session

SESSION = parse_session((Path(__file__).parents[2] / "deploy/sessions/2026-shanghai-jiliang.yml")
                        .read_text(encoding="utf-8"))
SECOND = timedelta(seconds=1)


def t(*args):
    return datetime(*args, tzinfo=SHANGHAI)


OPEN = t(2026, 4, 8, 10, 0)


class History:
    """A stream as the store would keep it: validated, versioned, folded on demand."""

    def __init__(self):
        self.events = []

    def add(self, new_events):
        for e in new_events:
            REGISTRY.validate(e.type, e.payload)  # what the store checks on append
            n = len(self.events) + 1
            self.events.append(StoredEvent(n, e.stream_id, n, e.type, 1, e.payload,
                                           {"occurred_at": OPEN.isoformat()}))
        return new_events

    @property
    def app(self):
        return domain.fold_application(self.events)


def candidate(complete=True):
    c = domain.Candidate("acc1", "张三", "resident_id", "11010519491231002X",
                         completeness=100 if complete else 80)
    c.sections = {"education": {"education": [{"level": "本科"}], "degrees": []},
                  "work": {"entries": [{"employer": "x", "metrology": True}]}}
    return c


PLEDGE = {"pledge_version": SESSION.pledge_version, "signed_name": "张三", "agreed": True}
APPLY = {"session_id": SESSION.session_id, "level": "L1", "subjects": [], "exemption": None,
         "registration_point": "2916", "commitment": PLEDGE}


def applied(data=APPLY, now=OPEN):
    h = History()
    h.add(domain.submit(SESSION, candidate(), "acc1", data, now, False, None))
    return h


def outcome(h, type_, **payload):
    up = StoredEvent(1, "case-x", 1, type_, 1, {"application_id": h.app.application_id, **payload},
                     {"occurred_at": OPEN.isoformat()})
    return h.add(domain.record_outcome(h.app, up))


def test_submit_records_the_snapshot_and_pledge():
    h = applied()
    app = h.app
    assert app.status == "submitted" and app.level == "L1"
    assert app.subjects == list(SESSION.levels["L1"].subjects)
    assert app.commitment["signed_name"] == "张三" and app.commitment["signed_at"]
    assert app.candidate["education"] == [{"level": "本科"}]


@pytest.mark.parametrize("now,ok", [
    (SESSION.window("application").start, True),
    (SESSION.window("application").start - SECOND, False),
    (SESSION.window("application").end, True),
    (SESSION.window("application").end + SECOND, False),
])
def test_application_window_to_the_second(now, ok):
    if ok:
        applied(now=now)
    else:
        with pytest.raises(Refused) as exc:
            applied(now=now)
        assert exc.value.fields["window"] == "application"
        assert "2026-04-07 10:00:00" in exc.value.message and "2026-04-13 16:00:00" in exc.value.message


def test_incomplete_profile_and_second_application_refused():
    with pytest.raises(Refused) as exc:
        domain.submit(SESSION, candidate(complete=False), "acc1", APPLY, OPEN, False, None)
    assert "100%" in exc.value.message
    with pytest.raises(Refused):
        domain.submit(SESSION, None, "acc1", APPLY, OPEN, False, None)
    h = applied()
    with pytest.raises(Refused):
        domain.submit(SESSION, candidate(), "acc1", APPLY, OPEN, False, h.app)


def test_bad_choices_listed_together():
    bad = {**APPLY, "level": "L2", "subjects": ["L1-LAW"], "registration_point": "9999",
           "exemption": {"ground": "senior_title"},
           "commitment": {**PLEDGE, "pledge_version": "old", "signed_name": "李四"}}
    with pytest.raises(ValidationFailed) as exc:
        domain.submit(SESSION, candidate(), "acc1", bad, OPEN, False, None)
    assert {"exemption", "registration_point", "commitment.pledge_version",
            "commitment.signed_name"} <= set(exc.value.fields)


def test_exemption_removes_its_subject():
    h = applied({**APPLY, "exemption": {"ground": "senior_title"}})
    assert "L1-LAW" not in h.app.subjects and h.app.exemption == {"subject": "L1-LAW",
                                                                   "ground": "senior_title"}
    with pytest.raises(ValidationFailed):
        applied({**APPLY, "exemption": {"ground": "senior_title"}, "subjects": ["L1-LAW"]})


def test_integrity_record_bars_the_commitment_only():
    with pytest.raises(Refused) as exc:
        domain.submit(SESSION, candidate(), "acc1", APPLY, OPEN, True, None)
    assert "诚信档案" in exc.value.message
    assert domain.submit(SESSION, candidate(), "acc1", {**APPLY, "commitment": None}, OPEN, True, None)


def test_withdraw_commitment_then_proof_then_manual_pass():
    h = applied()
    h.add(domain.withdraw_commitment(SESSION, h.app, OPEN))
    assert h.app.status == "commitment_withdrawn" and h.app.commitment is None
    with pytest.raises(Refused):
        domain.withdraw_commitment(SESSION, h.app, OPEN)
    outcome(h, "ProofRequested", cause="commitment_withdrawn", reason="withdrawn")
    files = [{"sha256": "a" * 64, "name": "work.pdf", "content_type": "application/pdf", "size": 10}]
    h.add(domain.submit_proof(SESSION, h.app, files, OPEN))
    assert h.app.status == "proof_submitted"
    with pytest.raises(Refused):  # nothing asked now
        domain.submit_proof(SESSION, h.app, files, OPEN)
    outcome(h, "ManualCheckPassed", reason="ok")
    assert h.app.status == "manual_passed"


def test_proof_window_and_spot_check_extension():
    files = [{"sha256": "a" * 64, "name": "p.jpg", "content_type": "image/jpeg", "size": 10}]
    h = applied({**APPLY, "commitment": None})
    outcome(h, "ProofRequested", cause="no_commitment", reason="no commitment")
    verification_end = SESSION.window("verification").end
    with pytest.raises(Refused):
        domain.submit_proof(SESSION, h.app, files, verification_end + SECOND)
    domain.submit_proof(SESSION, h.app, files, verification_end)
    # sent back by a spot check: proof accepted until confirmation closes
    outcome(h, "SpotCheckRejected", reason="certificate unreadable")
    outcome(h, "ProofRequested", cause="spot_check_rejected", reason="certificate unreadable")
    conf_end = SESSION.window("confirmation").end
    domain.submit_proof(SESSION, h.app, files, conf_end)
    with pytest.raises(Refused) as exc:
        domain.submit_proof(SESSION, h.app, files, conf_end + SECOND)
    assert "confirmation closes" in exc.value.message


def test_final_rejection_terminates():
    h = applied({**APPLY, "commitment": None})
    outcome(h, "ProofRequested", cause="no_commitment", reason="r")
    evs = outcome(h, "ManualCheckRejected", reason="diploma does not match", final=True)
    assert [e.type for e in evs] == ["VerificationRecorded", "RegistrationTerminated"]
    assert h.app.status == "terminated"
    assert outcome(h, "ManualCheckPassed", reason="late") == []  # final states stay final


@pytest.mark.parametrize("now,ok", [
    (SESSION.window("confirmation").start, True),
    (SESSION.window("confirmation").start - SECOND, False),
    (SESSION.window("confirmation").end, True),
    (SESSION.window("confirmation").end + SECOND, False),
])
def test_confirmation_window_to_the_second(now, ok):
    h = applied()
    outcome(h, "AutoCheckPassed", rule="r", reason="ok")
    outcome(h, "EligibilityConfirmed", via="auto", spot_checked=False)
    if ok:
        h.add(domain.confirm(SESSION, h.app, now))
        assert h.app.status == "confirmed"
        with pytest.raises(Refused):
            domain.confirm(SESSION, h.app, now)
    else:
        with pytest.raises(Refused) as exc:
            domain.confirm(SESSION, h.app, now)
        assert exc.value.fields["window"] == "confirmation"


def test_confirmation_needs_confirmed_eligibility():
    h = applied()
    outcome(h, "AutoCheckPassed", rule="r", reason="ok")
    with pytest.raises(Refused) as exc:
        domain.confirm(SESSION, h.app, SESSION.window("confirmation").start)
    assert exc.value.fields["status"] == "auto_passed"
    with pytest.raises(NotFound):
        domain.confirm(SESSION, None, SESSION.window("confirmation").start)


def test_close_confirmation_ends_every_open_application():
    def app(status):
        return domain.Application(f"s.{status}", status, "s", version=3, status=status)

    apps = [app(s) for s in ("eligible", "confirmed", "manual_rejected", "proof_submitted",
                             "lapsed")]
    evs = domain.close_confirmation(SESSION, apps)
    assert {(e.payload["account_id"], e.type) for e in evs} == {
        ("eligible", "ApplicationLapsed"), ("manual_rejected", "RegistrationTerminated"),
        ("proof_submitted", "ApplicationLapsed")}


# -- 调整时间安排: amendments move windows that have not closed, to times still ahead ---------

CONFIRMATION = SESSION.window("confirmation")  # 04-17 10:00 – 04-18 16:00


def amend(window, start, end, now):
    return domain.amend_timetable(SESSION, window, start, end, "系统维护", now)


@pytest.mark.parametrize("now", [t(2026, 4, 1, 9, 0), t(2026, 4, 17, 11, 0), t(2026, 4, 18, 16, 0, 0)])
def test_a_window_not_yet_closed_may_be_extended(now):
    (ev,) = amend("confirmation", CONFIRMATION.start, t(2026, 4, 18, 18, 0), now)
    assert (ev.type, ev.payload["window"]) == ("TimetableAmended", "confirmation")
    assert datetime.fromisoformat(ev.payload["end"]) == t(2026, 4, 18, 18, 0)


@pytest.mark.parametrize("now", [CONFIRMATION.end_exclusive, t(2026, 5, 1, 9, 0)])
def test_a_closed_window_is_not_amended(now):
    with pytest.raises(Refused) as caught:  # reopening it would undo what its close did
        amend("confirmation", CONFIRMATION.start, t(2026, 4, 19, 16, 0), now)
    err = caught.value
    assert err.error_code == "window_closed"
    assert "核对确认 (confirmation) 窗口已于 2026-04-18 16:00:00 结束，不能再调整" in err.message
    assert "a closed window cannot be amended" in err.message
    assert list(err.fields) == ["window"]


def test_a_window_cannot_be_made_to_end_in_the_past():
    now = t(2026, 4, 17, 12, 0)
    with pytest.raises(Refused) as caught:
        amend("confirmation", CONFIRMATION.start, t(2026, 4, 17, 11, 0), now)
    err = caught.value
    assert err.error_code == "amendment_in_past" and list(err.fields) == ["end"]
    assert "截止时间不能改到过去：2026-04-17 11:00:00 早于现在 2026-04-17 12:00:00" in err.message
    # shortened, but still ending ahead: fine
    assert amend("confirmation", CONFIRMATION.start, t(2026, 4, 17, 13, 0), now)


def test_a_window_cannot_be_made_to_start_in_the_past():
    with pytest.raises(Refused) as caught:  # not open yet: it would open before now
        amend("application", t(2026, 3, 31, 10, 0), t(2026, 4, 13, 16, 0), t(2026, 4, 1, 9, 0))
    assert caught.value.error_code == "amendment_in_past"
    assert list(caught.value.fields) == ["start"]
    assert "开始时间不能改到过去" in caught.value.message
    with pytest.raises(Refused) as caught:  # open: its start is history
        amend("application", t(2026, 4, 6, 10, 0), t(2026, 4, 13, 16, 0), t(2026, 4, 8, 9, 0))
    assert "请保留原开始时间 2026-04-07 10:00:00" in caught.value.message


def test_a_document_broken_by_the_move_is_reported_before_the_clock():
    with pytest.raises(ValidationFailed) as caught:  # overlapping the spot check, and late
        amend("confirmation", t(2026, 4, 16, 10, 0), t(2026, 4, 18, 16, 0), t(2026, 5, 1, 9, 0))
    assert "windows.confirmation.start" in caught.value.fields
