"""Work beside Python's: the rebuild's database calls on OS threads of their own, and no GC
while decoding.

Rebuilds overlap the database's work with Python's: a driver call blocks in C for the
statement's whole run, so it runs on a real OS thread, and the green thread that waits for
it yields to the hub meanwhile (``eventlet.tpool``). Under ``eventlet.monkey_patch``
psycopg2 is green (its wait callback), so another green thread that waits for a lock the
rebuild holds yields too.
"""

import contextlib
import gc
from collections.abc import Callable
from contextlib import contextmanager

from eventlet import patcher, tpool

# the real ones, also where eventlet has patched these modules (the services)
_threading = patcher.original("threading")
_queue = patcher.original("queue")


@contextmanager
def gc_paused():
    """No cyclic garbage collection while events are decoded: thousands of dicts are made
    that all live on (the batch), so collections keep scanning them for cycles they do not
    have; that took two thirds of the time of reading a batch of the log. Process-wide, for
    as long as the block runs (nothing in it makes cycles)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class DatabaseWorker:
    """Runs database calls handed to it one after the other on an OS thread of its own
    (rebuilds: the next batch of the log is fetched and the last one's rows written while
    Python folds).

    The thread takes each call as soon as the one before ends, not when the handing green
    thread next yields to the hub (a fold yields once a batch: the database would idle
    between statements). Waits on it are green (``tpool``): other green threads run
    meanwhile.

    A driver connection is never used by two threads at once (psycopg2 interleaves a COPY
    with another thread's query): every call on the rebuild's connection goes through here
    until ``close``. What a call raises skips the rest and comes back from the next
    ``submit``, ``call(...)()``, ``wait`` or ``close``. At most ``depth`` calls are handed
    over and not done (a writer faster than the database is held back, not its rows queued).
    """

    def __init__(self, depth: int = 4):
        self._calls = _queue.SimpleQueue()
        self._room = _threading.Semaphore(depth)
        self._error: BaseException | None = None
        self._cancelled = False
        self._stopped = False
        self._thread = _threading.Thread(target=self._run, name="kaowu-database-worker",
                                         daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            item = self._calls.get()
            if item is None:
                return
            fn, done = item
            if self._cancelled:
                outcome = (True, None)
            elif self._error is not None:  # an earlier call failed: this one is skipped
                outcome = (False, self._error)
            else:
                try:
                    outcome = (True, fn())
                except BaseException as exc:  # handed back to the submitting green thread
                    self._error = exc
                    outcome = (False, exc)
            self._room.release()
            if done is not None:
                done.outcome = outcome
                done.set()

    def _raise(self):
        if self._error is not None:
            raise self._error

    def _hand_over(self, fn, done):
        if not self._room.acquire(blocking=False):
            tpool.execute(self._room.acquire)  # the database is behind: wait, green
        self._calls.put((fn, done))

    def call(self, fn: Callable[[], object]) -> Callable[[], object]:
        """Hand ``fn`` over; returns what gives its result (waiting for it)."""
        self._raise()
        done = _Done()
        self._hand_over(fn, done)

        def result():
            if not done.is_set():
                tpool.execute(done.wait)
            ok, value = done.outcome
            if not ok:
                raise value
            return value
        return result

    def submit(self, fn: Callable[[], object]):
        self._raise()
        self._hand_over(fn, None)

    def cleanup(self, fn: Callable[[], object]):
        """``fn`` after what was handed over before, or now if the thread runs nothing more
        (stopped, or skipping after a failure)."""
        if not self._stopped and not self._cancelled and self._error is None:
            self._hand_over(fn, None)
        else:
            with contextlib.suppress(Exception):
                fn()

    def wait(self):
        """Until everything handed over so far has run."""
        self.call(lambda: None)()

    def _stop(self):
        if not self._stopped:
            self._stopped = True
            self._calls.put(None)
            tpool.execute(self._thread.join)

    def close(self):
        self._stop()
        self._raise()

    def abort(self) -> BaseException | None:
        """Stop without running what is queued; what a call raised, if anything."""
        self._cancelled = True
        self._stop()
        return self._error


class _Done(_threading.Event):
    """A call's outcome, ``(ok, result or exception)``, once set."""

    outcome: tuple = (True, None)
