"""Every consumer handler is a dispatch table (``shared.tracking.dispatch``): the types it
handles are its table's keys, declared once where they are dispatched. Checked here: the
keys name types the upstream logs (a misspelt key is a type never seen), an undeclared type
never reaches a step, and the outcomes a candidate must hear of are declared.
"""

from __future__ import annotations

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
from shared.tracking import dispatch

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


def test_every_consumer_is_a_dispatch_table():
    assert len(HANDLERS) >= 14
    # every event type is some service's: none escapes the check below by living elsewhere
    everything = set().union(*(r.names() for r in UPSTREAM_REGISTRIES.values()))
    assert set().union(*(logged_by(u) for u in UPSTREAM_REGISTRIES)) == everything
    for name, _, handler in HANDLERS:
        assert handler.handles == frozenset(handler.table), name


def test_a_type_the_table_does_not_have_reaches_no_step():
    seen = []
    handler = dispatch({"Closed": lambda tx, ev: seen.append(ev.type)})
    for type_ in ("Opened", "Closed"):
        handler(Untouchable("tx") if type_ == "Opened" else None,
                StoredEvent(1, "s-1", 1, type_, 1, {}, {}))
    assert seen == ["Closed"] and handler.handles == {"Closed"}


def test_the_declarations_name_types_that_exist():
    """A misspelt type in a declaration is a type the handler then never sees."""
    for name, upstream, handler in HANDLERS:
        known = set(logged_by(upstream))
        assert handler.handles <= known, (name, handler.handles - known)


def test_every_candidate_outcome_of_scoring_is_declared_by_notification():
    """Scoring's decisions a candidate must hear of: publication, and 成绩无效 (a candidate
    without a certificate hears of voided scores from nobody else). Admission's ticket
    events, which notification and scoring key by the application."""
    handlers = dict((name, handler) for name, _, handler in HANDLERS)
    assert {"ScoresPublished", "ScoresVoided"} <= handlers["notification<-scoring"].handles
    assert {"AdmissionTicketIssued", "CandidateCheckedIn", "CandidateAbsent", "ExamForfeited",
            "AdmissionTicketCancelled"} <= handlers["scoring<-admission"].handles
