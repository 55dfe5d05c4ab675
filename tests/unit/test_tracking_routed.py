"""The tracking consumer when messages are routed by type (``shared.routing``): it receives
only the relay's messages that hold one of its types, and tells a gap from a stretch of
types it does not handle by the message's ``types_at`` (``shared.relay``). SQLite logs, the
relay's real messages, the broker's routing rule applied in hand."""

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.events import NewEvent
from shared.eventstore.store import open_store
from shared.relay import Relay
from shared.routing import message_keys
from shared.tracking import TrackingConsumer, dispatch, events_answer
from tests.integration.test_eventstore import registry
from tests.support import CapturedPublisher

TYPES = ("Counted", "Closed", "Renamed")
PAYLOADS = {"Counted": {"n": 0}, "Closed": {}, "Renamed": {"title": "t"}}


def routed(message, handles) -> bool:
    """Whether the broker puts ``message`` on a queue bound to ``handles``: its routing key
    or one of its CC keys is bound."""
    key, cc = message_keys(e["type"] for e in message["events"])
    return key in handles or any(k in handles for k in cc)


class Upstream:
    """A log whose relay's messages are kept, cycle by cycle."""

    def __init__(self, directory):
        self.store = open_store(f"sqlite:///{directory}/up.db", registry())
        self.relay = Relay(self.store, "up", CapturedPublisher())

    def cycle(self, types):
        """Commit events of ``types`` and run the relay: one message."""
        self.store.append([NewEvent(f"s-{i}", t, dict(PAYLOADS[t])) for i, t in enumerate(types)])
        while self.relay.run_once():
            pass

    @property
    def messages(self):
        return self.relay.publisher.messages

    def fetch(self, pos, limit, types=None):
        if types is None:
            return [self.store.public_view(e, "up") for e in self.store.events_after(pos, limit)]
        return events_answer(self.store, "up", pos, limit, types)

    def positions_of(self, handles):
        return [e.position for e in self.store.events_after(0, 10_000) if e.type in handles]


def consumer_of(me, name, handles):
    """A consumer of ``name`` that acts on ``handles``; each event it applies leaves a
    ``Counted`` in ``me`` (committed with its tracking record)."""
    def step(tx, ev):
        tx.append([NewEvent(f"{name}-{ev.position}", "Counted", {"n": ev.position})])
    return TrackingConsumer(me, name, dispatch({t: step for t in handles}))


def applied(me, name):
    return [e.payload["n"] for e in me.events_after(0, 10_000) if e.stream_id.startswith(f"{name}-")]


def where(me, consumer):
    """How far the consumer has dealt with its upstream (applied or passed over)."""
    return max(me.tracked_position(consumer.upstream), consumer.passed_position)


cycles = st.lists(st.lists(st.sampled_from(TYPES), min_size=1, max_size=4), min_size=1, max_size=8)
type_sets = st.sets(st.sampled_from(TYPES), min_size=1, max_size=2).map(frozenset)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cycles=cycles, handles=type_sets, data=st.data())
def test_routed_messages_apply_every_handled_event_once_in_order(cycles, handles, data):
    """Whatever of its messages reach a consumer (dropped, repeated, reordered), it never
    applies an event out of order nor moves past one of its types without applying it;
    and when they all come in order it pulls nothing (``types_at`` tells it nothing is
    missing in between)."""
    with tempfile.TemporaryDirectory() as directory:
        up = Upstream(directory)
        up.cycle(["Closed"])
        me = open_store(f"sqlite:///{directory}/me.db", registry())
        in_order, shuffled = consumer_of(me, "a", handles), consumer_of(me, "b", handles)
        for c in (in_order, shuffled):
            c.catch_up(up.fetch)  # first contact: it follows this log from position 1
        pulled_at_contact = (in_order.pulled, shuffled.pulled)
        for types in cycles:
            up.cycle(types)
        mine = [m for m in up.messages if routed(m, handles)]
        wanted = up.positions_of(handles)

        for m in mine:
            in_order.receive(m, up.fetch)
        assert applied(me, "a") == wanted and in_order.pulled == pulled_at_contact[0]
        assert in_order.deliveries_passed_over == 0

        deliveries = data.draw(st.lists(st.sampled_from(mine), max_size=2 * len(mine) + 2)
                               if mine else st.just([]))
        for m in deliveries:
            shuffled.receive(m, up.fetch)
            done = applied(me, "b")
            assert done == [p for p in wanted if p <= where(me, shuffled)]  # in order, none skipped
        shuffled.catch_up(up.fetch)  # the timer: what lost messages would have said
        assert applied(me, "b") == wanted and where(me, shuffled) == up.store.head()


