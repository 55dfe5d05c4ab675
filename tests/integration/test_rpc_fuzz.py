"""Every RPC of every service, called with hypothesis-made junk: the answer is a result or a
clear refusal (a ``KaowuError`` subclass with a message), never anything else, and a refusal
leaves the service's log as it was (nothing half-written).

The junk is made once per shape of call (how many arguments it needs, how many it takes) and
given to every RPC of that shape: derandomized, Hypothesis makes the same argument lists for
each of them anyway, and making them cost 95 % of this file's CPU when it was done per RPC.
A failure names the RPC and the arguments it was given (not shrunk).

The services are found on disk (``services/*/service.py``), so a new service or a new RPC
is fuzzed without editing this file. ``KAOWU_FUZZ_SERVICES`` (comma-separated) narrows it.
"""

import copy
import functools
import importlib
import inspect
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nameko.rpc import Rpc
from nameko.testing.services import entrypoint_hook

from shared.clock import ControlledClock
from shared.dependencies import EventStoreProvider
from shared.errors import KaowuError
from shared.runner import discover_services, service_targets
from shared.service import EventSourcedService

pytestmark = pytest.mark.integration

# RPCs whose valid call does heavy work by design; junk for them is still fuzzed below,
# but their one argument-free success path is not worth repeating
SKIP = {"rebuild"}


def service_classes():
    wanted = {s for s in os.environ.get("KAOWU_FUZZ_SERVICES", "").split(",") if s}
    out = []
    for name in discover_services():
        if wanted and name not in wanted:
            continue
        for target in service_targets(name):
            module, _, cls = target.partition(":")
            klass = getattr(importlib.import_module(module), cls) if cls else None
            if klass is not None and issubclass(klass, EventSourcedService):
                out.append(klass)
    return out


def rpc_methods(klass):
    for attr, fn in inspect.getmembers(klass, inspect.isfunction):
        entrypoints = getattr(fn, "nameko_entrypoints", set())
        if any(isinstance(e, Rpc) for e in entrypoints) and attr not in SKIP:
            params = list(inspect.signature(fn).parameters.values())[1:]
            yield attr, params


# what people and scripts actually send: Chinese, control characters, huge and empty
# strings, ID-number-like digits, dates in the wrong shape, nesting, wrong types
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="张三李四计量测试上海０１２３\u0000\u0007\u202e\n\t\r'\";%", max_size=30),
    st.sampled_from(["", " ", "2026-13-45", "2026-04-07T25:00", "11010519491231002X",
                     "11010519491231002Y", "L1", "L3", "2916", "resident_id", "x" * 5000,
                     "2026-shanghai-jiliang", "../../etc/passwd", "1e309", "NaN"]),
)
LEAF = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**63),
                 st.floats(allow_nan=True, allow_infinity=True), TEXT)
VALUE = st.recursive(LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=5)), max_leaves=12)
KEYS = ["session_id", "account_id", "application_id", "level", "subjects", "data", "yaml",
        "registration_point", "staff_id", "reason", "decision", "final", "rate", "seed",
        "username", "password", "name", "id_type", "id_number", "mobile", "files", "section",
        "ticket_number", "subject", "csv", "certificate_number", "token", "credential",
        "window", "start", "end", "commitment", "text", "enquiry_id", "answer", "reopen"]
# dicts that look like the real payloads, with wrong values
SHAPED = st.dictionaries(st.sampled_from(KEYS), VALUE, max_size=8)
ARG = st.one_of(VALUE, SHAPED)


def calls_since(store, head):
    """Events appended after ``head`` by a call, not by the service's consumers (which go on
    applying what earlier calls to other services caused; theirs name their cause)."""
    return [e for e in store.events_after(head, 1000) if not e.metadata.get("causation_id")]


@pytest.fixture(scope="module")
def system(tmp_path_factory, module_amqp_uri, module_factories):
    tmp = tmp_path_factory.mktemp("fuzz")
    config = {"AMQP_URI": module_amqp_uri, "DATABASE_URL": f"sqlite:///{tmp}/{{service}}.db",
              "CLOCK": ControlledClock(), "CATCH_UP_INTERVAL": 5, "DEADLINE_INTERVAL": 5,
              "max_workers": 4, "WEB_SERVER_ADDRESS": "127.0.0.1:0",
              "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024}}
    make_runner, _ = module_factories
    runner = make_runner(config, *service_classes())
    runner.start()
    return runner


CASES = [(k, m, p) for k in service_classes() for m, p in rpc_methods(k)]


@pytest.mark.parametrize("klass,method,params", CASES,
                         ids=[f"{k.name}.{m}" for k, m, _ in CASES])
def test_junk_gets_a_clear_answer(system, klass, method, params):
    container = next(c for c in system.containers if c.service_name == klass.name)
    store = next(d for d in container.dependencies if isinstance(d, EventStoreProvider)).store
    required = [p for p in params if p.default is inspect.Parameter.empty]
    for args in junk(len(required), len(params)):
        head = store.head()
        try:
            with entrypoint_hook(container, method) as hook:
                try:
                    hook(*copy.deepcopy(args))  # a service may change what it is given
                except KaowuError as exc:
                    assert exc.message and isinstance(exc.message, str)
                    assert not calls_since(store, head), f"{method} refused but wrote to the log"
                except TypeError as exc:
                    # a wrong number of arguments is nameko's own check of the call's shape
                    assert "argument" in str(exc), f"{method}: {exc!r}"
        except Exception as exc:
            exc.add_note(f"{klass.name}.{method} was given {args!r}")
            raise


@functools.cache
def junk(least: int, most: int) -> tuple[list, ...]:
    """The argument lists (``least`` to ``most`` of them) Hypothesis makes for a call."""
    made = []

    @settings(max_examples=12, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(args=st.lists(ARG, min_size=least, max_size=most))
    def record(args):
        made.append(args)

    record()
    return tuple(made)
