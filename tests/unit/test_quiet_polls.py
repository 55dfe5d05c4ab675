"""An idle stack polls less: the relay's poll for other replicas' commits and the catch-up
timer's pull of each upstream slow down while they find nothing, and return to every tick
as soon as they do (``shared.relay.Relay.poll_wait``, ``TrackingProvider.catch_up``)."""

from types import SimpleNamespace

from shared.dependencies import TrackingProvider
from shared.relay import Relay


def test_an_idle_relay_polls_at_one_two_then_four_intervals_and_at_once_after_a_publish():
    relay = Relay(SimpleNamespace(on_commit=lambda wake: None), "up", publisher=None,
                  poll_interval=0.5)
    assert [relay.poll_wait(0) for _ in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert relay.poll_wait(3) == 0.5  # it published: the interval again
    assert relay.poll_wait(0) == 0.5


class Upstream:
    """A tracking consumer of one upstream, in hand: how often it was pulled, and what
    each pull finds."""

    def __init__(self, finds=()):
        self.finds = list(finds)
        self.pulls = 0

    def catch_up(self, fetch):
        self.pulls += 1
        return self.finds.pop(0) if self.finds else 0


def provider(**upstreams):
    p = TrackingProvider({})
    p.consumers = upstreams
    p.watch = SimpleNamespace(stopping=False)
    return p


def ticks(p, n, names):
    for _ in range(n):
        p.catch_up({name: None for name in names})


def test_a_quiet_upstream_is_pulled_at_every_second_then_every_fourth_tick():
    up = Upstream()
    p = provider(up=up)
    ticks(p, 1, ["up"])
    assert up.pulls == 1
    ticks(p, 2, ["up"])  # one empty pull: the next tick is passed over
    assert up.pulls == 2
    ticks(p, 4, ["up"])  # two in a row: three passed over
    assert up.pulls == 3
    ticks(p, 8, ["up"])
    assert up.pulls == 5  # every fourth from then on


def test_a_pull_that_finds_events_restores_every_tick():
    up = Upstream(finds=[0, 0, 2, 1])
    p = provider(up=up)
    ticks(p, 1 + 2 + 4, ["up"])  # empty, empty, then one that finds two
    assert up.pulls == 3
    ticks(p, 1, ["up"])  # found: pulled at the next tick
    assert up.pulls == 4


def test_an_upstream_heard_from_is_passed_over_until_the_second_tick_without_a_message():
    heard, other = Upstream(), Upstream()
    p = provider(heard=heard, other=other)
    p.consumers["heard"].receive = lambda message, fetch: 0
    p.receive("heard", {}, None)
    ticks(p, 1, ["heard", "other"])
    assert (heard.pulls, other.pulls) == (0, 1)  # in order so far; the other is pulled
    ticks(p, 1, ["heard", "other"])
    assert heard.pulls == 0
    ticks(p, 1, ["heard", "other"])  # the second tick without a message
    assert heard.pulls == 1
