"""The seating plan (编排考场): determinism, even filling, grouping, capacity; and the
property every plan must have, for any candidates and rooms (hypothesis)."""

import random
from collections import Counter
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from services.admission import seating
from services.admission.seating import Room, group_key, late_seat, plan, room_counts, take

L1_ALL = ("L1-LAW", "L1-DATA", "L1-CASE")
L1_EXEMPT = ("L1-DATA", "L1-CASE")
L2_ALL = ("L2-LAW", "L2-PRACTICE")


@dataclass(frozen=True)
class Cand:
    application_id: str
    level: str
    subjects: tuple


def rooms(*caps):
    return [Room("V1" if i < 4 else "V2", f"{100 + i}", c) for i, c in enumerate(caps)]


def people(n, seed=0):
    rng = random.Random(seed)
    sets = [("L1", L1_ALL), ("L1", L1_EXEMPT), ("L2", L2_ALL), ("L2", ("L2-LAW",))]
    return [Cand(f"app-{i:05d}", *rng.choice(sets)) for i in range(n)]


def signature(placements):
    return [(p.candidate.application_id, p.room.venue, p.room.room, p.seat, p.order)
            for p in placements]


def test_room_counts_open_the_fewest_rooms_and_fill_them_evenly():
    assert room_counts(0, [30] * 3) == [0, 0, 0]
    assert room_counts(30, [30] * 3) == [30, 0, 0]
    assert room_counts(31, [30] * 7) == [16, 15, 0, 0, 0, 0, 0]  # not 30 and 1
    assert room_counts(61, [30] * 7) == [21, 20, 20, 0, 0, 0, 0]
    assert room_counts(210, [30] * 7) == [30] * 7
    assert room_counts(250, [30] * 7) == [30] * 7  # 40 left over: the caller says so
    # unequal rooms: the small one fills, the others share evenly
    assert room_counts(50, [10, 30, 30]) == [10, 20, 20]
    assert room_counts(41, [30, 10, 30]) == [16, 10, 15]


def test_same_candidates_same_plan_whatever_their_order():
    crowd = people(95)
    first, _ = plan(crowd, rooms(*[30] * 7))
    shuffled = list(crowd)
    random.Random(7).shuffle(shuffled)
    second, _ = plan(shuffled, rooms(*[30] * 7))
    assert signature(first) == signature(second)


def test_plan_order_is_level_then_subject_set_then_application_id():
    crowd = people(60, seed=3)
    placements, _ = plan(crowd, rooms(30, 30, 30))
    keys = [(p.candidate.level, tuple(sorted(p.candidate.subjects)), p.candidate.application_id)
            for p in placements]
    assert keys == sorted(keys)


def test_groups_sit_together_in_consecutive_seats_and_rooms():
    crowd = people(100, seed=5)
    rs = rooms(*[30] * 7)
    placements, left = plan(crowd, rs)
    assert not left
    assert Counter(len([p for p in placements if p.room is r]) for r in rs if r.used) == {25: 4}
    seen_groups = []
    for p in placements:  # walking the plan (room by room, seat by seat) a group never recurs
        g = group_key(p.candidate.level, p.candidate.subjects)
        if not seen_groups or seen_groups[-1] != g:
            assert g not in seen_groups, f"group {g} split apart"
            seen_groups.append(g)
    for r in rs:
        assert r.groups == list(dict.fromkeys(r.groups))  # each room lists its groups once


def test_capacity_short_seats_whom_it_can_and_nobody_twice():
    crowd = people(250)
    rs = rooms(*[30] * 7)
    placements, left = plan(crowd, rs)
    assert len(placements) == 210 and len(left) == 40
    seats = [(p.room.venue, p.room.room, p.seat) for p in placements]
    assert len(set(seats)) == 210
    placed = {p.candidate.application_id for p in placements}
    assert placed.isdisjoint(c.application_id for c in left)
    assert all(r.used == r.seats for r in rs)


