"""The account service end to end, over real RabbitMQ and PostgreSQL (and SQLite).

A small consumer service (``mirror``, test-only) tracks the account log the way every
downstream service does, and records each upstream event it applied in its own log on a
stream of its own, expected empty: applying any event twice would fail loudly there.
"""

import base64
import io
import time

import pytest
from marshmallow import Schema, fields
from nameko.rpc import RpcProxy
from nameko.testing.services import entrypoint_hook
from PIL import Image, ImageDraw

from services.account.service import AccountService
from shared import logging as klogging
from shared.clock import ControlledClock
from shared.contracts import EventRegistry
from shared.dependencies import EventStoreProvider, TrackingProvider
from shared.errors import NotFound, Refused, Unauthorized, ValidationFailed
from shared.events import NewEvent
from shared.relay import KombuPublisher
from shared.service import EventSourcedService, config_timer, upstream_events
from tests import support

pytestmark = pytest.mark.integration


class Applied(Schema):
    upstream_position = fields.Integer(required=True)
    type = fields.String(required=True)


MIRROR_EVENTS = EventRegistry()
MIRROR_EVENTS.register("UpstreamApplied", Applied, public=False)


def record(tx, event):
    tx.append([NewEvent(f"applied-{event.position}", "UpstreamApplied",
                        {"upstream_position": event.position, "type": event.type})],
              {f"applied-{event.position}": 0})


class MirrorService(EventSourcedService):
    name = "mirror"
    store = EventStoreProvider(MIRROR_EVENTS, relay=False)
    tracking = TrackingProvider({"account": record})
    account_rpc = RpcProxy("account")

    @upstream_events("account")
    def on_account(self, message):
        self.tracking.consumers["account"].receive(message, self.account_rpc.events_after)

    @config_timer()
    def catch_up(self):
        self.tracking.consumers["account"].catch_up(self.account_rpc.events_after)


def jpeg(w=295, h=413, bg=(255, 255, 255)):
    img = Image.new("RGB", (w, h), bg)
    ImageDraw.Draw(img).ellipse((90, 100, 205, 300), fill=(60, 40, 30))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode()


CANDIDATE = {"name": "张三", "id_type": "resident_id", "id_number": "11010519491231002X",
             "mobile": "13800138000", "username": "zhangsan", "password": "secret123"}

SECTIONS = {
    "basic": {"gender": "F", "birth_date": "1949-12-31", "ethnicity": "汉族"},
    "education": {"education": [{"level": "本科", "school": "同济大学", "major": "测控技术与仪器",
                                 "major_category": "science_engineering",
                                 "graduated_on": "1972-07-01"}], "degrees": []},
    "work": {"entries": [{"employer": "上海市计量测试技术研究院", "position": "工程师",
                          "start": "1972-08-01", "end": None, "metrology": True}]},
    "contact": {"email": "zhangsan@example.com", "address": "上海市徐汇区桂箐路69号"},
}


