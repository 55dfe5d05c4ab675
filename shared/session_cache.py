"""A small cache of folded exam-session documents (考试计划) and rule books, so that
commands, consumers and the deadline timer do not read and re-validate a stream on every
call.

A folded document is a pure function of its stream's events; the log only grows, so (log
id, stream key, last version and position of the stream) names one fold. Each use asks
the database for the stream's last version (one indexed lookup on the
``(stream_id, stream_version)`` key) and folds again only when it changed: an amendment
appended here, or by another replica, is seen at the next use.

``SessionCache`` is a nameko dependency provider: a service declares what it folds
(``session_docs = SessionCache(fold, stream_of)``) and each container gets an empty cache at
``setup``, so two containers in one process never share folds. Workers reach it as
``self.session_docs``; consumer steps through their ``prepare`` (``TrackingProvider`` hands a
prepare factory the container's providers).
"""

import threading
from collections import OrderedDict
from collections.abc import Callable

from nameko.extensions import DependencyProvider

from shared.eventstore.statements import STREAM_HEAD


def stream_head(conn, stream_id: str) -> tuple[int, int] | None:
    """(version, position) of the stream's last committed event, or None: cheap."""
    row = conn.execute(STREAM_HEAD, {"stream_id": stream_id}).first()
    return (row.stream_version, row.position) if row else None


class SessionCache(DependencyProvider):
    """Folds keyed by (log id, key), each valid for one stream head; the ``maxsize`` most
    recently used are kept. The cache is made by ``setup`` (one per container); ``fresh``
    gives an unbound one with its own cache, for steps run outside a container."""

    def __init__(self, fold: Callable[[list], object], stream_of: Callable[[str], str],
                 maxsize: int = 64):
        self.fold, self.stream_of, self.maxsize = fold, stream_of, maxsize

    def setup(self):
        self._docs: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.Lock()
        self.folds = 0  # how often a stream was read and folded (tests, metrics)

    def fresh(self) -> "SessionCache":
        cache = SessionCache(self.fold, self.stream_of, self.maxsize)
        cache.setup()
        return cache

    def get_dependency(self, worker_ctx):
        return self

    def lookup(self, key: tuple, head: tuple | None, load: Callable[[], list]):
        """The fold for ``key`` at ``head``; ``load()`` reads the stream when it is not cached."""
        if head is None:
            return None
        with self._lock:
            hit = self._docs.get(key)
            if hit is not None and hit[0] == head:
                self._docs.move_to_end(key)
                return hit[1]
        events = load()
        doc = self.fold(events)
        self.folds += 1
        if events:
            seen = (events[-1].stream_version, events[-1].position)
            with self._lock:
                self._docs[key] = (seen, doc)
                self._docs.move_to_end(key)
                while len(self._docs) > self.maxsize:
                    self._docs.popitem(last=False)
        return doc

    def get(self, store, key, conn=None):
        """The fold as committed in ``store`` (an EventStore or a worker's BoundStore)."""
        stream = self.stream_of(key)
        if conn is None:
            with store.read_engine.connect() as c:
                head = stream_head(c, stream)
        else:
            head = stream_head(conn, stream)
        return self.lookup((store.log_id, key), head,
                           lambda: store.read_stream(stream, conn=conn))

    def get_in(self, tx, key):
        """The fold as transaction ``tx`` sees it: the cached one, unless ``tx`` has appended
        to the stream itself (then its own events are folded in, and not cached)."""
        stream = self.stream_of(key)
        if tx.appended_to(stream):
            return self.fold(tx.read_stream(stream))
        return self.lookup((tx.store.log_id, key), stream_head(tx.conn, stream),
                           lambda: tx.store.read_stream(stream, conn=tx.conn))
