"""The season benchmark's arithmetic (bench/accounting.py): CPU from /proc samples, the
stepping search for the sustained decision rate, counts per candidate. No timing here."""

import pytest

from bench.accounting import (
    CpuAccount,
    Step,
    core_seconds_per_candidate,
    delta,
    parent,
    parse_stat,
    per_candidate,
    prometheus_sum,
    started,
    sustained_rate,
)

# /proc/<pid>/stat of a process whose name holds a space and a parenthesis; utime 250 and
# stime 50 ticks (fields 14 and 15)
STAT = ("4242 (beam.smp (x) y) S 7 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 30 0 "
        "100 1000000 5000 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0")


def test_parse_stat_takes_utime_and_stime_after_the_last_parenthesis():
    comm, cpu = parse_stat(STAT, tick=100)
    assert comm == "beam.smp (x) y"
    assert cpu == pytest.approx(3.0)
    assert started(STAT) == 100  # field 22, which tells a reused pid's processes apart
    assert parent(STAT) == 7  # field 4


def test_cpu_account_counts_from_the_first_sample_and_newborns_from_zero():
    acc = CpuAccount()
    acc.start({"services": {1: 10.0, 2: 5.0}, "postgres": {10: 100.0}})
    acc.add("services", {1: 12.0, 2: 5.5})
    acc.add("postgres", {10: 101.0, 11: 0.7})  # 11: a backend opened during the window
    acc.add("postgres", {10: 103.0, 11: 2.0})
    acc.add("services", {1: 14.0})  # 2 exited: its last sample stands
    assert acc.seconds() == {"services": pytest.approx(4.0 + 0.5),
                             "postgres": pytest.approx(3.0 + 2.0)}


def test_cpu_account_never_goes_backwards_on_a_pid_reused_lower():
    acc = CpuAccount()
    acc.start({"services": {1: 10.0}})
    acc.add("services", {1: 11.0})
    acc.add("services", {1: 3.0})
    assert acc.seconds() == {"services": pytest.approx(1.0)}


def test_core_seconds_per_candidate_subtracts_the_hashing():
    got = core_seconds_per_candidate({"services": 60.0, "postgres": 30.0, "rabbitmq": 10.0},
                                     hashes=102, hash_cpu_s=0.05, candidates=100)
    assert got["with_hashing"] == pytest.approx(1.0)
    assert got["hashing_per_candidate"] == pytest.approx(0.051)
    assert got["value"] == pytest.approx(0.949)
    assert got["cpu_s_total"] == 100.0 and got["hashing_cpu_s"] == 5.1


def _steps(limit: float, lose_at: float | None = None):
    """A system that decides everything with p99 rising with the rate, 1 s at ``limit``."""
    seen = []

    def measure(rate):
        seen.append(rate)
        n = int(rate * 10)
        lost = 1 if lose_at is not None and rate >= lose_at else 0
        return Step(rate, n - lost, n, lost, 1000.0 * rate / limit)

    return measure, seen


def test_sustained_rate_is_the_last_step_within_the_criterion():
    measure, seen = _steps(limit=110)
    best, steps = sustained_rate(measure, start=25, step=25, highest=400)
    assert best == 100
    assert seen == [25, 50, 75, 100, 125]  # stops at the first step not sustained
    assert not steps[-1].sustained()


def test_sustained_rate_a_loss_is_not_sustained_whatever_the_latency():
    measure, seen = _steps(limit=10_000, lose_at=75)
    best, _ = sustained_rate(measure, start=25, step=25, highest=400)
    assert best == 50 and seen[-1] == 75


def test_sustained_rate_stops_at_the_highest_and_zero_when_the_first_fails():
    measure, seen = _steps(limit=10_000)
    assert sustained_rate(measure, 25, 25, highest=100)[0] == 100
    assert seen == [25, 50, 75, 100]
    measure, _ = _steps(limit=10)
    assert sustained_rate(measure, 25, 25, 400)[0] == 0


def test_step_needs_every_submission_decided():
    assert Step(25, 250, 250, 0, 300.0).sustained()
    assert not Step(25, 249, 250, 0, 300.0).sustained()
    assert not Step(25, 0, 0, 0, None).sustained()
    assert not Step(25, 250, 250, 0, 1000.5).sustained()


def test_counts_per_candidate():
    before = {"publishes": 10, "rpcs": 5}
    after = {"publishes": 1010, "rpcs": 3505, "transactions": 400}
    d = delta(before, after)
    assert d == {"publishes": 1000, "rpcs": 3500, "transactions": 400}
    assert per_candidate({**d, "round_trips": None}, 100) == {
        "publishes": 10.0, "rpcs": 35.0, "transactions": 4.0, "round_trips": None}


METRICS = """# HELP kaowu_entrypoint_calls_total Entrypoint calls by outcome.
# TYPE kaowu_entrypoint_calls_total counter
kaowu_entrypoint_calls_total{service="account",entrypoint="register",kind="rpc",outcome="ok"} 40.0
kaowu_entrypoint_calls_total{service="account",entrypoint="register",kind="rpc",outcome="refused"} 2.0
kaowu_entrypoint_calls_total{service="account",entrypoint="handle",kind="event",outcome="ok"} 7.0
kaowu_entrypoint_calls_total{service="account",entrypoint="login",kind="rpc",outcome="ok"} 3.0
kaowu_relay_published_total{service="account"} 120.0
kaowu_consumer_passed_over_total{service="account",upstream="a,b"} 5.0
"""


def test_prometheus_sum_by_labels():
    assert prometheus_sum(METRICS, "kaowu_entrypoint_calls_total", {"kind": "rpc"}) == 45.0
    assert prometheus_sum(METRICS, "kaowu_entrypoint_calls_total",
                          {"kind": "rpc", "entrypoint": "register"}) == 42.0
    assert prometheus_sum(METRICS, "kaowu_relay_published_total") == 120.0
    assert prometheus_sum(METRICS, "kaowu_consumer_passed_over_total", {"upstream": "a,b"}) == 5.0
    assert prometheus_sum(METRICS, "kaowu_relay_published") == 0.0  # the exact name only


def test_the_season_bench_drives_cli_season_with_registry_people_of_its_own(tmp_path):
    """bench/season.py runs cli.season's plan: its own people take the commitment routes
    (none bent to a manual pass), and the registry file the services get lists them."""
    from datetime import timedelta

    from bench.season import DriverClock, SteppedClock, bench_people, write_registry
    from cli.season import INTEGRITY_CSV, make_plan, registry_people

    people = bench_people(60)
    plan = make_plan(60, 2026, identity_base=0, people=people)
    assert not [c for c in plan if c.note]
    ids = {p.id_number for p in people}
    takers = [c for c in plan if c.registry]
    assert takers and all(c.id_number in ids for c in takers)
    assert len({c.id_number for c in plan}) == len({c.username for c in plan}) == 60
    write_registry(tmp_path / "registry.csv", people)
    assert registry_people(tmp_path / "registry.csv", INTEGRITY_CSV) == sorted(
        people, key=lambda p: p.id_number)

    clock = DriverClock(SteppedClock(tmp_path / "clock", writer=True))
    later = clock.now() + timedelta(hours=5)
    clock.sleep_until(later)  # a jump, not a wait
    assert abs((clock.now() - later).total_seconds()) < 5