@pytest.fixture(params=["postgresql", "sqlite"])
def config(request, amqp_uri, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("databases").new("acct") + "_{service}"
    else:
        url = f"sqlite:///{tmp_path}/{{service}}.db"
    return {"AMQP_URI": amqp_uri, "DATABASE_URL": url, "CLOCK": ControlledClock(),
            "CATCH_UP_INTERVAL": 0.3, "max_workers": 10,
            "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024}}


def wait_for(predicate, timeout=10.0):
    return support.wait_for(predicate, timeout)


def mirrored(runner):
    store = next(c for c in runner.containers if c.service_name == "mirror")
    dep = next(d for d in store.dependencies if isinstance(d, EventStoreProvider))
    return [e.payload for e in dep.store.events_after(0, 10_000)]


def account_store(runner):
    c = next(c for c in runner.containers if c.service_name == "account")
    return next(d for d in c.dependencies if isinstance(d, EventStoreProvider)).store


def test_registration_to_profile_completed_published_once(runner_factory, config):
    logs = io.StringIO()
    klogging.configure(stream=logs, level="DEBUG")
    runner = runner_factory(config, AccountService, MirrorService)
    runner.start()
    account = next(c for c in runner.containers if c.service_name == "account")
    with entrypoint_hook(account, "register") as register:
        account_id = register(CANDIDATE)["account_id"]
    with entrypoint_hook(account, "update_profile_section") as update:
        update(account_id, "photo", {"jpeg_base64": jpeg()})
        for section, data in SECTIONS.items():
            profile = update(account_id, section, data)
    assert profile["completeness"] == 100 and profile["complete"]

    store = account_store(runner)
    head = store.head()
    wait_for(lambda: len(mirrored(runner)) == head)
    assert len({e.metadata["correlation_id"] for e in store.events_after(0, 1000)}) == 6
    applied = mirrored(runner)
    assert [a["upstream_position"] for a in applied] == list(range(1, head + 1))
    assert [a["type"] for a in applied].count("ProfileCompleted") == 1
    # the correlation id of each command follows its events into the consumer's log
    mirror_store = next(d for c in runner.containers if c.service_name == "mirror"
                        for d in c.dependencies if isinstance(d, EventStoreProvider)).store
    upstream = {e.position: e.metadata for e in store.events_after(0, 1000)}
    for e in mirror_store.events_after(0, 1000):
        src = upstream[e.payload["upstream_position"]]
        assert e.metadata["correlation_id"] == src["correlation_id"]
        assert e.metadata["causation_id"] == src["event_id"]
    assert wait_for(lambda: store.relay_position() == head)

    # what left the service: private events keep their place but not their payload
    # (this call's own answer: the mirror's catch-up calls events_after too)
    published = support.call_entrypoint(account, "events_after", 0, 100)
    assert [e["position"] for e in published] == list(range(1, head + 1))
    creds = next(e for e in published if e["type"] == "CredentialsSet")
    assert creds["payload"] == {} and creds["private"] is True
    assert not any("password_hash" in str(e["payload"]) for e in published)
    assert all(e["metadata"]["correlation_id"] for e in published)

    # and the candidate logs in
    with entrypoint_hook(account, "login") as login:
        assert login({"username": "ZhangSan", "password": "secret123"})["account_id"] == account_id

    klogging.configure(level="WARNING")
    text = logs.getvalue()
    assert '"entrypoint": "register"' in text  # the calls were logged ...
    for secret in (CANDIDATE["id_number"], CANDIDATE["mobile"], CANDIDATE["password"]):
        assert secret not in text  # ... without personal data or credentials


def single_events(publisher, messages):
    """One message per event, as a relay before batching published them (a rolling upgrade):
    the consumers still take them."""
    producer = publisher._producer_ready()
    for m in messages:
        producer.publish(m, routing_key=m["type"], delivery_mode=2)


def test_duplicate_delivery_applied_once_and_gap_filled(runner_factory, config):
    config = {**config, "CATCH_UP_INTERVAL": 3600, "RELAY": False}  # only what we publish
    runner = runner_factory(config, AccountService, MirrorService)
    runner.start()
    account = next(c for c in runner.containers if c.service_name == "account")
    with entrypoint_hook(account, "register") as register:
        account_id = register(CANDIDATE)["account_id"]
    store = account_store(runner)
    publisher = KombuPublisher(config["AMQP_URI"], "account")
    try:
        # first contact: the consumer believes only the upstream itself, and pulls
        first = [store.public_view(e, "account") for e in store.events_after(0)]
        single_events(publisher, [first[0]])
        wait_for(lambda: len(mirrored(runner)) == len(first))

        with entrypoint_hook(account, "update_profile_section") as update:
            update(account_id, "basic", SECTIONS["basic"])
            update(account_id, "contact", SECTIONS["contact"])
        evs = [store.public_view(e, "account") for e in store.events_after(len(first))]
        assert len(evs) >= 2
        single_events(publisher, [evs[0], evs[0], first[-1], evs[0]])  # duplicated and late
        wait_for(lambda: len(mirrored(runner)) >= len(first) + 1)
        time.sleep(0.3)
        # each once, in order (a message that came while another worker applied is a
        # prompt to pull: the upstream's later events may come with it)
        positions = [a["upstream_position"] for a in mirrored(runner)]
        assert positions == list(range(1, len(positions) + 1))

        # a message numbered next but from another log (a queue that outlived a reset
        # database) is not taken for ours: the upstream is asked instead
        single_events(publisher, [{**evs[-1], "position": len(first) + 2, "log_id": "f" * 32,
                            "payload": {"account_id": "intruder", "completeness": 100}}])
        wait_for(lambda: len(mirrored(runner)) == len(first) + len(evs))
        assert "intruder" not in str(mirrored(runner))

        with entrypoint_hook(account, "update_profile_section") as update:
            update(account_id, "photo", {"jpeg_base64": jpeg()})
        more = [store.public_view(e, "account") for e in store.events_after(len(first) + len(evs))]
        single_events(publisher, [more[-1]])  # the ones before it never arrive: a gap
        wait_for(lambda: len(mirrored(runner)) == store.head())
        assert [a["upstream_position"] for a in mirrored(runner)] == list(range(1, store.head() + 1))
        single_events(publisher, more)  # the lost ones turn up at last: all duplicates now
        time.sleep(0.5)
        assert len(mirrored(runner)) == store.head()
    finally:
        publisher.close()


def test_catch_up_recovers_a_lost_last_message(runner_factory, config):
    config = {**config, "RELAY": False}
    runner = runner_factory(config, AccountService, MirrorService)
    runner.start()
    account = next(c for c in runner.containers if c.service_name == "account")
    with entrypoint_hook(account, "register") as register:
        register(CANDIDATE)
    # nothing was published at all; the catch-up timer pulls it
    head = account_store(runner).head()
    wait_for(lambda: len(mirrored(runner)) == head)


def test_refusals_are_structured_and_write_nothing(container_factory, config):
    container = container_factory(AccountService, {**config, "RELAY": False})
    container.start()
    store = next(d for d in container.dependencies if isinstance(d, EventStoreProvider)).store
    with entrypoint_hook(container, "register") as register:
        with pytest.raises(ValidationFailed) as exc:
            register({**CANDIDATE, "id_number": "110105194912310021", "mobile": "12345"})
        assert set(exc.value.fields) >= {"id_number", "mobile"}
        with pytest.raises(ValidationFailed):
            register("not an object")
        assert store.head() == 0
        account_id = register(CANDIDATE)["account_id"]
        head = store.head()
        with pytest.raises(Refused) as exc:
            register({**CANDIDATE, "username": "another", "mobile": "13900139000"})
        assert set(exc.value.fields) == {"id_number"}
        with pytest.raises(Refused) as exc:
            register({**CANDIDATE, "id_type": "passport", "id_number": "E12345678",
                      "username": "another"})
        assert set(exc.value.fields) == {"mobile"}
        with pytest.raises(Refused) as exc:
            register({**CANDIDATE, "id_type": "passport", "id_number": "E12345678",
                      "mobile": "13900139000", "username": "ZHANGSAN"})
        assert set(exc.value.fields) == {"username"}
        assert store.head() == head

    with entrypoint_hook(container, "update_profile_section") as update:
        for section, data, field in [
            ("photo", {"jpeg_base64": jpeg(300, 400)}, "photo"),
            ("photo", {"jpeg_base64": jpeg(bg=(120, 120, 120))}, "photo"),
            ("photo", {"jpeg_base64": "!!!"}, "jpeg_base64"),
            ("basic", {"gender": "X"}, "gender"),
            ("hobbies", {}, "section"),
        ]:
            with pytest.raises(ValidationFailed) as exc:
                update(account_id, section, data)
            assert field in exc.value.fields, (section, exc.value.fields)
        with pytest.raises(NotFound):
            update("nosuchaccount", "basic", SECTIONS["basic"])
        assert store.head() == head


def test_failures_do_not_lock_the_owner_out_of_the_account_service(container_factory, config):
    # the lockout is the gateway's, per (username, client address): wrong passwords from
    # anywhere must not stop the owner (issue 17 item 10)
    container = container_factory(AccountService, {**config, "RELAY": False})
    container.start()
    with entrypoint_hook(container, "register") as register:
        register(CANDIDATE)
    with entrypoint_hook(container, "login") as login:
        for _ in range(6):
            with pytest.raises(Unauthorized) as exc:
                login({"username": "zhangsan", "password": "wrong1234"})
            assert exc.value.error_code == "unauthorized"
        assert login({"username": "zhangsan", "password": "secret123"})["username"] == "zhangsan"
        account_id = login({"username": "zhangsan", "password": "secret123"})["account_id"]
    with entrypoint_hook(container, "change_password") as change:
        with pytest.raises(Unauthorized):
            change(account_id, {"old_password": "nope12345", "new_password": "better456"})
        change(account_id, {"old_password": "secret123", "new_password": "better456"})
    with entrypoint_hook(container, "login") as login:
        with pytest.raises(Unauthorized):
            login({"username": "zhangsan", "password": "secret123"})
        assert login({"username": "zhangsan", "password": "better456"})["account_id"] == account_id
