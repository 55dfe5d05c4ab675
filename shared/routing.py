"""Routing by event type: a relay message reaches only the queues of the consumers that
handle at least one of the event types in it.

RabbitMQ's sender-selected distribution on the upstream's topic exchange
(``<service>.events``): the relay publishes a message with the routing key of its first
event type and the others in the ``CC`` header (``message_keys``); the broker routes it
by every key, and a queue bound by several of them still gets it once. A consumer's queue
is bound to the type names its dispatch table declares (``consumer_queue``), so a message
with none of them never reaches it. The keys are the bare type names: nameko's own
convention for events, and what a relay of one message per event published.

Why not a headers exchange (``x-match: any``): the type of an existing exchange cannot be
changed (the broker refuses the redeclaration), so it would be a second exchange, published
to by relays and bound by consumers in step through every upgrade. The topic exchange stays
as it was: an older consumer bound to ``#`` still gets every message.

Upgrades. A queue made before this bound ``#``: declaring it removes that binding (kept, it
would deliver everything still). A queue also stays bound to ``batch``, the key of a relay
of one message per cycle before this routing: its messages (all types, no ``types_at``,
``shared.relay``) still reach every consumer and are taken by the rule they were made for.
A consumer whose handler declares no types (``handles`` None) keeps ``#``.
"""

from collections.abc import Iterable

from kombu import Exchange, Queue, binding

EVERYTHING = "#"
#: the routing key of every message of a relay before type routing
UNROUTED = "batch"


def message_keys(types: Iterable[str]) -> tuple[str, list[str]]:
    """(routing key, CC) of a message holding events of ``types``."""
    ordered = sorted(set(types))
    return ordered[0], ordered[1:]


class _Rebound(Queue):
    """A queue that, each time it is declared (first start, every reconnection), removes
    the bindings in ``retired`` after making its own."""

    attrs = Queue.attrs + (("retired", list),)

    def declare(self, nowait=False, channel=None):
        name = super().declare(nowait=nowait, channel=channel)
        if not self.no_declare:
            for old in self.retired or ():
                self.unbind_from(old.exchange, old.routing_key, channel=channel)
        return name


def consumer_queue(name: str, exchange: Exchange, handles: frozenset[str] | None,
                   **options) -> Queue:
    """A consuming service's durable queue for ``exchange``'s messages: bound to each type
    in ``handles`` (and ``UNROUTED``), not to everything; ``handles`` None: everything."""
    if handles is None:
        return Queue(name, exchange=exchange, routing_key=EVERYTHING, **options)
    keys = sorted(handles) + [UNROUTED]
    return _Rebound(name, bindings=[binding(exchange, routing_key=k) for k in keys],
                    retired=[binding(exchange, routing_key=EVERYTHING)], **options)
