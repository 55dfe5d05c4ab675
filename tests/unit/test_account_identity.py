from datetime import date

import pytest

from services.account.identity import (
    check_digit,
    resident_id_birth_date,
    resident_id_gender,
    username_key,
    validate_id_number,
    validate_mobile,
    validate_resident_id,
)

KNOWN_VALID = "11010519491231002X"  # the GB 11643 standard's own example


def make_id(region="310104", born="19900307", seq="123"):
    first17 = region + born + seq
    return first17 + check_digit(first17)


def test_known_example_check_digit():
    assert check_digit(KNOWN_VALID[:17]) == "X"
    assert validate_resident_id(KNOWN_VALID) == KNOWN_VALID


@pytest.mark.parametrize(
    ("first17", "expected"),
    [("34052419800101001", "X"), ("44030419880229003", None), ("11010119900307803", None)],
)
def test_check_digit_matches_the_weighted_sum(first17, expected):
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    assert check_digit(first17) == "10X98765432"[total % 11]
    if expected:
        assert check_digit(first17) == expected


def test_lowercase_x_and_surrounding_space_are_normalized():
    assert validate_resident_id(" 11010519491231002x ") == KNOWN_VALID


def test_full_width_digits_are_folded_to_ascii():
    wide = "".join(chr(ord(c) + 0xFEE0) for c in KNOWN_VALID)
    assert validate_resident_id(wide) == KNOWN_VALID


def test_computed_ids_are_valid():
    for born in ("19000101", "19491001", "20000229", "20100630"):
        s = make_id(born=born)
        assert validate_resident_id(s, today=date(2026, 4, 7)) == s


def test_flipped_check_digit_is_refused():
    wrong = KNOWN_VALID[:17] + "1"
    with pytest.raises(ValueError, match="check digit"):
        validate_resident_id(wrong)


def test_a_changed_digit_is_caught_by_the_check_digit():
    s = make_id()
    typo = s[:15] + str((int(s[15]) + 1) % 10) + s[16:]
    with pytest.raises(ValueError, match="check digit"):
        validate_resident_id(typo)


@pytest.mark.parametrize(
    "s",
    [
        "11010519491231002",  # 17 characters
        "11010519491231002XX",  # 19
        "01010519491231002X",  # region code starts with 0
        "1101051949123100X2",  # X in the middle
        "11010519491231002Y",
        "",
    ],
)
def test_format_errors(s):
    with pytest.raises(ValueError, match="18 characters"):
        validate_resident_id(s)


def test_impossible_birth_date_is_refused():
    s = make_id(born="19990230")
    with pytest.raises(ValueError, match="not a real date"):
        validate_resident_id(s)


def test_future_birth_date_is_refused():
    s = make_id(born="20260408")
    with pytest.raises(ValueError, match="birth date"):
        validate_resident_id(s, today=date(2026, 4, 7))
    assert validate_resident_id(s, today=date(2026, 4, 8)) == s


def test_birth_date_before_1900_is_refused():
    with pytest.raises(ValueError, match="birth date"):
        validate_resident_id(make_id(born="18991231"))


def test_birth_date_and_gender_are_read_from_the_number():
    assert resident_id_birth_date(KNOWN_VALID) == date(1949, 12, 31)
    assert resident_id_gender(KNOWN_VALID) == "F"  # 17th digit 2: even
    assert resident_id_gender(make_id(seq="123")) == "M"


@pytest.mark.parametrize(
    ("id_type", "raw", "normalized"),
    [
        ("passport", "e12345678", "E12345678"),
        ("passport", "AB123", "AB123"),
        ("hk_macao_permit", "H12345678", "H12345678"),
        ("hk_macao_permit", "m1234567801", "M1234567801"),
        ("taiwan_permit", "12345678", "12345678"),
        ("taiwan_permit", "1234567890", "1234567890"),
        ("resident_id", KNOWN_VALID.lower(), KNOWN_VALID),
    ],
)
def test_valid_numbers_per_type(id_type, raw, normalized):
    assert validate_id_number(id_type, raw) == normalized


@pytest.mark.parametrize(
    ("id_type", "raw"),
    [
        ("passport", "AB12"),  # too short
        ("passport", "A" * 18),  # too long
        ("passport", "AB-1234"),
        ("hk_macao_permit", "X12345678"),
        ("hk_macao_permit", "H123456789"),  # 9 digits
        ("taiwan_permit", "123456789"),
        ("taiwan_permit", "T1234567"),
        ("driving_licence", "12345678"),
    ],
)
def test_invalid_numbers_per_type(id_type, raw):
    with pytest.raises(ValueError):
        validate_id_number(id_type, raw)


@pytest.mark.parametrize(
    "raw",
    ["13800138000", "+8613800138000", "86 138 0013 8000", "0086-138-0013-8000", "19912345678"],
)
def test_valid_mobiles(raw):
    assert validate_mobile(raw) in ("13800138000", "19912345678")


@pytest.mark.parametrize(
    "raw", ["12800138000", "1380013800", "138001380001", "+85213800138000", "021-12345678", "abc"]
)
def test_invalid_mobiles(raw):
    with pytest.raises(ValueError, match="mobile"):
        validate_mobile(raw)


def test_username_key_is_case_insensitive():
    assert username_key(" Zhang_San ") == username_key("zhang_san") == "zhang_san"
