from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.account import domain
from services.account.identity import SHANGHAI
from services.account.schemas import REGISTRY
from shared.errors import Unauthorized, ValidationFailed
from shared.events import StoredEvent

NOW = datetime(2026, 4, 7, 10, 0, tzinfo=SHANGHAI)
VALID_ID = "11010519491231002X"  # born 1949-12-31, female
PHOTO = {"sha256": "a" * 64, "width": 295, "height": 413, "size": 6000}
BASIC = {"gender": "F", "birth_date": date(1949, 12, 31), "ethnicity": "汉族"}
EDUCATION = {
    "level": "本科",
    "school": "同济大学",
    "major": "测控技术与仪器",
    "major_category": "science_engineering",
    "graduated_on": date(1972, 7, 1),
}
DEGREE = {"degree": "学士", "school": "同济大学", "major": "测控", "awarded_on": date(1972, 7, 1)}
JOB = {
    "employer": "上海市计量院",
    "position": "工程师",
    "start": date(1972, 8, 1),
    "end": None,
    "metrology": True,
}
CONTACT = {"email": "li@example.cn", "address": "上海市徐汇区"}
FULL = {
    "photo": PHOTO,
    "basic": BASIC,
    "education": {"education": [EDUCATION], "degrees": []},
    "work": {"entries": [JOB]},
    "contact": CONTACT,
}


class History:
    """An in-memory account stream: validates, stores and folds what the domain emits."""

    def __init__(self):
        self.stored = []
        self.claims = []

    def append(self, events):
        for e in events:
            REGISTRY.validate(e.type, e.payload)  # the store would refuse a bad payload
            if not e.stream_id.startswith("account-"):
                self.claims.append(e)
                continue
            self.stored.append(
                StoredEvent(
                    position=len(self.stored) + 1,
                    stream_id=e.stream_id,
                    stream_version=len(self.stored) + 1,
                    type=e.type,
                    schema_version=REGISTRY.get(e.type).version,
                    payload=e.payload,
                )
            )
        return events

    @property
    def account(self):
        return domain.fold(self.stored)

    def types(self):
        return [e.type for e in self.stored]


def registered(id_type="resident_id", id_number=VALID_ID):
    h = History()
    data = {
        "name": "张三",
        "id_type": id_type,
        "id_number": id_number,
        "mobile": "13800138000",
        "username": "Zhang_San",
        "password": "secret123",
    }
    h.append(domain.register("a1", data, "$argon2id$hash", NOW))
    return h


def save(h, section, data, now=NOW):
    return [e.type for e in h.append(domain.update_section(h.account, section, data, now))]


# --- register and fold ------------------------------------------------------------------


def test_register_emits_account_events_and_hashed_claims():
    h = registered()
    assert h.types() == ["AccountRegistered", "CredentialsSet"]
    assert [e.type for e in h.claims] == ["IdNumberClaimed", "MobileClaimed", "UsernameClaimed"]
    for claim in h.claims:
        assert claim.payload == {"account_id": "a1"}
        assert VALID_ID not in claim.stream_id and "13800138000" not in claim.stream_id
        assert "zhang" not in claim.stream_id.lower()
    assert h.claims[0].stream_id == domain.id_claim_stream("resident_id", VALID_ID)
    assert h.claims[2].stream_id == domain.username_claim_stream("zhang_san")  # any case

    acc = h.account
    assert (acc.account_id, acc.version, acc.username, acc.id_type) == (
        "a1",
        2,
        "Zhang_San",
        "resident_id",
    )
    assert acc.password_hash == "$argon2id$hash"
    assert acc.registered_at == NOW
    assert (acc.completeness, acc.complete, acc.missing) == (0, False, list(domain.SECTIONS))


def test_claim_streams_differ_by_kind_and_value():
    streams = {
        domain.id_claim_stream("resident_id", VALID_ID),
        domain.id_claim_stream("passport", VALID_ID),
        domain.id_claim_stream("resident_id", VALID_ID.lower()),
        domain.mobile_claim_stream("13800138000"),
        domain.mobile_claim_stream("13800138001"),
    }
    assert len(streams) == 4  # lower-case x is the same number


def test_fold_of_nothing_is_none_and_events_need_a_registration():
    assert domain.fold([]) is None
    h = registered()
    with pytest.raises(ValueError):
        domain.fold(h.stored[1:])


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        domain.update_section(registered().account, "photo", PHOTO, datetime(2026, 4, 7))


# --- completeness -----------------------------------------------------------------------


def test_completeness_arithmetic():
    assert domain.completeness({}) == (0, ["photo", "basic", "education", "work", "contact"])
    assert domain.completeness({"photo": PHOTO, "contact": CONTACT}) == (
        40,
        ["basic", "education", "work"],
    )
    assert domain.completeness(FULL) == (100, [])
    assert domain.completeness({**FULL, "basic": {"gender": "F"}}) == (80, ["basic"])


