"""A pytest plugin tests/run.py loads in every shard (``-p tests.claim``): the shards share
one queue of test files, longest first, and each shard runs the next file no other shard has
taken, so they end together whatever the recorded durations said.

Every shard collects every file; the runner writes the queue (``$KAOWU_TEST_QUEUE``: one
path a line) and a folder for the claims (``$KAOWU_TEST_CLAIMS``). A claim is a directory
named by the file's place in the queue, made with ``mkdir`` (atomic: one shard wins), holding
an empty file named after the shard. A file's tests run in one shard, in their order, its
module fixtures set up once. Without ``$KAOWU_TEST_QUEUE`` pytest runs as usual."""

import os
from pathlib import Path

import pytest


def _queued(session) -> list[list]:
    """The collected tests grouped by file, in the queue's order (any file the queue does
    not name after those, as collected: every shard has the same order)."""
    by_file: dict[str, list] = {}
    for item in session.items:
        by_file.setdefault(str(item.path), []).append(item)
    queue = [str(Path(line).resolve())
             for line in Path(os.environ["KAOWU_TEST_QUEUE"]).read_text().splitlines() if line]
    named = set(queue)
    return [by_file[f] for f in queue if f in by_file] + \
        [items for f, items in by_file.items() if f not in named]


def _claim(claims: Path, place: int, shard: str) -> bool:
    try:
        (claims / f"{place:04d}").mkdir()
    except FileExistsError:
        return False
    (claims / f"{place:04d}" / shard).touch()
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    if not os.environ.get("KAOWU_TEST_QUEUE"):
        return None
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
    if session.config.option.collectonly:
        return True
    claims, shard = Path(os.environ["KAOWU_TEST_CLAIMS"]), os.environ.get("KAOWU_TEST_SHARD", "")
    files = _queued(session)
    place = 0
    while True:
        while place < len(files) and not _claim(claims, place, shard):
            place += 1
        if place == len(files):
            break
        items = files[place]
        chain = items[0].listchain()
        if any(node not in chain for node in session._setupstate.stack):
            # the last file's last test was torn down for the file then next in the queue,
            # which another shard took meanwhile: tear down what this one does not share
            session._setupstate.teardown_exact(items[0])
        for i, item in enumerate(items):
            # after a file's last test, tear down for the next file not yet taken (most
            # often the one this shard takes next; otherwise the fix-up above)
            nextitem = items[i + 1] if i + 1 < len(items) else _untaken(files, place + 1, claims)
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            if session.shouldfail:
                raise session.Failed(session.shouldfail)
            if session.shouldstop:
                raise session.Interrupted(session.shouldstop)
        place += 1
    return True


def _untaken(files: list[list], place: int, claims: Path):
    """The first test of the first file from ``place`` on that no shard has claimed."""
    return next((files[p][0] for p in range(place, len(files))
                 if not (claims / f"{p:04d}").exists()), None)
