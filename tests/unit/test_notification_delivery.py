"""SMS sending policies and the HTTP adapter's error classification, without I/O: the
rate limiter on a hand-driven clock, the backoff schedule, and the HTTP client against a
fake session (the real HTTP round trip is in tests/integration/test_notification_http.py)."""

from datetime import timedelta

import pytest
import requests

from services.notification.delivery import RetryPolicy, SendResult, TokenBucket
from services.notification.gateway import (
    HttpSmsGateway,
    SinkSmsGateway,
    classify,
    gateway_from_config,
)


class FakeTime:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_token_bucket_allows_bursts_then_the_rate():
    t = FakeTime()
    bucket = TokenBucket(rate=5, capacity=2, monotonic=t)
    assert bucket.try_take() == 0 and bucket.try_take() == 0  # a burst of two
    assert bucket.try_take() == pytest.approx(0.2)  # then one every 1/5 s
    t.t += 0.1
    assert bucket.try_take() == pytest.approx(0.1)
    t.t += 0.1
    assert bucket.try_take() == 0
    t.t += 60  # idle for a minute: still only a burst of two
    assert [bucket.try_take() for _ in range(3)][:2] == [0, 0]


def test_token_bucket_take_waits_for_the_next_token():
    t = FakeTime()
    bucket = TokenBucket(rate=10, capacity=1, monotonic=t)
    slept = []

    def sleep(s):
        slept.append(s)
        t.t += s

    for _ in range(5):
        bucket.take(sleep=sleep)
    assert sum(slept) == pytest.approx(0.4)  # five sends at 10/s: 0.4 s after the first
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


def test_backoff_schedule_doubles_up_to_the_cap():
    p = RetryPolicy(max_attempts=6, base=timedelta(seconds=30), cap=timedelta(minutes=4))
    assert [p.delay(n).total_seconds() for n in range(1, 6)] == [30, 60, 120, 240, 240]
    assert [s.total_seconds() for s in p.schedule()] == [0, 30, 90, 210, 450, 690]
    assert RetryPolicy.from_config(lambda k, d: {"SMS_MAX_ATTEMPTS": "3",
                                                 "SMS_RETRY_BASE_S": "2"}.get(k, d)).schedule() == \
        [timedelta(0), timedelta(seconds=2), timedelta(seconds=6)]
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize("status, ok, retryable", [
    (200, True, False), (202, True, False),
    (500, False, True), (502, False, True), (503, False, True), (504, False, True),
    (408, False, True), (429, False, True),  # "later": worth retrying
    (400, False, False), (401, False, False), (403, False, False), (404, False, False),
    (422, False, False),
])
def test_http_status_classification(status, ok, retryable):
    r = classify(status, '{"error": "x"}', {"id": "p1"})
    assert (r.ok, r.retryable) == (ok, retryable)
    if not ok:
        assert r.error.startswith(f"HTTP {status}")
    else:
        assert r.provider_id == "p1"


class FakeResponse:
    def __init__(self, status, body="", data=None):
        self.status_code, self.text, self._data = status, body, data

    def json(self):
        if self._data is None:
            raise ValueError("no json")
        return self._data


class FakeSession:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def post(self, url, json=None, headers=None, timeout=None):
        self.calls.append({"url": url, "json": json, "headers": headers, "timeout": timeout})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_http_client_sends_bearer_and_idempotency_key_and_classifies_errors():
    session = FakeSession([
        FakeResponse(200, '{"id": "prov-1"}', {"id": "prov-1"}),
        requests.ReadTimeout("slow"),
        requests.ConnectionError("refused"),
        FakeResponse(400, "invalid mobile 13812345678"),
        FakeResponse(503, "<html>busy</html>"),
    ])
    gw = HttpSmsGateway("https://sms.example/send", "tok-123", read_timeout=4, session=session)
    assert gw.send("m1", "13812345678", "你好") == SendResult.sent("prov-1")
    call = session.calls[0]
    assert call["json"] == {"message_id": "m1", "to": "13812345678", "text": "你好"}
    assert call["headers"] == {"Authorization": "Bearer tok-123", "Idempotency-Key": "m1"}
    assert call["timeout"] == (3.0, 4)
    timeout = gw.send("m2", "13812345678", "x")
    assert timeout.retryable and "timed out" in timeout.error
    assert gw.send("m3", "13812345678", "x").retryable
    bad = gw.send("m4", "13812345678", "x")
    assert not bad.ok and not bad.retryable and "13812345678" not in bad.error
    assert gw.send("m5", "13812345678", "x").retryable


def test_gateway_choice_from_config(tmp_path):
    sink = gateway_from_config({"SMS_SINK_PATH": str(tmp_path / "s.jsonl")})
    assert isinstance(sink, SinkSmsGateway) and not (tmp_path / "s.jsonl").exists()
    http = gateway_from_config({"SMS_GATEWAY": "http", "SMS_PROVIDER_URL": "https://x/y",
                                "SMS_PROVIDER_TOKEN": "t"})
    assert isinstance(http, HttpSmsGateway)
    with pytest.raises(ValueError, match="SMS_PROVIDER_TOKEN"):
        gateway_from_config({"SMS_GATEWAY": "http", "SMS_PROVIDER_URL": "https://x/y"})
    with pytest.raises(ValueError, match="sink"):
        gateway_from_config({"SMS_GATEWAY": "carrier-pigeon"})
