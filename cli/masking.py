"""Personal data in the command line's output: ID numbers (证件号码) and mobile numbers
(手机号) are never printed whole.

An ID number keeps only its last 4 characters (``**************002X``), enough for an
operator to tell two candidates apart with the person in front of them; a mobile keeps
its first 3 and last 4 digits. Secrets are replaced outright. Free text is scrubbed of
anything shaped like a mainland ID or mobile number, except under keys that hold our own
identifiers (ticket and certificate numbers may look like numbers of a person).
"""

from __future__ import annotations

import re

_ID_SHAPE = re.compile(r"(?<![0-9A-Za-z])\d{15,17}[0-9Xx](?![0-9A-Za-z])")
_MOBILE_SHAPE = re.compile(r"(?<![0-9A-Za-z])(1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])")

ID_KEYS = frozenset({"id_number"})
PHONE_KEYS = frozenset({"mobile", "phone"})
SECRET_KEYS = frozenset({"password", "old_password", "new_password", "password_hash", "token",
                         "secret", "jpeg_base64", "content_base64"})
# our own identifiers: never scrubbed even when they look like a person's number
OWN_ID_KEYS = frozenset({"ticket_number", "certificate_number", "qualification_id",
                         "application_id", "account_id", "session_id", "stream_id", "draw_id",
                         "import_id", "event_id", "correlation_id", "causation_id", "sha256",
                         "log_id", "notice_id", "record_id"})


def mask_id_number(value: str, keep: int = 4) -> str:
    """All but the last ``keep`` characters starred; short values are starred whole."""
    s = str(value)
    if len(s) <= keep + 2:
        return "*" * len(s)
    return "*" * (len(s) - keep) + s[-keep:]


def mask_mobile(value: str) -> str:
    s = str(value)
    if len(s) < 9:
        return "*" * len(s)
    return s[:3] + "*" * (len(s) - 7) + s[-4:]


def mask_text(text: str) -> str:
    text = _ID_SHAPE.sub(lambda m: mask_id_number(m.group(0)), text)
    return _MOBILE_SHAPE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


def mask(value, key: str | None = None):
    """``value`` (any JSON-plain structure) with personal data masked, by key and by shape."""
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v, key) for v in value]
    if not isinstance(value, str):
        return value
    if key in SECRET_KEYS:
        return "***"
    if key in ID_KEYS:
        return mask_id_number(value)
    if key in PHONE_KEYS:
        return mask_mobile(value) if value.isdigit() else mask_text(value)
    if key in OWN_ID_KEYS:
        return value
    return mask_text(value)
