"""Password-reset codes (短信验证码): six digits derived from a secret, never stored.

The account service decides a reset and keeps only a keyed hash of its code; the
notification service sends the SMS. Neither stores the code itself: it is derived from
the reset's random id under ``PASSWORD_RESET_KEY``, a secret both services hold
(``shared.dev_secrets`` loads it). The account service's log has the reset id and the hash; the
notification service's log has the SMS text with a placeholder naming the reset id
(``placeholder``), which is replaced by the code only on its way to the SMS gateway
(``reveal``). Without the key, neither log gives the code away.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re

CODE_DIGITS = 6
_MARK = re.compile(r"\[\[reset-code:([0-9a-f]{32})\]\]")


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


def reveal(text: str, key: bytes | None) -> str:
    """The text as it goes to the SMS gateway: every placeholder replaced by its code."""
    if key is None and _MARK.search(text):
        raise ValueError("a password-reset code cannot be sent without PASSWORD_RESET_KEY")
    return _MARK.sub(lambda m: code_for(key, m.group(1)), text)