def test_a_message_without_the_map_keeps_the_older_rule(tmp_path):
    """A message from a relay before ``types_at``: a consumer that does not stand at its
    ``after`` cannot tell what lies between, and pulls."""
    up = Upstream(tmp_path)
    up.cycle(["Closed"])
    me = open_store(f"sqlite:///{tmp_path}/me.db", registry())
    consumer = consumer_of(me, "a", {"Closed"})
    consumer.catch_up(up.fetch)
    up.cycle(["Counted"])
    up.cycle(["Counted", "Closed"])
    older = {k: v for k, v in up.messages[-1].items() if k != "types_at"}
    pulled = consumer.pulled
    consumer.receive(older, up.fetch)
    assert consumer.pulled == pulled + 1 and applied(me, "a") == [1, 4]


def test_a_message_after_a_lost_one_of_its_types_is_a_gap(tmp_path):
    """The map says a ``Closed`` lies between: the consumer pulls it before going on."""
    up = Upstream(tmp_path)
    up.cycle(["Closed"])
    me = open_store(f"sqlite:///{tmp_path}/me.db", registry())
    consumer = consumer_of(me, "a", {"Closed"})
    consumer.catch_up(up.fetch)
    up.cycle(["Counted", "Closed"])  # lost
    up.cycle(["Counted"])  # not routed to it
    up.cycle(["Closed"])
    assert up.messages[-1]["types_at"] == {"Closed": 3, "Counted": 4}
    consumer.receive(up.messages[-1], up.fetch)
    assert applied(me, "a") == [1, 3, 5] and consumer.pulled == 1 + 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cycles=cycles, handles=type_sets, batch=st.integers(1, 6), data=st.data())
def test_messages_handed_to_the_holder_are_applied_once_in_order(cycles, handles, batch, data):
    """Messages that come while another worker holds the consumer (dropped, repeated,
    reordered) are handed to it and joined where they follow on: once it lets go, every
    event of its types delivered is applied once, in order, none skipped; a stretch it was
    not handed is pulled then, not guessed."""
    with tempfile.TemporaryDirectory() as directory:
        up = Upstream(directory)
        up.cycle(["Closed"])
        me = open_store(f"sqlite:///{directory}/me.db", registry())
        consumer = consumer_of(me, "a", handles)
        consumer.batch = batch
        consumer.catch_up(up.fetch)
        pulled_at_contact = consumer.pulled
        for types in cycles:
            up.cycle(types)
        mine = [m for m in up.messages if routed(m, handles)]
        wanted = up.positions_of(handles)
        handed = data.draw(st.lists(st.sampled_from(mine), max_size=2 * len(mine) + 2)
                           if mine else st.just([]))
        assert consumer._lock.acquire(blocking=False)  # another worker is applying
        try:
            for m in handed:
                assert consumer.receive(m, up.fetch) == 0
        finally:
            consumer._lock.release()
        consumer.catch_up(up.fetch)  # the holder lets go: what was handed, then a pull
        assert applied(me, "a") == wanted and where(me, consumer) == up.store.head()
        if handed == mine:  # all of them, in order: nothing had to be pulled
            assert consumer.pulled == pulled_at_contact
