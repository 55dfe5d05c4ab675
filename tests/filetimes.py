"""A pytest plugin tests/run.py loads in every shard (``-p tests.filetimes``): per test file
(set-up, call, tear-down), the wall seconds and the CPU seconds of the pytest process and of
the children it waited for (a CLI run, a browser), written as JSON to ``$KAOWU_TEST_TIMES``
at the end: ``{"wall": {file: s}, "cpu": {file: s}}``. The runner orders its queue of files
by the wall seconds and says which files took the CPU. Not counted: the session's own
tear-down (dropping every database), which pytest runs in the last test's or after it."""

import json
import os
import resource

import pytest

_TIMES: dict = {"final": None, "wall": {}, "cpu": {}}


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _counted(nodeid: str, when: str) -> str | None:
    """The file a phase counts for; None for the last test's tear-down."""
    if when == "teardown" and nodeid == _TIMES["final"]:
        return None
    return nodeid.split("::")[0]


def _count_cpu(item, when):
    began = _cpu_seconds()
    yield
    if f := _counted(item.nodeid, when):
        _TIMES["cpu"][f] = _TIMES["cpu"].get(f, 0.0) + _cpu_seconds() - began


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _count_cpu(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _count_cpu(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    if nextitem is None:  # the session's tear-down too
        _TIMES["final"] = item.nodeid
    yield from _count_cpu(item, "teardown")


def pytest_runtest_logreport(report):
    if f := _counted(report.nodeid, report.when):
        _TIMES["wall"][f] = _TIMES["wall"].get(f, 0.0) + report.duration


def pytest_sessionfinish(session):
    if os.environ.get("KAOWU_TEST_TIMES"):
        with open(os.environ["KAOWU_TEST_TIMES"], "w") as out:
            json.dump({"wall": _TIMES["wall"], "cpu": _TIMES["cpu"]}, out)
