"""One evolve per aggregate: a table from event type to the small step that moves its state.

An aggregate's domain module declares an ``Evolve``: for each event type of the aggregate's
stream a ``Step``, callable as ``step(state, event) -> state``, that says

- ``after``: the statuses it may follow (the state chart's edges; the fold refuses others;
  None for an aggregate without a status);
- ``sets(event)``: the fields it sets, from the event alone, the status among them;
- ``then(state, event)``: what else it does that depends on the state before it (a count,
  a list that grows; the aggregate's own), or a check the edge table cannot say;

or, for the event that opens the aggregate, ``Step.opening(make)`` (``make(event)``: the new
state). The domain's fold is ``evolve.fold(events)``: a reduce over the table. A projection
takes the same facts from ``evolve.changes(event)`` (the opened state's fields, or the fields
the step sets) and writes those its row keeps (``Columns``): so a status is mapped from an
event once, and a read model never needs the state before the event (no read per event,
rebuilds stay a single pass). ``tests/unit/test_*_evolve.py`` check that fold and row agree
for random legal histories of each aggregate.

Event types the table does not have change nothing but the version (a type added later).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    after: tuple[str, ...] | None = None  # None: an aggregate without a status chart
    sets: Callable[[object], dict] | None = None
    then: Callable[[object, object], None] | None = None
    make: Callable[[object], object] | None = None  # the opening step's

    @classmethod
    def opening(cls, make: Callable[[object], object], again: tuple[str, ...] | None = None
                ) -> Step:
        """The step that opens the aggregate: ``make(event)``. ``again``: the statuses from
        which it may open it anew (the new state replaces the old, the version goes on)."""
        return cls(make=make, after=again)

    def __call__(self, state, event):
        if self.make is not None:
            return self.make(event)
        if self.then is not None:
            self.then(state, event)
        if self.sets is not None:
            for name, value in self.sets(event).items():
                setattr(state, name, value)
        return state


class Evolve(Mapping):
    """``{event type: Step}`` of one aggregate (read-only mapping), its fold and what a read
    model takes from each event. ``what`` names the aggregate in errors; ``ident(state)`` says
    which one; ``check(state, event)``, if given, runs before every known step (invariants
    across steps, e.g. an event that must come next); ``each(state, event)`` after every
    event of the stream, known or not, the version set (a history)."""

    def __init__(self, what: str, steps: dict[str, Step],
                 ident: Callable[[object], str] = lambda s: "",
                 check: Callable[[object, object], None] | None = None,
                 each: Callable[[object, object], None] | None = None):
        self.what, self.steps, self.ident = what, dict(steps), ident
        self.check, self.each = check, each
        self.opens = frozenset(t for t, s in self.steps.items() if s.make is not None)
        # event type -> what ``changes`` calls (a rebuild calls it per event); the state an
        # opening makes is new and dropped: its fields are handed over without a copy
        self._changes = {t: (lambda ev, make=s.make: vars(make(ev))) if s.make is not None
                         else s.sets or _nothing for t, s in self.steps.items()}

    def __getitem__(self, event_type: str) -> Step:
        return self.steps[event_type]

    def __iter__(self):
        return iter(self.steps)

    def __len__(self):
        return len(self.steps)

    def __call__(self, state, event):
        """One event: the state after it. ``ValueError`` on a move the chart does not have."""
        step = self.steps.get(event.type)
        if step is None:
            if state is not None:
                self._after(state, event)
            return state  # a type added later changes nothing this code knows about
        if step.make is not None:
            if state is None:
                return self._after(step(None, event), event, first=True)
            if step.after is None or state.status not in step.after:
                raise ValueError(f"{event.type} twice in {self.what} {self.ident(state)}"
                                 + (f" (status {state.status!r})" if step.after else ""))
            return self._after(step(None, event), event, previous=state)
        if state is None:
            raise ValueError(f"{event.type} precedes {' or '.join(sorted(self.opens))} "
                             f"(the {self.what}'s opening)")
        if step.after is not None and state.status not in step.after:
            raise ValueError(f"{event.type} cannot follow status {state.status!r} "
                             f"({self.what} {self.ident(state)}, after version {state.version})")
        if self.check is not None:
            self.check(state, event)
        return self._after(step(state, event), event)

    def _after(self, state, event, first: bool = False, previous=None):
        version = getattr(event, "stream_version", None)
        if version is None:
            version = 1 if first else (previous or state).version + 1
        state.version = version
        if self.each is not None:
            self.each(state, event)
        return state

    def fold(self, events: Iterable, state=None):
        """The state as ``events`` (``.type``, ``.payload``, optionally ``.stream_version``)
        left it, None if nothing opened it."""
        for event in events:
            state = self(state, event)
        return state

    def changes(self, event) -> dict | None:
        """What a read model takes from ``event``: the opened state's fields, or the fields
        the step sets (``{}``: nothing but the version); None for a type not of this table."""
        changes = self._changes.get(event.type)
        return None if changes is None else changes(event)


def _nothing(event) -> dict:
    return {}


class Columns:
    """How a read-model row keeps an aggregate's fields: ``spec`` maps a field to its
    column's name, to ``(column, convert)`` where the row keeps it otherwise, or to a list of
    these (a field the row keeps in more than one column). Called with the fields of
    ``Evolve.changes``, it gives the row's values (compiled once: a rebuild calls it per
    event)."""

    __slots__ = ("spec", "names", "_targets", "_plain", "_same", "_converted")

    def __init__(self, spec: dict):
        self.spec = spec
        self.names = frozenset(spec)
        self._targets = {
            name: tuple((c, None) if isinstance(c, str) else c
                        for c in (target if isinstance(target, list) else [target]))
            for name, target in spec.items()}
        # a field kept as it is in one column: the common case, taken first
        self._plain = {name: target for name, target in spec.items() if isinstance(target, str)}
        self._same = frozenset(name for name, target in self._plain.items() if name == target)
        # the fields kept otherwise, a (field, column, convert or None) each column
        self._converted = tuple((name, column, convert) for name, to in self._targets.items()
                                if name not in self._plain for column, convert in to)

    def __iter__(self):
        return iter(self.spec)

    def columns(self, name: str) -> tuple:
        """``(column, convert or None)`` for each column that keeps field ``name``."""
        return self._targets[name]

    def __call__(self, fields: dict) -> dict:
        if fields.keys() <= self._same:  # every field its own column: most steps
            return dict(fields)
        out, targets = {}, self._targets
        plain = self._plain
        if len(fields) > len(targets):  # a whole state (an opening): walk the columns
            out = {column: fields[name] for name, column in plain.items() if name in fields}
            for name, column, convert in self._converted:
                if name in fields:
                    value = fields[name]
                    out[column] = value if convert is None else convert(value)
            return out
        for name, value in fields.items():
            column = plain.get(name)
            if column is not None:
                out[column] = value
            elif name in targets:
                for column, convert in targets[name]:
                    out[column] = value if convert is None else convert(value)
        return out
