from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.verification import rules as r
from services.verification.rules import (
    Outcome,
    Tenure,
    check_rules_document,
    document_digest,
    evaluate,
    has_years,
    load_rules,
    metrology_years,
    months_before,
    rules_from_document,
    span_days,
)
from shared.errors import NotFound, ValidationFailed

CUTOFF = date(2026, 12, 31)
RULES = load_rules(2026)

L1_TABLE = [  # DESIGN §5: science/engineering years; other majors +1
    ("大专", 4),
    ("本科", 3),
    ("双学士", 2),
    ("研究生班", 2),
    ("硕士", 1),
    ("博士", 1),
]
ALL_LEVELS = ("中专", "大专", "本科", "双学士", "研究生班", "硕士", "博士")


def job(start, end=None, metrology=True):
    return {"entry_id": "w", "employer": "上海市计量测试技术研究院", "position": "检定员",
            "start": start, "end": end, "metrology": metrology}


def edu(level, category="science_engineering"):
    return {"entry_id": "e", "level": level, "school": "同济大学", "major": "测控技术与仪器",
            "major_category": category, "graduated_on": "2005-07-01"}


def since(years, cutoff=CUTOFF, extra_days=0):
    """An ongoing metrology job of exactly ``years`` years up to and including the cut-off
    day (+ days later: shorter)."""
    after = cutoff + timedelta(days=1)
    return [job((months_before(after, 12 * years) + timedelta(days=extra_days)).isoformat())]


# --- loading ---------------------------------------------------------------------------


def test_2026_table_has_a_row_per_cell_with_stable_ids():
    ids = {row.id: row.years for row in RULES.rows}
    for level, years in L1_TABLE:
        assert ids[f"2026.L1.{level}.science_engineering"] == years
        assert ids[f"2026.L1.{level}.other"] == years + 1
    for level in ALL_LEVELS:
        assert ids[f"2026.L2.{level}.any"] == 1
    assert "2026.L1.中专.science_engineering" not in ids
    assert len(ids) == 12 + 7
    assert RULES.get("2026.L1.本科.other").years == 4
    assert RULES.level_names == {"L1": "一级", "L2": "二级"}


def test_unknown_year_is_a_clear_error():
    with pytest.raises(NotFound) as exc:
        load_rules(1999)
    assert "1999" in exc.value.message and "2026" in exc.value.message


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="L3"):
        evaluate(RULES, "L3", [edu("本科")], since(5), CUTOFF)


SHIPPED = (r.RULES_DIR / "2026.yml").read_text("utf-8")


def problems_of(text, year=None):
    with pytest.raises(ValidationFailed) as exc:
        check_rules_document(text, year)
    return exc.value.fields


def test_the_shipped_document_checks_and_is_version_0():
    doc = check_rules_document(SHIPPED, 2026)
    assert doc["levels"]["L1"]["years"]["本科"] == {"science_engineering": 3, "other": 4}
    assert RULES.version == 0 and RULES.digest == document_digest(doc)
    assert rules_from_document(doc) == RULES
    # comments and layout do not change the rules: the same digest
    assert document_digest(check_rules_document("# note\n" + SHIPPED)) == RULES.digest


def test_a_bad_document_lists_every_problem_at_once_with_its_path():
    fields = problems_of("""
exam_year: 2027
education_levels: [中专, 本科, 本科]
levels:
  L3: {name: 三级, years: {本科: 1}}
  L1:
    name: 一级
    years:
      高中: 2
      本科: {science_engineering: -1, arts: 2}
  L2: {years: {}}
notes: 1
""", 2026)
    assert set(fields) == {
        "exam_year", "education_levels", "levels.L3", "levels.L1.years.高中",
        "levels.L1.years.本科.science_engineering", "levels.L1.years.本科.arts",
        "levels.L1.years.本科.other", "levels.L2.name", "levels.L2.years", "notes"}
    assert "2027" in fields["exam_year"] and "2026" in fields["exam_year"]
    assert "本科" in fields["education_levels"]


@pytest.mark.parametrize(("text", "where"), [
    ("", "document"),
    ("- a list", "document"),
    ("exam_year: [2026", "document"),  # YAML syntax
    ("exam_year: 2026\nexam_year: 2027\n", "line 2"),  # a duplicate key
    ("exam_year: '2026'\neducation_levels: [本科]\nlevels: {L1: {name: 一级, years: {本科: 1}}}",
     "exam_year"),
    ("exam_year: 2026\neducation_levels: [本科]\nlevels: {L1: {name: 一级, years: {本科: true}}}",
     "levels.L1.years.本科"),
    ("exam_year: 2026\neducation_levels: [本科]\nlevels: {L1: {name: 一级, years: {本科: 1.5}}}",
     "levels.L1.years.本科"),
    ("[" * 2000, "document"),  # nested too deeply
])
def test_unreadable_documents_are_refused_with_a_place(text, where):
    assert where in problems_of(text)


