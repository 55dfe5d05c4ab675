"""The tracking consumer against upstream logs held in hand: duplicates, gaps, refusals
and an upstream whose log was replaced."""

import pytest

from shared.errors import Refused
from shared.events import NewEvent
from shared.eventstore.store import open_store
from shared.tracking import TrackingConsumer, dispatch, events_answer
from tests.integration.test_eventstore import registry

pytestmark = pytest.mark.integration


def fetcher(upstream, asked=None):
    """The upstream's ``events_after`` RPC, in hand; ``asked`` collects the types asked for."""
    def fetch(pos, limit, types=None):
        if types is None:
            return [upstream.public_view(e, "up") for e in upstream.events_after(pos, limit)]
        if asked is not None:
            asked.append(types)
        return events_answer(upstream, "up", pos, limit, types)
    return fetch


def copy_of(store, tmp_path, name):
    """A log with the same events but another identity (a restore, a reset)."""
    other = open_store(f"sqlite:///{tmp_path}/{name}.db", registry())
    for e in store.events_after(0, 10_000):
        other.append([NewEvent(e.stream_id, e.type, e.payload)])
    return other


def test_consumer_follows_one_log(db_url, tmp_path):
    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    for i in range(5):
        upstream.append([NewEvent(f"s-{i}", "Counted", {"n": i})])
    me = open_store(db_url, registry())
    seen = []

    def handler(tx, ev):
        seen.append(ev.position)
        tx.append([NewEvent(f"seen-{ev.position}", "Counted", {"n": ev.position})],
                  {f"seen-{ev.position}": 0})

    consumer = TrackingConsumer(me, "up", handler, batch=2)
    assert consumer.catch_up(fetcher(upstream)) == 5  # in batches of 2
    assert me.tracked("up") == (5, upstream.log_id)
    assert consumer.receive(upstream.public_view(upstream.events_after(2, 1)[0], "up"),
                            fetcher(upstream)) == 0  # a duplicate

    # the upstream's database is restored from a copy: same positions, another log
    restored = copy_of(upstream, tmp_path, "restored")
    restored.append([NewEvent("s-new", "Counted", {"n": 99})])
    assert consumer.catch_up(fetcher(restored)) == 0
    assert consumer.log_changed == restored.log_id
    assert me.tracked("up") == (5, upstream.log_id) and seen == [1, 2, 3, 4, 5]
    # and a message from that other log is not taken for the next one either
    msg = restored.public_view(restored.events_after(5, 1)[0], "up")
    assert consumer.receive(msg, fetcher(upstream)) == 0
    assert seen == [1, 2, 3, 4, 5]


def test_a_refused_event_is_passed_over(db_url, tmp_path):
    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    for i in range(4):
        upstream.append([NewEvent(f"s-{i}", "Counted", {"n": i})])
    me = open_store(db_url, registry())

    def handler(tx, ev):
        tx.append([NewEvent(f"seen-{ev.position}", "Counted", {"n": ev.position})])
        if ev.payload["n"] == 2:
            raise Refused("not in this state")  # after appending: that must not stay

    consumer = TrackingConsumer(me, "up", handler)
    assert consumer.catch_up(fetcher(upstream)) == 4
    assert me.tracked_position("up") == 4
    assert sorted(e.stream_id for e in me.events_after(0)) == ["seen-1", "seen-2", "seen-4"]


def test_a_worker_never_waits_for_the_consumer(tmp_path):
    """While one worker applies (here: the test holds the consumer), others leave their
    events and return at once; the holder applies them before it lets go. A pool of
    workers queued on this lock was a deadlock across services under load."""
    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    for i in range(3):
        upstream.append([NewEvent(f"s-{i}", "Counted", {"n": i})])
    me = open_store(f"sqlite:///{tmp_path}/me.db", registry())
    consumer = TrackingConsumer(me, "up", lambda tx, ev: None)
    fetch = fetcher(upstream)
    consumer.catch_up(fetch)  # first contact: follow the upstream's log
    upstream.append([NewEvent("s-3", "Counted", {"n": 3})])
    upstream.append([NewEvent("s-4", "Counted", {"n": 4})])
    messages = [upstream.public_view(e, "up") for e in upstream.events_after(3)]
    assert consumer._lock.acquire(blocking=False)  # another worker is applying
    try:
        assert [consumer.receive(m, fetch) for m in messages] == [0, 0]  # returned, not blocked
        assert me.tracked_position("up") == 3
    finally:
        consumer._lock.release()
    assert consumer.catch_up(fetch) == 2  # what was left is applied by the next holder
    assert me.tracked_position("up") == 5


