"""Service methods with their dependencies replaced (nameko's worker_factory): input is
refused before anything touches the store."""

import pytest
from nameko.testing.services import worker_factory

from services.account.service import AccountService
from shared.errors import ValidationFailed


@pytest.mark.parametrize("args", [(-1, 10), ("3", 10), (0, 0), (0, 100_000), (None, 1)])
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
