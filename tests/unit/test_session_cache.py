"""The cache of folded session documents and rule books (``shared.session_cache``): a
stream is read and folded again only when its head (version, position) changed, and each
service container holds its own (a nameko dependency provider), which its workers and its
consumer steps share."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from nameko.containers import ServiceContainer
from nameko.testing.services import worker_factory

from services.certificate.service import CertificateService
from services.registration import domain as reg_domain
from services.registration.projection import RegistrationProjection
from services.registration.schemas import REGISTRY as REGISTRATION_REGISTRY
from services.registration.service import RegistrationService
from services.verification.projection import VerificationProjection
from services.verification.schemas import REGISTRY as VERIFICATION_REGISTRY
from services.verification.service import VerificationService, make_prepare, on_registration_event
from shared.clock import SHANGHAI, ControlledClock
from shared.dependencies import BoundStore, TrackingProvider
from shared.eventstore.store import open_store
from shared.eventstore.unit_of_work import Context
from shared.session import reference_session
from shared.session_cache import SessionCache
from shared.tracking import TrackingConsumer, events_answer


@dataclass
class Ev:
    stream_version: int
    position: int
    doc: str


@pytest.fixture
def cache():
    return SessionCache(lambda events: events[-1].doc if events else None,
                        lambda sid: f"session-{sid}", maxsize=2).fresh()


def test_folds_again_only_when_the_stream_moved(cache):
    stream = [Ev(1, 10, "scheduled")]
    reads = []

    def load():
        reads.append(1)
        return list(stream)

    assert cache.lookup(("log", "s1"), (1, 10), load) == "scheduled"
    assert cache.lookup(("log", "s1"), (1, 10), load) == "scheduled"
    assert len(reads) == 1 and cache.folds == 1
    stream.append(Ev(2, 15, "amended"))
    assert cache.lookup(("log", "s1"), (2, 15), load) == "amended"
    assert len(reads) == 2
    # another log (a reset database) with the same session id is another key
    assert cache.lookup(("other-log", "s1"), (2, 15), load) == "amended" and len(reads) == 3
    assert cache.lookup(("log", "s1"), None, load) is None  # no such stream: nothing read
    assert len(reads) == 3


def test_keeps_the_most_recently_used(cache):
    for sid in ("a", "b", "a", "c"):  # a is used again before c comes: b goes
        cache.lookup(("log", sid), (1, 1), lambda sid=sid: [Ev(1, 1, sid)])
    assert cache.folds == 3
    cache.lookup(("log", "a"), (1, 1), lambda: pytest.fail("a was evicted"))
    cache.lookup(("log", "b"), (1, 1), lambda: [Ev(1, 1, "b")])
    assert cache.folds == 4


def _set_up(container):
    """The container's folds, set up as its start would (nothing else is started)."""
    caches = {d.attr_name: d for d in container.dependencies if isinstance(d, SessionCache)}
    for d in caches.values():
        d.setup()
    return caches


def test_each_container_holds_its_own_folds():
    """Two containers of one service in one process (tests, the demo) never share folds,
    and the service class's declaration holds none."""
    one, two = (_set_up(ServiceContainer(VerificationService, {"AMQP_URI": "memory://"}))
                for _ in range(2))
    assert set(one) == set(two) == {"session_docs", "rule_books"}
    recorded = reference_session().to_dict()

    def stream(name):
        return [SimpleNamespace(stream_version=1, position=1,
                                payload={"document": {**recorded, "name": name}})]

    one["session_docs"].lookup(("log", "s1"), (1, 1), lambda: stream("one's"))
    assert two["session_docs"].lookup(("log", "s1"), (1, 1), lambda: stream("two's")).name == "two's"
    assert one["session_docs"].lookup(("log", "s1"), (1, 1), lambda: []).name == "one's"
    assert one["session_docs"].get_dependency(None) is one["session_docs"]
    assert not hasattr(VerificationService.session_docs, "_docs")
    with pytest.raises(AttributeError):  # only a container's (or a fresh) one folds
        VerificationService.session_docs.lookup(("log", "s1"), (1, 1), lambda: [])


