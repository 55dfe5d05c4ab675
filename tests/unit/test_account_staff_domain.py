"""Staff accounts (工作人员账号) in the account aggregate: pure decisions and the input schema."""

from datetime import datetime, timedelta

import pytest

from services.account import domain
from services.account.identity import SHANGHAI
from services.account.schemas import REGISTRY, CreateStaffSchema
from shared.errors import Refused, Unauthorized, ValidationFailed
from shared.events import StoredEvent
from shared.service import load

NOW = datetime(2026, 4, 7, 10, 0, tzinfo=SHANGHAI)
STAFF = {"username": "point2916_li", "password": "Str0ngpass", "name": "李老师", "role": "staff",
         "registration_point": "2916"}


def stored(events):
    """The events as the store would give them back on the account's stream."""
    out, versions = [], {}
    for i, e in enumerate(events, 1):
        versions[e.stream_id] = versions.get(e.stream_id, 0) + 1
        REGISTRY.validate(e.type, e.payload)
        out.append(StoredEvent(i, e.stream_id, versions[e.stream_id], e.type, 1, e.payload))
    return out


def staff_account(data=STAFF):
    events = domain.create_staff("s1", load(CreateStaffSchema(), data), "hash", NOW)
    return domain.fold([e for e in stored(events) if e.stream_id == domain.account_stream("s1")])


def test_create_staff_emits_private_account_credentials_and_username_claim():
    events = domain.create_staff("s1", load(CreateStaffSchema(), STAFF), "argon2-hash", NOW)
    assert [e.type for e in events] == ["StaffAccountCreated", "CredentialsSet", "UsernameClaimed"]
    assert events[0].payload == {"account_id": "s1", "username": "point2916_li", "name": "李老师",
                                 "role": "staff", "registration_point": "2916",
                                 "created_at": NOW.isoformat()}
    # the same claim stream as a candidate's username: one namespace for all who log in
    assert events[2].stream_id == domain.username_claim_stream("POINT2916_LI")
    for e in events:  # none of it is published with its payload
        assert not REGISTRY.get(e.type).public


def test_fold_staff_account():
    acc = staff_account()
    assert (acc.role, acc.registration_point, acc.username, acc.password_hash) == (
        "staff", "2916", "point2916_li", "hash")
    assert acc.version == 2 and acc.registered_at == NOW


@pytest.mark.parametrize("role", ["authority", "operator"])
def test_other_roles_have_no_point(role):
    acc = staff_account({**STAFF, "role": role, "registration_point": None, "username": "boss_1"})
    assert acc.role == role and acc.registration_point is None


def test_staff_lockout_works_as_for_candidates():
    created = domain.create_staff("s1", load(CreateStaffSchema(), STAFF), "hash", NOW)
    log = [e for e in created if e.stream_id == domain.account_stream("s1")]
    acc = domain.fold(stored(log))
    for _ in range(5):
        log += domain.login_failed(acc, NOW)
        acc = domain.fold(stored(log))
    assert acc.failures == 5 and acc.locked_until == NOW + timedelta(minutes=15)
    with pytest.raises(Unauthorized) as exc:
        domain.ensure_not_locked(acc, NOW + timedelta(minutes=14))
    assert exc.value.error_code == "locked"
    domain.ensure_not_locked(acc, NOW + timedelta(minutes=15))
    log += domain.login_succeeded(acc)
    assert domain.fold(stored(log)).failures == 0


def test_staff_have_no_candidate_profile():
    with pytest.raises(Refused):
        domain.update_section(staff_account(), "contact", {"email": "a@b.cn"}, NOW)


@pytest.mark.parametrize("change, field", [
    ({"role": "staff", "registration_point": None}, "registration_point"),
    ({"role": "staff", "registration_point": "29 16"}, "registration_point"),
    ({"role": "authority", "registration_point": "2916"}, "registration_point"),
    ({"role": "candidate"}, "role"),
    ({"role": "admin"}, "role"),
    ({"password": "short1"}, "password"),
    ({"password": "onlyletters"}, "password"),
    ({"password": "Point2916_li"}, "password"),  # the username again
    ({"username": "a b"}, "username"),
    ({"name": "\u202e李"}, "name"),
])
def test_create_staff_schema_refuses(change, field):
    with pytest.raises(ValidationFailed) as exc:
        load(CreateStaffSchema(), {**STAFF, **change})
    assert field in exc.value.fields


def test_create_staff_schema_accepts_and_defaults():
    got = load(CreateStaffSchema(), {"username": "operator1", "password": "0perat0r!",
                                     "name": "王运维", "role": "operator"})
    assert got["registration_point"] is None
