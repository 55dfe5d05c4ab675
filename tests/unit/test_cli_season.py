"""The demo season's pure parts: the plan (deterministic from the seed), synthetic
identities, the funnel the plan means, scores, photos."""

import base64
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import season as s
from services.account.identity import validate_resident_id
from services.account.photo import check_photo


def paths(plan):
    return [(c.path, c.name, c.scores_seed) for c in plan]


def test_the_path_mix_is_deterministic_from_the_seed():
    assert paths(s.make_plan(30, seed=7, identity_base=1)) == \
        paths(s.make_plan(30, seed=7, identity_base=999))  # identities do not move the mix
    assert paths(s.make_plan(30, seed=7, identity_base=1)) != paths(s.make_plan(30, seed=8,
                                                                              identity_base=1))
    assert s.path_mix(s.make_plan(12, seed=2026)) == s.path_mix(s.make_plan(12, seed=2026))


def test_every_archetype_appears_once_there_are_enough_candidates():
    for seed in range(20):
        mix = s.path_mix(s.make_plan(len(s.ARCHETYPES), seed))
        assert set(mix) == set(s.ARCHETYPES) and set(mix.values()) == {1}


def test_a_small_season_still_has_a_certified_candidate():
    for seed in range(50):
        assert "certified" in s.path_mix(s.make_plan(3, seed))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 10**6), base=st.integers(0, s.IDENTITIES))
def test_identities_are_valid_and_unique(n, seed, base):
    plan = s.make_plan(n, seed, identity_base=base)
    assert len(plan) == n
    ids = [c.id_number for c in plan]
    assert len(set(ids)) == n and len({c.mobile for c in plan}) == n
    assert len({c.username for c in plan}) == n
    for c in plan:
        assert validate_resident_id(c.id_number, today=date(2026, 1, 1)) == c.id_number
        assert len(c.mobile) == 11 and c.mobile.startswith("15")


def test_auto_pass_candidates_are_the_registry_people_and_the_rest_go_manual():
    people = s.registry_people(on=date(2026, 4, 7))
    # 张伟 has a live integrity record: he may not pledge, so he is never used
    assert "310110198511200037" not in {p.id_number for p in people}
    assert len(people) >= 3  # one diploma each: the highest
    plan = s.make_plan(80, seed=3, identity_base=5, people=people)
    by_registry = [c for c in plan if c.registry]
    assert len(by_registry) == len(people)
    assert {c.id_number for c in by_registry} == {p.id_number for p in people}
    for c in by_registry:
        assert c.path.commitment and c.path.registry and c.name == c.registry.name
    bent = [c for c in plan if c.note]
    assert bent and all(not c.path.commitment and c.path.manual == "pass" for c in bent)
    assert all(not c.registry for c in plan if not (c.path.commitment and c.path.registry))


def test_invented_diplomas_are_not_in_the_registry():
    from services.verification.reference import from_config

    registry = from_config({})
    for c in s.make_plan(12, seed=1, identity_base=42):
        if not c.path.complete_profile:
            continue
        edu = s.profile_sections(c, "x")["education"]["education"][0]
        found = registry.education_record(c.id_number, edu["certificate_no"])
        assert (found is not None) == bool(c.registry)


def test_an_incomplete_profile_lacks_sections():
    c = next(c for c in s.make_plan(8, seed=1) if c.path.archetype == "incomplete")
    assert set(s.profile_sections(c, "x")) == {"basic", "contact"}


def funnel_of(archetypes, stages=frozenset({"admission", "scoring", "certificate"})):
    plan = [s.Candidate(i, s.ARCHETYPES[a], "x", "1", "1", "u") for i, a in enumerate(archetypes)]
    return s.intended_funnel(plan, set(stages), subjects=3)


