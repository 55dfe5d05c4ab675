"""Staff accounts in the account service, over real RabbitMQ and PostgreSQL (and SQLite):
made by an operator (``create_staff``), logging in like candidates, locked out the same way,
and kept in a read model that a rebuild reproduces (hypothesis, mixed with candidates)."""

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from nameko.testing.services import entrypoint_hook

from services.account.projection import AccountProjection
from services.account.service import AccountService
from shared.clock import ControlledClock
from shared.dependencies import EventStoreProvider
from shared.errors import KaowuError, NotFound, Refused, Unauthorized, ValidationFailed
from shared.projection import snapshot
from tests.integration.test_account_flow import CANDIDATE, SECTIONS
from tests.integration.test_account_rebuild import PEOPLE, resident_id

pytestmark = pytest.mark.integration

STAFF = {"username": "point2916_li", "password": "Str0ngpass", "name": "李老师", "role": "staff",
         "registration_point": "2916"}
AUTHORITY = {"username": "authority_wang", "password": "Auth0rity!", "name": "王处长",
             "role": "authority"}


@pytest.fixture(params=["postgresql", "sqlite"])
def account(request, container_factory, amqp_uri, tmp_path):
    url = (request.getfixturevalue("databases").new("staff") if request.param == "postgresql"
           else f"sqlite:///{tmp_path}/account.db")
    clock = ControlledClock()
    container = container_factory(AccountService, {
        "AMQP_URI": amqp_uri, "DATABASE_URL": url, "CLOCK": clock, "RELAY": False,
        "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 256}})
    container.start()
    container.clock = clock
    return container


def call(container, name, *args):
    with entrypoint_hook(container, name) as hook:
        return hook(*args)


def test_staff_accounts(account):
    # made by an operator; they log in like candidates and the answer names their role
    made = call(account, "create_staff", STAFF)
    assert {k: made[k] for k in ("username", "role", "registration_point")} == {
        "username": "point2916_li", "role": "staff", "registration_point": "2916"}
    boss = call(account, "create_staff", AUTHORITY)
    assert boss["registration_point"] is None
    candidate = call(account, "register", CANDIDATE)["account_id"]
    staff_id = made["account_id"]
    assert call(account, "login", {"username": "POINT2916_li", "password": "Str0ngpass"}) == {
        "account_id": staff_id, "name": "李老师", "username": "point2916_li",
        "role": "staff", "registration_point": "2916"}
    assert call(account, "login", {"username": "authority_wang", "password": "Auth0rity!"})[
        "role"] == "authority"
    me = call(account, "login", {"username": "zhangsan", "password": "secret123"})
    assert me == {"account_id": candidate, "name": "张三", "username": "zhangsan",
                  "role": "candidate", "registration_point": None, "completeness": 0}
    listed = call(account, "list_staff")
    assert [s["username"] for s in listed] == ["authority_wang", "point2916_li"]
    assert all("password" not in repr(s) for s in listed)
    assert call(account, "account_counts") == {
        "accounts": 1, "complete_profiles": 0, "incomplete_profiles": 1,
        "staff": {"staff": 1, "authority": 1, "operator": 0}}

    # one username namespace for candidates and staff, whichever came first
    with pytest.raises(Refused) as exc:
        call(account, "create_staff", {**STAFF, "username": "ZhangSan"})
    assert "username" in exc.value.fields
    with pytest.raises(Refused) as exc:
        call(account, "create_staff", {**AUTHORITY, "username": "point2916_LI"})
    assert "username" in exc.value.fields
    with pytest.raises(Refused) as exc:
        call(account, "register", {**CANDIDATE, "id_number": resident_id(7),
                                   "mobile": "13900139000", "username": "Point2916_li"})
    assert set(exc.value.fields) == {"username"}
    with pytest.raises(ValidationFailed) as exc:
        call(account, "create_staff", {**STAFF, "username": "someone", "registration_point": None})
    assert "registration_point" in exc.value.fields

    # failures lock nothing in the service (the gateway locks per username and address)
    for _ in range(6):
        with pytest.raises(Unauthorized):
            call(account, "login", {"username": "point2916_li", "password": "wrong1234"})
    assert call(account, "login", {"username": "point2916_li", "password": "Str0ngpass"})[
        "account_id"] == staff_id

    # their own password; no candidate profile
    call(account, "change_password", staff_id, {"old_password": "Str0ngpass",
                                                "new_password": "N3wpassword"})
    with pytest.raises(Unauthorized):
        call(account, "login", {"username": "point2916_li", "password": "Str0ngpass"})
    assert call(account, "login", {"username": "point2916_li", "password": "N3wpassword"})
    with pytest.raises(NotFound):
        call(account, "change_password", "nosuchaccount", {"old_password": "x",
                                                           "new_password": "N3wpassword2"})
    with pytest.raises(Refused):
        call(account, "update_profile_section", staff_id, "contact", SECTIONS["contact"])
    with pytest.raises(NotFound):
        call(account, "get_profile", staff_id)


STAFF_PEOPLE = [
    {"username": "staff_a", "password": "staffA123", "name": "甲", "role": "staff",
     "registration_point": "2916"},
    {"username": "boss_b", "password": "bossB1234", "name": "乙", "role": "authority"},
    {"username": "user0", "password": "clash1234", "name": "丙", "role": "operator"},  # a candidate's
]

commands = st.lists(st.one_of(
    st.tuples(st.just("register"), st.integers(0, 2)),
    st.tuples(st.just("staff"), st.integers(0, 2)),
    st.tuples(st.just("login"), st.sampled_from(["user0", "user1", "staff_a", "boss_b"]),
              st.booleans()),
    st.tuples(st.just("password"), st.integers(0, 1)),
    st.tuples(st.just("update"), st.integers(0, 2)),
    st.tuples(st.just("wait"), st.integers(1, 20)),
), min_size=1, max_size=20)

PASSWORDS = {p["username"]: p["password"] for p in PEOPLE + STAFF_PEOPLE[:2]}


def test_rebuild_equals_live_with_staff(account):
    store = next(d for d in account.dependencies if isinstance(d, EventStoreProvider)).store
    projection = next(p for p in store.projections if isinstance(p, AccountProjection))
    ids, staff_ids = {}, {}

    def attempt(name, *args):
        try:
            return call(account, name, *args)
        except KaowuError:
            return None

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(cmds=commands)
    # the staff paths every run, whatever else is drawn (8 random lists may hold no "staff")
    @example(cmds=[("register", 0), ("staff", 0), ("staff", 1), ("login", "staff_a", False),
                   ("wait", 5), ("password", 0), ("update", 1), ("login", "boss_b", True),
                   ("staff", 2)])
    def run(cmds):
        for cmd in cmds:
            match cmd:
                case ("register", i):
                    got = attempt("register", PEOPLE[i])
                    if got:
                        ids[i] = got["account_id"]
                case ("staff", i):
                    got = attempt("create_staff", STAFF_PEOPLE[i])
                    if got:
                        staff_ids[i] = got["account_id"]
                case ("login", username, right):
                    attempt("login", {"username": username,
                                      "password": PASSWORDS[username] if right else "wrong-pass1"})
                case ("password", i) if i in staff_ids:
                    attempt("change_password", staff_ids[i], {
                        "old_password": STAFF_PEOPLE[i]["password"], "new_password": "Changed123"})
                case ("update", i) if i in staff_ids:
                    attempt("update_profile_section", staff_ids[i], "contact", SECTIONS["contact"])
                case ("wait", minutes):
                    account.clock.advance(minutes=minutes)
        live = snapshot(store.engine, projection)
        projection.rebuild(store, batch=3)
        assert snapshot(store.engine, projection) == live

    run()
    assert staff_ids