def _burst(tmp_path, **options):
    """A consumer that followed an upstream of one event, 7 more events since, and each
    of their messages delivered while another worker held the consumer."""
    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    upstream.append([NewEvent("s-0", "Counted", {"n": 0})])
    me = open_store(f"sqlite:///{tmp_path}/me.db", registry())
    transactions = []
    me.on_commit(lambda appended: transactions.append([e.payload["n"] for e in appended]))

    def handler(tx, ev):
        tx.append([NewEvent(f"seen-{ev.position}", "Counted", {"n": ev.position})])

    consumer = TrackingConsumer(me, "up", handler, batch=3, **options)
    fetch = fetcher(upstream)
    consumer.catch_up(fetch)  # first contact: follow the upstream's log
    for i in range(1, 8):
        upstream.append([NewEvent(f"s-{i}", "Counted", {"n": i})])
    messages = [upstream.public_view(e, "up") for e in upstream.events_after(1)]
    assert consumer._lock.acquire(blocking=False)  # another worker is applying
    try:
        assert [consumer.receive(m, fetch) for m in messages] == [0] * 7
    finally:
        consumer._lock.release()
    transactions.clear()
    return me, consumer, fetch, messages, transactions


def test_messages_that_came_while_another_worker_applied_are_handed_to_it(tmp_path):
    """The holder takes them itself before it lets go, in order: no pull (an RPC and a read
    of the upstream's log) for what the broker has already brought."""
    me, consumer, fetch, messages, transactions = _burst(tmp_path)
    pulled = consumer.pulled
    assert consumer.receive(messages[0], fetch) == 7  # its own event, then the handed ones
    assert transactions == [[2], [3, 4, 5], [6, 7, 8]]  # those that follow on, joined (batch 3)
    assert consumer.pulled == pulled and consumer.deferred == 7
    assert me.tracked_position("up") == 8


def test_a_burst_past_the_stash_is_pulled_in_bounded_transactions(tmp_path):
    """Past ``stash`` messages, they are prompts: the next holder pulls their events
    ``batch`` at a time, in order: a burst (the ~50,000 events of a publication of scores)
    must not become one transaction holding all of it."""
    me, consumer, fetch, messages, transactions = _burst(tmp_path, stash=4)
    assert consumer.receive(messages[0], fetch) == 7  # its own event, then the prompts' pulls
    assert transactions == [[2], [3, 4, 5], [6, 7, 8]]
    assert me.tracked_position("up") == 8


def test_a_poison_event_is_dead_lettered_then_replayed(db_url, tmp_path):
    """A handler that fails on one event (a bug meeting data it did not expect) holds the
    consumer only MAX_ATTEMPTS times; then the event is kept in the consumer's own log, the
    consumer moves on, and once fixed the event is applied by a replay, once."""
    from shared.contracts import INTEGRATION
    from shared.errors import Conflict
    from shared.tracking import MAX_ATTEMPTS, dead_letter_stream

    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    for i in range(4):
        upstream.append([NewEvent(f"s-{i}", "Counted", {"n": i})])
    me = open_store(db_url, registry().include(INTEGRATION))  # services' registries include it
    broken = {"yes": True}
    published = []

    def handler(tx, ev):
        if ev.payload["n"] == 1 and broken["yes"]:
            raise KeyError("field the handler expected")
        tx.append([NewEvent(f"seen-{ev.position}", "Counted", {"n": ev.position})])

    consumer = TrackingConsumer(me, "up", handler,
                                on_dead_letter=lambda up, ev, err: published.append((up, ev.position, err)))
    fetch = fetcher(upstream)
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(KeyError):
            consumer.catch_up(fetch)
        assert me.tracked_position("up") == 0  # the run failed whole: nothing half-done
    assert consumer.catch_up(fetch) == 4  # third failure: dead-lettered, all four tracked
    assert me.tracked_position("up") == 4
    assert published == [("up", 2, "KeyError: 'field the handler expected'")]
    dead = me.read_stream(dead_letter_stream("up", 2))
    assert [e.type for e in dead] == ["EventDeadLettered"]
    assert dead[0].payload["event"]["payload"] == {"n": 1}
    assert sorted(e.stream_id for e in me.events_after(0) if e.type == "Counted") == \
        ["seen-1", "seen-3", "seen-4"]

    with pytest.raises(KeyError):  # still broken: stays dead-lettered
        consumer.replay_dead_letter(2)
    assert len(me.read_stream(dead_letter_stream("up", 2))) == 1
    broken["yes"] = False
    assert consumer.replay_dead_letter(2)["outcome"] == "applied"
    assert len(me.read_stream("seen-2")) == 1
    with pytest.raises(Conflict):  # once
        consumer.replay_dead_letter(2)


