"""Service methods with their dependencies replaced (nameko's worker_factory): input is
refused before anything touches the store."""

import pytest
from nameko.testing.services import worker_factory

from services.account.service import AccountService
from shared.errors import ValidationFailed


@pytest.mark.parametrize("args", [(-1, 10), ("3", 10), (0, 0), (0, 100_000), (None, 1),
                                  (0, 10, "Closed"), (0, 10, [""]), (0, 10, [1]),
                                  (0, 10, ["x" * 101]), (0, 10, ["T"] * 201)])
def test_events_after_refuses_bad_arguments(args):
    service = worker_factory(AccountService)
    with pytest.raises(ValidationFailed) as exc:
        service.events_after(*args)
    assert exc.value.fields
    service.store.events_after.assert_not_called()


def test_events_after_returns_public_views():
    service = worker_factory(AccountService)
    service.store.events_after.return_value = ["e1", "e2"]
    service.store.public_view.side_effect = lambda e, name: {"event": e, "service": name}
    assert service.events_after(5, 2) == [{"event": "e1", "service": "account"},
                                          {"event": "e2", "service": "account"}]
    service.store.events_after.assert_called_once_with(5, 2)


def test_events_after_with_types_answers_how_far_it_read():
    service = worker_factory(AccountService)
    service.store.head.return_value = 9
    service.store.events_after.return_value = []
    service.store.log_id = "L"
    assert service.events_after(5, 2, ["ProfileUpdated"]) == {"events": [], "upto": 9,
                                                              "log_id": "L"}
    service.store.events_after.assert_called_once_with(5, 2, types=["ProfileUpdated"])


def test_unknown_section_refused_before_the_store():
    service = worker_factory(AccountService)
    with pytest.raises(ValidationFailed) as exc:
        service.update_profile_section("abc123", "hobbies", {})
    assert "section" in exc.value.fields
    service.store.execute.assert_not_called()


@pytest.mark.parametrize("account_id", ["", "../etc", 42, None, "x" * 65])
def test_malformed_account_id_refused(account_id):
    service = worker_factory(AccountService)
    with pytest.raises(ValidationFailed):
        service.update_profile_section(account_id, "basic", {})
    service.store.execute.assert_not_called()


def test_register_bad_input_never_hashes_or_writes():
    service = worker_factory(AccountService)
    with pytest.raises(ValidationFailed) as exc:
        service.register({"name": "", "id_type": "resident_id", "id_number": "1",
                          "mobile": "1", "username": "a", "password": "b"})
    assert set(exc.value.fields) >= {"name", "id_number", "mobile", "username", "password"}
    service.passwords.hash.assert_not_called()
    service.store.execute.assert_not_called()


def test_rebuild_names_the_projections_it_has():
    service = worker_factory(AccountService)
    service.store.projections = []
    with pytest.raises(ValidationFailed) as exc:
        service.rebuild("nope")
    assert "projection" in exc.value.fields


class _Consumer:
    def __init__(self, outcome):
        self.outcome, self.calls = outcome, 0

    def catch_up(self, fetch):
        self.calls += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def test_the_catch_up_timer_takes_each_upstream_on_its_own():
    """One upstream not deployed or not answering does not hold up the others."""
    from nameko.exceptions import UnknownService

    from shared.dependencies import TrackingProvider
    from shared.errors import Unavailable

    tracking = TrackingProvider({})
    tracking.consumers = {"absent": _Consumer(UnknownService("absent")),
                          "down": _Consumer(Unavailable("did not answer")),
                          "fine": _Consumer(3)}
    assert tracking.catch_up({name: None for name in ("absent", "down", "fine")}) == 3
    assert [c.calls for c in tracking.consumers.values()] == [1, 1, 1]


def test_a_stopping_service_asks_no_further_upstream():
    """Once the stop began, the catch-up ends: the upstream that failed (its call given up
    at the stop) is not logged as a failure, and the others wait for the next start."""
    from shared.dependencies import TrackingProvider
    from shared.errors import Unavailable

    tracking = TrackingProvider({})

    class Stopped(_Consumer):
        def catch_up(self, fetch):
            tracking.watch.begin()  # the stop begins while this upstream is asked
            return super().catch_up(fetch)

    tracking.consumers = {"first": Stopped(Unavailable("given up: stopping")),
                          "second": _Consumer(3)}
    assert tracking.catch_up({"first": None, "second": None}) == 0
    assert [c.calls for c in tracking.consumers.values()] == [1, 0]


def test_every_catch_up_timer_goes_through_the_provider():
    """Each service's timer hands all its upstreams to ``TrackingProvider.catch_up`` in one
    call, which isolates a failing one: none is left out, none handled apart."""
    from services.admission.service import AdmissionService
    from services.certificate.service import CertificateService
    from services.notification.service import NotificationService
    from services.registration.service import RegistrationService
    from services.scoring.service import ScoringService
    from services.verification.service import VerificationService

    for service in (RegistrationService, VerificationService, AdmissionService, ScoringService,
                    CertificateService, NotificationService):
        worker = worker_factory(service)
        worker.catch_up()
        assert worker.tracking.catch_up.call_count == 1, service.name
        (fetchers,), _ = worker.tracking.catch_up.call_args
        assert set(fetchers) == set(service.tracking.handlers), service.name