def test_the_intended_funnel():
    f = funnel_of(["certified", "certified", "auto_fail_then_fails_exam", "no_commitment_absent",
                   "terminated", "lapsed", "forfeited", "incomplete", "manual_certified"])
    assert f == {
        "accounts": 9, "complete profiles": 8, "applications": 8,
        "applications: confirmed": 6, "applications: lapsed": 1, "applications: terminated": 1,
        "applications: other": 0, "tickets issued": 6, "tickets printed": 5,
        "tickets forfeited": 1, "check-ins (candidate × subject)": 12,
        "absences (candidate × subject)": 6, "qualified (passed every subject)": 3,
        "certificates issued": 3, "certificates downloaded": 3}


def test_rows_of_services_not_running_do_not_apply():
    f = funnel_of(["certified"], stages={"admission"})
    assert f["tickets printed"] == 1 and f["qualified (passed every subject)"] is None
    rows = [r[0] for r in s.compare(f, {**f, "qualified (passed every subject)": None})]
    assert "qualified (passed every subject)" not in rows and "tickets printed" in rows
    assert not s.compare({"accounts": 2}, {"accounts": 1})[0][3]


@pytest.mark.parametrize("fail", [False, True])
def test_scores_fall_on_the_planned_side_of_the_pass_mark(fail):
    for c in s.make_plan(20, seed=4):
        score = s.score_for(c, "L1-LAW", 120, 72.0, fail)
        assert (score < 72) == fail and 0 <= score <= 120 and score == int(score)
        assert score == s.score_for(c, "L1-LAW", 120, 72.0, fail)  # deterministic


def test_the_photo_is_a_valid_id_photo():
    checked = check_photo(base64.b64decode(s.photo_jpeg(2026)))
    assert (checked["width"], checked["height"]) == (295, 413)


def test_windows_shorter_than_two_seconds_are_refused():
    with pytest.raises(ValueError):
        s.SeasonDriver(lambda timeout=None: None, minutes_per_window=0.02)


def test_the_demo_screen_shows_the_funnel_and_what_went_wrong():
    import io
    from datetime import UTC, datetime, timedelta

    from rich.console import Console

    from cli.demo import RichReporter, render_result

    plan = s.make_plan(6, 40, identity_base=1)
    intended = s.intended_funnel(plan, {"admission"})
    actual = {**intended, "tickets printed": intended["tickets printed"] - 1}
    result = s.SeasonResult("demo-1", plan, {"admission"}, intended, actual,
                            s.compare(intended, actual),
                            [s.Deviation("#001 forfeited", "candidates confirm", "window closed")],
                            {"selected": ["a"], "population": 3, "rate": 0.5, "seed": 40}, 12.0,
                            ["scoring is not running"], calls=9, slowest=(0.5, "admission.get_ticket"))
    out = io.StringIO()
    console = Console(file=out, width=160)
    with RichReporter(console) as reporter:
        reporter.phase("application", "网上报名")
        task = reporter.task("candidates apply", 2)
        task.advance()
        task.advance()
        task.finish()
        now = datetime.now(UTC)
        reporter.waiting("waiting for 抽查复核", now + timedelta(seconds=5), now)
        reporter.note("drew 1 of 3")
    render_result(console, result)
    text = out.getvalue()
    assert "✓ candidates apply (2/2)" in text and "drew 1 of 3" in text
    assert "tickets printed" in text and "✗ differs" in text
    assert "window closed" in text and "scoring is not running" in text
    assert "differs from the plan in: tickets printed" in text
    assert "slowest took 0.50 s (admission.get_ticket)" in text


def test_someone_beside_the_plan_gets_a_passing_score():
    for number in ("JL2026000001", "JL2026000002", "X"):
        got = s.outside_score(number, "L1-LAW", 120, 72.0)
        assert 72 <= got <= 120 and got == int(got)
        assert got == s.outside_score(number, "L1-LAW", 120, 72.0)


class FakeRpc:
    """The verification service's manual queue, as the sweep sees it."""

    def __init__(self, queue):
        self.queue, self.decided = queue, []

    def call(self, service, method, *args):
        if method == "manual_queue":
            staff, _session = args
            return [c for c in self.queue if c["point"] == staff["registration_point"]]
        if method == "decide_manual":
            staff, data = args
            self.decided.append((staff["registration_point"], data["application_id"],
                                 data["decision"]))
            self.queue = [c for c in self.queue if c["application_id"] != data["application_id"]]
            return {"status": "passed"}
        raise AssertionError(method)

    def close(self):
        pass


