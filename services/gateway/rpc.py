"""Calling the services over RPC, with a deadline.

nameko's RPC waits for a reply for ever; a service that is down but whose queue still
exists would hang the request. Every call here has a timeout, and a service that is not
running (no queue: nameko's ``UnknownService``) or too slow becomes ``unavailable`` (503).
Refusals (``shared.errors``) come back as they are and ``errors.from_exception`` maps them.
"""

from __future__ import annotations

import eventlet
from nameko.exceptions import UnknownService

from services.gateway.errors import ServiceUnavailable
from shared.dependencies import NoReply, reply_within


def call(proxy, service: str, method: str, *args, timeout: float = 10.0, **kwargs):
    """``proxy.method(*args, **kwargs)`` within ``timeout`` seconds."""
    try:
        return reply_within(getattr(proxy, method), timeout, *args, **kwargs)
    except NoReply:
        raise ServiceUnavailable(service, f"The {service} service did not answer within "
                                          f"{timeout:g} s; try again shortly.") from None
    except UnknownService:
        raise ServiceUnavailable(service, f"The {service} service is not running; try again "
                                          "later.") from None


def gather(calls: dict, timeout: float) -> dict:
    """Several calls at once: ``{key: (proxy, service, method, args)}`` → ``{key: ("ok",
    result) | ("down", why)}``. One slow or dead service costs ``timeout``, not one each."""
    pool = eventlet.GreenPool(max(len(calls), 1))
    threads = {key: pool.spawn(_safe, proxy, service, method, args, timeout)
               for key, (proxy, service, method, args) in calls.items()}
    return {key: thread.wait() for key, thread in threads.items()}


def _safe(proxy, service, method, args, timeout):
    try:
        return "ok", call(proxy, service, method, *args, timeout=timeout)
    except ServiceUnavailable as exc:
        return "down", exc.message
    except Exception as exc:  # a refusal or a bug in one figure must not blank the page
        return "down", f"{service}.{method} failed: {type(exc).__name__}"