def test_section_complete_rules():
    assert not domain.section_complete("education", {"education": [], "degrees": [DEGREE]})
    assert not domain.section_complete("education", {"education": [{"level": "本科"}]})
    assert not domain.section_complete("work", {"entries": []})
    assert not domain.section_complete("contact", {"email": "li@example.cn"})
    assert not domain.section_complete("photo", {})
    with pytest.raises(ValueError):
        domain.section_complete("hobbies", {})


def test_profile_completed_exactly_when_reaching_100():
    h = registered()
    for name in ("photo", "basic", "education", "work"):
        assert save(h, name, FULL[name]) == ["ProfileUpdated"]
    assert h.account.completeness == 80
    assert save(h, "contact", FULL["contact"]) == ["ProfileUpdated", "ProfileCompleted"]
    assert (h.account.completeness, h.account.complete) == (100, True)
    # still 100: no second ProfileCompleted
    assert save(h, "contact", {**CONTACT, "postcode": "200030"}) == ["ProfileUpdated"]


def test_profile_became_incomplete_when_falling_back():
    h = registered()
    for name, data in FULL.items():
        save(h, name, data)
    assert save(h, "basic", {"gender": "F"}) == ["ProfileUpdated", "ProfileBecameIncomplete"]
    last = h.stored[-1].payload
    assert last == {"account_id": "a1", "completeness": 80, "missing": ["basic"]}
    assert (h.account.completeness, h.account.complete) == (80, False)
    assert save(h, "basic", BASIC) == ["ProfileUpdated", "ProfileCompleted"]


def test_saving_the_same_content_emits_nothing():
    h = registered()
    save(h, "contact", CONTACT)
    assert save(h, "contact", dict(CONTACT)) == []
    save(h, "education", FULL["education"])
    assert save(h, "education", h.account.sections["education"]) == []


def test_profile_updated_carries_plain_whole_content():
    h = registered()
    save(h, "basic", BASIC)
    payload = h.stored[-1].payload
    assert payload["data"] == {"gender": "F", "birth_date": "1949-12-31", "ethnicity": "汉族"}
    assert (payload["section"], payload["completeness"]) == ("basic", 20)
    assert payload["missing"] == ["photo", "education", "work", "contact"]


def test_unknown_section_is_refused():
    with pytest.raises(ValidationFailed) as exc:
        domain.update_section(registered().account, "hobbies", {}, NOW)
    assert "section" in exc.value.fields


def test_photo_section_takes_check_photo_output_only():
    with pytest.raises(ValueError):
        domain.update_section(registered().account, "photo", {"jpeg": b"\xff\xd8"}, NOW)


# --- entries ------------------------------------------------------------------------------


def test_new_entries_get_deterministic_ids():
    h = registered()
    save(h, "education", {"education": [EDUCATION, EDUCATION], "degrees": [DEGREE]})
    saved = h.account.sections["education"]
    assert [e["entry_id"] for e in saved["education"]] == ["e1", "e2"]
    assert [e["entry_id"] for e in saved["degrees"]] == ["d1"]
    save(h, "education", {**saved, "education": [*saved["education"], EDUCATION]})
    assert [e["entry_id"] for e in h.account.sections["education"]["education"]] == [
        "e1",
        "e2",
        "e3",
    ]
    save(h, "work", {"entries": [JOB]})
    assert h.account.sections["work"]["entries"][0]["entry_id"] == "w1"


def test_saved_entries_can_be_edited():
    h = registered()
    save(h, "work", {"entries": [JOB]})
    edited = {**h.account.sections["work"]["entries"][0], "position": "高级工程师"}
    assert save(h, "work", {"entries": [edited]}) == ["ProfileUpdated"]
    assert h.account.sections["work"]["entries"] == [edited]


def test_saved_entries_cannot_be_deleted():
    h = registered()
    save(h, "education", {"education": [EDUCATION, EDUCATION], "degrees": []})
    first = h.account.sections["education"]["education"][0]
    with pytest.raises(ValidationFailed) as exc:
        domain.update_section(h.account, "education", {"education": [first], "degrees": []}, NOW)
    assert "cannot be deleted" in exc.value.fields["education"]
    assert "e2" in exc.value.fields["education"]
    save(h, "work", {"entries": [JOB]})
    with pytest.raises(ValidationFailed) as exc:
        domain.update_section(h.account, "work", {"entries": []}, NOW)
    assert "cannot be deleted" in exc.value.fields["entries"]