def test_late_seat_prefers_the_group_then_the_least_filled_then_a_new_room():
    rs = rooms(30, 30, 30)
    crowd = [Cand(f"a{i:02d}", "L1", L1_ALL) for i in range(40)] + \
            [Cand(f"b{i:02d}", "L2", L2_ALL) for i in range(10)]
    plan(crowd, rs)
    assert [r.used for r in rs] == [25, 25, 0]
    l2 = group_key("L2", L2_ALL)
    assert rs[1].groups[-1] == l2
    assert late_seat(rs, l2) is rs[1]  # where the L2 candidates sit
    assert late_seat(rs, group_key("L2", ("L2-LAW",))) is rs[0]  # a new group: least filled, first
    take(rs[0], "x")
    assert late_seat(rs, "y") is rs[1]
    full = rooms(1, 1)
    take(full[0], "g")
    assert late_seat(full, "g") is full[1]  # opened rooms full: the next room opens
    take(full[1], "g")
    assert late_seat(full, "g") is None


def test_a_plan_starts_from_empty_rooms():
    rs = rooms(30)
    take(rs[0], "g")
    try:
        plan(people(3), rs)
    except ValueError:
        return
    raise AssertionError("a used room was planned over")


# -- the property ------------------------------------------------------------------------

SUBJECT_SETS = [("L1", L1_ALL), ("L1", L1_EXEMPT), ("L1", ("L1-LAW", "L1-CASE")),
                ("L2", L2_ALL), ("L2", ("L2-LAW",))]
candidates = st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(SUBJECT_SETS)),
                      max_size=400, unique_by=lambda t: t[0]).map(
    lambda xs: [Cand(f"app-{i:07d}", level, subjects) for i, (level, subjects) in xs])
equal_rooms = st.tuples(st.integers(1, 12), st.sampled_from([30, 30, 1, 7, 40])).map(
    lambda t: [t[1]] * t[0])
any_rooms = st.lists(st.integers(1, 60), min_size=1, max_size=12)


def _check(crowd, caps):
    rs = rooms(*caps)
    placements, left = plan(crowd, rs)
    # every confirmed candidate exactly once: seated or (capacity short) left, never both
    ids = [p.candidate.application_id for p in placements] + [c.application_id for c in left]
    assert sorted(ids) == sorted(c.application_id for c in crowd)
    assert len(placements) == min(len(crowd), sum(caps))
    # no seat twice; seats within the room's size, numbered 1..used
    seats = [(p.room.venue, p.room.room, p.seat) for p in placements]
    assert len(seats) == len(set(seats))
    for r in rs:
        mine = sorted(p.seat for p in placements if p.room is r)
        assert mine == list(range(1, r.used + 1)) and r.used <= r.seats
    # balanced: among opened rooms, one holding two fewer than another is full
    opened = [r for r in rs if r.used]
    for a in opened:
        for b in opened:
            assert a.used >= b.used - 1 or a.used == a.seats
    # the fewest rooms: opened rooms are a prefix, and one room fewer would not do
    k = len(opened)
    assert all(r.used for r in rs[:k]) and not any(r.used for r in rs[k:])
    assert k == 0 or sum(caps[:k - 1]) < len(placements)
    # deterministic
    again, _ = plan(list(reversed(crowd)), rooms(*caps))
    assert signature(again) == signature(placements)
    return rs


@settings(max_examples=150, deadline=None)
@given(candidates, equal_rooms)
def test_property_equal_rooms_balanced_within_one(crowd, caps):
    rs = _check(crowd, caps)
    used = [r.used for r in rs if r.used]
    assert not used or max(used) - min(used) <= 1


@settings(max_examples=150, deadline=None)
@given(candidates, any_rooms)
def test_property_any_rooms(crowd, caps):
    _check(crowd, caps)


@settings(max_examples=100, deadline=None)
@given(candidates, any_rooms, st.lists(st.sampled_from(SUBJECT_SETS), max_size=30))
def test_property_late_seats_never_reuse_a_seat(crowd, caps, late):
    rs = rooms(*caps)
    placements, left = plan(crowd, rs)
    taken = {(p.room.venue, p.room.room, p.seat) for p in placements}
    for level, subjects in late:
        room = seating.late_seat(rs, group_key(level, subjects))
        if room is None:
            assert all(r.used == r.seats for r in rs)
            continue
        seat = take(room, group_key(level, subjects))
        assert seat <= room.seats and (room.venue, room.room, seat) not in taken
        taken.add((room.venue, room.room, seat))