def test_a_document_of_another_year_than_asked_is_refused():
    assert "exam_year" in problems_of(SHIPPED, 2027)
    assert check_rules_document(SHIPPED.replace("exam_year: 2026", "exam_year: 2027"),
                                2027)["exam_year"] == 2027


# --- thresholds ------------------------------------------------------------------------


def test_example_from_the_brief_bachelor_science():
    # 截至12月31日: 2024-01-01 up to and including 2026-12-31 is three whole years
    on_the_day = evaluate(RULES, "L1", [edu("本科")], [job("2024-01-01")], CUTOFF)
    assert on_the_day.passed
    assert on_the_day.reason == (
        "本科（理工类专业）报考一级需从事计量技术工作满3年（截至2026年12月31日，含当日），"
        "现有3年。[规则 2026.L1.本科.science_engineering]")
    failed = evaluate(RULES, "L1", [edu("本科")], [job("2024-01-02")], CUTOFF)
    assert not failed.passed
    assert failed.rule == "2026.L1.本科.science_engineering"
    assert failed.reason == (
        "本科（理工类专业）报考一级需从事计量技术工作满3年（截至2026年12月31日，含当日），"
        "现有2年11个月。[规则 2026.L1.本科.science_engineering]")


def test_a_job_ending_on_the_cutoff_day_includes_it():
    ended = evaluate(RULES, "L1", [edu("本科")], [job("2024-01-01", "2026-12-31")], CUTOFF)
    assert ended.passed and ended.reason.endswith("现有3年。[规则 2026.L1.本科.science_engineering]")
    assert not evaluate(RULES, "L1", [edu("本科")], [job("2024-01-01", "2026-12-30")], CUTOFF).passed
    assert metrology_years([job("2026-12-31")], CUTOFF).days == 1  # the cut-off day alone


@pytest.mark.parametrize(("level", "years"), L1_TABLE)
@pytest.mark.parametrize(("category", "extra"), [("science_engineering", 0), ("other", 1)])
def test_level_1_each_row_at_its_exact_threshold(level, years, category, extra):
    need = years + extra
    rule = f"2026.L1.{level}.{category}"
    on_the_day = evaluate(RULES, "L1", [edu(level, category)], since(need), CUTOFF)
    assert on_the_day == Outcome(True, rule, on_the_day.reason)
    day_late = evaluate(RULES, "L1", [edu(level, category)], since(need, extra_days=1), CUTOFF)
    assert not day_late.passed and day_late.rule == rule
    assert f"满{need}年" in day_late.reason


@pytest.mark.parametrize("level", ALL_LEVELS)
@pytest.mark.parametrize("category", ["science_engineering", "other"])
def test_level_2_is_one_year_for_any_major(level, category):
    assert evaluate(RULES, "L2", [edu(level, category)], [job("2026-01-01")], CUTOFF).passed
    out = evaluate(RULES, "L2", [edu(level, category)], [job("2026-01-02")], CUTOFF)
    assert not out.passed
    assert out.rule == f"2026.L2.{level}.any"
    assert out.reason.startswith(f"{level}（专业不限）报考二级需从事计量技术工作满1年")


def test_other_major_needs_one_more_year():
    three = [job("2024-01-01")]
    assert evaluate(RULES, "L1", [edu("本科")], three, CUTOFF).passed
    assert not evaluate(RULES, "L1", [edu("本科", "other")], three, CUTOFF).passed
    assert evaluate(RULES, "L1", [edu("本科", "other")], [job("2023-01-01")], CUTOFF).passed


def test_no_qualifying_education():
    out = evaluate(RULES, "L1", [edu("中专")], since(20), CUTOFF)
    assert out == Outcome(False, "2026.L1.no-qualifying-education", out.reason)
    assert out.reason == ("报考一级需大专及以上学历，所填学历均不符合（现有：中专）。"
                          "[规则 2026.L1.no-qualifying-education]")
    none = evaluate(RULES, "L2", [], since(20), CUTOFF)
    assert none.rule == "2026.L2.no-qualifying-education"
    assert "未填写学历" in none.reason


