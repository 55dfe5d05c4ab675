"""Notification decisions, pure: templates with exact times, due times (and amendments),
message ids, notices (plan, move, cancel, fire once), SMS delivery states."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notification import domain
from services.notification.delivery import RetryPolicy, SendResult
from services.notification.schemas import REGISTRY
from services.notification.templates import (
    PLACEHOLDERS,
    format_time,
    load_catalogue,
    parse_catalogue,
    parse_duration,
)
from shared.clock import SHANGHAI
from shared.errors import NotFound
from shared.events import StoredEvent
from shared.session import reference_session

CAT = load_catalogue()
DOC = reference_session()
SESSION = DOC.session_id
ACCOUNT = "a1b2c3"


def at(*args):
    return datetime(*args, tzinfo=SHANGHAI)


def stored(events, start_version=0):
    """NewEvents as a stream would hold them (payloads validated by the registry)."""
    out = []
    for i, e in enumerate(events, start=start_version + 1):
        REGISTRY.validate(e.type, e.payload)
        out.append(StoredEvent(i, e.stream_id, i, e.type, 1, e.payload, {}))
    return out


CAUSE = {"upstream": "verification", "position": 10, "event_id": "e10"}


def plan(kind, now, notice=None, doc=DOC, cause=CAUSE, extra=None):
    return domain.schedule_notice(notice, CAT.notices[kind], doc, account_id=ACCOUNT,
                                  session_id=SESSION, application_id=f"{SESSION}.{ACCOUNT}",
                                  extra=extra or {}, cause=cause, now=now)


# --- templates ------------------------------------------------------------------------

def test_times_render_in_shanghai_to_the_minute():
    assert format_time(at(2026, 4, 18, 16, 0, 0)) == "2026年04月18日16:00"
    assert format_time(datetime(2026, 4, 18, 8, 0, 59, tzinfo=UTC)) == "2026年04月18日16:00"
    assert format_time(datetime(2026, 6, 9, 18, 30, tzinfo=UTC)) == "2026年06月10日02:30"
    with pytest.raises(ValueError):
        format_time(datetime(2026, 4, 18, 16, 0))


def test_confirmation_notice_names_the_exam_and_the_exact_window():
    r = CAT.render("confirmation_open", domain.context(DOC, "王建国"))
    assert r.title == "请完成核对确认"
    assert r.body == ("王建国，您报考的2026年度全国注册计量师职业资格考试（上海考区）资格核查已通过，"
                      "请于2026年04月17日10:00至2026年04月18日16:00登录报名网站完成核对确认。"
                      "本次考试不收费，不设补确认环节，逾期视为放弃报名。")
    assert r.sms == "【上海人事考试】" + r.body
    printing = CAT.render("printing_reminder", domain.context(DOC, "李敏", ticket_number="T001"))
    assert "准考证号T001" in printing.body and "2026年06月12日16:00截止" in printing.body


def test_amended_window_is_what_the_reminder_says():
    amended = DOC.amended("confirmation", at(2026, 4, 17, 10), at(2026, 4, 18, 18, 0))
    r = CAT.render("confirmation_reminder", domain.context(amended, "陈静"))
    assert "核对确认将于2026年04月18日18:00截止" in r.body


def test_every_template_renders_with_a_full_context():
    ctx = domain.context(DOC, "张三", reason="R", cause="C", deadline=at(2026, 4, 14, 16), ticket_number="T",
                         certificate_number="C", level_name="一级", answer="A", point="2916",
                         code="[[reset-code:" + "0" * 32 + "]]", expires=at(2026, 4, 7, 10))
    assert set(ctx) == PLACEHOLDERS
    for key in CAT.templates:
        r = CAT.render(key, ctx)
        assert "{" not in r.sms and r.title and r.body
        assert " " not in r.body  # lines of a |- block are joined without spaces


def test_a_missing_value_or_unknown_placeholder_is_an_error():
    with pytest.raises(KeyError, match="reason"):
        CAT.render("registration_voided", domain.context(DOC, "张三"))
    data = {"signature": "【X】", "templates": {"t": {"title": "T", "sms": "{nmae}你好"}}}
    with pytest.raises(ValueError, match="nmae"):
        parse_catalogue(data)
    bad_notice = {"signature": "【X】", "templates": {"t": {"title": "T", "sms": "hi"}},
                  "notices": {"n": {"window": "nowhere", "at": "end", "template": "t"}}}
    with pytest.raises(ValueError, match="window"):
        parse_catalogue(bad_notice)
    with pytest.raises(ValueError, match="proof_causes"):
        parse_catalogue({"signature": "【X】", "templates": {}})
    leaky = {"signature": "【X】", "templates": {"t": {"title": "T", "sms": "{code}",
                                                       "body": "验证码{code}"}}}
    with pytest.raises(ValueError, match="sms text only"):  # the in-site copy is stored whole
        parse_catalogue(leaky)
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration("90m") == timedelta(minutes=90)
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_outcome_messages_pick_template_and_deadline():
    p = {"reason": "without the commitment, proof is checked by hand", "cause": "no_commitment"}
    assert domain.outcome_message("ProofRequested", p, DOC, CAT.proof_causes) == (
        "proof_requested", {"reason": p["reason"], "cause": "未采用告知承诺制，需人工核查",
                            "deadline": at(2026, 4, 14, 16)})
    # after a spot-check rejection, SpotCheckRejected has asked for the proof already
    assert domain.outcome_message("ProofRequested", {**p, "cause": "spot_check_rejected"}, DOC) is None
    assert domain.outcome_message("SpotCheckRejected", {"reason": "x"}, DOC)[1]["deadline"] == \
        at(2026, 4, 18, 16)
    assert domain.outcome_message("ManualCheckRejected", {"reason": "x", "final": True}, DOC)[0] == \
        "manual_check_rejected_final"
    assert domain.outcome_message("CertificateIssued", {"certificate_number": "C1", "level": "L1"},
                                  DOC) == ("certificate_issued",
                                           {"certificate_number": "C1", "level_name": "一级"})
    assert domain.outcome_message("AutoCheckPassed", {}, DOC) is None


# --- ids ------------------------------------------------------------------------------

def test_message_ids_are_deterministic_and_distinct():
    a = domain.message_id("verification", "ev1", ACCOUNT, "proof_requested")
    assert a == domain.message_id("verification", "ev1", ACCOUNT, "proof_requested")
    assert len(a) == 32 and int(a, 16) >= 0
    others = {domain.message_id(*args) for args in [
        ("registration", "ev1", ACCOUNT, "proof_requested"),
        ("verification", "ev2", ACCOUNT, "proof_requested"),
        ("verification", "ev1", "other", "proof_requested"),
        ("verification", "ev1", ACCOUNT, "manual_check_passed")]}
    assert a not in others and len(others) == 4
    ev = StoredEvent(7, "s", 1, "X", 1, {}, {"event_id": "abc"})
    assert domain.event_key(ev) == "abc"
    assert domain.event_key(StoredEvent(7, "s", 1, "X", 1, {}, {})) == "position:7"


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_field_boundaries_cannot_collide(x, y):
    # ("ab", "c") and ("a", "bc") are different events: the separator keeps them apart
    assert domain.message_id("u", x + y, "a", "t") != domain.message_id("u", x, y + "a", "t") or \
        "\x1f" in x + y


# --- due times ------------------------------------------------------------------------

def test_due_times_come_from_the_timetable():
    assert domain.due_at(CAT.notices["confirmation_open"], DOC) == at(2026, 4, 17, 10, 0)
    assert domain.due_at(CAT.notices["confirmation_reminder"], DOC) == at(2026, 4, 17, 16, 0)
    assert domain.due_at(CAT.notices["printing_open"], DOC) == at(2026, 6, 10, 10, 0)
    assert domain.due_at(CAT.notices["printing_reminder"], DOC) == at(2026, 6, 11, 16, 0)
    short = DOC.amended("confirmation", at(2026, 4, 17, 10), at(2026, 4, 17, 18))
    assert domain.due_at(CAT.notices["confirmation_reminder"], short) is None


def test_an_amendment_moves_a_notice_not_yet_sent():
    n = domain.fold_notice(stored(plan("confirmation_reminder", at(2026, 4, 16, 9))))
    assert n.due_at == domain.stamp(at(2026, 4, 17, 16))
    later = DOC.amended("confirmation", at(2026, 4, 17, 10), at(2026, 4, 18, 18))
    moved = domain.reschedule_notice(n, CAT.notices["confirmation_reminder"], later, "延长")
    assert [e.type for e in moved] == ["NoticeRescheduled"]
    n2 = domain.fold_notice(stored(plan("confirmation_reminder", at(2026, 4, 16, 9))) +
                            stored(moved, 1))
    assert n2.due_at == domain.stamp(at(2026, 4, 17, 18)) and n2.version == 2
    # the same timetable again moves nothing
    assert domain.reschedule_notice(n2, CAT.notices["confirmation_reminder"], later, "x") == []
    # a window too short for a reminder cancels it
    short = DOC.amended("confirmation", at(2026, 4, 17, 10), at(2026, 4, 17, 18))
    assert [e.type for e in domain.reschedule_notice(
        n2, CAT.notices["confirmation_reminder"], short, "缩短")] == ["NoticeCancelled"]
    # a fired notice is not moved
    fired = stored(plan("confirmation_reminder", at(2026, 4, 16, 9)))
    fired += stored(domain.fire_notice(domain.fold_notice(fired), CAT.notices["confirmation_reminder"],
                                       DOC, "x", at(2026, 4, 17, 16), CAT), 1)
    assert domain.reschedule_notice(domain.fold_notice(fired), CAT.notices["confirmation_reminder"],
                                    later, "x") == []


def test_planning_rules():
    early = at(2026, 4, 15, 12)
    assert [e.payload["kind"] for e in plan("confirmation_open", early)] == ["confirmation_open"]
    # eligible in the middle of the window: the opening is due at once, the reminder
    # (due earlier) is not planned: the opening says when the window closes
    late = at(2026, 4, 17, 17)
    opening = plan("confirmation_open", late)
    assert opening[0].payload["due_at"] == domain.stamp(at(2026, 4, 17, 10))
    assert plan("confirmation_reminder", late) == []
    # the window has closed: nothing
    assert plan("confirmation_open", at(2026, 4, 18, 16, 0, 1)) == []
    # without the session document yet: planned, due time unknown
    (waiting,) = plan("confirmation_open", early, doc=None)
    assert waiting.payload["due_at"] is None
    # planned already: nothing more; cancelled: only a later upstream event plans again
    n = domain.fold_notice(stored(plan("confirmation_reminder", early)))
    assert plan("confirmation_reminder", early, notice=n) == []
    cancelled = stored(plan("confirmation_reminder", early))
    cancelled += stored(domain.cancel_notice(n, "confirmed"), 1)
    c = domain.fold_notice(cancelled)
    assert c.status == "cancelled"
    assert plan("confirmation_reminder", early, notice=c) == []  # the same event replayed
    again = plan("confirmation_reminder", early, notice=c, cause={**CAUSE, "position": 11})
    assert [e.type for e in again] == ["NoticeScheduled"]


def test_a_notice_fires_once_at_its_time_and_expires_after_its_window():
    events = stored(plan("printing_reminder", at(2026, 5, 20), extra={"ticket_number": "T9"}))
    n = domain.fold_notice(events)
    rule = CAT.notices["printing_reminder"]
    assert domain.fire_notice(n, rule, DOC, "李敏", at(2026, 6, 11, 15, 59, 59), CAT) == []
    fired = domain.fire_notice(n, rule, DOC, "李敏", at(2026, 6, 11, 16, 0), CAT)
    assert [e.type for e in fired] == ["NoticeFired", "MessageCreated", "SmsQueued"]
    mid = fired[0].payload["message_id"]
    assert mid == domain.message_id("notification", n.notice_id, ACCOUNT, "printing_reminder")
    assert "准考证号T9" in fired[1].payload["body"] and fired[2].payload["text"].startswith("【")
    after = domain.fold_notice(events + stored(fired[:1], 1))
    assert after.status == "fired"
    assert domain.fire_notice(after, rule, DOC, "李敏", at(2026, 6, 11, 17), CAT) == []
    # a message that exists already is not made again; the notice still records firing
    assert [e.type for e in domain.fire_notice(n, rule, DOC, "李敏", at(2026, 6, 11, 16), CAT,
                                               message_exists=True)] == ["NoticeFired"]
    # the service was down across the close: the notice expires, nothing stale goes out
    assert [e.type for e in domain.fire_notice(n, rule, DOC, "李敏", at(2026, 6, 12, 16, 0, 1),
                                               CAT)] == ["NoticeExpired"]


# --- messages -------------------------------------------------------------------------

def test_mark_read_only_ones_own_once():
    rendered = CAT.render("spot_check_passed", domain.context(DOC, "王建国"))
    created = domain.compose("f" * 32, ACCOUNT, SESSION, "spot_check_passed", rendered,
                             {"upstream": "verification", "key": "e"}, at(2026, 4, 15, 10))
    msg = domain.fold_message(stored(created[:1]))
    with pytest.raises(NotFound):
        domain.mark_read(msg, "someoneelse", "f" * 32, at(2026, 4, 15, 11))
    with pytest.raises(NotFound):
        domain.mark_read(None, ACCOUNT, "f" * 32, at(2026, 4, 15, 11))
    read = domain.mark_read(msg, ACCOUNT, "f" * 32, at(2026, 4, 15, 11))
    assert [e.type for e in read] == ["MessageRead"]
    msg2 = domain.fold_message(stored(created[:1]) + stored(read, 1))
    assert msg2.read and domain.mark_read(msg2, ACCOUNT, "f" * 32, at(2026, 4, 15, 12)) == []


# --- SMS delivery ---------------------------------------------------------------------

POLICY = RetryPolicy(max_attempts=3, base=timedelta(seconds=30), cap=timedelta(minutes=10))


def queued(now):
    rendered = CAT.render("scores_published", domain.context(DOC, "王建国"))
    return stored(domain.compose("e" * 32, ACCOUNT, SESSION, "scores_published", rendered,
                                 {"upstream": "scoring", "key": "k"}, now)[1:])


def test_delivery_retries_with_backoff_then_sends():
    t0 = at(2026, 8, 15, 9)
    events = queued(t0)
    d = domain.fold_delivery(events)
    assert (d.status, d.attempts, d.next_attempt_at) == ("queued", 0, domain.stamp(t0))
    first = domain.record_attempt(d, SendResult.retry("HTTP 503: busy"), t0, POLICY)
    assert first[0].type == "SmsAttemptFailed"
    assert first[0].payload["retry_at"] == domain.stamp(t0 + timedelta(seconds=30))
    events += stored(first, len(events))
    t1 = t0 + timedelta(seconds=30)
    second = domain.record_attempt(domain.fold_delivery(events), SendResult.retry("timeout"), t1,
                                   POLICY)
    assert second[0].payload["retry_at"] == domain.stamp(t1 + timedelta(seconds=60))
    events += stored(second, len(events))
    sent = domain.record_attempt(domain.fold_delivery(events), SendResult.sent("p-1"),
                                 t1 + timedelta(seconds=60), POLICY)
    events += stored(sent, len(events))
    d = domain.fold_delivery(events)
    assert (d.status, d.attempts, d.last_error) == ("sent", 3, "timeout")
    # settled: a late second recording (another worker) adds nothing
    assert domain.record_attempt(d, SendResult.sent(), t1, POLICY) == []


def test_delivery_gives_up_after_max_attempts_or_a_permanent_error():
    t0 = at(2026, 8, 15, 9)
    events = queued(t0)
    for _ in range(1, 3):
        events += stored(domain.record_attempt(domain.fold_delivery(events),
                                               SendResult.retry("HTTP 502"), t0, POLICY), len(events))
    last = domain.record_attempt(domain.fold_delivery(events), SendResult.retry("HTTP 502"), t0,
                                 POLICY)
    assert last[0].type == "SmsFailed" and last[0].payload == {
        "message_id": "e" * 32, "attempt": 3, "error": "HTTP 502", "permanent": False}
    bad = domain.record_attempt(domain.fold_delivery(queued(t0)),
                                SendResult.permanent("HTTP 400: invalid number 13812345678"), t0,
                                POLICY)
    assert bad[0].type == "SmsFailed" and bad[0].payload["permanent"] is True
    assert "13812345678" not in bad[0].payload["error"]  # an echoed number is masked
