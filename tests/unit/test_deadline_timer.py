"""The deadline timer (``shared.service.DeadlineTimer``): every ``DEADLINE_INTERVAL``, and at
once when the service's ``ControlledClock`` is moved (the tests, the in-process benchmarks),
so a jump past a window's close is acted on without waiting for the next tick; it stops
listening when its container stops or is killed."""

from datetime import timedelta

import eventlet
import pytest

from shared.clock import ControlledClock
from shared.service import deadline_timer
from tests.support import wait_for


class Ticker:
    name = "ticker"
    ticks: list = []

    @deadline_timer()
    def deadlines(self):
        self.ticks.append(self.clock_now())

    clock_now = staticmethod(lambda: None)


@pytest.fixture
def ticker(container_factory):
    clock = ControlledClock()
    ticks = []

    def start(interval: float):
        cls = type("Ticker", (Ticker,), {"ticks": ticks, "clock_now": staticmethod(clock.now)})
        container = container_factory(cls, {"CLOCK": clock, "DEADLINE_INTERVAL": interval})
        container.start()
        return container

    return clock, ticks, start


def test_a_move_of_the_clock_fires_the_timer_at_once(ticker):
    clock, ticks, start = ticker
    start(interval=60)
    eventlet.sleep(0.2)
    assert ticks == []  # a minute to its first tick by itself
    clock.advance(hours=2)
    wait_for(lambda: ticks, timeout=5)
    assert ticks == [clock.now()]  # the tick saw the clock as moved
    clock.set(clock.now() + timedelta(days=30))
    wait_for(lambda: len(ticks) == 2, timeout=5)
    assert ticks[1] == clock.now()


def test_moves_before_a_tick_runs_make_one_tick_not_a_queue(ticker):
    clock, ticks, start = ticker
    start(interval=60)
    for _ in range(5):  # no switch between them: the timer has not run yet
        clock.advance(minutes=1)
    wait_for(lambda: ticks, timeout=5)
    eventlet.sleep(0.3)
    assert len(ticks) == 1


def test_it_ticks_at_its_interval_without_moves(ticker):
    _, ticks, start = ticker
    start(interval=0.05)
    wait_for(lambda: len(ticks) >= 3, timeout=5)


def test_a_stopped_or_killed_container_no_longer_listens(ticker):
    clock, ticks, start = ticker
    first = start(interval=60)
    second = start(interval=60)
    assert len(clock._listeners) == 2
    first.stop()
    second.kill()
    assert clock._listeners == []
    clock.advance(hours=1)  # nobody to wake: no error, no tick
    eventlet.sleep(0.2)
    assert ticks == []


def test_on_the_system_clock_it_is_a_plain_timer(container_factory):
    ticks = []
    cls = type("Ticker", (Ticker,), {"ticks": ticks, "clock_now": staticmethod(lambda: 1)})
    container = container_factory(cls, {"DEADLINE_INTERVAL": 0.05})
    container.start()
    wait_for(lambda: len(ticks) >= 2, timeout=5)
    container.stop()
