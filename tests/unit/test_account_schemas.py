import base64
from datetime import date

import pytest
from marshmallow import ValidationError

from services.account.identity import check_digit
from services.account.schemas import (
    PRIVATE,
    REGISTRY,
    SECTION_SCHEMAS,
    ChangePasswordSchema,
    LoginSchema,
    RegisterSchema,
)
from shared.contracts import INTEGRATION
from shared.errors import ValidationFailed

VALID_ID = "11010519491231002X"
TODAY = date(2026, 4, 7)


def register_input(**changes):
    data = {
        "name": "张三",
        "id_type": "resident_id",
        "id_number": VALID_ID,
        "mobile": "13800138000",
        "username": "zhang_san",
        "password": "secret123",
    }
    return {**data, **changes}


def errors(schema, data):
    """marshmallow's error messages for ``data`` (the test fails if it loads)."""
    with pytest.raises(ValidationError) as exc:
        schema.load(data)
    return exc.value.messages


def section(name, data):
    return SECTION_SCHEMAS[name]().load(data)


def section_errors(name, data):
    return errors(SECTION_SCHEMAS[name](), data)


# --- register ---------------------------------------------------------------------------


def test_register_normalizes():
    out = RegisterSchema(today=TODAY).load(
        register_input(
            name="  阿依古丽•买买提 ",
            id_number=" 11010519491231002x",
            mobile="+86 138 0013 8000",
            username=" Zhang_San ",
        )
    )
    assert out == {
        "name": "阿依古丽·买买提",
        "id_type": "resident_id",
        "id_number": VALID_ID,
        "mobile": "13800138000",
        "username": "Zhang_San",  # display form kept; uniqueness is by username_key
        "password": "secret123",
    }


def test_register_reports_every_bad_field_at_once():
    messages = errors(
        RegisterSchema(),
        {"name": "", "id_type": "resident_id", "id_number": "123", "mobile": "123"},
    )
    assert set(messages) == {"name", "id_number", "mobile", "username", "password"}


@pytest.mark.parametrize(
    ("id_number", "message"),
    [
        ("1101051949123100", "18 characters"),
        (VALID_ID[:17] + "1", "check digit"),
        ("11010519990230" + "002", "not a real date"),
        ("11010520270101" + "002", "out of range"),
    ],
)
def test_register_id_number_messages(id_number, message):
    if len(id_number) == 17:
        id_number += check_digit(id_number)  # so only the date is wrong
    messages = errors(RegisterSchema(today=TODAY), register_input(id_number=id_number))
    assert message in messages["id_number"][0]


def test_register_other_id_types():
    out = RegisterSchema().load(register_input(id_type="passport", id_number="e1234567"))
    assert out["id_number"] == "E1234567"
    out = RegisterSchema().load(register_input(id_type="hk_macao_permit", id_number="H12345678"))
    assert out["id_number"] == "H12345678"
    messages = errors(
        RegisterSchema(), register_input(id_type="taiwan_permit", id_number="A1234567")
    )
    assert "Taiwan" in messages["id_number"][0]
    messages = errors(RegisterSchema(), register_input(id_type="id_card"))
    assert set(messages) == {"id_type"}


@pytest.mark.parametrize(
    "name",
    ["张三3", "a" * 51, "张\u0000三", "张\u200b三", "·张三", "Zhang_San", "张三!", "   "],
)
def test_register_bad_names(name):
    assert "name" in errors(RegisterSchema(), register_input(name=name))


@pytest.mark.parametrize("name", ["欧阳娜娜", "Jean-Luc O'Neil", "José Núñez", "买买提·艾力"])
def test_register_good_names(name):
    assert RegisterSchema().load(register_input(name=name))["name"] == name


@pytest.mark.parametrize("username", ["abc", "a" * 33, "zhang san", "张三abcd", "zhang-san"])
def test_register_bad_usernames(username):
    assert "username" in errors(RegisterSchema(), register_input(username=username))


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("abc123", "at least 8"),
        ("a1" * 33, "at most 64"),
        ("abcdefgh", "one letter and one digit"),
        ("12345678", "one letter and one digit"),
        ("secret12\n", "control"),
        ("zhang_san1", None),
    ],
)
def test_register_bad_passwords(password, message):
    messages = errors(RegisterSchema(), register_input(password=password, username="Zhang_San1"))
    if message:
        assert message in messages["password"][0]
    else:
        assert "same as the username" in messages["password"][0]


def test_password_keeps_surrounding_spaces():
    assert (
        RegisterSchema().load(register_input(password=" secret123 "))["password"] == " secret123 "
    )


def test_register_refuses_unknown_fields():
    assert errors(RegisterSchema(), register_input(is_admin=True)) == {
        "is_admin": ["Unknown field."]
    }


