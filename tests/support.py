"""Helpers the integration tests share."""

import time


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    """``predicate()``'s first truthy value within ``timeout`` seconds, polled every
    ``interval``; an ``AssertionError`` if there is none by then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
