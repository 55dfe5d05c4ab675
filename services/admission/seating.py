"""Seating (编排考场): who sits in which room and seat. Pure: no I/O, no clock.

The plan, for the candidates confirmed when 核对确认 closes:

- **order**: by level, then subject set, then application id, so the same candidates
  always give the same plan, and candidates of one level and subject set sit together
  (a group fills consecutive seats, spilling over into the next room);
- **rooms opened**: the fewest rooms, in the session document's venue and room order, that
  hold everyone (fewer rooms, fewer invigilators);
- **even filling**: the opened rooms are filled evenly (water filling): every room that is
  not full holds L or L+1 candidates, so no room is full while the last is nearly empty;
  with equal rooms (30 seats by default) all opened rooms differ by at most one;
- **capacity**: when every room is full the rest are not seated (``unseated``): nobody is
  ever given a seat someone else has.

A candidate confirmed before the close whose confirmation arrives after the plan was made
gets the next free seat (``late_seat``): a room already holding their group if one has a
free seat, else the least filled opened room, else the next room not opened yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class Room:
    venue: str
    room: str
    seats: int  # capacity
    used: int = 0  # seats 1..used are taken (seats are never given back)
    groups: list[str] = field(default_factory=list)  # group keys seated here, in order

    @property
    def free(self) -> int:
        return self.seats - self.used

    def to_dict(self) -> dict:
        return {"venue": self.venue, "room": self.room, "seats": self.seats, "used": self.used,
                "groups": list(self.groups)}

    @classmethod
    def from_dict(cls, d) -> Room:
        return cls(d["venue"], d["room"], d["seats"], d["used"], list(d["groups"]))


def rooms_of(venues: Iterable[dict]) -> list[Room]:
    """The session's rooms, empty, in document order (venue by venue)."""
    return [Room(v["code"], r["code"], r["seats"]) for v in venues for r in v["rooms"]]


def group_key(level: str, subjects: Iterable[str]) -> str:
    """Candidates of one level and subject set sit together."""
    return f"{level}|{','.join(sorted(subjects))}"


def seating_key(candidate) -> tuple:
    """The plan's order: level, subject set, application id (anything with those fields)."""
    return (candidate.level, tuple(sorted(candidate.subjects)), candidate.application_id)


def room_counts(n: int, capacities: Sequence[int]) -> list[int]:
    """How many of ``n`` candidates each room gets: the fewest rooms (in order) that hold
    them, filled evenly up to their capacities. Sums to ``min(n, sum(capacities))``."""
    opened, total = 0, 0
    while opened < len(capacities) and total < n:
        total += capacities[opened]
        opened += 1
    caps = list(capacities[:opened])
    seated = min(n, total)
    # the highest level L with sum(min(c, L)) <= seated; the rest go one each, in order,
    # to rooms with room above L (fewer of them than there are such rooms, by L's choice)
    lo, hi = 0, max(caps, default=0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(c, mid) for c in caps) <= seated:
            lo = mid
        else:
            hi = mid - 1
    counts = [min(c, lo) for c in caps]
    rest = seated - sum(counts)
    for i, c in enumerate(caps):
        if rest == 0:
            break
        if c > counts[i]:
            counts[i] += 1
            rest -= 1
    return counts + [0] * (len(capacities) - opened)


@dataclass
class Placement:
    candidate: object
    room: Room
    seat: int
    order: int  # 0-based position in the plan's order


def plan(candidates: Iterable, rooms: list[Room]) -> tuple[list[Placement], list]:
    """Seat ``candidates`` (with ``level``, ``subjects``, ``application_id``) in empty
    ``rooms`` (updated in place). Returns the placements in plan order and the candidates
    left without a seat (capacity short), also in plan order."""
    if any(r.used for r in rooms):
        raise ValueError("a seating plan starts from empty rooms")
    ordered = sorted(candidates, key=seating_key)
    counts = room_counts(len(ordered), [r.seats for r in rooms])
    placements: list[Placement] = []
    i = 0
    for room, count in zip(rooms, counts, strict=True):
        for _ in range(count):
            cand = ordered[i]
            room.used += 1
            key = group_key(cand.level, cand.subjects)
            if not room.groups or room.groups[-1] != key:
                room.groups.append(key)
            placements.append(Placement(cand, room, room.used, i))
            i += 1
    return placements, ordered[i:]


def late_seat(rooms: list[Room], group: str) -> Room | None:
    """The room for one more candidate of ``group`` (None: every room is full). The seat
    is ``room.used + 1``; the caller records it (``take``)."""
    free = [(i, r) for i, r in enumerate(rooms) if r.free > 0]
    if not free:
        return None
    _, room = min(free, key=lambda ir: (group not in ir[1].groups, ir[1].used == 0,
                                        ir[1].used, ir[0]))
    return room


def take(room: Room, group: str) -> int:
    room.used += 1
    if group not in room.groups:
        room.groups.append(group)
    return room.used
