"""The published language between services: versioned marshmallow schemas for events.

Every event type a service stores is registered here (integration events, in this
package) or in the service's own ``schemas.py`` (private events, ``public=False``). The
event store validates a payload against its type's current schema before appending, and
upcasts older stored versions on read, so readers only ever see the current shape.

A private event still travels the relay (positions stay gapless for consumers), but with
its payload withheld: credentials and claims never leave their service.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from marshmallow import Schema
from marshmallow import ValidationError as SchemaError

from shared.contracts.check import compile_schema
from shared.errors import ValidationFailed


@dataclass
class EventType:
    name: str
    version: int
    schema: Schema
    public: bool = True
    # from_version -> function(payload) -> payload at from_version + 1
    upcasters: dict[int, Callable[[dict], dict]] = field(default_factory=dict)
    # the schema compiled to a quick "surely valid" answer (None: marshmallow always decides)
    check: Callable[[object], bool] | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.check is None:
            self.check = compile_schema(self.schema)


class EventRegistry:
    def __init__(self):
        self._types: dict[str, EventType] = {}

    def register(self, name, schema, *, version=1, public=True, upcasters=None):
        if name in self._types:
            raise ValueError(f"event type {name} registered twice")
        missing = [v for v in range(1, version) if v not in (upcasters or {})]
        if missing:
            raise ValueError(f"{name} v{version}: no upcaster from version(s) {missing}")
        schema_obj = schema() if isinstance(schema, type) else schema
        self._types[name] = EventType(name, version, schema_obj, public, dict(upcasters or {}))
        return self._types[name]

    def include(self, other: "EventRegistry"):
        for et in other._types.values():
            if et.name in self._types and self._types[et.name] is not et:
                raise ValueError(f"event type {et.name} registered twice")
            self._types[et.name] = et
        return self

    def __contains__(self, name):
        return name in self._types

    def get(self, name) -> EventType:
        try:
            return self._types[name]
        except KeyError:
            raise ValueError(f"unknown event type {name!r}") from None

    def names(self):
        return sorted(self._types)

    def validate(self, name, payload) -> dict:
        """The payload as the current schema loads it; ``ValidationFailed`` if it is not."""
        et = self.get(name)
        if et.check is not None and et.check(payload):
            return payload
        try:
            et.schema.load(payload)
        except SchemaError as exc:
            raise ValidationFailed(f"{name} payload does not match its schema", exc.normalized_messages()) from None
        return payload

    def upcast(self, name, version, payload) -> tuple[int, dict]:
        et = self._types.get(name)
        if et is None:
            return version, payload
        while version < et.version:
            payload = et.upcasters[version](dict(payload))
            version += 1
        return version, payload

    def public_payload(self, name, payload):
        et = self._types.get(name)
        if et is None or not et.public:
            return None
        return payload


#: integration events of every service, filled by the modules below
INTEGRATION = EventRegistry()

# every service's integration events register themselves into INTEGRATION on import
from shared.contracts import account, registration, verification  # noqa: E402,F401,I001
from shared.contracts import admission, scoring, certificate  # noqa: E402,F401,I001
from shared.contracts import deadletter  # noqa: E402,F401,I001