def test_best_education_entry_decides():
    two_years = since(2)
    # 本科 science needs 3, 硕士 other needs 2: the 硕士 row decides and passes
    out = evaluate(RULES, "L1", [edu("本科"), edu("硕士", "other")], two_years, CUTOFF)
    assert out.passed and out.rule == "2026.L1.硕士.other"
    # a tie (二级: 1 year for all) names the higher education
    out = evaluate(RULES, "L2", [edu("中专"), edu("本科")], since(1), CUTOFF)
    assert out.rule == "2026.L2.本科.any"
    # a non-qualifying entry next to a qualifying one is ignored
    out = evaluate(RULES, "L1", [edu("中专"), edu("大专")], since(3), CUTOFF)
    assert not out.passed and out.rule == "2026.L1.大专.science_engineering"


def test_reason_texts():
    assert "现有无计量技术工作经历" in evaluate(RULES, "L2", [edu("本科")], [], CUTOFF).reason
    one = evaluate(RULES, "L2", [edu("本科")], since(1), CUTOFF)
    assert one.reason == ("本科（专业不限）报考二级需从事计量技术工作满1年（截至2026年12月31日，"
                          "含当日），现有1年。[规则 2026.L2.本科.any]")
    short = evaluate(RULES, "L2", [edu("本科")], [job("2026-12-20")], CUTOFF)
    assert "现有不足1个月。" in short.reason
    assert "现有2个月。" in evaluate(RULES, "L2", [edu("本科")], [job("2026-11-01")], CUTOFF).reason
    assert "现有1个月。" in evaluate(RULES, "L2", [edu("本科")], [job("2026-11-02")], CUTOFF).reason


# --- counting years --------------------------------------------------------------------


def test_overlapping_jobs_are_not_double_counted():
    overlapping = [job("2024-01-01"), job("2024-01-01"), job("2024-06-01", "2025-06-30")]
    assert metrology_years(overlapping, CUTOFF).days == (CUTOFF - date(2024, 1, 1)).days + 1
    assert has_years(overlapping, CUTOFF, 3) and not has_years(overlapping[2:], CUTOFF, 2)
    partial = [job("2020-01-01", "2022-12-31"), job("2022-01-01", "2023-06-30")]
    assert metrology_years(partial, CUTOFF).days == (date(2023, 7, 1) - date(2020, 1, 1)).days


def test_end_date_is_the_last_day_worked_and_adjacent_jobs_join():
    # [2024-01-01, 2025-06-30] + [2025-07-01, now]: one unbroken stretch of exactly 3 years
    adjacent = [job("2024-01-01", "2025-06-30"), job("2025-07-01")]
    assert metrology_years(adjacent, CUTOFF) == Tenure(1096, 3, 0)
    assert has_years(adjacent, CUTOFF, 3)
    # a job that ended on the cut-off day counts as if still running; a day earlier does not
    assert has_years([job("2024-01-01", "2026-12-31")], CUTOFF, 3)
    assert not has_years([job("2024-01-01", "2026-12-30")], CUTOFF, 3)


def test_gaps_are_summed():
    work = [job("2019-01-01", "2019-12-31"), job("2022-01-01", "2023-12-31")]
    assert metrology_years(work, CUTOFF).days == 365 + 730
    assert metrology_years(work, CUTOFF).years == 2
    assert not has_years(work, CUTOFF, 3)


def test_non_metrology_and_future_work_is_ignored_and_clipped_at_the_cutoff():
    assert metrology_years([job("2000-01-01", metrology=False)], CUTOFF) == Tenure(0, 0, 0)
    assert metrology_years([job("2027-01-01")], CUTOFF) == Tenure(0, 0, 0)
    assert metrology_years([job("2027-01-01", "2027-06-30")], CUTOFF).days == 0
    clipped = metrology_years([job("2026-01-01", "2030-06-30")], CUTOFF)
    assert clipped == Tenure(365, 1, 0)
    mixed = [job("2010-01-01", metrology=False), job("2026-01-01"), job("2028-01-01")]
    assert metrology_years(mixed, CUTOFF) == Tenure(365, 1, 0)


def test_date_objects_and_iso_strings_both_work():
    assert metrology_years([job(date(2023, 12, 31), None)], CUTOFF) == metrology_years(
        [job("2023-12-31")], "2026-12-31"
    )


def test_leap_day_steps_back_to_28_february():
    assert months_before(date(2028, 2, 29), 12) == date(2027, 2, 28)
    # a cut-off of 29 February 2028: the year ending with it runs from 1 March 2027
    cutoff = date(2028, 2, 29)
    assert span_days(cutoff, 1) == 366
    assert has_years([job("2027-03-01")], cutoff, 1)
    assert not has_years([job("2027-03-02")], cutoff, 1)
    # a cut-off of 28 February 2029: the year ending with it runs from 1 March 2028
    assert span_days(date(2029, 2, 28), 1) == 365
    assert has_years([job("2028-03-01")], date(2029, 2, 28), 1)
    assert not has_years([job("2028-03-02")], date(2029, 2, 28), 1)


