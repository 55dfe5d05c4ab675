"""Password-reset codes (短信验证码): six digits derived from a secret, never stored.

The account service decides a reset and keeps only a keyed hash of its code; the
notification service sends the SMS. Neither stores the code itself: it is derived from
the reset's random id under ``PASSWORD_RESET_KEY``, a secret both services hold (config
or environment). The account service's log has the reset id and the hash; the
notification service's log has the SMS text with a placeholder naming the reset id
(``placeholder``), which is replaced by the code only on its way to the SMS gateway
(``reveal``). Without the key, neither log gives the code away.

Pure: no I/O. ``reset_key`` reads a config mapping and the environment.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

CODE_DIGITS = 6
MIN_KEY_BYTES = 32
#: used only where PASSWORD_RESET_KEY is not configured (``make run``, tests); logged at start
DEVELOPMENT_KEY = b"kaowu development password-reset key: set PASSWORD_RESET_KEY"
_MARK = re.compile(r"\[\[reset-code:([0-9a-f]{32})\]\]")


def reset_key(config) -> tuple[bytes, bool]:
    """``(key, configured)`` from ``PASSWORD_RESET_KEY`` (config, else environment)."""
    value = (config or {}).get("PASSWORD_RESET_KEY") or os.environ.get("PASSWORD_RESET_KEY")
    if not value:
        return DEVELOPMENT_KEY, False
    key = value.encode() if isinstance(value, str) else bytes(value)
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"PASSWORD_RESET_KEY must be at least {MIN_KEY_BYTES} bytes long")
    return key, True


def _mac(key: bytes, *parts: str) -> bytes:
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).digest()


def code_for(key: bytes, reset_id: str) -> str:
    """The six-digit code of a reset."""
    n = int.from_bytes(_mac(key, "code", reset_id)[:8], "big") % 10**CODE_DIGITS
    return f"{n:0{CODE_DIGITS}d}"


def code_hash(key: bytes, reset_id: str, code: str) -> str:
    """What the account service stores: a keyed hash (a plain hash of six digits would be
    undone by trying all 10^6)."""
    return _mac(key, "hash", reset_id, str(code)).hex()


def matches(key: bytes, reset_id: str, code, expected_hash: str) -> bool:
    if not isinstance(code, str) or len(code) != CODE_DIGITS or not code.isdigit():
        return False
    return hmac.compare_digest(code_hash(key, reset_id, code), expected_hash)


def placeholder(reset_id: str) -> str:
    """What stands for the code in a stored SMS text."""
    if not re.fullmatch(r"[0-9a-f]{32}", reset_id):
        raise ValueError("a reset id is 32 hex digits")
    return f"[[reset-code:{reset_id}]]"


def reveal(text: str, key: bytes) -> str:
    """The text as it goes to the SMS gateway: every placeholder replaced by its code."""
    return _MARK.sub(lambda m: code_for(key, m.group(1)), text)
