"""Rebuild equals the live read model after random command sequences (hypothesis)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nameko.testing.services import entrypoint_hook

from services.account.identity import check_digit
from services.account.projection import AccountProjection
from services.account.service import AccountService
from shared.clock import ControlledClock
from shared.dependencies import EventStoreProvider
from shared.errors import KaowuError
from shared.projection import snapshot
from tests.integration.test_account_flow import SECTIONS, jpeg

pytestmark = pytest.mark.integration


def resident_id(i):
    first17 = f"310104{1980 + i:04d}0101{100 + i:03d}"
    return first17 + check_digit(first17)


PEOPLE = [{"name": f"测试{'甲乙丙'[i]}", "id_type": "resident_id", "id_number": resident_id(i),
           "mobile": f"1390000000{i}", "username": f"user{i}", "password": f"pass{i}word9"}
          for i in range(3)]
PHOTO = jpeg()

commands = st.lists(st.one_of(
    st.tuples(st.just("register"), st.integers(0, 2)),
    st.tuples(st.just("update"), st.integers(0, 2),
              st.sampled_from(["photo", "basic", "education", "work", "contact", "blank"])),
    st.tuples(st.just("login"), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("wait"), st.integers(1, 20)),
), min_size=1, max_size=25)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_rebuild_equals_live_after_random_commands(container_factory, amqp_uri, tmp_path,
                                                   backend, request):
    url = (request.getfixturevalue("databases").new("rb") if backend == "postgresql"
           else f"sqlite:///{tmp_path}/account.db")
    clock = ControlledClock()
    container = container_factory(AccountService, {
        "AMQP_URI": amqp_uri, "DATABASE_URL": url, "CLOCK": clock, "RELAY": False,
        "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 256}})
    container.start()
    store = next(d for d in container.dependencies if isinstance(d, EventStoreProvider)).store
    projection = next(p for p in store.projections if isinstance(p, AccountProjection))
    ids = {}

    def call(name, *args):
        with entrypoint_hook(container, name) as hook:
            try:
                return hook(*args)
            except KaowuError:
                return None

    @settings(max_examples=12 if backend == "sqlite" else 6, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(cmds=commands)
    def run(cmds):
        for cmd in cmds:
            if cmd[0] == "register":
                got = call("register", PEOPLE[cmd[1]])
                if got:
                    ids[cmd[1]] = got["account_id"]
            elif cmd[0] == "update" and cmd[1] in ids:
                section = cmd[2]
                if section == "photo":
                    call("update_profile_section", ids[cmd[1]], "photo", {"jpeg_base64": PHOTO})
                elif section == "blank":  # a draft that empties the contact section
                    call("update_profile_section", ids[cmd[1]], "contact", {})
                else:
                    data = dict(SECTIONS[section])
                    if section == "basic":
                        data = {**data, "birth_date": PEOPLE[cmd[1]]["id_number"][6:10] + "-01-01",
                                "gender": "M" if int(PEOPLE[cmd[1]]["id_number"][16]) % 2 else "F"}
                    call("update_profile_section", ids[cmd[1]], section, data)
            elif cmd[0] == "login":
                p = PEOPLE[cmd[1]]
                call("login", {"username": p["username"],
                               "password": p["password"] if cmd[2] else "wrong-pass1"})
            elif cmd[0] == "wait":
                clock.advance(minutes=cmd[1])
        live = snapshot(store.engine, projection)
        projection.rebuild(store, batch=3)
        assert snapshot(store.engine, projection) == live
        assert store.projection_positions()["accounts"] == store.head()

    run()
    assert ids  # something was registered