def sweeping_driver(queue, serve_outside=True):
    from types import SimpleNamespace

    notes = []
    reporter = s.Reporter()
    reporter.note = notes.append
    driver = s.SeasonDriver(lambda timeout=None: None, reporter=reporter,
                            serve_outside=serve_outside)
    driver.rpc = FakeRpc(queue)
    driver.doc = SimpleNamespace(session_id="demo-1")
    driver.plan = s.make_plan(2, 40, identity_base=1)
    driver.plan[0].application_id = "demo-1.own"
    driver.point_staff = {p: {"staff_id": f"staff-{p}", "registration_point": p}
                          for p in ("2916", "3001")}
    return driver, notes


def test_the_sweep_approves_manual_checks_of_applications_not_in_the_plan_once():
    queue = [{"application_id": "demo-1.own", "point": "2916"},
             {"application_id": "demo-1.site-a", "point": "2916"},
             {"application_id": "demo-1.site-b", "point": "3001"}]
    driver, notes = sweeping_driver(queue)
    assert driver.sweep_manual() == 2
    assert sorted(driver.rpc.decided) == [("2916", "demo-1.site-a", "pass"),
                                          ("3001", "demo-1.site-b", "pass")]
    assert driver.sweep_manual() == 0  # the plan's own case stays the plan's to decide
    assert any("approved the manual check of 2 application(s) not in the demo's plan" in n
               for n in notes)
    assert driver._outside_actions() == {"manual checks approved": 2}


def test_with_only_the_plan_served_the_sweep_does_nothing():
    driver, _ = sweeping_driver([{"application_id": "demo-1.site-a", "point": "2916"}],
                                serve_outside=False)
    assert driver.sweep_manual() == 0 and driver.rpc.decided == []


def test_the_demo_screen_shows_who_was_served_beside_the_plan_apart():
    import io

    from rich.console import Console

    from cli.demo import render_result

    plan = s.make_plan(2, 40, identity_base=1)
    intended = s.intended_funnel(plan, set())
    result = s.SeasonResult("demo-1", plan, set(), intended, dict(intended),
                            s.compare(intended, intended), [], None, 3.0,
                            outside_actions={"manual checks approved": 1},
                            outside={"applications: confirmed": 1})
    out = io.StringIO()
    render_result(Console(file=out, width=200), result)
    text = out.getvalue()
    assert "Beside the plan" in text and "manual checks approved" in text
    assert "services say: applications: confirmed" in text
    assert "the services' funnel agrees with the plan" in text


class CountingRpc:
    """The counts a funnel reads: every account of the plan complete, no applications."""

    def __init__(self):
        self.asked = []

    def call(self, service, method, *args):
        self.asked.append((service, method, args))
        if method == "get_profile":
            return {"complete": True}
        return {}

    def close(self):
        pass


@pytest.mark.parametrize("serve_outside", [True, False])
def test_the_funnel_always_counts_the_plans_own_accounts_and_profiles(serve_outside):
    from types import SimpleNamespace

    driver = s.SeasonDriver(lambda timeout=None: None, serve_outside=serve_outside)
    driver.rpc = CountingRpc()
    driver.doc = SimpleNamespace(session_id="demo-1")
    driver.plan = s.make_plan(3, 40, identity_base=1)
    for n, c in enumerate(driver.plan):
        c.account_id = f"acc-{n}"
    got = driver._read_funnel([c.account_id for c in driver.plan] if serve_outside else None)
    assert got["accounts"] == 3 and got["complete profiles"] == 3
    counts = [a for _, m, a in driver.rpc.asked if m == "application_counts"]
    assert counts == [("demo-1", ["acc-0", "acc-1", "acc-2"])] if serve_outside \
        else counts == [("demo-1",)]
