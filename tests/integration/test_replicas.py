"""Two replicas of ``verification`` against one broker vhost and one database, with one
``registration`` and one ``account``: a burst of applications, every effect exactly once.

The replicas are two containers of the same service class in this process, each with its
own engine, relay, consumers and timers, as two pods would have. They compete for the
one ``registration`` event queue; the tracking record makes each upstream event apply once
whichever replica got it (or pulled it), and the relay's row lock lets one replica
publish at a time.
"""

import base64
import io
import time
from collections import Counter

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from PIL import Image, ImageDraw

from services.account.identity import check_digit
from services.account.service import AccountService
from services.registration.domain import OUTCOME_STATUS
from services.registration.service import RegistrationService
from services.verification.service import VerificationService
from shared.clock import ControlledClock
from shared.dependencies import EventStoreProvider, TrackingProvider
from shared.session import REFERENCE_SESSION_PATH
from tests.integration.test_application_flow import SESSION, Season, at
from tests.support import CATCH_UP, DEADLINE

pytestmark = pytest.mark.integration

BURST = 16
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨"


def name(i: int) -> str:
    return f"{SURNAMES[i % len(SURNAMES)]}晓{'明华'[i // len(SURNAMES) % 2]}"


def resident_id(i: int) -> str:
    first17 = f"310104{1980 + i % 15:04d}{1 + i % 12:02d}{10 + i % 18:02d}{100 + i:03d}"
    return first17 + check_digit(first17)


def photo(i: int) -> str:
    """A valid ID photo of each candidate's own (identical uploads would share one blob)."""
    img = Image.new("RGB", (295, 413), (255, 255, 255))
    ImageDraw.Draw(img).ellipse((90 + i, 100, 205 + i, 300), fill=(60, 40, 30))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode()


def provider(container, cls):
    return next(d for d in container.dependencies if isinstance(d, cls))


class Publishes:
    """Records every batch each replica's relay publishes, with when it started and ended."""

    def __init__(self):
        self.batches = []  # (replica, started, ended, positions)
        self.since = 0  # what was published before the spies were in place

    def spy(self, replica, relay):
        publish = relay.publisher.publish

        def recorded(message):  # one relay cycle
            started = time.monotonic()
            publish(message)
            self.batches.append((replica, started, time.monotonic(),
                                 [e["position"] for e in message["events"]]))

        relay.publisher.publish = recorded


@pytest.fixture
def cluster(amqp_uri, runner_factory, container_factory, databases):
    clock = ControlledClock(at(2026, 4, 1, 9, 0))
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("replicas") + "_{service}",
              "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "DEADLINE_INTERVAL": DEADLINE,
              "max_workers": 10, "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024}}
    runner = runner_factory(config, AccountService, RegistrationService, VerificationService)
    second = container_factory(VerificationService, config)
    publishes = Publishes()
    runner.start()
    second.start()
    first = next(c for c in runner.containers if c.service_name == "verification")
    for replica, container in (("first", first), ("second", second)):
        publishes.spy(replica, provider(container, EventStoreProvider).relay)
    # verification lists the integrity archive in its log at start, before the spies: let
    # that go out, and check every position after it
    store = provider(first, EventStoreProvider).store
    deadline = time.monotonic() + 10
    while store.relay_position() != store.head() and time.monotonic() < deadline:
        time.sleep(0.05)
    publishes.since = store.relay_position()
    return Season(runner, clock), [first, second], publishes


def registration_form(i: int) -> dict:
    return {"name": name(i), "id_type": "resident_id", "id_number": resident_id(i),
            "mobile": f"1390000{i:04d}", "username": f"burst_{i:02d}", "password": "pass2026word"}


def profile(i: int) -> dict:
    id_number = resident_id(i)
    return {
        "photo": {"jpeg_base64": photo(i)},
        "basic": {"gender": "M" if int(id_number[16]) % 2 else "F",
                  "birth_date": f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}",
                  "ethnicity": "汉族"},
        "education": {"education": [{"level": "本科", "school": "某大学", "major": "测控",
                                     "major_category": "science_engineering",
                                     "graduated_on": "2005-06-30",
                                     "certificate_no": f"10247120050500{i:04d}"}], "degrees": []},
        "work": {"entries": [{"employer": "上海市计量测试技术研究院", "position": "工程师",
                              "start": "2005-08-01", "end": None, "metrology": True}]},
        "contact": {"email": f"burst{i}@example.com", "address": "上海市徐汇区"},
    }


