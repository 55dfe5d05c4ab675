"""Password hashing in the account service: in real threads, at most a bound at once."""

from datetime import datetime

import eventlet
import pytest
from eventlet import patcher
from nameko.testing.services import worker_factory

from services.account.identity import check_digit
from services.account.service import AccountService, Passwords
from shared.clock import SHANGHAI
from shared.passwords import PasswordHasher, ThreadedHasher, usable_cores

# the tests run monkey-patched: these are the OS thread's, not the green thread's
_real_sleep = patcher.original("time").sleep
_os_thread = patcher.original("threading").get_ident
_os_lock = patcher.original("threading").Lock


class SlowHasher:
    """Stands in for argon2: takes a while in its thread and counts how many run at once."""

    def __init__(self, seconds=0.05):
        self.seconds = seconds
        self.lock = _os_lock()
        self.running = self.most = self.calls = 0
        self.threads = set()

    def _work(self, result):
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
            self.threads.add(_os_thread())
        _real_sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return result

    def hash(self, password):
        return self._work(f"hash:{password}")

    def verify(self, password_hash, password):
        return self._work(password_hash == f"hash:{password}")

    def verify_dummy(self, password):
        self._work(None)


def register_input(i):
    return {
        "name": "张三",
        "id_type": "resident_id",
        "id_number": _id_number(i),
        "mobile": f"1380013{i:04d}",
        "username": f"user_{i}",
        "password": f"secret-{i}",
    }


def _id_number(i):
    body = f"11010519491231{i:03d}"  # valid resident IDs differ in the sequence digits
    return body + check_digit(body)


def account_service(hasher):
    service = worker_factory(AccountService, passwords=hasher)
    service.clock.now.return_value = datetime(2026, 4, 7, 10, tzinfo=SHANGHAI)
    # the read model has nobody: no duplicate, no staff account of that name
    conn = service.store.read_engine.connect.return_value.__enter__.return_value
    conn.execute.return_value.all.return_value = []
    conn.execute.return_value.first.return_value = None
    return service


def register_all(service, n):
    threads = [eventlet.spawn(service.register, register_input(i)) for i in range(n)]
    return [t.wait() for t in threads]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_ten_sign_ups_hash_at_most_the_bound_at_once(limit):
    slow = SlowHasher(seconds=0.1)  # long enough for the waiting ones to pile up
    service = account_service(ThreadedHasher(slow, limit))
    answers = register_all(service, 10)
    assert len({a["account_id"] for a in answers}) == 10
    assert slow.calls == 10
    assert slow.most == limit  # reached, never passed
    assert _os_thread() not in slow.threads  # never on the hub's thread
    assert service.store.execute.call_count == 10


def test_without_the_bound_they_would_overlap():
    # the measure above can tell: with room for all, the ten hashes do run together
    slow = SlowHasher(seconds=0.1)
    register_all(account_service(ThreadedHasher(slow, 10)), 10)
    assert slow.most > 3


def test_logins_and_unknown_usernames_share_the_bound():
    slow = SlowHasher()
    hasher = ThreadedHasher(slow, 2)
    calls = [
        lambda: hasher.verify("hash:x", "x"),
        lambda: hasher.verify_dummy("y"),
        lambda: hasher.hash("z"),
    ] * 4
    results = [t.wait() for t in [eventlet.spawn(c) for c in calls]]
    assert results[:3] == [True, None, "hash:z"]
    assert slow.calls == 12 and slow.most == 2
    assert _os_thread() not in slow.threads  # the dummy check too, off the hub


def test_the_hub_keeps_serving_while_a_hash_waits_or_runs():
    slow = SlowHasher(seconds=0.2)
    hasher = ThreadedHasher(slow, 1)
    hashes = [eventlet.spawn(hasher.hash, "p") for _ in range(2)]
    ticks = []
    ticker = eventlet.spawn(lambda: [ticks.append(eventlet.sleep(0.01)) for _ in range(10)])
    ticker.wait()
    assert len(ticks) == 10 and slow.calls == 1  # ticked while the first still hashed
    assert [h.wait() for h in hashes] == ["hash:p", "hash:p"]


def test_a_failing_hash_gives_back_its_slot():
    class Broken(SlowHasher):
        def hash(self, password):
            raise RuntimeError("boom")

    hasher = ThreadedHasher(Broken(), 1)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            hasher.hash("p")
    assert hasher.verify("hash:p", "p") is True


class Container:
    def __init__(self, config):
        self.config = config


@pytest.mark.parametrize(
    "config, limit",
    [
        ({}, usable_cores()),
        ({"PASSWORD_HASH_CONCURRENCY": 3}, 3),
        ({"PASSWORD_HASH_CONCURRENCY": None}, usable_cores()),
    ],
)
def test_the_dependency_reads_the_bound_and_the_cost_from_the_config(config, limit):
    cost = {"time_cost": 1, "memory_cost": 256}
    container = Container({**config, "PASSWORD_HASH": cost})  # bind keeps a weak reference
    provider = Passwords().bind(container, "passwords")
    provider.setup()
    hasher = provider.get_dependency(None)
    assert isinstance(hasher, ThreadedHasher) and hasher.limit == limit
    assert isinstance(hasher.hasher, PasswordHasher) and hasher.hasher.params["memory_cost"] == 256
    assert hasher.verify(hasher.hash("secret123"), "secret123") is True
    assert hasher.verify(hasher.hash("secret123"), "secret124") is False


@pytest.mark.parametrize("limit", [0, -1, "2", 1.5])
def test_a_bound_that_is_not_a_positive_count_is_refused(limit):
    with pytest.raises(ValueError, match="PASSWORD_HASH_CONCURRENCY"):
        ThreadedHasher(SlowHasher(), limit)


# --- usable_cores ------------------------------------------------------------------------


def _cgroup(tmp_path, v2=None, v1=None):
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(f"{v1[0]}\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(f"{v1[1]}\n")
    return tmp_path


@pytest.fixture
def eight_cores(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))


@pytest.mark.parametrize(
    "v2, v1, cores",
    [
        (None, None, 8),  # no cgroup files: the affinity
        ("max 100000", None, 8),
        ("100000 100000", None, 1),  # limits.cpu: 1
        ("50000 100000", None, 1),  # 500m: still one at a time
        ("150000 100000", None, 2),  # 1.5 cores: two
        ("2000000 100000", None, 8),  # a limit above the affinity
        (None, (-1, 100000), 8),
        (None, (200000, 100000), 2),
        ("garbage", (300000, 100000), 3),
    ],
)
def test_usable_cores_sees_the_containers_cpu_limit(tmp_path, eight_cores, v2, v1, cores):
    assert usable_cores(_cgroup(tmp_path, v2, v1)) == cores