def test_unknown_and_duplicate_entry_ids_are_refused():
    h = registered()
    save(h, "work", {"entries": [JOB]})
    with pytest.raises(ValidationFailed, match="not valid") as exc:
        domain.update_section(
            h.account,
            "work",
            {"entries": [{**JOB, "entry_id": "w1"}, {**JOB, "entry_id": "w7"}]},
            NOW,
        )
    assert "unknown entry_id: w7" in exc.value.fields["entries"]
    with pytest.raises(ValidationFailed) as exc:
        domain.update_section(h.account, "work", {"entries": [{**JOB, "entry_id": "w1"}] * 2}, NOW)
    assert "twice" in exc.value.fields["entries"]


def test_five_entry_caps():
    h = registered()
    save(h, "education", {"education": [EDUCATION] * 5, "degrees": [DEGREE] * 5})
    saved = h.account.sections["education"]
    for key, what in (("education", "education"), ("degrees", "degree")):
        more = {**saved, key: [*saved[key], EDUCATION if key == "education" else DEGREE]}
        with pytest.raises(ValidationFailed) as exc:
            domain.update_section(h.account, "education", more, NOW)
        assert exc.value.fields == {key: f"at most 5 {what} entries"}
    with pytest.raises(ValidationFailed) as exc:
        domain.update_section(h.account, "work", {"entries": [JOB] * 11}, NOW)
    assert exc.value.fields == {"entries": "at most 10 work entries"}


# --- dates and identity -------------------------------------------------------------------


def test_future_dates_are_refused_in_beijing_time():
    h = registered(id_type="passport", id_number="E12345678")
    tomorrow = date(2026, 4, 8)
    with pytest.raises(ValidationFailed) as exc:
        domain.update_section(
            h.account, "work", {"entries": [JOB, {**JOB, "start": tomorrow}]}, NOW
        )
    assert exc.value.fields == {"entries.1.start": "must not be in the future"}
    with pytest.raises(ValidationFailed) as exc:
        domain.update_section(h.account, "basic", {"birth_date": tomorrow}, NOW)
    assert set(exc.value.fields) == {"birth_date"}
    # 2026-04-07 17:00 UTC is already 04-08 in Shanghai
    late = datetime(2026, 4, 7, 17, 0, tzinfo=UTC)
    assert save(h, "basic", {"birth_date": tomorrow}, late) == ["ProfileUpdated"]


def test_basic_must_agree_with_the_resident_id():
    h = registered()
    with pytest.raises(ValidationFailed) as exc:
        domain.update_section(
            h.account, "basic", {"gender": "M", "birth_date": date(1950, 1, 1)}, NOW
        )
    assert set(exc.value.fields) == {"gender", "birth_date"}
    assert save(h, "basic", BASIC) == ["ProfileUpdated"]
    # a passport number says nothing about birth date or gender
    p = registered(id_type="passport", id_number="E12345678")
    assert save(p, "basic", {"gender": "M", "birth_date": date(1950, 1, 1)}) == ["ProfileUpdated"]


# --- login ------------------------------------------------------------------------------


def fail(h, now):
    return h.append(domain.login_failed(h.account, now))


def test_lockout_after_five_failures_and_unlock_after_fifteen_minutes():
    h = registered()
    for i in range(1, 5):
        [event] = fail(h, NOW + timedelta(seconds=i))
        assert event.payload["failures"] == i and event.payload["locked_until"] is None
        assert not domain.is_locked(h.account, NOW + timedelta(seconds=i))
    at = NOW + timedelta(seconds=5)
    [event] = fail(h, at)
    assert event.payload["locked_until"] == (at + timedelta(minutes=15)).isoformat()
    assert domain.is_locked(h.account, at)
    assert domain.is_locked(h.account, at + timedelta(minutes=14, seconds=59))
    assert not domain.is_locked(h.account, at + timedelta(minutes=15))

    with pytest.raises(Unauthorized) as exc:
        domain.ensure_not_locked(h.account, at + timedelta(minutes=1))
    assert exc.value.error_code == "locked"
    assert "2026-04-07 10:16 (Beijing time)" in exc.value.message  # 10:15:05, rounded up
    with pytest.raises(Unauthorized):
        domain.login_failed(h.account, at + timedelta(minutes=1))  # no extension while locked

    # after the lockout the count starts over
    [event] = fail(h, at + timedelta(minutes=16))
    assert event.payload == {"account_id": "a1", "failures": 1, "locked_until": None}


def test_failures_without_a_lock_are_counted_up_to_a_bound():
    h = registered()
    for _ in range(domain.MAX_RECORDED_FAILURES):
        [event] = h.append(domain.login_failed(h.account, NOW, domain.COUNT_ONLY))
        assert event.payload["locked_until"] is None
    assert not domain.is_locked(h.account, NOW)
    assert domain.login_failed(h.account, NOW, domain.COUNT_ONLY) == []
    h.append(domain.login_succeeded(h.account))
    assert len(h.append(domain.login_failed(h.account, NOW, domain.COUNT_ONLY))) == 1


