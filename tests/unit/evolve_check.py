"""Random legal histories of an aggregate, and its read-model row as the projection writes it.

``history(data, evolve, opening, payloads)`` draws an opening payload, then one legal event
after another: a type whose edge leaves the current status (``Step.after``), a payload from
``payloads[type](state)``; a draw the fold refuses (a check beyond the edge table) is
passed over. ``rows(projection, events)`` applies ``handle``'s changes to plain dicts, as the
database would.
"""

from __future__ import annotations

import copy

from hypothesis import strategies as st

from shared.events import StoredEvent
from shared.projection import Delete, Update, Upsert

AT = "2026-04-08T10:00:00+08:00"


def history(data, evolve, stream: str, opening: tuple[str, dict], payloads: dict,
            max_events: int = 12, rare: frozenset = frozenset()) -> tuple[list[StoredEvent], object]:
    """A legal history and the state the fold leaves. ``rare``: types drawn a fifth as often
    (those that end the aggregate or may come at any time would otherwise crowd out the
    rest)."""
    n = 0

    def stored(type_, payload):
        nonlocal n
        n += 1
        return StoredEvent(n, stream, n, type_, 1, payload,
                           {"occurred_at": AT, "event_id": f"e{n}", "actor": "staff-1"})

    events = [stored(*opening)]
    state = evolve.fold(events)
    for _ in range(data.draw(st.integers(0, max_events), label="length")):
        open_types = sorted(t for t, s in evolve.items() if t in payloads and (
            (s.make is None and s.after is None) or (s.after and state.status in s.after)))
        if all(t in rare for t in open_types):
            break  # ended: only what may come at any time is left
        weighted = [t for t in open_types for _ in range(1 if t in rare else 5)]
        for _attempt in range(5):  # a draw the fold refuses is passed over
            type_ = data.draw(st.sampled_from(weighted), label="type")
            event = stored(type_, data.draw(payloads[type_](state), label=type_))
            try:
                state = evolve(copy.deepcopy(state), event)
            except ValueError:
                n -= 1
                continue
            events.append(event)
            break
    assert evolve.fold(events).__dict__ == state.__dict__
    return events, state


def rows(projection, events) -> dict[str, dict[tuple, dict]]:
    """Every table's rows after ``events``, by key."""
    out: dict[str, dict[tuple, dict]] = {}
    for ev in events:
        for ch in projection.handle(ev):
            table = out.setdefault(ch.table, {})
            key = tuple(sorted(ch.key.items()))
            if isinstance(ch, Upsert):
                table.setdefault(key, dict(ch.key)).update(ch.values)
            elif isinstance(ch, Update):
                if key in table:
                    table[key].update(ch.values)
            elif isinstance(ch, Delete):
                table.pop(key, None)
    return out
