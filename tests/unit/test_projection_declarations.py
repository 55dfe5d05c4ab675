"""Every read model's ``event_types`` declaration, checked against its ``handle``.

A projection that declares ``event_types`` is not handed the other types, live or in a
rebuild, and a rebuild does not read them (``shared.projection``). A type left out by
mistake would leave the read model silently wrong, so for every projection that declares,
and every type its service stores that it leaves out, ``handle`` is run on events of that
type (payloads drawn from the type's schema) and must change nothing.
"""

from __future__ import annotations

import importlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.events import StoredEvent
from shared.projection import Projection
from tests.strategies import payloads

SERVICES = ("account", "registration", "verification", "admission", "scoring", "certificate",
            "notification")


def _projections():
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.projection")
        registry = importlib.import_module(f"services.{service}.schemas").REGISTRY
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Projection) \
                    and value is not Projection and value.__module__ == module.__name__:
                yield value, registry


PROJECTIONS = list(_projections())
DECLARING = [(cls, registry) for cls, registry in PROJECTIONS if cls.event_types is not None]


def test_the_services_projections_are_found_and_some_declare():
    assert len(PROJECTIONS) >= len(SERVICES)
    assert any(cls.__name__ == "AccountProjection" for cls, _ in DECLARING)


def test_the_declarations_name_types_that_exist():
    """A misspelt type in a declaration is a type the read model then never sees."""
    for cls, registry in DECLARING:
        assert cls.event_types <= set(registry.names()), cls.event_types - set(registry.names())


CASES = [(cls, registry, name) for cls, registry in DECLARING
         for name in registry.names() if name not in cls.event_types]


@pytest.mark.parametrize("cls, registry, event_type",
                         [pytest.param(*c, id=f"{c[0].__name__}:{c[2]}") for c in CASES])
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_type_a_projection_does_not_declare_changes_nothing(cls, registry, event_type, data):
    et = registry.get(event_type)
    payload = data.draw(payloads(et.schema, typed_only=True, complete=True))
    event = StoredEvent(7, "stream-1", 1, event_type, et.version, payload,
                        {"event_id": "e1", "correlation_id": "c1",
                         "occurred_at": "2026-11-28T10:00:00+08:00"})
    assert list(cls().handle(event)) == []
