"""The cache of folded session documents (shared by registration and verification): a
stream is read and folded again only when its head (version, position) changed."""

from dataclasses import dataclass

import pytest

from shared import session_cache


@dataclass
class Ev:
    stream_version: int
    position: int
    doc: str


@pytest.fixture
def cache():
    return session_cache.SessionCache(lambda events: events[-1].doc if events else None,
                                      lambda sid: f"session-{sid}", maxsize=2)


def test_folds_again_only_when_the_stream_moved(cache):
    stream = [Ev(1, 10, "scheduled")]
    reads = []

    def load():
        reads.append(1)
        return list(stream)

    assert cache.lookup(("log", "s1"), (1, 10), load) == "scheduled"
    assert cache.lookup(("log", "s1"), (1, 10), load) == "scheduled"
    assert len(reads) == 1 and cache.folds == 1
    stream.append(Ev(2, 15, "amended"))
    assert cache.lookup(("log", "s1"), (2, 15), load) == "amended"
    assert len(reads) == 2
    # another log (a reset database) with the same session id is another key
    assert cache.lookup(("other-log", "s1"), (2, 15), load) == "amended" and len(reads) == 3
    assert cache.lookup(("log", "s1"), None, load) is None  # no such stream: nothing read
    assert len(reads) == 3


def test_keeps_the_most_recently_used(cache):
    for sid in ("a", "b", "a", "c"):  # a is used again before c comes: b goes
        cache.lookup(("log", sid), (1, 1), lambda sid=sid: [Ev(1, 1, sid)])
    assert cache.folds == 3
    cache.lookup(("log", "a"), (1, 1), lambda: pytest.fail("a was evicted"))
    cache.lookup(("log", "b"), (1, 1), lambda: [Ev(1, 1, "b")])
    assert cache.folds == 4


def test_the_folds_are_held_by_the_store_not_by_the_module(cache):
    """Two containers (two stores) never share folds; a worker's BoundStore reaches the
    store's; the module-level declaration keeps none itself."""
    from types import SimpleNamespace

    one, two = SimpleNamespace(), SimpleNamespace()
    bound = SimpleNamespace(_store=one)
    held = cache.held_by(one)
    assert cache.held_by(bound) is held and cache.held_by(two) is not held
    held.lookup(("log", "s1"), (1, 1), lambda: [Ev(1, 1, "scheduled")])
    assert cache.held_by(two).lookup(("log", "s1"), (1, 1), lambda: [Ev(1, 1, "other")]) == "other"
    assert held.folds == 1 and cache.folds == 0 and not cache._docs
