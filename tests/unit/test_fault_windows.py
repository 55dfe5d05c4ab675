"""The faults that hit a batch in the middle (``faults/inject.py``): how each waits for its
window and strikes. The faults themselves run in ``make faults`` (real processes, broker
and database); here the scheduling, on a fake clock, and the relay's message matched on the
witness queue."""

from queue import Empty

import pytest

from faults.inject import FAULTS, _published_after, strike


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def test_strike_acts_once_at_the_first_sight_of_the_window():
    clock, seen, acted = Clock(), iter([False, False, True, True]), []
    assert strike(lambda: next(seen), lambda: acted.append(clock.now), 1.0, interval=0.01,
                  clock=clock, sleep=clock.sleep)
    assert acted == [pytest.approx(0.02)]


def test_strike_does_nothing_when_the_window_never_opens():
    clock, asked, acted = Clock(), [], []
    assert not strike(lambda: asked.append(clock.now) or False, lambda: acted.append(1), 0.1,
                      interval=0.01, clock=clock, sleep=clock.sleep)
    assert acted == [] and len(asked) >= 10 and clock.now >= 0.1 - 1e-9


def test_the_faults_that_hit_a_batch_in_the_middle_are_in_the_harness():
    assert {"kill9_applying", "kill9_relay_published"} <= set(FAULTS)


class Message:
    def __init__(self, payload, headers):
        self.payload, self.headers, self.acked = payload, headers, False

    def ack(self):
        self.acked = True


class Witness:
    Empty = Empty

    def __init__(self, messages):
        self.messages = list(messages)

    def get(self, block=True, timeout=None):
        if not self.messages:
            raise Empty()
        return self.messages.pop(0)


RELAY = {"nameko.correlation_id": "c1", "nameko.causation_id": "e1"}


def cycle(after, last):
    return {"events": [{"position": p} for p in range(after + 1, last + 1)], "after": after,
            "last": last, "log_id": "L"}


def test_the_cycle_after_the_recorded_position_on_the_witness_queue_means_published():
    witness = Witness([Message(cycle(10, 12), RELAY), Message(cycle(12, 15), RELAY)])
    assert _published_after(witness, 12, wait=0.5)
    assert _published_after(Witness([Message(cycle(10, 12), RELAY)]), 10, wait=0.5)


@pytest.mark.parametrize("messages", [
    [],  # paused before the publish
    [Message(cycle(10, 12), RELAY)],  # an earlier cycle, recorded already
    [Message(cycle(12, 15), {})],  # another fault's message (no relay headers)
    [Message(b"\x00not json", RELAY)],
], ids=["nothing", "earlier", "not-the-relay", "undecodable"])
def test_anything_else_is_not_taken_for_the_cycle(messages):
    assert not _published_after(Witness(messages), 12, wait=0.3)