def test_the_consumer_steps_get_their_containers_folds(tmp_path):
    """``TrackingProvider`` hands each prepare factory the container's providers: the
    steps' folds are the ones the container's workers get, and the certificate consumer's
    issuer is its ``IssuerProvider``'s."""
    config = {"AMQP_URI": "memory://", "CERTIFICATE_DEV_KEY_PATH": str(tmp_path / "k.pem")}
    ver = ServiceContainer(VerificationService, config)
    folds = _set_up(ver)
    tracking = next(d for d in ver.dependencies if isinstance(d, TrackingProvider))
    tracking.setup()
    tracking.start()
    event = SimpleNamespace(type="TimetableAmended", payload={})
    prepared = tracking.consumers["registration"].prepare(event)
    assert prepared["session_docs"] is folds["session_docs"]
    assert prepared["rule_books"] is folds["rule_books"]

    cert = ServiceContainer(CertificateService, config)
    signer = next(d for d in cert.dependencies if d.attr_name == "signer")
    signer.setup()
    tracking = next(d for d in cert.dependencies if isinstance(d, TrackingProvider))
    tracking.setup()
    tracking.start()
    assert tracking.consumers["scoring"].prepare(event)["issuer"] is signer.issuer


NOW = datetime(2026, 1, 5, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def registration_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/registration.db", REGISTRATION_REGISTRY,
                       clock=ControlledClock(NOW), projections=[RegistrationProjection()])
    yield store
    store.engine.dispose()


def _amendment(doc, days):
    """The certificates window (the last) closes ``days`` later."""
    last = doc.window("certificates")
    return reg_domain.amend_timetable(doc, "certificates", last.start,
                                      last.end + timedelta(days=days), "延长领取", NOW)


def test_a_worker_folds_the_session_once_and_again_after_an_amendment(registration_store):
    """The service's methods read the session through its container's cache: folded once,
    then again when the stream moved, also when another replica appended the amendment."""
    doc = reference_session()
    registration_store.append(reg_domain.schedule_session(doc, 0))
    docs = RegistrationService.session_docs.fresh()

    def worker():
        return worker_factory(RegistrationService, session_docs=docs, clock=ControlledClock(NOW),
                              store=BoundStore(registration_store, Context(actor="test")))

    first = worker().get_session(doc.session_id)
    assert worker().get_session(doc.session_id) == first and docs.folds == 1
    registration_store.append(_amendment(doc, 1))  # as another process would: same database
    moved = worker().get_session(doc.session_id)["windows"]["certificates"]["end"]
    assert moved == (doc.window("certificates").end + timedelta(days=1)).isoformat()
    assert docs.folds == 2
    # another container's cache folds for itself
    other = RegistrationService.session_docs.fresh()
    worker_factory(RegistrationService, session_docs=other, clock=ControlledClock(NOW),
                   store=BoundStore(registration_store, Context(actor="test"))
                   ).get_session(doc.session_id)
    assert other.folds == 1 and docs.folds == 2


def test_verification_consumer_and_workers_share_the_folds(tmp_path, registration_store):
    """registration's schedule and amendment applied by verification's consumer (its steps
    fold through ``prepared``) are what its workers read, from the same cache."""
    clock = ControlledClock(NOW)
    ver = open_store(f"sqlite:///{tmp_path}/verification.db", VERIFICATION_REGISTRY,
                     clock=clock, projections=[VerificationProjection()])
    try:
        doc = reference_session()
        registration_store.append(reg_domain.schedule_session(doc, 0))
        folds = {"session_docs": VerificationService.session_docs.fresh(),
                 "rule_books": VerificationService.rule_books.fresh()}
        consumer = TrackingConsumer(ver, "registration", on_registration_event,
                                    prepare=make_prepare({"CLOCK": clock},
                                                         SimpleNamespace(**folds)))

        def fetch(position, limit, types=None):
            return events_answer(registration_store, "registration", position, limit, types)

        consumer.catch_up(fetch)  # scheduled: recorded as it came, nothing folded
        assert folds["session_docs"].folds == 0
        registration_store.append(_amendment(doc, 2))
        consumer.catch_up(fetch)  # amended: the step folds the recorded session
        assert folds["session_docs"].folds == 1
        service = worker_factory(VerificationService, clock=clock, **folds,
                                 store=BoundStore(ver, Context(actor="test")))
        for _ in range(2):  # the step's append moved the stream: folded once more, then kept
            ends = dict(service.scrape_gauges()["kaowu_window_end_timestamp_seconds"])
            assert ends[(doc.session_id, "certificates")] == \
                (doc.window("certificates").end_exclusive + timedelta(days=2)).timestamp()
            assert folds["session_docs"].folds == 2
    finally:
        ver.engine.dispose()
