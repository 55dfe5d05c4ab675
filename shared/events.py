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
