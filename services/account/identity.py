"""Identity documents and contact numbers: pure checks and normalization (masking them for
display is ``shared.masking``).

证件号码 (ID numbers) and 手机号 (mobile numbers) are validated here, away from marshmallow,
so the rules can be tested on their own and reused by the domain. Every ``validate_*``
function returns the normalized value or raises ``ValueError`` with a message fit for the
candidate.
"""

import re
import unicodedata
from datetime import date, datetime
from zoneinfo import ZoneInfo

from shared.contracts.account import ID_TYPES  # 居民身份证, 护照, 港澳/台湾通行证

SHANGHAI = ZoneInfo("Asia/Shanghai")

# GB 11643-1999: ISO 7064 MOD 11-2 over the first 17 digits
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_EARLIEST_BIRTH = date(1900, 1, 1)

_RESIDENT_ID = re.compile(r"[1-9]\d{16}[\dX]", re.ASCII)
_OTHER_ID = {
    "passport": (re.compile(r"[A-Z0-9]{5,17}"), "a passport number is 5–17 letters or digits"),
    "hk_macao_permit": (
        re.compile(r"[HM]\d{8}(\d{2})?", re.ASCII),
        "a Hong Kong/Macao permit number is H or M followed by 8 or 10 digits",
    ),
    "taiwan_permit": (
        re.compile(r"\d{8}(\d{2})?", re.ASCII),
        "a Taiwan permit number is 8 or 10 digits",
    ),
}
_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)


def _clean(s: str) -> str:
    # NFKC folds full-width digits and letters (common with Chinese input methods) to ASCII
    return unicodedata.normalize("NFKC", s).strip().upper()


def today_in_shanghai() -> date:
    """Fallback 'today' for callers that have no clock to pass (the candidate's calendar)."""
    return datetime.now(SHANGHAI).date()


def check_digit(first17: str) -> str:
    """The GB 11643 check character (校验码) for the first 17 digits of a resident ID."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("the first 17 characters must be digits")
    return _CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def resident_id_birth_date(s: str) -> date:
    """The birth date embedded in a resident ID (characters 7–14); ``ValueError`` if not a date."""
    try:
        return date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise ValueError("the birth date in the ID number is not a real date") from None


def resident_id_gender(s: str) -> str:
    """'M' or 'F': the 17th character (顺序码 last digit) is odd for men, even for women."""
    return "M" if int(s[16]) % 2 else "F"


def validate_resident_id(s: str, today: date | None = None) -> str:
    """A mainland 居民身份证 number, normalized (upper-case X); ``ValueError`` otherwise."""
    s = _clean(s)
    if not _RESIDENT_ID.fullmatch(s):
        raise ValueError(
            "a resident ID number is 18 characters: 17 digits (not starting with 0) "
            "then a digit or X"
        )
    born = resident_id_birth_date(s)
    if born < _EARLIEST_BIRTH or born > (today or today_in_shanghai()):
        raise ValueError("the birth date in the ID number is out of range")
    if check_digit(s[:17]) != s[17]:
        raise ValueError("the ID number's check digit is wrong; please check for a typo")
    return s


def validate_id_number(id_type: str, s: str, today: date | None = None) -> str:
    """The ID number normalized for its type (upper case); ``ValueError`` if it is not valid."""
    if id_type not in ID_TYPES:
        raise ValueError(f"unknown ID type {id_type!r}")
    if id_type == "resident_id":
        return validate_resident_id(s, today)
    pattern, message = _OTHER_ID[id_type]
    s = _clean(s)
    if not pattern.fullmatch(s):
        raise ValueError(message)
    return s


def validate_mobile(s: str) -> str:
    """A mainland mobile number as 11 digits; accepts +86/0086/86 and spaces or hyphens."""
    digits = re.sub(r"[\s-]", "", _clean(s))
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    if not _MOBILE.fullmatch(digits):
        raise ValueError("a mobile number is 11 digits starting with 13–19 (mainland China)")
    return digits


def username_key(username: str) -> str:
    """The case-insensitive key usernames are unique by; the display form keeps its case."""
    return username.strip().lower()
