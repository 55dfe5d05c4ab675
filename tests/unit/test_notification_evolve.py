"""Notification's evolves (``domain.NOTICE``, ``MESSAGE``, ``DELIVERY``): for random legal
histories each fold and its read-model row agree on the status and every field they share."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notification import domain
from services.notification.projection import ROWS, NotificationProjection
from shared.events import StoredEvent
from tests.unit.evolve_check import history, rows

NID, MID = {"notice_id": "N1"}, {"message_id": "M1"}
TIMES = st.sampled_from(["2026-05-01T09:00:00+08:00", "2026-05-02T09:00:00+08:00"])
reasons = st.sampled_from(["已核对确认", "the window moved"])


def with_(base, **drawn):
    return lambda state: st.fixed_dictionaries(drawn).map(lambda d: {**base, **d})


SCHEDULED = {**NID, "kind": "confirmation_open", "template": "confirmation_open",
             "account_id": "acc1", "session_id": "S1", "application_id": "S1.acc1",
             "window": "confirmation", "due_at": "2026-05-01T09:00:00+08:00", "context": {},
             "cause": {"upstream": "verification", "position": 7, "event_id": "e7"}}
CASES = {
    "notice": (domain.NOTICE, "notice-N1", ("NoticeScheduled", SCHEDULED), {
        "NoticeScheduled": with_(SCHEDULED, due_at=TIMES),
        "NoticeRescheduled": with_(NID, due_at=TIMES, reason=reasons),
        "NoticeCancelled": with_(NID, reason=reasons),
        "NoticeExpired": with_(NID, reason=reasons),
        "NoticeFired": with_(NID, message_id=st.just("M9"), fired_at=TIMES)}),
    "message": (domain.MESSAGE, "message-M1", ("MessageCreated", {
        **MID, "account_id": "acc1", "session_id": None, "template": "t", "title": "标题",
        "body": "正文", "source": {"upstream": "x", "key": "k"},
        "created_at": "2026-05-01T09:00:00+08:00"}), {
        "MessageRead": with_(MID, account_id=st.just("acc1"), read_at=TIMES)}),
    "delivery": (domain.DELIVERY, "sms-M1", ("SmsQueued", {
        **MID, "account_id": "acc1", "session_id": "S1", "template": "t", "text": "短信",
        "queued_at": "2026-05-01T09:00:00+08:00"}), {
        "SmsSent": with_(MID, attempt=st.integers(1, 3), provider_id=st.just("p1"),
                         sent_at=TIMES),
        "SmsAttemptFailed": with_(MID, attempt=st.integers(1, 3), error=st.just("timeout"),
                                  retry_at=TIMES),
        "SmsFailed": with_(MID, attempt=st.integers(1, 3), error=st.just("invalid number"),
                           permanent=st.booleans())}),
}


@pytest.mark.parametrize("name", CASES)
def test_every_step_of_each_evolve_has_a_payload_here(name):
    evolve, _, _, payloads = CASES[name]
    assert set(evolve) - {"MessageCreated", "SmsQueued"} == set(payloads)


@pytest.mark.parametrize("name", CASES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_fold_and_row_agree(name, data):
    evolve, stream, opening, payloads = CASES[name]
    events, state = history(data, evolve, stream, opening, payloads)
    _, table, _, columns = ROWS[opening[0]]
    [row] = rows(NotificationProjection(), events)[table].values()
    for field in columns:
        assert row[field] == getattr(state, field), field


def test_a_fired_notice_is_not_scheduled_again():
    def ev(n, type_, payload):
        return StoredEvent(n, "notice-N1", n, type_, 1, payload, {})

    with pytest.raises(ValueError, match="twice"):
        domain.fold_notice([ev(1, "NoticeScheduled", SCHEDULED),
                            ev(2, "NoticeFired", {**NID, "message_id": "M9", "fired_at": "t"}),
                            ev(3, "NoticeScheduled", SCHEDULED)])
