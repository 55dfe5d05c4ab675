"""Personal data (个人信息) never whole in logs or operator views: the one masking rule.

Used by the services' logs (``shared.logging``), the gateway's operator routes
(``/api/ops/...``) and the command line (``kaowu events``, ``history``, ...), so every
place an operator can look shows the same masked form:

- an ID number (证件号码) keeps only its last 4 characters (``**************002X``):
  enough to tell two candidates apart with the person in front of you;
- a mobile or other phone number keeps its first 3 and last 4 digits (``138****8000``);
- an e-mail address keeps the first character of its local part and its domain
  (``z***@example.com``);
- a postal address keeps its first few characters (province, city: ``上海市徐汇区****``);
- secrets (passwords, their hashes, tokens, photo and file bytes) are replaced outright.

By key (``id_number``, ``mobile``, ``phone``, ``email``, ``address``, also as the end of a
longer key such as ``holder_id_number``), and by shape in every other string: anything
shaped like a mainland ID number, a mainland mobile number or an e-mail address is masked
wherever it appears (free text, reasons, error messages, dictionary keys). Values under
keys that hold our own identifiers (ticket and certificate numbers, ids) are left alone:
they may look like a person's number but are not.
"""

from __future__ import annotations

import re

# bounded by digits only: "tel13800138000" and "ID110101199003074477" are still numbers
_ID_SHAPE = re.compile(r"(?<!\d)\d{15,17}[0-9Xx](?!\d)")
_MOBILE_SHAPE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?(1[3-9]\d)[ -]?\d{4}[ -]?(\d{4})(?!\d)")
_EMAIL_SHAPE = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")

SECRET_KEYS = frozenset({"password", "old_password", "new_password", "password_hash", "token",
                         "secret", "jpeg_base64", "content_base64", "credential"})
# our own identifiers: never scrubbed even when they look like a person's number
OWN_ID_KEYS = frozenset({"ticket_number", "certificate_number", "qualification_id",
                         "application_id", "account_id", "session_id", "stream_id", "draw_id",
                         "import_id", "event_id", "correlation_id", "causation_id", "sha256",
                         "log_id", "notice_id", "record_id", "message_id", "enquiry_id",
                         "provider_id"})
# key (or the end of a key, after "_") -> what it holds
_PERSONAL_KEYS = {"id_number": "id", "mobile": "phone", "phone": "phone", "email": "email",
                  "address": "address"}


def personal_kind(key) -> str | None:
    """What personal data a key holds (``id``, ``phone``, ``email``, ``address``), or None."""
    if not isinstance(key, str):
        return None
    k = key.lower()
    for name, kind in _PERSONAL_KEYS.items():
        if k == name or k.endswith("_" + name):
            return kind
    return None


def mask_id_number(value, keep: int = 4) -> str:
    """All but the last ``keep`` characters starred; short values are starred whole."""
    s = str(value)
    if len(s) <= keep + 2:
        return "*" * len(s)
    return "*" * (len(s) - keep) + s[-keep:]


def mask_mobile(value) -> str:
    """A phone number with its digits starred but the first 3 and last 4 (a mobile:
    ``138****8000``; a landline ``021-****1234``); separators stay. Fewer than 11 digits
    keep only the last 4, fewer than 8 none."""
    s = str(value)
    digits = [i for i, c in enumerate(s) if c.isdigit()]
    n = len(digits)
    head, tail = (3, 4) if n >= 11 else (0, 4) if n >= 8 else (0, 0)
    hidden = set(digits[head:n - tail])
    if not digits:
        return "*" * len(s)
    return "".join("*" if i in hidden else c for i, c in enumerate(s))


def mask_email(value) -> str:
    s = str(value)
    local, at, domain = s.rpartition("@")
    if not at or not local:
        return mask_address(s)
    return f"{local[0]}***@{domain}"


def mask_address(value, keep: int = 6) -> str:
    """The first characters (at most ``keep``, at most a third), the rest starred."""
    s = str(value)
    shown = min(keep, len(s) // 3)
    return s[:shown] + "*" * max(len(s) - shown, 3)


def mask_text(text: str) -> str:
    """Free text with anything shaped like an ID number, a mobile or an e-mail masked."""
    text = _ID_SHAPE.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _MOBILE_SHAPE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    return _EMAIL_SHAPE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


_BY_KIND = {"id": mask_id_number, "phone": mask_mobile, "email": mask_email,
            "address": mask_address}


def mask(value, key: str | None = None):
    """``value`` (any JSON-plain structure) with personal data masked, by key and by shape;
    ``key``: the key ``value`` is found under."""
    if isinstance(value, dict):
        return {(mask_text(k) if isinstance(k, str) else k): mask(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v, key) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if key in SECRET_KEYS:
        return "***"
    kind = personal_kind(key)
    if kind is not None and isinstance(value, str | int):
        return _BY_KIND[kind](value) if str(value).strip() else value
    if not isinstance(value, str) or key in OWN_ID_KEYS:
        return value
    return mask_text(value)