def test_database_errors_are_retried_not_dead_lettered(tmp_path):
    from sqlalchemy.exc import OperationalError

    from shared.tracking import MAX_ATTEMPTS

    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    upstream.append([NewEvent("s-0", "Counted", {"n": 0})])
    me = open_store(f"sqlite:///{tmp_path}/me.db", registry())
    failing = {"left": MAX_ATTEMPTS + 2}

    def handler(tx, ev):
        if failing["left"]:
            failing["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("database restarting"))

    consumer = TrackingConsumer(me, "up", handler)
    for _ in range(MAX_ATTEMPTS + 2):
        with pytest.raises(OperationalError):
            consumer.catch_up(fetcher(upstream))
    assert consumer.catch_up(fetcher(upstream)) == 1
    assert consumer.dead_lettered == 0


def _declared_consumer(me):
    """A consumer whose handler acts on ``Closed`` only (and says so)."""
    seen = []

    def closed(tx, ev):
        seen.append(ev.position)
        tx.append([NewEvent(f"seen-{ev.position}", "Counted", {"n": ev.position})],
                  {f"seen-{ev.position}": 0})

    return TrackingConsumer(me, "up", dispatch({"Closed": closed})), seen


def _messages(upstream, after=0):
    return [upstream.public_view(e, "up") for e in upstream.events_after(after)]


def _following(db_url, tmp_path):
    """A declared consumer that has applied its upstream's first event (a ``Closed``)."""
    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    upstream.append([NewEvent("s-0", "Closed", {})])
    me = open_store(db_url, registry())
    consumer, seen = _declared_consumer(me)
    fetch = fetcher(upstream)
    assert consumer.catch_up(fetch) == 1 and seen == [1]
    return upstream, me, consumer, seen, fetch


def test_types_a_handler_does_not_act_on_are_passed_over_without_a_transaction(db_url, tmp_path):
    upstream, me, consumer, seen, fetch = _following(db_url, tmp_path)
    for i in range(1, 4):
        upstream.append([NewEvent(f"s-{i}", "Counted", {"n": i})])
    head_before = me.head()
    for m in _messages(upstream, 1):
        assert consumer.receive(m, fetch) == 1  # taken care of...
    assert me.tracked_position("up") == 1 and me.head() == head_before  # ...without writing
    assert consumer.passed_over == 3 and consumer.applied == 1

    # the next event it acts on is applied, and its transaction records the whole way there
    upstream.append([NewEvent("s-4", "Closed", {})])
    assert consumer.receive(_messages(upstream, 4)[0], fetch) == 1
    assert seen == [1, 5] and me.tracked_position("up") == 5

    # a run that mixes both is applied as one, in one transaction
    upstream.append([NewEvent("s-5", "Counted", {"n": 5}), NewEvent("s-6", "Closed", {})])
    assert consumer.catch_up(fetch) == 2
    assert seen == [1, 5, 7] and me.tracked_position("up") == 7


def _two_passed_over(db_url, tmp_path):
    """A declared consumer that has applied 1 and passed over 2 and 3 (in memory)."""
    upstream, me, consumer, _, fetch = _following(db_url, tmp_path)
    upstream.append([NewEvent("s-1", "Counted", {"n": 1}), NewEvent("s-2", "Counted", {"n": 2})])
    for m in _messages(upstream, 1):
        consumer.receive(m, fetch)
    assert me.tracked_position("up") == 1 and consumer.passed_over == 2
    assert consumer.passed_position == 3  # what the lag metric counts as dealt with
    return upstream, me, consumer, fetch


def test_status_counts_what_was_passed_over(db_url, tmp_path):
    """The ``status`` RPC (``kaowu status``, the dashboard) says how far a consumer has
    dealt with its upstream, passed-over events included, before the record says so."""
    from types import SimpleNamespace

    from shared.service import EventSourcedService

    _, me, consumer, _ = _two_passed_over(db_url, tmp_path)
    service = SimpleNamespace(store=me, tracking=SimpleNamespace(consumers={"up": consumer}))
    assert EventSourcedService._tracking_positions(service) == {"up": 3}
    assert EventSourcedService._tracking_positions(SimpleNamespace(store=me)) == {"up": 1}


def test_the_timer_writes_what_was_passed_over(db_url, tmp_path):
    _, me, consumer, fetch = _two_passed_over(db_url, tmp_path)
    assert consumer.catch_up(fetch) == 0  # nothing new: only the position is written
    assert me.tracked_position("up") == 3 and consumer.passed_position == 0
    assert consumer.catch_up(fetch) == 0 and me.tracked_position("up") == 3


def test_a_restart_before_the_position_is_written_loses_nothing(db_url, tmp_path):
    """Passed over in memory, then the process stops: the log says less than was passed
    over, so the next process pulls those events again (and passes over them again)."""
    upstream, me, _, fetch = _two_passed_over(db_url, tmp_path)  # the process stops here

    second, seen = _declared_consumer(me)
    upstream.append([NewEvent("s-3", "Closed", {})])
    assert second.receive(_messages(upstream, 3)[0], fetch) == 3  # a gap: 2 to 4 pulled
    assert seen == [4] and me.tracked_position("up") == 4  # one run, one transaction


def test_passing_over_follows_another_replicas_progress(db_url, tmp_path):
    """Two replicas of one consumer: what one passed over in memory never takes the
    tracking record backwards, nor past what it has not seen."""
    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    upstream.append([NewEvent("s-0", "Closed", {})])
    me = open_store(db_url, registry())
    a, seen_a = _declared_consumer(me)
    b, seen_b = _declared_consumer(me)
    fetch = fetcher(upstream)
    a.catch_up(fetch)
    upstream.append([NewEvent("s-1", "Counted", {"n": 1})])
    a.receive(_messages(upstream, 1)[0], fetch)  # a passed over 2, in memory
    upstream.append([NewEvent("s-2", "Closed", {}), NewEvent("s-3", "Counted", {"n": 3})])
    assert b.catch_up(fetch) == 3  # b applies 3, passes over 4, writes 4
    assert me.tracked_position("up") == 4 and seen_b == [3]
    assert a.catch_up(fetch) == 0  # a's 2 is behind the record: nothing written back
    assert me.tracked_position("up") == 4 and seen_a == [1]




def _batch(upstream, after, last):
    """The message a relay cycle publishes: the events after ``after`` up to ``last``."""
    return {"events": [upstream.public_view(e, "up") for e in upstream.events_after(after, last - after)],
            "after": after, "last": last, "log_id": upstream.log_id}


def test_a_batch_is_applied_in_one_transaction_with_only_its_declared_types(db_url, tmp_path):
    upstream, me, consumer, seen, fetch = _following(db_url, tmp_path)
    transactions = []
    me.on_commit(lambda appended: transactions.append(len(appended)))
    upstream.append([NewEvent("s-1", "Counted", {"n": 1}), NewEvent("s-2", "Closed", {}),
                     NewEvent("s-3", "Counted", {"n": 3}), NewEvent("s-4", "Closed", {})])
    assert consumer.receive(_batch(upstream, 1, 5), fetch) == 4
    assert seen == [1, 3, 5] and me.tracked_position("up") == 5  # Counted never reached it
    assert transactions == [2]  # one transaction: both effects and the record
    assert consumer.receive(_batch(upstream, 1, 5), fetch) == 0  # redelivered: a duplicate
    # a batch of types it does not act on: no transaction at all
    upstream.append([NewEvent("s-5", "Counted", {"n": 5}), NewEvent("s-6", "Counted", {"n": 6})])
    assert consumer.receive(_batch(upstream, 5, 7), fetch) == 2
    assert transactions == [2] and consumer.passed_position == 7
    assert consumer.pulled == 1  # the first contact's pull only
    # three messages delivered, one of them with none of its types
    assert (consumer.deliveries, consumer.deliveries_passed_over) == (3, 1)
    # the Counted events inside them: 2 and 4 in the first (twice: it came again), 6 and 7
    assert consumer.delivered_unhandled == 2 + 2 + 2
    assert consumer.passed_over == 2 + 2  # positions: 2 and 4 in the first, then 6 and 7


def test_a_gap_is_pulled_for_the_declared_types_only(db_url, tmp_path):
    """The pull asks for ``Closed`` only; the upstream's ``upto`` says how far it read, so
    the ``Counted`` events in between are known to be passed over, not missing."""
    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    upstream.append([NewEvent("s-0", "Closed", {})])
    me = open_store(db_url, registry())
    consumer, seen = _declared_consumer(me)
    asked = []
    fetch = fetcher(upstream, asked)
    consumer.catch_up(fetch)
    upstream.append([NewEvent(f"s-{i}", "Counted", {"n": i}) for i in range(1, 4)])
    upstream.append([NewEvent("s-4", "Closed", {}), NewEvent("s-5", "Counted", {"n": 5})])
    asked.clear()
    # the messages of 2..6 are lost; the one of 7..8 finds the gap
    upstream.append([NewEvent("s-6", "Closed", {}), NewEvent("s-7", "Counted", {"n": 7})])
    assert consumer.receive(_batch(upstream, 6, 8), fetch) == 7
    assert asked == [["Closed"]] and seen == [1, 5, 7]
    assert consumer.pulled == 1 + 2  # the first contact's, then 5 and 7: no Counted crossed
    assert me.tracked_position("up") == 8


def test_a_consumer_dying_in_the_middle_of_a_batch_leaves_none_of_it(tmp_path):
    """The process dies (here: the database goes) at the third event of a batch: none of
    the batch's effects stay nor its record; the redelivered batch is applied once, whole."""
    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    upstream.append([NewEvent("s-0", "Counted", {"n": 0})])
    me = open_store(f"sqlite:///{tmp_path}/me.db", registry())
    dying = {"at": 4}

    def handler(tx, ev):
        tx.append([NewEvent(f"seen-{ev.position}", "Counted", {"n": ev.position})],
                  {f"seen-{ev.position}": 0})
        if ev.position == dying["at"]:
            raise OSError("the process is killed")

    fetch = fetcher(upstream)
    consumer = TrackingConsumer(me, "up", handler)
    consumer.catch_up(fetch)
    upstream.append([NewEvent(f"s-{i}", "Counted", {"n": i}) for i in range(1, 5)])
    with pytest.raises(OSError):
        consumer.receive(_batch(upstream, 1, 5), fetch)
    assert me.tracked_position("up") == 1
    assert [e.stream_id for e in me.events_after(0)] == ["seen-1"]
    dying["at"] = None
    restarted = TrackingConsumer(me, "up", handler)  # a new process: nothing in memory
    assert restarted.receive(_batch(upstream, 1, 5), fetch) == 4  # the broker redelivers
    assert restarted.receive(_batch(upstream, 1, 5), fetch) == 0
    assert [e.stream_id for e in me.events_after(0)] == [f"seen-{i}" for i in range(1, 6)]
    assert me.tracked_position("up") == 5 and restarted.pulled == 0


def test_the_answer_says_how_far_it_read(tmp_path):
    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    upstream.append([NewEvent("s-0", "Closed", {}), NewEvent("s-1", "Counted", {"n": 1}),
                     NewEvent("s-2", "Closed", {}), NewEvent("s-3", "Counted", {"n": 3})])
    full = events_answer(upstream, "up", 0, 1, ["Closed"])  # the limit: up to the last given
    assert [e["position"] for e in full["events"]] == [1] and full["upto"] == 1
    rest = events_answer(upstream, "up", 1, 10, ["Closed"])  # the rest: up to the head
    assert [e["position"] for e in rest["events"]] == [3] and rest["upto"] == 4
    assert events_answer(upstream, "up", 0, 10, [])["events"] == []  # none asked, none given
    assert rest["log_id"] == upstream.log_id


def test_an_upstream_without_the_type_filter_is_pulled_whole(db_url, tmp_path):
    """A rolling upgrade: the upstream's ``events_after`` does not take ``types`` yet
    (nameko answers ``IncorrectSignature``); the consumer pulls every type and passes over
    the ones it does not act on."""
    from nameko.exceptions import RemoteError

    upstream = open_store(f"sqlite:///{tmp_path}/up.db", registry())
    upstream.append([NewEvent("s-0", "Closed", {}), NewEvent("s-1", "Counted", {"n": 1}),
                     NewEvent("s-2", "Closed", {})])
    me = open_store(db_url, registry())
    consumer, seen = _declared_consumer(me)
    whole = fetcher(upstream)

    def older(pos, limit, **kwargs):
        if kwargs:
            raise RemoteError("IncorrectSignature", "unexpected keyword argument 'types'")
        return whole(pos, limit)

    assert consumer.catch_up(older) == 3
    assert seen == [1, 3] and me.tracked_position("up") == 3