def test_lock_time_is_shown_in_beijing_time():
    h = registered()
    at = datetime(2026, 4, 7, 2, 0, tzinfo=UTC)
    for _ in range(5):
        fail(h, at)
    assert "2026-04-07 10:15 (Beijing time)" in domain.locked_error(h.account).message


def test_login_success_resets_failures():
    h = registered()
    assert domain.login_succeeded(h.account) == []
    fail(h, NOW)
    fail(h, NOW)
    [event] = h.append(domain.login_succeeded(h.account))
    assert event.type == "LoginFailuresReset"
    assert (h.account.failures, h.account.locked_until) == (0, None)


def test_custom_login_policy():
    h = registered()
    policy = domain.LoginPolicy(max_failures=2, lockout=timedelta(hours=1))
    h.append(domain.login_failed(h.account, NOW, policy))
    h.append(domain.login_failed(h.account, NOW, policy))
    assert h.account.locked_until == NOW + timedelta(hours=1)


def test_change_password():
    h = registered()
    [event] = h.append(domain.change_password(h.account, "$argon2id$new", NOW))
    assert event.type == "PasswordChanged"
    assert h.account.password_hash == "$argon2id$new"
    assert h.account.credentials_changed_at == NOW
    assert h.account.version == 3


# --- property: fold agrees with the decisions ---------------------------------------------

_dates = st.dates(min_value=date(1950, 1, 1), max_value=date(2026, 4, 7))
_text = st.sampled_from(["甲", "乙", "丙"])


def _draft_or_full(d):
    # mostly whole forms, sometimes drafts: completeness should go up and come down
    return st.one_of(st.fixed_dictionaries(d), st.fixed_dictionaries({}, optional=d))


_flat_sections = {
    "photo": st.fixed_dictionaries(
        {
            "sha256": st.sampled_from(["a" * 64, "b" * 64]),
            "width": st.just(295),
            "height": st.just(413),
            "size": st.integers(1024, 204800),
        }
    ),
    "basic": _draft_or_full(
        {"gender": st.just("F"), "birth_date": st.just(date(1949, 12, 31)), "ethnicity": _text}
    ),
    "contact": _draft_or_full(
        {"email": st.just("li@example.cn"), "address": _text, "postcode": st.just("200030")}
    ),
}
_new_entry = {
    "education": st.fixed_dictionaries(
        {k: st.just(v) for k, v in EDUCATION.items() if k != "school"} | {"school": _text}
    ),
    "degrees": st.fixed_dictionaries({k: st.just(v) for k, v in DEGREE.items()}),
    "entries": st.fixed_dictionaries(
        {
            "employer": _text,
            "position": _text,
            "start": _dates,
            "end": st.none(),
            "metrology": st.booleans(),
        }
    ),
}
_list_keys = {"education": ("education", "degrees"), "work": ("entries",)}
_caps = {"education": 5, "degrees": 5, "entries": 10}


@st.composite
def _updates(draw):
    """(section, data, how many new entries per list key, edits) for a random save."""
    section = draw(st.sampled_from(domain.SECTIONS))
    if section in _flat_sections:
        return section, draw(_flat_sections[section]), {}
    new = {
        key: st.lists(_new_entry[key], min_size=1, max_size=2) | st.just([])
        for key in _list_keys[section]
    }
    plan = {key: (draw(new[key]), draw(_text)) for key in _list_keys[section]}
    return section, None, plan


@settings(max_examples=150, deadline=None)
@given(st.lists(_updates(), min_size=8, max_size=30))
def test_fold_agrees_with_completeness(updates):
    h = registered()
    for section, data, plan in updates:
        if data is None:  # a list section: keep (maybe edit) every saved entry, maybe add new ones
            saved = h.account.sections.get(section, {})
            data = {}
            for key, (new, school) in plan.items():
                kept = [{**e, "school": school} if "school" in e else e for e in saved.get(key, [])]
                data[key] = (kept + new)[: max(len(kept), _caps[key])]
        h.append(domain.update_section(h.account, section, data, NOW))

    acc = h.account
    percent, missing = domain.completeness(acc.sections)
    assert (acc.completeness, acc.missing) == (percent, missing)
    types = h.types()
    assert types.count("ProfileCompleted") - types.count("ProfileBecameIncomplete") == (
        1 if percent == 100 else 0
    )
    assert acc.complete == (percent == 100)
    assert acc.version == len(h.stored)
    event(f"completed {types.count('ProfileCompleted')}x, now {percent}%")
