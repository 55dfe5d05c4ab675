"""The dead-letter queue (死信队列): messages a service could not take, kept for operators.

Two kinds land in the durable queue ``kaowu.dead-letters`` (through the fanout exchange of
the same name), each with headers saying where it came from and why:

- **undecodable** messages (not JSON, a content type we do not accept): the event
  consumer's ``on_decode_error`` publishes the raw body here, then acks it. Without this,
  kombu would log and drop it. Headers: ``x-kaowu-queue``, ``x-kaowu-exchange``,
  ``x-kaowu-routing-key``, ``x-kaowu-error``.
- **poison events**: an upstream event a consumer's handler failed on ``MAX_ATTEMPTS``
  times (``shared.tracking``). The consumer's own log holds it (``EventDeadLettered``) and
  its tracking moved past it in the same transaction; the copy here names
  ``x-kaowu-consumer``, ``x-kaowu-upstream``, ``x-kaowu-position``.

``kaowu dlq list`` shows them (``peek``), ``kaowu dlq replay`` replays them (``replay``):
a poison event through its consumer's ``replay_dead_letter`` RPC, an undecodable message
by publishing it again to the queue it came from (if it is still undecodable it comes back).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kombu import Connection, Exchange, Producer, Queue
from nameko.messaging import QueueConsumer

from shared.logging import get_logger

log = get_logger(__name__)

NAME = "kaowu.dead-letters"
EXCHANGE = Exchange(NAME, type="fanout", durable=True)
QUEUE = Queue(NAME, exchange=EXCHANGE, durable=True)
PREVIEW = 500  # bytes of an undecodable body shown by peek


def _declare(conn):
    QUEUE.bind(conn.default_channel).declare()


def publish(amqp_uri: str, body: bytes | str | dict, headers: dict, content_type: str | None = None,
            content_encoding: str | None = None) -> None:
    """Put one message on the dead-letter queue, with publisher confirms."""
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        _declare(conn)
        producer = Producer(conn.default_channel, exchange=EXCHANGE)
        if isinstance(body, dict):
            producer.publish(body, serializer="json", headers=headers, delivery_mode=2,
                             retry=True)
        else:
            producer.publish(body, content_type=content_type or "application/octet-stream",
                             content_encoding=content_encoding or "binary", headers=headers,
                             delivery_mode=2, retry=True)


class DeadLetteringQueueConsumer(QueueConsumer):
    """nameko's queue consumer, but a message that cannot be decoded goes to the dead-letter
    queue instead of being logged and dropped."""

    def on_decode_error(self, message, exc):
        info = message.delivery_info or {}
        tag = info.get("consumer_tag")
        queue = next((name for consumer in list(self._consumers.values())
                      for name, t in getattr(consumer, "_active_tags", {}).items() if t == tag),
                     None)
        headers = {"x-kaowu-error": f"{type(exc).__name__}: {exc}"[:1000],
                   "x-kaowu-exchange": info.get("exchange") or "",
                   "x-kaowu-routing-key": info.get("routing_key") or "",
                   "x-kaowu-queue": queue or "", "x-kaowu-at": time.time()}
        try:
            publish(self.amqp_uri, message.body, headers, message.content_type,
                    message.content_encoding)
        except Exception as pub_exc:  # leave it unacked: redelivered, not lost
            log.error("dead_letter.publish_failed", error=repr(pub_exc), **_safe(headers))
            return
        log.error("dead_letter.undecodable", **_safe(headers))
        message.ack()


def _safe(headers):
    return {k.removeprefix("x-kaowu-").replace("-", "_"): v for k, v in headers.items()}


# -- operators: kaowu dlq ----------------------------------------------------------------


def counts(amqp_uri: str) -> dict[str, int]:
    with Connection(amqp_uri) as conn:
        _declare(conn)
        _, messages, _ = conn.default_channel.queue_declare(NAME, passive=True)
        return {NAME: messages}


def _describe(message) -> dict:
    h = dict(message.headers or {})
    if "x-kaowu-consumer" in h:
        kind = "poison"
        try:
            ev = message.decode()
        except Exception:
            ev = {}
        summary = {"consumer": h.get("x-kaowu-consumer"), "upstream": h.get("x-kaowu-upstream"),
                   "position": h.get("x-kaowu-position"), "type": ev.get("type")}
    else:
        kind = "undecodable"
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        summary = {"queue": h.get("x-kaowu-queue"), "exchange": h.get("x-kaowu-exchange"),
                   "routing_key": h.get("x-kaowu-routing-key"),
                   "content_type": message.content_type, "bytes": len(body),
                   "preview": body[:PREVIEW].decode("utf-8", "replace")}
    return {"kind": kind, "error": h.get("x-kaowu-error"), "at": h.get("x-kaowu-at"), **summary}


def peek(amqp_uri: str, limit: int = 50) -> list[dict]:
    """The first ``limit`` dead letters, left in the queue."""
    out = []
    with Connection(amqp_uri) as conn:
        _declare(conn)
        channel = conn.default_channel
        held = []
        try:
            while len(held) < limit:
                message = QUEUE.bind(channel).get(no_ack=False)
                if message is None:
                    break
                held.append(message)
                out.append(_describe(message))
        finally:
            for message in held:
                message.requeue()
    return out


def replay(amqp_uri: str, call: Callable[[str, str, tuple], dict], limit: int | None = None,
           on_each: Callable[[dict, dict | Exception], None] | None = None) -> dict:
    """Replay dead letters, oldest first. ``call(service, method, args)`` makes an RPC.

    A poison event goes to its consumer's ``replay_dead_letter(upstream, position)``; an
    undecodable message is published again to the exchange and routing key it came by. A
    message is acked only after its replay succeeded; one that fails stays (requeued)."""
    replayed = failed = 0
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        _declare(conn)
        channel = conn.default_channel
        # at most what is queued now: a replayed message that fails again comes back to the
        # queue and must not be taken a second time
        _, queued, _ = channel.queue_declare(NAME, passive=True)
        limit = queued if limit is None else min(limit, queued)
        failures = []
        try:
            while replayed + failed < limit:
                message = QUEUE.bind(channel).get(no_ack=False)
                if message is None:
                    break
                info = _describe(message)
                try:
                    result = _replay_one(conn, message, call)
                except Exception as exc:
                    failed += 1
                    failures.append(message)
                    if on_each:
                        on_each(info, exc)
                    continue
                message.ack()
                replayed += 1
                if on_each:
                    on_each(info, result)
        finally:
            for message in failures:
                message.requeue()
    return {"replayed": replayed, "failed": failed}


def _replay_one(conn, message, call):
    h = dict(message.headers or {})
    if "x-kaowu-consumer" in h:
        return call(h["x-kaowu-consumer"], "replay_dead_letter",
                    (h["x-kaowu-upstream"], int(h["x-kaowu-position"])))
    # back to the one queue it was taken from (not the exchange: other consumers had it)
    # ours, or RabbitMQ's own dead-lettering (a quorum queue's delivery limit)
    queue = h.get("x-kaowu-queue") or h.get("x-first-death-queue")
    if not queue:
        raise ValueError("the dead letter does not say which queue it came from")
    producer = Producer(conn.default_channel)
    producer.publish(message.body, exchange="", routing_key=queue,
                     content_type=message.content_type or "application/octet-stream",
                     content_encoding=message.content_encoding or "binary",
                     headers={k: v for k, v in h.items() if not k.startswith("x-kaowu-")},
                     delivery_mode=2, retry=True)
    return {"republished_to": queue}
