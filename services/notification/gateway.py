"""The SMS gateway: one interface, two adapters, chosen by config ``SMS_GATEWAY``.

- ``sink`` (default, development and tests): **a local sink, not an SMS provider.** It
  appends one JSON line per send to a file (``SMS_SINK_PATH``, default
  ``var/sms-sink.jsonl``) and nothing leaves the machine. Like a provider honouring the
  idempotency key, it reports a repeated message id as a duplicate (marked in the file).
- ``http`` (production): POSTs JSON ``{message_id, to, text}`` to ``SMS_PROVIDER_URL``
  with ``Authorization: Bearer SMS_PROVIDER_TOKEN`` and ``Idempotency-Key: <message id>``.
  A 2xx is sent; 5xx, 408, 429, timeouts and connection errors are worth retrying; any
  other 4xx is a permanent failure (the request itself is wrong: a retry would fail too).

Sending happens outside any database transaction; the caller records the result after.
A crash between the two sends again once more: towards the provider this is
at-least-once, and the message id, sent as the idempotency key, lets it drop the repeat.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Protocol

import requests

from services.notification.delivery import SendResult
from shared.logging import mask_text

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SINK = ROOT / "var" / "sms-sink.jsonl"
DEFAULT_CONNECT_TIMEOUT_S = 3.0  # SMS_CONNECT_TIMEOUT_S
DEFAULT_TIMEOUT_S = 10.0  # SMS_TIMEOUT_S: the provider's answer
RETRYABLE_4XX = (408, 429)  # request timeout, too many requests: the provider says "later"


class SmsGateway(Protocol):
    kind: str

    def send(self, message_id: str, mobile: str, text: str) -> SendResult: ...


class SinkSmsGateway:
    """SIMULATED: a local sink standing in for the SMS provider (see the module doc)."""

    kind = "sink"

    def __init__(self, path: str | os.PathLike, clock=None):
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: set[str] | None = None

    def _load(self) -> set[str]:
        if self._seen is None:
            self._seen = {r["message_id"] for r in read_sink(self.path)}
        return self._seen

    def send(self, message_id: str, mobile: str, text: str) -> SendResult:
        with self._lock:
            seen = self._load()
            duplicate = message_id in seen
            record = {"message_id": message_id, "to": mobile, "text": text,
                      "duplicate": duplicate,
                      "at": self.clock.now().isoformat() if self.clock else None}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
            seen.add(message_id)
        return SendResult.sent(provider_id=f"sink-{message_id}")


def read_sink(path) -> list[dict]:
    """Every line the sink wrote (tests and the operator's look at what 'went out')."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


class HttpSmsGateway:
    """The SMS provider's HTTP API (production)."""

    kind = "http"

    def __init__(self, url: str, token: str, connect_timeout: float = 3.0,
                 read_timeout: float = 10.0, session: requests.Session | None = None):
        if not url or not url.startswith(("http://", "https://")):
            raise ValueError("SMS_PROVIDER_URL must be an http(s) URL when SMS_GATEWAY is http")
        if not token:
            raise ValueError("SMS_PROVIDER_TOKEN is required when SMS_GATEWAY is http")
        self.url = url
        self._token = token
        self.timeout = (connect_timeout, read_timeout)
        self.session = session or requests.Session()

    def send(self, message_id: str, mobile: str, text: str) -> SendResult:
        try:
            resp = self.session.post(
                self.url, json={"message_id": message_id, "to": mobile, "text": text},
                headers={"Authorization": f"Bearer {self._token}",
                         "Idempotency-Key": message_id}, timeout=self.timeout)
        except requests.Timeout:
            return SendResult.retry(f"timed out after {self.timeout[1]:g}s")
        except requests.ConnectionError as exc:
            return SendResult.retry(f"connection failed: {type(exc).__name__}")
        except requests.RequestException as exc:
            return SendResult.retry(f"request failed: {type(exc).__name__}")
        return classify(resp.status_code, resp.text, _json(resp))


def classify(status: int, body: str, data: dict | None = None) -> SendResult:
    """An HTTP answer as a send result (pure; the body is masked and cut short)."""
    if 200 <= status < 300:
        pid = (data or {}).get("id") or (data or {}).get("message_id")
        return SendResult.sent(provider_id=str(pid) if pid is not None else None)
    detail = mask_text(" ".join((body or "").split()))[:200]
    error = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status >= 500 or status in RETRYABLE_4XX:
        return SendResult.retry(error)
    return SendResult.permanent(error)


def _json(resp) -> dict | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def setting(config, key: str, default=None):
    """A setting from the nameko config, else the environment, else ``default``."""
    value = (config or {}).get(key)
    if value is None or value == "":
        value = os.environ.get(key)
    return default if value is None or value == "" else value


def gateway_from_config(config, clock=None) -> SmsGateway:
    kind = str(setting(config, "SMS_GATEWAY", "sink")).lower()
    if kind == "sink":
        return SinkSmsGateway(setting(config, "SMS_SINK_PATH", DEFAULT_SINK), clock=clock)
    if kind == "http":
        return HttpSmsGateway(setting(config, "SMS_PROVIDER_URL", ""),
                              setting(config, "SMS_PROVIDER_TOKEN", ""),
                              connect_timeout=float(setting(config, "SMS_CONNECT_TIMEOUT_S",
                                                            DEFAULT_CONNECT_TIMEOUT_S)),
                              read_timeout=float(setting(config, "SMS_TIMEOUT_S", DEFAULT_TIMEOUT_S)))
    raise ValueError(f"SMS_GATEWAY must be 'sink' or 'http', not {kind!r}")
