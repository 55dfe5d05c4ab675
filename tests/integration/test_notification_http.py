"""The SMS gateway adapters for real: the HTTP provider client against a tiny provider
running in the test (werkzeug, in a thread), the local sink on disk, and the service
retrying a failed SMS with exponential backoff on the controlled clock until it is sent
(or given up), with account + notification over RabbitMQ and PostgreSQL."""

import io
import threading
import time
from datetime import datetime, timedelta

import pytest
from nameko.testing.services import entrypoint_hook
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from services.account.service import AccountService
from services.notification.gateway import HttpSmsGateway, SinkSmsGateway, read_sink
from services.notification.service import NotificationService
from shared import logging as klogging
from shared.clock import SHANGHAI, ControlledClock
from tests.support import CATCH_UP, DEADLINE, wait_for

pytestmark = pytest.mark.integration

TOKEN = "test-token-abc"


class Provider:
    """A pretend SMS provider: answers by a script per mobile number; records requests."""

    def __init__(self, script=None):
        self.script = script or {}  # mobile -> [status, ...] (the last one repeats)
        self.requests = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        req = Request(environ)
        body = req.get_json(silent=True) or {}
        with self.lock:
            n = sum(1 for r in self.requests if r["json"].get("to") == body.get("to"))
            self.requests.append({"json": body, "auth": req.headers.get("Authorization"),
                                  "key": req.headers.get("Idempotency-Key")})
        answers = self.script.get(body.get("to"), [200])
        status = answers[min(n, len(answers) - 1)]
        if status == "slow":
            time.sleep(1.5)
            status = 200
        if status == 200:
            resp = Response(f'{{"id": "prov-{len(self.requests)}"}}', 200,
                            content_type="application/json")
        else:
            resp = Response(f"error for {body.get('to')}", status)  # echoes the number
        return resp(environ, start_response)

    def count(self, mobile):
        with self.lock:
            return sum(1 for r in self.requests if r["json"].get("to") == mobile)


