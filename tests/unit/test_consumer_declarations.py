"""Every consumer handler's ``@handles`` declaration, checked against the handler itself.

A consumer passes over the upstream event types its handler does not declare, without a
transaction (``shared.tracking``). A type left out by mistake would be dropped silently, so
for every handler and every upstream event type it does not declare, the handler is run on
events of that type (payloads drawn from the type's schema; private events as they travel,
payload withheld) with a transaction that fails the test if anything touches it.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.account.schemas import REGISTRY as ACCOUNT
from services.admission.schemas import REGISTRY as ADMISSION
from services.admission.service import AdmissionService
from services.certificate.schemas import REGISTRY as CERTIFICATE
from services.certificate.service import CertificateService
from services.notification.service import NotificationService
from services.registration.schemas import REGISTRY as REGISTRATION
from services.registration.service import RegistrationService
from services.scoring.schemas import REGISTRY as SCORING
from services.scoring.service import ScoringService
from services.verification.schemas import REGISTRY as VERIFICATION
from services.verification.service import VerificationService
from shared.events import StoredEvent
from tests.strategies import payloads

UPSTREAM_REGISTRIES = {"account": ACCOUNT, "registration": REGISTRATION,
                       "verification": VERIFICATION, "admission": ADMISSION,
                       "scoring": SCORING, "certificate": CERTIFICATE}
SERVICES = (RegistrationService, VerificationService, AdmissionService, ScoringService,
            CertificateService, NotificationService)


def logged_by(upstream: str) -> list[str]:
    """The event types in ``upstream``'s own log: its integration and private events (the
    registry also holds the other services' integration events, to read them) and the
    dead letters every consumer may write."""
    registry = UPSTREAM_REGISTRIES[upstream]
    homes = {f"shared.contracts.{upstream}", f"services.{upstream}.schemas",
             "shared.contracts.deadletter"}
    return [n for n in registry.names() if type(registry.get(n).schema).__module__ in homes]


def _handlers():
    for service in SERVICES:
        for upstream, h in service.tracking.handlers.items():
            handler = h[1] if isinstance(h, tuple) else h
            yield f"{service.name}<-{upstream}", upstream, handler


HANDLERS = list(_handlers())


class Untouchable:
    """A transaction (or a prepared value) that fails the test when used."""

    def __init__(self, what):
        self._what = what

    def __getattr__(self, name):
        raise AssertionError(f"the handler used {self._what}.{name}")

    def __getitem__(self, key):  # prepared["now"] may be read up front, harmlessly
        return None


def test_every_consumer_declares_what_it_handles():
    assert len(HANDLERS) >= 14
    # every event type is some service's: none escapes the check below by living elsewhere
    everything = set().union(*(r.names() for r in UPSTREAM_REGISTRIES.values()))
    assert set().union(*(logged_by(u) for u in UPSTREAM_REGISTRIES)) == everything
    undeclared = [name for name, _, handler in HANDLERS if getattr(handler, "handles", None) is None]
    assert undeclared == []


CASES = [(name, upstream, handler, event_type)
         for name, upstream, handler in HANDLERS
         for event_type in logged_by(upstream)
         if event_type not in handler.handles]


@pytest.mark.parametrize("name, upstream, handler, event_type",
                         [pytest.param(*c, id=f"{c[0]}:{c[3]}") for c in CASES])
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_type_a_handler_does_not_declare_is_one_it_ignores(name, upstream, handler,
                                                             event_type, data):
    registry = UPSTREAM_REGISTRIES[upstream]
    et = registry.get(event_type)
    payload = {} if not et.public else data.draw(payloads(et.schema, typed_only=True,
                                                          complete=True))
    event = StoredEvent(7, "stream-1", 1, event_type, et.version, payload,
                        {"event_id": "e1", "correlation_id": "c1"})
    tx = Untouchable("tx")
    if handler.__code__.co_argcount == 3:
        handler(tx, event, Untouchable("prepared"))
    else:
        handler(tx, event)


def test_the_declarations_name_types_that_exist():
    """A misspelt type in a declaration is a type the handler then never sees."""
    for name, upstream, handler in HANDLERS:
        known = set(logged_by(upstream))
        if name == "notification<-verification":
            continue  # declared from the schemas' fields: other services' types too, harmless
        assert handler.handles <= known, (name, handler.handles - known)


def test_every_candidate_outcome_of_scoring_is_declared_by_notification():
    """Scoring's decisions a candidate must hear of: publication, and 成绩无效 (a candidate
    without a certificate hears of voided scores from nobody else). Admission's ticket
    events, which notification and scoring key by the application."""
    handlers = dict((name, handler) for name, _, handler in HANDLERS)
    assert {"ScoresPublished", "ScoresVoided"} <= handlers["notification<-scoring"].handles
    assert {"AdmissionTicketIssued", "CandidateCheckedIn", "CandidateAbsent", "ExamForfeited",
            "AdmissionTicketCancelled"} <= handlers["scoring<-admission"].handles