def test_login_has_no_strength_rules():
    assert LoginSchema().load({"username": "zhang_san ", "password": "old"}) == {
        "username": "zhang_san",
        "password": "old",
    }
    assert set(errors(LoginSchema(), {"username": "", "password": ""})) == {"username", "password"}


def test_change_password():
    out = ChangePasswordSchema().load({"old_password": "old", "new_password": "newer123"})
    assert out["new_password"] == "newer123"
    assert "new_password" in errors(
        ChangePasswordSchema(), {"old_password": "newer123", "new_password": "newer123"}
    )
    assert "new_password" in errors(
        ChangePasswordSchema(), {"old_password": "old", "new_password": "short1"}
    )


# --- sections ---------------------------------------------------------------------------


def test_every_section_has_a_schema():
    assert set(SECTION_SCHEMAS) == {"photo", "basic", "education", "work", "contact"}


def test_basic_draft_drops_blanks():
    assert section("basic", {"gender": "F", "ethnicity": " ", "political_status": None}) == {
        "gender": "F"
    }
    assert section("basic", {}) == {}


def test_basic_full():
    out = section(
        "basic",
        {
            "gender": "M",
            "birth_date": "1990-03-07",
            "ethnicity": "汉族",
            "political_status": "群众",
        },
    )
    assert out["birth_date"] == date(1990, 3, 7)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"gender": "X"}, "gender"),
        ({"birth_date": "1990-02-30"}, "birth_date"),
        ({"birth_date": "1899-12-31"}, "birth_date"),
        ({"ethnicity": "汉" * 21}, "ethnicity"),
        ({"political_status": "群" * 21}, "political_status"),
        ({"ethnicity": "汉\t族"}, "ethnicity"),
        ({"hobby": "chess"}, "hobby"),
    ],
)
def test_basic_refusals(data, field):
    assert set(section_errors("basic", data)) == {field}


EDUCATION = {
    "level": "本科",
    "school": "同济大学",
    "major": "测控技术与仪器",
    "major_category": "science_engineering",
    "graduated_on": "2012-07-01",
}
DEGREE = {
    "degree": "学士",
    "school": "同济大学",
    "major": "测控技术与仪器",
    "awarded_on": "2012-07-01",
}


def test_education_loads_and_defaults_missing_lists():
    out = section("education", {"education": [{**EDUCATION, "certificate_no": ""}]})
    assert out["degrees"] == []
    assert out["education"][0]["graduated_on"] == date(2012, 7, 1)
    assert "certificate_no" not in out["education"][0]
    assert section("education", {}) == {"education": [], "degrees": []}


@pytest.mark.parametrize("level", ["中专", "大专", "本科", "双学士", "研究生班", "硕士", "博士"])
def test_education_levels(level):
    assert section("education", {"education": [{**EDUCATION, "level": level}]})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"level": "高中"}, "level"),
        ({"major_category": "arts"}, "major_category"),
        ({"school": ""}, "school"),
        ({"graduated_on": "yesterday"}, "graduated_on"),
        ({"major": "m" * 61}, "major"),
    ],
)
def test_education_entry_refusals(change, field):
    messages = section_errors("education", {"education": [{**EDUCATION, **change}]})
    assert set(messages["education"][0]) == {field}


def test_education_entry_needs_its_required_fields():
    messages = section_errors("education", {"education": [{"level": "本科"}]})
    assert set(messages["education"][0]) == {"school", "major", "major_category", "graduated_on"}


def test_degree_refusals():
    messages = section_errors("education", {"degrees": [{**DEGREE, "degree": "副学士"}]})
    assert set(messages["degrees"][0]) == {"degree"}


def test_at_most_five_education_and_degree_entries():
    assert section("education", {"education": [EDUCATION] * 5, "degrees": [DEGREE] * 5})
    messages = section_errors("education", {"education": [EDUCATION] * 6, "degrees": [DEGREE] * 6})
    assert messages == {
        "education": ["at most 5 education entries"],
        "degrees": ["at most 5 degree entries"],
    }


JOB = {
    "employer": "上海市计量测试技术研究院",
    "position": "工程师",
    "start": "2012-08-01",
    "metrology": True,
}


def test_work_end_empty_means_current():
    out = section("work", {"entries": [{**JOB, "end": None}, {**JOB, "end": ""}, JOB]})
    assert [e["end"] for e in out["entries"]] == [None, None, None]


def test_work_end_before_start_is_refused():
    messages = section_errors("work", {"entries": [{**JOB, "end": "2012-07-31"}]})
    assert messages == {"entries": {0: {"end": ["the end date must not be before the start date"]}}}
    assert section("work", {"entries": [{**JOB, "end": "2012-08-01"}]})