def test_zero_years_always_holds():
    assert has_years([], CUTOFF, 0)


# --- properties -------------------------------------------------------------------------

dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31))


@st.composite
def work_entries(draw):
    start = draw(dates)
    end = draw(st.one_of(st.none(), st.dates(min_value=start, max_value=date(2030, 12, 31))))
    return job(start.isoformat(), end and end.isoformat(), draw(st.booleans()))


@given(st.lists(work_entries(), max_size=6), st.randoms(use_true_random=False))
def test_order_duplicates_and_non_metrology_entries_change_nothing(work, rnd):
    base = metrology_years(work, CUTOFF)
    shuffled = list(work)
    rnd.shuffle(shuffled)
    assert metrology_years(shuffled, CUTOFF) == base
    assert metrology_years(work + work, CUTOFF) == base
    assert metrology_years(work + [job("1990-01-01", metrology=False)], CUTOFF) == base


@given(st.lists(work_entries(), max_size=6))
def test_years_agree_with_has_years_and_never_exceed_the_calendar(work):
    tenure = metrology_years(work, CUTOFF)
    assert tenure.days <= (CUTOFF - date(1990, 1, 1)).days
    assert 0 <= tenure.months <= 11
    assert has_years(work, CUTOFF, tenure.years)
    assert not has_years(work, CUTOFF, tenure.years + 1)
    assert tenure.days >= span_days(CUTOFF, tenure.years, tenure.months)


def test_module_documents_the_counting_rule():
    assert "has N years" in r.__doc__ and "(after - (after minus N years)).days" in r.__doc__
    assert "截至12月31日" in r.__doc__


# --- the cut-off day counts: properties over the calendar arithmetic ---------------------

cutoffs = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


@given(cutoffs, st.integers(0, 30), st.integers(0, 11))
def test_a_job_of_exactly_y_years_and_m_months_up_to_the_cutoff_day_has_them(cutoff, y, m):
    """Started on the day after the cut-off, y years and m months earlier (a day the month
    lacks becomes its last day), a job has exactly y years m months; a day later it has
    less, a day earlier not less."""
    start = months_before(cutoff + timedelta(days=1), 12 * y + m)
    tenure = metrology_years([job(start)], cutoff)
    assert (tenure.years, tenure.months) == (y, m)
    assert tenure.days == (cutoff - start).days + 1 == span_days(cutoff, y, m)
    assert has_years([job(start)], cutoff, y)
    if y or m:
        later = metrology_years([job(start + timedelta(days=1))], cutoff)
        assert (later.years, later.months) < (y, m)
        if m == 0:
            assert not has_years([job(start + timedelta(days=1))], cutoff, y)
    earlier = metrology_years([job(start - timedelta(days=1))], cutoff)
    assert (earlier.years, earlier.months) >= (y, m)


@given(cutoffs, st.dates(min_value=date(1980, 1, 1), max_value=date(2099, 12, 31)))
def test_the_cutoff_day_is_counted_and_a_job_ending_on_it_includes_it(cutoff, start):
    ongoing = metrology_years([job(start)], cutoff)
    ended_on_cutoff = metrology_years([job(start, cutoff)], cutoff)
    ended_later = metrology_years([job(start, cutoff + timedelta(days=400))], cutoff)
    assert ongoing == ended_on_cutoff == ended_later
    assert ongoing.days == max(0, (cutoff - start).days + 1)
    if start < cutoff:  # ending the day before drops exactly the cut-off day
        day_before = metrology_years([job(start, cutoff - timedelta(days=1))], cutoff)
        assert day_before.days == ongoing.days - 1


@settings(deadline=None)  # counts up to 40 years of days
@given(cutoffs, st.integers(0, 40))
def test_n_years_end_with_the_cutoff_day(cutoff, n):
    """N years ending with the cut-off day are N calendar years: 365 or 366 days each, and
    as many 29 Februaries as the span holds; but where the day after the cut-off is a 29
    February, N years before it is 28 February in a year without one (months_before keeps to
    the month), one day more than the calendar count."""
    days = span_days(cutoff, n)
    start = cutoff + timedelta(days=1) - timedelta(days=days)
    leap_days = sum(1 for k in range(days) if (d := start + timedelta(days=k)).month == 2
                    and d.day == 29)
    after = cutoff + timedelta(days=1)
    clamped = int((after.month, after.day) == (2, 29) and (start.month, start.day) == (2, 28))
    assert days == 365 * n + leap_days + clamped
    assert 365 * n <= days <= 366 * n + clamped