@pytest.fixture
def provider():
    p = Provider()
    server = make_server("127.0.0.1", 0, p, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    p.url = f"http://127.0.0.1:{server.server_port}/v1/sms"
    yield p
    server.shutdown()


def test_http_client_against_a_provider(provider):
    provider.script = {"13900000001": [503, 200], "13900000002": [400],
                       "13900000003": ["slow"], "13900000004": [429, 502]}
    gw = HttpSmsGateway(provider.url, TOKEN, connect_timeout=1, read_timeout=0.5)
    first = gw.send("m1", "13900000001", "【考务】你好")
    assert first.retryable and first.error.startswith("HTTP 503")
    assert "13900000001" not in first.error  # the echoed number is masked
    again = gw.send("m1", "13900000001", "【考务】你好")
    assert again.ok and again.provider_id == "prov-2"
    assert [(r["auth"], r["key"], r["json"]) for r in provider.requests] == [
        (f"Bearer {TOKEN}", "m1", {"message_id": "m1", "to": "13900000001", "text": "【考务】你好"})] * 2
    bad = gw.send("m2", "13900000002", "x")
    assert not bad.ok and not bad.retryable and bad.error.startswith("HTTP 400")
    slow = gw.send("m3", "13900000003", "x")
    assert slow.retryable and "timed out" in slow.error
    assert gw.send("m4", "13900000004", "x").retryable  # 429: later
    closed = HttpSmsGateway("http://127.0.0.1:9/nothing", TOKEN, connect_timeout=0.5)
    assert closed.send("m5", "13900000001", "x").retryable  # nobody listening: retry


def test_sink_writes_lines_and_marks_repeats(tmp_path):
    path = tmp_path / "var" / "sms-sink.jsonl"
    sink = SinkSmsGateway(path)
    assert sink.send("m1", "13900000001", "a").ok and sink.send("m2", "13900000002", "b").ok
    assert SinkSmsGateway(path).send("m1", "13900000001", "a").ok  # a restart remembers
    assert [(r["message_id"], r["duplicate"]) for r in read_sink(path)] == [
        ("m1", False), ("m2", False), ("m1", True)]


PEOPLE = {  # mobile: (name, ID number, username); the provider's script per mobile below
    "13900000011": ("王建国", "310104198805123455", "wang_http"),
    "13900000012": ("陈静", "320102199007080044", "chen_http"),
    "13900000013": ("李敏", "31011519920315002X", "li_http"),
}


def test_failed_sms_retried_with_backoff_until_sent(runner_factory, amqp_uri, databases, provider):
    provider.script = {"13900000011": [503, 200],  # fails once, then goes through
                       "13900000012": [503],  # never: given up after 3 attempts
                       "13900000013": [400]}  # refused for good at once
    t0 = datetime(2026, 4, 1, 9, 0, tzinfo=SHANGHAI)
    clock = ControlledClock(t0)
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("smshttp") + "_{service}",
              "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "DEADLINE_INTERVAL": DEADLINE,
              "DELIVERY_INTERVAL": 0.1, "SMS_GATEWAY": "http", "SMS_PROVIDER_URL": provider.url,
              "SMS_PROVIDER_TOKEN": TOKEN, "SMS_MAX_ATTEMPTS": 3, "SMS_RETRY_BASE_S": 30,
              "max_workers": 10, "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024}}
    logs = io.StringIO()
    klogging.configure(stream=logs, level="INFO")
    try:
        runner = runner_factory(config, AccountService, NotificationService)
        runner.start()
        container = {c.service_name: c for c in runner.containers}

        def call(service, method, *args):
            with entrypoint_hook(container[service], method) as hook:
                return hook(*args)

        def delivery(mobile):
            return next(d for d in call("notification", "deliveries", None, 100)
                        if d["mobile"] == f"{mobile[:3]}****{mobile[-4:]}")

        for mobile, (name, id_number, username) in PEOPLE.items():
            call("account", "register", {"name": name, "id_type": "resident_id",
                                         "id_number": id_number, "mobile": mobile,
                                         "username": username, "password": "pass2026word"})
        wait_for(lambda: all(provider.count(m) == 1 for m in PEOPLE))
        a, b, c = PEOPLE
        wait_for(lambda: delivery(c)["status"] == "failed")
        assert delivery(c)["attempts"] == 1 and delivery(c)["last_error"].startswith("HTTP 400")
        wait_for(lambda: delivery(a)["attempts"] == 1 and delivery(b)["attempts"] == 1)
        assert delivery(a)["status"] == "queued"
        assert delivery(a)["next_attempt_at"].startswith("2026-04-01T01:00:30")  # t0 + 30 s

        clock.set(t0 + timedelta(seconds=29))  # the backoff is not over: nothing is sent
        time.sleep(0.4)
        assert [provider.count(m) for m in PEOPLE] == [1, 1, 1]
        clock.set(t0 + timedelta(seconds=30))
        wait_for(lambda: delivery(a)["status"] == "sent")
        assert delivery(a)["attempts"] == 2
        wait_for(lambda: delivery(b)["attempts"] == 2)
        assert delivery(b)["next_attempt_at"].startswith("2026-04-01T01:01:30")  # then 60 s

        clock.set(t0 + timedelta(seconds=89))
        time.sleep(0.4)
        assert provider.count(b) == 2
        clock.set(t0 + timedelta(seconds=90))
        wait_for(lambda: delivery(b)["status"] == "failed")
        assert delivery(b)["attempts"] == 3 and delivery(b)["last_error"].startswith("HTTP 503")
        assert b not in delivery(b)["last_error"]
        assert call("notification", "notification_counts") == {
            "queued": 0, "sent": 1, "failed": 2, "in_site": 3}

        # every attempt of one message carried the same idempotency key, and the token
        keys = [r["key"] for r in provider.requests if r["json"]["to"] == a]
        assert len(keys) == 2 and len(set(keys)) == 1
        assert {r["auth"] for r in provider.requests} == {f"Bearer {TOKEN}"}
        time.sleep(0.3)
        assert [provider.count(m) for m in PEOPLE] == [2, 3, 1]  # and nothing more
    finally:
        klogging.configure(level="WARNING")
    text = logs.getvalue()
    assert '"sms.attempt_failed"' in text and '"sms.sent"' in text
    for mobile in PEOPLE:
        assert mobile not in text