def application(i: int) -> dict:
    commitment = i % 2 == 0  # half pledge (auto check), half send proof (manual check)
    return {"session_id": SESSION, "level": "L1", "registration_point": "2916",
            "commitment": ({"pledge_version": "2026-v1", "signed_name": name(i), "agreed": True}
                           if commitment else None)}


def burst(method, argument_lists):
    """Every call sent before any answer is awaited: real RPC over the broker (nameko's
    entrypoint_hook cannot tell concurrent calls of one method apart)."""
    return [reply.result() for reply in [method.call_async(*args) for args in argument_lists]]


def test_two_verification_replicas_apply_a_burst_exactly_once(cluster, amqp_uri):
    s, replicas, publishes = cluster
    s.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as rpc:
        ids = burst(rpc.account.register, [(registration_form(i),) for i in range(BURST)])
        for section in profile(0):
            burst(rpc.account.update_profile_section,
                  [(ids[i]["account_id"], section, profile(i)[section]) for i in range(BURST)])
        for i in range(BURST):
            s.accounts[i] = ids[i]["account_id"]
            s.known_complete(i)

        s.clock.set(at(2026, 4, 7, 10, 0))  # 网上报名 is open: the burst
        burst(rpc.registration.submit_application,
              [(s.accounts[i], application(i)) for i in range(BURST)])

    registration, verification = s.store("registration"), s.store("verification")
    settled = ("auto_passed", "proof_requested")

    def quiet():
        reg_head, ver_head = registration.head(), verification.head()
        return (verification.tracked_position("registration") == reg_head
                and registration.tracked_position("verification") == ver_head
                and verification.relay_position() == ver_head
                and all(s.app(i)["status"] in settled for i in range(BURST)))

    s.wait(quiet, timeout=20)
    time.sleep(0.5)  # anything still in flight would show now
    assert quiet()

    # verification's log: gapless, one case per application, opened once
    ver_events = verification.events_after(0, 100_000)
    assert [e.position for e in ver_events] == list(range(1, len(ver_events) + 1))
    opened = Counter(e.payload["application_id"] for e in ver_events if e.type == "CaseOpened")
    assert len(opened) == BURST and set(opened.values()) == {1}
    for app_id in opened:
        versions = [e.stream_version for e in ver_events if e.stream_id.endswith(app_id)]
        assert versions == list(range(1, len(versions) + 1))
    submitted = [e for e in registration.events_after(0, 100_000) if e.type == "ApplicationSubmitted"]
    assert sorted(opened) == sorted(e.payload["application_id"] for e in submitted)

    # each outcome recorded on its application once, by registration
    outcomes = {e.metadata["event_id"]: e for e in ver_events if e.type in OUTCOME_STATUS}
    assert len(outcomes) >= BURST
    recorded = Counter(e.metadata["causation_id"] for e in registration.events_after(0, 100_000)
                       if e.type == "VerificationRecorded")
    assert set(recorded) == set(outcomes) and set(recorded.values()) == {1}
    by_status = Counter(s.app(i)["status"] for i in range(BURST))
    assert sum(by_status.values()) == BURST

    # competing consumers: both replicas took deliveries; together they applied each
    # registration event at most once (the tracking record; the log above shows each
    # case opened once), duplicates skipped; what neither applied, a replica passed over
    # (a type verification does not act on; both may pass over the same one)
    consumers = [provider(c, TrackingProvider).consumers["registration"] for c in replicas]
    assert all(c.highest_seen > 0 for c in consumers), [c.highest_seen for c in consumers]
    applied = sum(c.applied for c in consumers)
    assert applied <= registration.head() <= applied + sum(c.passed_over for c in consumers)

    # one relay at a time: publishing windows never overlap across replicas, and every
    # position went out (at-least-once; a crash could repeat a batch, never skip one)
    batches = publishes.batches
    for r1, start1, end1, _ in batches:
        for r2, start2, end2, _ in batches:
            if r1 != r2:
                assert end1 <= start2 or end2 <= start1, "two replicas published at once"
    # (on a loaded machine the start's own events may go out after the spies are in place)
    published = sorted({p for *_, positions in batches for p in positions})
    assert [p for p in published if p > publishes.since] == \
        list(range(publishes.since + 1, verification.head() + 1))
    for *_, positions in batches:
        assert positions == list(range(positions[0], positions[0] + len(positions)))
