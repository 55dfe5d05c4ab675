"""A small cache of folded exam-session documents (考试计划), so that commands and the
deadline timer do not read and re-validate a session's stream on every call.

A folded ``SessionDocument`` is a pure function of its stream's events; the log only
grows, so (log id, session id, last version and position of the stream) names one fold.
Each use asks the database for the stream's last version (one indexed lookup on the
``(stream_id, stream_version)`` key) and folds again only when it changed.

A service declares its caches at module level (what to fold), but ``get`` and ``get_in``
keep the folds with the store they were read from, which the service's
``EventStoreProvider`` owns: one cache per container, none shared through the module.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable

from shared.eventstore.statements import STREAM_HEAD
from shared.session import SessionDocument


def stream_head(conn, stream_id: str) -> tuple[int, int] | None:
    """(version, position) of the stream's last committed event, or None: cheap."""
    row = conn.execute(STREAM_HEAD, {"stream_id": stream_id}).first()
    return (row.stream_version, row.position) if row else None


class SessionCache:
    """Folded session documents keyed by (log id, session id), valid for one stream head."""

    def __init__(self, fold: Callable[[list], SessionDocument | None],
                 stream_of: Callable[[str], str], maxsize: int = 64):
        self.fold, self.stream_of, self.maxsize = fold, stream_of, maxsize
        self._docs: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.Lock()
        self.folds = 0  # how often a stream was read and folded (tests, metrics)

    def lookup(self, key: tuple, head: tuple | None,
               load: Callable[[], list]) -> SessionDocument | None:
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

    def held_by(self, store) -> "SessionCache":
        """This cache's folds as ``store`` (an EventStore, or a worker's BoundStore of one)
        holds them: created with the store's first use, gone with the store."""
        target = getattr(store, "_store", store)
        held = target.__dict__.setdefault("_kaowu_folds", {})
        return held.get(self) or held.setdefault(
            self, SessionCache(self.fold, self.stream_of, self.maxsize))

    def get(self, store, session_id: str, conn=None) -> SessionDocument | None:
        """The session as committed in ``store`` (an EventStore or a worker's BoundStore)."""
        cache = self.held_by(store)
        stream = self.stream_of(session_id)
        if conn is None:
            with store.read_engine.connect() as c:
                head = stream_head(c, stream)
        else:
            head = stream_head(conn, stream)
        return cache.lookup((store.log_id, session_id), head,
                            lambda: store.read_stream(stream, conn=conn))

    def get_in(self, tx, session_id: str) -> SessionDocument | None:
        """The session as transaction ``tx`` sees it: the cached fold, unless ``tx`` has
        appended to the session's stream itself (then its own events are folded in)."""
        stream = self.stream_of(session_id)
        head = stream_head(tx.conn, stream)
        if (head[0] if head else 0) != tx.stream_version(stream):
            return self.fold(tx.read_stream(stream))
        return self.held_by(tx.store).lookup((tx.store.log_id, session_id), head,
                                             lambda: tx.store.read_stream(stream, conn=tx.conn))
