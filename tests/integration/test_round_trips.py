"""Round trips to PostgreSQL, counted client-side (``count_round_trips``, the services'
``kaowu_db_round_trips_total``): what a command, a consumer's batch, a read outside a unit
of work and the relay cost."""

from collections import Counter

import pytest

from shared.events import NewEvent
from shared.eventstore.engine import count_round_trips
from shared.eventstore.store import open_store
from tests.integration.test_eventstore import registry

pytestmark = pytest.mark.integration


@pytest.fixture
def store(pg_url):
    store = open_store(pg_url, registry())
    yield store
    store.engine.dispose()


def counting(store) -> Counter:
    counts = Counter()
    count_round_trips(store.engine, lambda kind: counts.update((kind,)))
    return counts


def cost(counts: Counter, fn) -> dict:
    counts.clear()
    fn()
    return dict(counts)


def test_a_command_is_one_transaction_and_its_appends_one_statement(store):
    counts = counting(store)
    store.append([NewEvent("s-1", "Counted", {"n": 0})])

    def command(tx):
        tx.read_stream("s-1")
        tx.append([NewEvent("s-1", "Counted", {"n": 1}), NewEvent("s-2", "Counted", {"n": 2})],
                  {"s-1": 1, "s-2": 0})

    # BEGIN, the stream read, the head and both events in one statement, COMMIT
    assert cost(counts, lambda: store.execute(command)) == {"begin": 1, "statement": 2, "commit": 1}
