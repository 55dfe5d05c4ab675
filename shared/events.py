"""Event value types. Pure data: the domain layer builds these and does no I/O."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a decision produced, not yet stored."""

    stream_id: str
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as it stands in a service's log."""

    position: int  # gapless, per service log, in commit order
    stream_id: str
    stream_version: int  # 1 for a stream's first event
    type: str
    schema_version: int
    payload: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self):
        return {
            "position": self.position,
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "type": self.type,
            "schema_version": self.schema_version,
            "payload": self.payload,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, d):
        return cls(
            position=d["position"],
            stream_id=d["stream_id"],
            stream_version=d["stream_version"],
            type=d["type"],
            schema_version=d["schema_version"],
            payload=d["payload"],
            metadata=d.get("metadata") or {},
        )


def _stored_event_factory():
    new = object.__new__
    s0, s1, s2, s3, s4, s5, s6 = (StoredEvent.__dict__[f].__set__ for f in (
        "position", "stream_id", "stream_version", "type", "schema_version", "payload", "metadata"))

    def stored_event(position, stream_id, stream_version, type_, schema_version, payload,
                     metadata) -> StoredEvent:
        """``StoredEvent(...)`` for replaying logs: the same frozen instance, its slots set
        directly (the generated frozen ``__init__`` calls ``object.__setattr__`` once per
        field, which costs about as much as decoding the event's JSON)."""
        ev = new(StoredEvent)
        s0(ev, position)
        s1(ev, stream_id)
        s2(ev, stream_version)
        s3(ev, type_)
        s4(ev, schema_version)
        s5(ev, payload)
        s6(ev, metadata)
        return ev

    return stored_event


stored_event = _stored_event_factory()
#: the slot setters ``stored_event`` uses, for loops that build many events inline
STORED_EVENT_SLOTS = tuple(StoredEvent.__dict__[f].__set__ for f in (
    "position", "stream_id", "stream_version", "type", "schema_version", "payload", "metadata"))