def test_work_refusals():
    assert (
        "metrology"
        in section_errors("work", {"entries": [{**JOB, "metrology": None}]})["entries"][0]
    )
    assert (
        "metrology"
        in section_errors("work", {"entries": [{**JOB, "metrology": "maybe"}]})["entries"][0]
    )
    assert section_errors("work", {"entries": [JOB] * 11}) == {
        "entries": ["at most 10 work entries"]
    }


def test_contact():
    out = section(
        "contact",
        {"email": " li@example.cn ", "address": "上海市徐汇区", "postcode": "200030", "phone": ""},
    )
    assert out == {"email": "li@example.cn", "address": "上海市徐汇区", "postcode": "200030"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"address": "路" * 101}, "address"),
        ({"postcode": "20003"}, "postcode"),
        ({"postcode": "２０００３０"}, "postcode"),
        ({"phone": "call me"}, "phone"),
    ],
)
def test_contact_refusals(data, field):
    assert set(section_errors("contact", data)) == {field}


def test_photo_input():
    b64 = base64.b64encode(b"\xff\xd8jpeg").decode()
    assert section("photo", {"jpeg_base64": b64}) == {"jpeg_base64": b64}
    wrapped = "data:image/jpeg;base64," + b64[:4] + "\n" + b64[4:]
    assert section("photo", {"jpeg_base64": wrapped}) == {"jpeg_base64": b64}
    assert "not valid base64" in section_errors("photo", {"jpeg_base64": "***"})["jpeg_base64"][0]
    assert "too large" in section_errors("photo", {"jpeg_base64": "A" * 300_004})["jpeg_base64"][0]
    assert set(section_errors("photo", {})) == {"jpeg_base64"}


# --- contracts and private events -------------------------------------------------------

REGISTERED_V1 = {
    "account_id": "a1",
    "username": "zhang_san",
    "name": "张三",
    "id_number": VALID_ID,
    "mobile": "13800138000",
    "registered_at": "2026-04-07T10:00:00+08:00",
}


def test_account_registered_v1_upcasts_to_v2():
    assert INTEGRATION.get("AccountRegistered").version == 2
    version, payload = INTEGRATION.upcast("AccountRegistered", 1, REGISTERED_V1)
    assert version == 2
    assert payload == {**REGISTERED_V1, "id_type": "resident_id"}
    assert INTEGRATION.validate("AccountRegistered", payload) == payload
    with pytest.raises(ValidationFailed):
        INTEGRATION.validate("AccountRegistered", REGISTERED_V1)  # v1 shape is not current


def test_registered_at_must_be_aware():
    payload = {**REGISTERED_V1, "id_type": "passport", "registered_at": "2026-04-07T10:00:00"}
    with pytest.raises(ValidationFailed):
        INTEGRATION.validate("AccountRegistered", payload)


def test_profile_updated_photo_never_carries_bytes():
    payload = {
        "account_id": "a1",
        "section": "photo",
        "data": {"sha256": "ab", "width": 295, "height": 413, "size": 5000},
        "completeness": 20,
        "missing": ["basic", "education", "work", "contact"],
    }
    assert INTEGRATION.validate("ProfileUpdated", payload)
    with pytest.raises(ValidationFailed):
        INTEGRATION.validate(
            "ProfileUpdated", {**payload, "data": {**payload["data"], "jpeg": "..."}}
        )


def test_completion_events_are_bounded():
    assert INTEGRATION.validate("ProfileCompleted", {"account_id": "a1", "completeness": 100})
    with pytest.raises(ValidationFailed):
        INTEGRATION.validate("ProfileCompleted", {"account_id": "a1", "completeness": 80})
    with pytest.raises(ValidationFailed):
        INTEGRATION.validate(
            "ProfileBecameIncomplete", {"account_id": "a1", "completeness": 100, "missing": []}
        )
    with pytest.raises(ValidationFailed):
        INTEGRATION.validate(
            "ProfileBecameIncomplete",
            {"account_id": "a1", "completeness": 80, "missing": ["bogus"]},
        )


def test_private_events_stay_private():
    names = {
        "CredentialsSet",
        "PasswordChanged",
        "LoginFailed",
        "LoginFailuresReset",
        "IdNumberClaimed",
        "MobileClaimed",
        "UsernameClaimed",
        "PasswordResetRequested",  # the code's hash stays in the service
        "PasswordResetCodeRejected",
        "PasswordReset",
    }
    assert set(PRIVATE.names()) == names
    for name in names:
        assert REGISTRY.public_payload(name, {"account_id": "a1"}) is None
        assert name not in INTEGRATION
    assert REGISTRY.public_payload("ProfileCompleted", {"account_id": "a1"}) == {"account_id": "a1"}
    locked = {"account_id": "a1", "failures": 5, "locked_until": "2026-04-07T10:15:00+08:00"}
    assert REGISTRY.validate("LoginFailed", locked)
    assert REGISTRY.validate("LoginFailed", {**locked, "failures": 1, "locked_until": None})
