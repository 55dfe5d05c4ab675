"""Reading a service's event log over RPC (``events_after``), page by page, filtered.

Shared by ``kaowu events`` (one log, filtered, optionally followed) and ``kaowu history``
(every log, scanned for one candidate). ``call(service, method, *args)`` is whatever
RPC client the caller has.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterator
from datetime import datetime

from shared.clock import shanghai
from shared.masking import mask

PAGE = 1000  # events per events_after call (the service allows up to 5000)
# payload keys too big or too nested for a one-line summary
_BULKY = frozenset({"document", "candidate", "pledge_text", "files", "history", "subjects_detail"})


class LogReader:
    """Reads ``service``'s log after ``position``; ``position`` advances past every event
    read, matching or not, so a follower continues where the last page ended."""

    def __init__(self, call: Callable, service: str, position: int = 0,
                 types: list[str] | None = None, stream: str | None = None, page: int = PAGE):
        self.call, self.service, self.position, self.page = call, service, position, page
        self.types = {t for t in (types or []) if t}
        self.stream = stream
        self.scanned = 0

    def matches(self, event: dict) -> bool:
        if self.types and event.get("type") not in self.types:
            return False
        if self.stream:
            sid = event.get("stream_id") or ""
            if any(c in self.stream for c in "*?["):
                return fnmatch.fnmatchcase(sid, self.stream)
            return sid == self.stream
        return True

    def read(self, limit: int | None = None) -> Iterator[dict]:
        """Matching events after ``position``, oldest first, at most ``limit``; stops at the
        head of the log (a page shorter than asked for)."""
        found = 0
        while True:
            if limit is not None and found >= limit:
                return
            batch = self.call(self.service, "events_after", self.position, self.page)
            for event in batch:
                self.position = max(self.position, int(event["position"]))
                self.scanned += 1
                if self.matches(event):
                    yield event
                    found += 1
                    if limit is not None and found >= limit:
                        return
            if len(batch) < self.page:
                return


def occurred_at(event: dict) -> datetime | None:
    at = (event.get("metadata") or {}).get("occurred_at")
    if not at:
        return None
    try:
        return datetime.fromisoformat(at)
    except ValueError:
        return None


def local_time(event: dict) -> str:
    at = occurred_at(event)
    return shanghai(at) if at else "????-??-?? ??:??:??"


def summary(payload: dict, width: int = 240) -> str:
    """``key=value`` of a payload's plain fields (masked), bulky ones named only."""
    parts = []
    for key, value in mask(payload or {}).items():
        if key in _BULKY or isinstance(value, dict):
            parts.append(f"{key}={{…}}")
        elif isinstance(value, list):
            shown = ",".join(map(str, value)) if all(not isinstance(v, dict | list) for v in value) else ""
            parts.append(f"{key}=[{shown}]" if shown and len(shown) <= 40 else f"{key}=[{len(value)}]")
        elif isinstance(value, str) and len(value) > 60:
            parts.append(f"{key}={value[:57]}…")
        else:
            parts.append(f"{key}={value}")
    text = " ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def line(event: dict, service: str | None = None, width: int = 240) -> str:
    """One event as one line of text (personal data masked)."""
    where = f"{service:<12} " if service else ""
    body = "(private)" if event.get("private") else summary(event.get("payload") or {}, width)
    return (f"{where}{event.get('position', 0):>7}  {local_time(event)}  {event.get('type', '?'):<26} "
            f"{event.get('stream_id', '')}#{event.get('stream_version', '')}  {body}")


def as_json(event: dict) -> str:
    return json.dumps(mask(event), ensure_ascii=False, sort_keys=True, default=str)
