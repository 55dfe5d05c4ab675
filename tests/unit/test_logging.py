"""Personal data never appears whole in a log line."""

import io
import json

from shared import logging as klogging


def capture(**kw):
    buf = io.StringIO()
    klogging.configure(stream=buf, level="DEBUG")
    klogging.get_logger("t").info("event", **kw)
    klogging.configure(level="WARNING")
    return buf.getvalue()


def test_known_keys_are_masked():
    line = capture(id_number="11010519491231002X", mobile="13800138000", password="secret123",
                   password_hash="$argon2id$...")
    data = json.loads(line)
    assert "11010519491231002X" not in line and "13800138000" not in line
    assert data["password"] == "***" and data["password_hash"] == "***"
    assert data["id_number"] == "**************002X"  # the one rule (shared.masking)
    assert data["mobile"] == "138****8000"


def test_numbers_inside_any_text_are_scrubbed():
    line = capture(error="duplicate 11010519491231002X for 13800138000",
                   nested={"list": ["call 13912345678 now"]})
    assert "11010519491231002X" not in line
    assert "13800138000" not in line and "13912345678" not in line
    assert "138****8000" in line and "**************002X" in line


def test_email_and_postal_addresses_are_masked():
    line = capture(contact={"email": "zhang.san@example.com", "address": "上海市徐汇区漕溪北路88号"},
                   error="mail to zhang.san@example.com bounced")
    assert "zhang.san@example.com" not in line and "漕溪北路88号" not in line
    assert "z***@example.com" in line


def test_lines_are_json_with_level_and_time():
    data = json.loads(capture(n=1))
    assert data["event"] == "event" and data["level"] == "info" and data["timestamp"]
