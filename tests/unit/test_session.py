"""The exam session document: the reference 2026 Shanghai timetable, windows to the second,
validation that lists every problem, amendment, serialization and the demo session."""

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.clock import SHANGHAI, iso
from shared.errors import Refused, ValidationFailed
from shared.session import (
    REFERENCE_SESSION_PATH,
    WINDOW_LABELS,
    WINDOW_NAMES,
    SessionDocument,
    Window,
    demo_session,
    load_session_file,
    parse_session,
    require_open,
)

SESSION = load_session_file(REFERENCE_SESSION_PATH)
REFERENCE_TEXT = REFERENCE_SESSION_PATH.read_text(encoding="utf-8")
S = timedelta(seconds=1)


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


# (window, first second, last second) as the seed gives them
EXPECTED_WINDOWS = [
    ("application", sh(2026, 4, 7, 10, 0), sh(2026, 4, 13, 16, 0)),
    ("verification", sh(2026, 4, 7, 10, 0), sh(2026, 4, 14, 16, 0)),
    ("spot_check", sh(2026, 4, 15, 0, 0), sh(2026, 4, 16, 23, 59, 59)),
    ("confirmation", sh(2026, 4, 17, 10, 0), sh(2026, 4, 18, 16, 0)),
    ("ticket_printing", sh(2026, 6, 10, 10, 0), sh(2026, 6, 12, 16, 0)),
    ("exam", sh(2026, 6, 13, 0, 0), sh(2026, 6, 14, 23, 59, 59)),
    ("scores", sh(2026, 8, 15, 9, 0), sh(2026, 12, 31, 23, 59, 59)),
    ("certificates", sh(2026, 9, 15, 0, 0), sh(2027, 12, 31, 23, 59, 59)),
]


# --------------------------------------------------------------------------- reference session


def test_reference_session_header():
    assert SESSION.session_id == "2026-shanghai-jiliang"
    assert SESSION.name == "2026年度全国注册计量师职业资格考试（上海考区）"
    assert SESSION.exam_year == 2026
    assert SESSION.timezone == "Asia/Shanghai"
    assert SESSION.eligibility_cutoff == date(2026, 12, 31)
    assert SESSION.pledge_version == "2026-v1"
    assert "承诺" in SESSION.pledge_text
    assert SESSION.ticket_number_format.format(year=2026, point="2916", level="L1", seq=7) \
        == "20262916L1000007"


def test_reference_levels_and_subjects():
    l1, l2 = SESSION.levels["L1"], SESSION.levels["L2"]
    assert (l1.name, l1.subjects) == ("一级", ("L1-LAW", "L1-DATA", "L1-CASE"))
    assert (l2.name, l2.subjects) == ("二级", ("L2-LAW", "L2-PRACTICE"))
    assert l1.exemptions == {"senior_title": "L1-LAW"}
    assert l2.exemptions == {"verifier_certificate": "L2-PRACTICE"}
    assert (l1.validity_years, l1.validity_years_exempt) == (3, 2)
    assert (l2.validity_years, l2.validity_years_exempt) == (2, 1)
    assert SESSION.subjects["L1-LAW"].name == "计量法律法规及综合知识"
    assert SESSION.subjects["L2-PRACTICE"].name == "计量专业实务与案例分析"
    assert {s.full_marks for s in SESSION.subjects.values() if s.level == "L1"} == {120}


def test_pass_mark_is_sixty_percent_of_full_marks():
    assert SESSION.subjects["L1-LAW"].pass_mark == 72
    assert SESSION.subjects["L2-LAW"].pass_mark == 60  # not 60.00000000000001


def test_pass_ratio_is_data():
    text = REFERENCE_TEXT.replace("pass_ratio: 0.6", "pass_ratio: 0.5")
    assert parse_session(text).subjects["L1-DATA"].pass_mark == 60


def test_reference_point_2916():
    pt = SESSION.points["2916"]
    assert pt.name == "上海市计量协会培训部"
    assert pt.address == "徐汇区桂箐路69号27号楼6楼"
    assert pt.phone == "54042022 54045035"
    assert pt.email == "shsjlxhpxb@163.com"
    assert pt.service_hours == ((time(9, 30), time(11, 30)), (time(13, 30), time(16, 0)))
    assert pt.service_windows == ("application", "verification", "confirmation")


def test_reference_exam_schedule_covers_every_subject_inside_the_exam_window():
    exam = SESSION.window("exam")
    assert sorted(e["subject"] for e in SESSION.exam_schedule) == sorted(SESSION.subjects)
    for e in SESSION.exam_schedule:
        assert exam.contains(e["start"]) and e["start"] < e["end"] <= exam.end_exclusive
    law = next(e for e in SESSION.exam_schedule if e["subject"] == "L1-LAW")
    assert (law["start"], law["end"]) == (sh(2026, 6, 13, 9, 0), sh(2026, 6, 13, 11, 30))


def test_reference_venues_default_to_thirty_seats():
    assert len(SESSION.venues) == 2
    for v in SESSION.venues:
        assert set(v) == {"code", "name", "address", "rooms"}
        assert v["rooms"] and all(r["seats"] == 30 for r in v["rooms"])
    text = REFERENCE_TEXT.replace('{code: "101", seats: 30}', '{code: "101"}')
    assert parse_session(text).venues[0]["rooms"][0] == {"code": "101", "seats": 30}


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize(("name", "first", "last"), EXPECTED_WINDOWS, ids=[w[0] for w in EXPECTED_WINDOWS])
def test_window_first_and_last_second(name, first, last):
    w = SESSION.window(name)
    assert (w.name, w.start, w.end) == (name, first, last)
    assert w.contains(first)
    assert not w.contains(first - S)
    assert not w.contains(first - timedelta(microseconds=1))
    assert w.contains(last)
    assert w.contains(last + timedelta(microseconds=999_999))  # still the last second
    assert not w.contains(last + S)
    assert w.end_exclusive == last + S


def test_window_contains_any_zone_and_refuses_naive():
    w = SESSION.window("confirmation")
    assert w.contains(datetime(2026, 4, 17, 2, 0, tzinfo=UTC))
    assert not w.contains(datetime(2026, 4, 17, 1, 59, 59, tzinfo=UTC))
    with pytest.raises(ValueError):
        w.contains(datetime(2026, 4, 17, 12, 0))


def test_windows_are_in_the_session_zone():
    for w in SESSION.windows.values():
        assert w.start.tzinfo == SHANGHAI and w.end.tzinfo == SHANGHAI


def test_describe_names_window_label_and_times():
    assert SESSION.window("confirmation").describe() == (
        "核对确认 (confirmation) 2026-04-17 10:00:00 – 2026-04-18 16:00:00 Asia/Shanghai")
    for name in WINDOW_NAMES:
        text = SESSION.window(name).describe()
        assert WINDOW_LABELS[name] in text and f"({name})" in text
    assert Window("proof", sh(2026, 4, 7, 10, 0), sh(2026, 4, 18, 16, 0)).describe().startswith(
        "proof 2026-04-07 10:00:00")


def test_unknown_window_is_a_value_error():
    with pytest.raises(ValueError, match="unknown window"):
        SESSION.window("lunch")


@pytest.mark.parametrize(("t", "phase"), [
    (sh(2026, 4, 7, 9, 59, 59), None),
    (sh(2026, 4, 7, 10, 0), "application"),
    (sh(2026, 4, 13, 16, 0), "application"),
    (sh(2026, 4, 13, 16, 0, 1), "verification"),
    (sh(2026, 4, 14, 16, 0, 1), None),
    (sh(2026, 4, 15, 0, 0), "spot_check"),
    (sh(2026, 4, 17, 10, 30), "confirmation"),
    (sh(2026, 5, 1, 12, 0), None),
    (sh(2026, 6, 11, 12, 0), "ticket_printing"),
    (sh(2026, 6, 14, 23, 59, 59), "exam"),
    (sh(2026, 10, 1, 12, 0), "scores"),
    (sh(2027, 6, 1, 12, 0), "certificates"),
    (sh(2028, 1, 1, 0, 0), None),
])
def test_phase(t, phase):
    assert SESSION.phase(t) == phase


# --------------------------------------------------------------------------- require_open


def test_require_open_inside_is_silent():
    require_open(SESSION, "confirmation", sh(2026, 4, 18, 16, 0, 0), "Confirming")


@pytest.mark.parametrize(("now", "when"), [
    (sh(2026, 4, 17, 9, 59, 59), "has not opened yet"),
    (sh(2026, 4, 18, 16, 0, 1), "has closed"),
])
def test_require_open_refuses_outside_naming_the_window(now, when):
    with pytest.raises(Refused) as caught:
        require_open(SESSION, "confirmation", now, "Confirming an application")
    err = caught.value
    assert err.fields == {"window": "confirmation", "opens": iso(sh(2026, 4, 17, 10, 0)),
                          "closes": iso(sh(2026, 4, 18, 16, 0))}
    assert err.message.startswith("Confirming an application is only possible in the 核对确认 "
                                  "(confirmation) 2026-04-17 10:00:00 – 2026-04-18 16:00:00")
    assert when in err.message
    assert now.strftime("%Y-%m-%d %H:%M:%S") in err.message
    assert err.error_code == "refused"


def test_require_open_reports_now_in_shanghai_time():
    with pytest.raises(Refused, match="it is now 2026-04-19 08:00:00"):
        require_open(SESSION, "application", datetime(2026, 4, 19, 0, 0, tzinfo=UTC), "Applying")


def test_require_open_unknown_window():
    with pytest.raises(ValueError):
        require_open(SESSION, "lunch", sh(2026, 4, 8, 12, 0), "Eating")


# --------------------------------------------------------------------------- registration point


@pytest.mark.parametrize(("t", "serving"), [
    (sh(2026, 4, 13, 9, 30), True),       # Monday, application
    (sh(2026, 4, 13, 9, 29, 59), False),
    (sh(2026, 4, 13, 11, 29, 59), True),
    (sh(2026, 4, 13, 11, 30), False),
    (sh(2026, 4, 13, 11, 31), False),
    (sh(2026, 4, 13, 13, 29), False),
    (sh(2026, 4, 13, 13, 30), True),
    (sh(2026, 4, 13, 15, 59), True),
    (sh(2026, 4, 13, 16, 0), False),
    (sh(2026, 4, 14, 10, 0), True),       # verification still open
    (sh(2026, 4, 15, 10, 0), False),      # spot check
    (sh(2026, 4, 16, 14, 0), False),
    (sh(2026, 4, 17, 10, 30), True),      # confirmation
    (sh(2026, 4, 18, 15, 59), True),
    (sh(2026, 4, 19, 10, 0), False),      # after confirmation
    (sh(2026, 6, 11, 10, 0), False),      # ticket printing: not a service window
    (datetime(2026, 4, 13, 2, 0, tzinfo=UTC), True),   # 10:00 in Shanghai
])
def test_point_2916_in_service(t, serving):
    assert SESSION.points["2916"].in_service(t, SESSION) is serving


def test_spot_check_excluded_even_if_a_service_window_overlaps_it():
    doc = SESSION.amended("verification", sh(2026, 4, 7, 10, 0), sh(2026, 4, 14, 16, 0))
    d = doc.to_dict()
    d["windows"]["spot_check"] = {"start": "2026-04-14T15:00:00+08:00", "end": "2026-04-16T23:59:59+08:00"}
    d["windows"]["verification"]["end"] = "2026-04-14T14:00:00+08:00"
    doc = SessionDocument.from_dict(d)
    # application window ended on the 13th; 04-14 10:00 verification, 04-14 15:30 spot check
    assert doc.points["2916"].in_service(sh(2026, 4, 14, 10, 0), doc)
    assert not doc.points["2916"].in_service(sh(2026, 4, 14, 15, 30), doc)


# --------------------------------------------------------------------------- bad documents


BAD = """
session_id: 2026-shanghai-jiliang
name: 坏文档
exam_year: 2026
timezone: Asia/Shanghai
eligibility_cutoff: 2026-02-30
pledge_version: v1
pledge_text: 本人承诺。
levels:
  - {code: L1, name: 一级, validity_years: 3, validity_years_exempt: 2, exemptions: {senior_title: L2-LAW}}
  - {code: L2, name: 二级, validity_years: 2, validity_years_exempt: 1}
subjects:
  - {code: L1-LAW, name: 法规, level: L1, full_marks: 120}
  - {code: L1-LAW, name: 法规又一次, level: L1, full_marks: 120}
  - {code: L2-LAW, name: 法规, level: L2, full_marks: 0}
  - {code: L3-X, name: 未知, level: L3, full_marks: 100}
windows:
  application:     {start: "2026-04-07 10:00", end: "2026-04-13 16:00"}
  verification:    {start: "2026-04-07 10:00", end: "2026-04-14 16:00"}
  spot_check:      {start: "2026-04-14", end: "2026-04-16"}
  confirmation:    {start: "2026-04-18 16:00", end: "2026-04-17 10:00"}
  ticket_printing: {start: "2026-06-10 10:00", end: "2026-06-12 16:00"}
  exam:            {start: "2026-06-13", end: "2026-06-14"}
  scores:          {start: "2026-08-15 09:00", end: "2026-12-31"}
  holidays:        {start: "2026-05-01", end: "2026-05-05"}
registration_points:
  - {code: "2916", name: 培训部, address: 徐汇区, phone: "1", email: a@b.cn, service_windows: [application]}
exam_schedule:
  - {subject: L1-LAW, start: "2026-06-13 09:00", end: "2026-06-13 11:30"}
  - {subject: L2-LAW, start: "2026-06-15 09:00", end: "2026-06-15 11:30"}
venues:
  - {code: V1, name: 考点, address: 上海, rooms: [{code: "1", seats: -3}]}
ticket_number_format: "{year}{nope}{seq:06d}"
"""


def test_bad_document_lists_every_problem():
    with pytest.raises(ValidationFailed) as caught:
        parse_session(BAD)
    f = caught.value.fields
    expected = {
        "eligibility_cutoff": "not a",                                 # 02-30 is no date
        "levels.L1.exemptions.senior_title": "belongs to level L2",    # another level's subject
        "subjects.L1-LAW.code": "duplicate",
        "subjects.L2-LAW.full_marks": "positive",
        "subjects.L3-X.level": "unknown level",
        "windows.spot_check.start": "after verification ends",        # out of order
        "windows.confirmation": "must start before it ends",
        "windows.holidays": "unknown window",
        "windows.certificates": "missing",
        "registration_points.2916.service_hours": "missing",
        "exam_schedule[1]": "outside the exam window",
        "venues.V1.rooms.1.seats": "positive",
        "ticket_number_format": "KeyError",
    }
    for path, words in expected.items():
        assert path in f, (path, f)
        assert words in f[path], (path, f[path])
    assert caught.value.message == (f"考试计划文件有 {len(f)} 处问题 (the session document has "
                                    f"{len(f)} problem(s)).")
    assert "L1-DATA" not in str(f)  # no invented subjects


def test_missing_top_level_keys_are_all_listed():
    with pytest.raises(ValidationFailed) as caught:
        parse_session("session_id: x\nname: y\n")
    f = caught.value.fields
    for key in ("exam_year", "timezone", "windows", "levels", "subjects", "registration_points",
                "exam_schedule", "venues", "ticket_number_format", "pledge_version"):
        assert f[key] == "缺少此项 (is missing)"


def test_yaml_syntax_error_is_one_problem_with_its_line():
    with pytest.raises(ValidationFailed) as caught:
        parse_session("session_id: x\nwindows: {application: [\n  oops: : :\n")
    assert caught.value.message.endswith("(the session document has 1 problem(s)).")
    assert list(caught.value.fields) == ["document"]
    assert "YAML syntax error at line" in caught.value.fields["document"]


@pytest.mark.parametrize("text", [
    "session_id: x\x07\n",  # a control character: the YAML reader refuses it on sight
    REFERENCE_TEXT.replace("name:", "name:\x1b", 1),
    "[" * 5000 + "]" * 5000,  # nested past the parser's recursion
    "a: " + "[" * 900 + "]" * 900,
    "a:\n" + "".join(" " * (2 * i) + f"k{i}:\n" for i in range(1, 200)),
    "a: &x [1, *x]\n",  # an alias inside the node it names: a cycle
    "a: &x {b: *x}\n",
])
def test_unreadable_or_too_deep_yaml_is_one_document_problem(text):
    with pytest.raises(ValidationFailed) as caught:
        parse_session(text)
    assert list(caught.value.fields) == ["document"]
    assert caught.value.fields["document"]


def test_nesting_up_to_the_bound_is_read():
    with pytest.raises(ValidationFailed) as caught:  # readable: only the content is wrong
        parse_session("a: " + "[" * 31 + "]" * 31)
    assert "document" not in caught.value.fields and "a" in caught.value.fields
    with pytest.raises(ValidationFailed) as caught:
        parse_session("a: " + "[" * 32 + "]" * 32)
    assert "nested more than 32 levels" in caught.value.fields["document"]


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text", "42"])
def test_top_level_must_be_a_mapping(text):
    with pytest.raises(ValidationFailed) as caught:
        parse_session(text)
    assert list(caught.value.fields) == ["document"]


def test_duplicate_yaml_keys_are_reported():
    text = REFERENCE_TEXT.replace("exam_year: 2026\n", "exam_year: 2026\nexam_year: 2027\n")
    with pytest.raises(ValidationFailed) as caught:
        parse_session(text)
    assert any("duplicate key 'exam_year'" in m for m in caught.value.fields.values())


def test_unquoted_clock_time_gets_a_hint():
    text = REFERENCE_TEXT.replace('end: "2026-04-13 16:00"', "end: 16:00")
    with pytest.raises(ValidationFailed) as caught:
        parse_session(text)
    assert "quote it" in caught.value.fields["windows.application.end"]


def test_exam_schedule_must_name_every_subject_once_without_overlap():
    text = REFERENCE_TEXT.replace(
        '{subject: L1-CASE, start: "2026-06-14 09:00", end: "2026-06-14 11:30"}',
        '{subject: L1-DATA, start: "2026-06-13 15:00", end: "2026-06-13 17:00"}')
    with pytest.raises(ValidationFailed) as caught:
        parse_session(text)
    f = caught.value.fields
    assert "already scheduled" in f["exam_schedule[4].subject"]
    assert "L1-CASE" in f["exam_schedule"]


def test_same_level_sittings_may_not_overlap():
    text = REFERENCE_TEXT.replace(
        '{subject: L1-CASE, start: "2026-06-14 09:00", end: "2026-06-14 11:30"}',
        '{subject: L1-CASE, start: "2026-06-13 10:00", end: "2026-06-13 12:00"}')
    with pytest.raises(ValidationFailed) as caught:
        parse_session(text)
    assert "same level" in caught.value.fields["exam_schedule[4]"]


def test_bad_timezone_and_point_without_service_hours():
    text = (REFERENCE_TEXT.replace("timezone: Asia/Shanghai", "timezone: Mars/Olympus")
            .replace('service_hours: ["09:30-11:30", "13:30-16:00"]', "service_hours: []"))
    with pytest.raises(ValidationFailed) as caught:
        parse_session(text)
    f = caught.value.fields
    assert "unknown time zone" in f["timezone"]
    assert "needs service hours" in f["registration_points.2916.service_hours"]


def test_ticket_format_must_number_tickets():
    with pytest.raises(ValidationFailed) as caught:
        parse_session(REFERENCE_TEXT.replace("{year}{point}{level}{seq:06d}", "{year}{point}"))
    assert "seq" in caught.value.fields["ticket_number_format"]


def _put(*path, value):
    def mistake(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value(node[path[-1]]) if callable(value) else value
    return mistake


# independent mistakes, each under the path it must be reported at (on SESSION.to_dict())
MISTAKES = {
    "session_id": _put("session_id", value="2026 上海"),
    "name": _put("name", value="长" * 201),
    "exam_year": _put("exam_year", value=1999),
    "timezone": _put("timezone", value="Mars/Olympus"),
    "eligibility_cutoff": _put("eligibility_cutoff", value="2026-02-30"),
    "pledge_text": _put("pledge_text", value="  "),
    "levels.L1.exemptions.senior_title": _put("levels", 0, "exemptions", "senior_title",
                                              value="L2-LAW"),
    "levels.L2.validity_years_exempt": _put("levels", 1, "validity_years_exempt", value=3),
    "subjects.L1-DATA.full_marks": _put("subjects", 1, "full_marks", value=0),
    "subjects.L2-LAW.pass_ratio": _put("subjects", 3, "pass_ratio", value=1.5),
    "windows.exam": _put("windows", "exam", value=lambda w: {"start": w["end"], "end": w["start"]}),
    "windows.scores.start": _put("windows", "scores", "start", value=1600),
    "windows.lunch": _put("windows", "lunch", value=None),
    "registration_points.2916.email": _put("registration_points", 0, "email", value="2916"),
    "registration_points.2916.service_hours[1]": _put("registration_points", 0, "service_hours",
                                                      1, value="16:00-13:30"),
    "exam_schedule[4]": _put("exam_schedule", 4, value=lambda e: {
        **e, "start": "2026-06-13T10:00:00+08:00", "end": "2026-06-13T12:00:00+08:00"}),
    "venues.SH-SAMPLE-01.rooms.102.seats": _put("venues", 0, "rooms", 1, "seats", value=0),
    "ticket_number_format": _put("ticket_number_format", value="{year}{point}"),
}


def test_the_mistakes_are_made_on_the_entries_their_paths_name():
    d = SESSION.to_dict()
    assert [lv["code"] for lv in d["levels"]] == ["L1", "L2"]
    assert [s["code"] for s in d["subjects"]][1:4] == ["L1-DATA", "L1-CASE", "L2-LAW"]
    assert d["exam_schedule"][4]["subject"] == "L1-CASE"  # L1-LAW's level, sat 09:00-11:30
    assert d["venues"][0]["rooms"][1]["code"] == "102"


@settings(max_examples=30, deadline=None)
@given(chosen=st.sets(st.sampled_from(sorted(MISTAKES)), min_size=1))
def test_every_mistake_is_reported_at_once_each_under_its_path(chosen):
    d = SESSION.to_dict()
    for path in chosen:
        MISTAKES[path](d)
    for read in (SessionDocument.from_dict,
                 lambda d: parse_session(yaml.safe_dump(d, allow_unicode=True))):
        with pytest.raises(ValidationFailed) as caught:
            read(d)
        assert set(caught.value.fields) == chosen
        assert caught.value.message.startswith(f"考试计划文件有 {len(chosen)} 处问题")  # one each


# --------------------------------------------------------------------------- amendment


def test_amended_moves_one_window_and_keeps_the_rest():
    doc = SESSION.amended("scores", sh(2026, 8, 18, 9, 0), sh(2026, 12, 31, 23, 59, 59))
    assert doc.window("scores").start == sh(2026, 8, 18, 9, 0)
    assert doc.window("scores").end == sh(2026, 12, 31, 23, 59, 59)
    assert SESSION.window("scores").start == sh(2026, 8, 15, 9, 0)  # the original is untouched
    for name in WINDOW_NAMES:
        if name != "scores":
            assert doc.window(name) == SESSION.window(name)
    assert doc != SESSION


def test_amended_accepts_wall_clock_text_and_other_zones():
    doc = SESSION.amended("confirmation", "2026-04-17 09:00", datetime(2026, 4, 18, 9, 0, tzinfo=UTC))
    w = doc.window("confirmation")
    assert (w.start, w.end) == (sh(2026, 4, 17, 9, 0), sh(2026, 4, 18, 17, 0))
    assert w.start.tzinfo == SHANGHAI


@pytest.mark.parametrize(("start", "end"), [
    (sh(2026, 4, 18, 16, 0), sh(2026, 4, 17, 10, 0)),
    (sh(2026, 4, 17, 10, 0), sh(2026, 4, 17, 10, 0)),
])
def test_amended_refuses_start_not_before_end(start, end):
    with pytest.raises(ValidationFailed) as caught:
        SESSION.amended("confirmation", start, end)
    assert "windows.confirmation" in caught.value.fields


def test_amended_refuses_unknown_window_and_broken_order():
    with pytest.raises(ValidationFailed) as caught:
        SESSION.amended("lunch", sh(2026, 4, 17, 10, 0), sh(2026, 4, 17, 11, 0))
    assert "window" in caught.value.fields
    with pytest.raises(ValidationFailed) as caught:  # confirmation would overlap spot check
        SESSION.amended("confirmation", sh(2026, 4, 16, 10, 0), sh(2026, 4, 18, 16, 0))
    assert "after spot_check ends" in caught.value.fields["windows.confirmation.start"]
    with pytest.raises(ValidationFailed) as caught:  # the schedule would fall outside
        SESSION.amended("exam", sh(2026, 6, 14, 0, 0), sh(2026, 6, 14, 23, 59, 59))
    assert any(k.startswith("exam_schedule[") for k in caught.value.fields)


# --------------------------------------------------------------------------- serialization


def test_to_dict_is_json_plain_and_round_trips():
    d = SESSION.to_dict()
    again = json.loads(json.dumps(d, ensure_ascii=False))
    assert again == d
    assert d["windows"]["confirmation"] == {"start": "2026-04-17T10:00:00+08:00",
                                            "end": "2026-04-18T16:00:00+08:00"}
    assert SessionDocument.from_dict(again) == SESSION


def test_to_dict_is_also_a_valid_yaml_document():
    assert parse_session(yaml.safe_dump(SESSION.to_dict(), allow_unicode=True)) == SESSION


def test_from_dict_validates_like_the_yaml():
    d = SESSION.to_dict()
    d["subjects"][0]["full_marks"] = -1
    del d["windows"]["exam"]
    with pytest.raises(ValidationFailed) as caught:
        SessionDocument.from_dict(d)
    assert {"subjects.L1-LAW.full_marks", "windows.exam"} <= set(caught.value.fields)


_offsets = st.integers(min_value=-3 * 24 * 3600, max_value=3 * 24 * 3600)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(WINDOW_NAMES), shift=_offsets, length=st.integers(1, 20 * 24 * 3600))
def test_amended_documents_round_trip(name, shift, length):
    w = SESSION.window(name)
    start = w.start + timedelta(seconds=shift)
    try:
        doc = SESSION.amended(name, start, start + timedelta(seconds=length))
    except ValidationFailed:
        return  # that move breaks the order of windows: refused, fine
    assert doc.window(name).start == start
    assert SessionDocument.from_dict(json.loads(json.dumps(doc.to_dict()))) == doc
    assert doc.to_dict()["windows"][name]["start"] == start.astimezone(SHANGHAI).isoformat()


# --------------------------------------------------------------------------- demo session


NOW = datetime(2026, 3, 1, 1, 23, 45, 678_000, tzinfo=UTC)  # 09:23:45.678 in Shanghai


def test_demo_session_windows_are_consecutive_from_now():
    doc = demo_session(NOW)
    slot = timedelta(minutes=2)
    t0 = sh(2026, 3, 1, 9, 23, 45)
    assert doc.session_id == "2026-shanghai-jiliang-demo-202603010923"
    app, ver = doc.window("application"), doc.window("verification")
    assert app.start == ver.start == t0
    assert app.contains(NOW)
    assert app.end == t0 + slot - S
    assert ver.end == t0 + 2 * slot - S and ver.end > app.end
    following = WINDOW_NAMES[2:]
    previous = ver
    for name in following:
        w = doc.window(name)
        assert w.start == previous.end + S, name
        assert w.end == w.start + slot - S, name
        previous = w
    assert doc.phase(NOW) == "application"
    assert doc.phase(t0 + 2 * slot) == "spot_check"
    assert doc.phase(t0 + 8 * slot) is None


def test_demo_session_keeps_content_and_squeezes_the_exam_schedule():
    doc = demo_session(NOW, minutes_per_window=3)
    assert doc.levels == SESSION.levels and doc.subjects == SESSION.subjects
    assert doc.venues == SESSION.venues
    exam = doc.window("exam")
    sittings = {e["subject"]: e for e in doc.exam_schedule}
    assert set(sittings) == set(SESSION.subjects)
    for e in doc.exam_schedule:
        assert exam.start <= e["start"] < e["end"] <= exam.end_exclusive
    # subjects that shared a sitting still share one, and the order is kept
    assert sittings["L1-LAW"]["start"] == sittings["L2-LAW"]["start"] == exam.start
    assert sittings["L1-LAW"]["end"] <= sittings["L1-DATA"]["start"] < sittings["L1-CASE"]["start"]
    # staff serve whenever the demo runs
    assert doc.points["2916"].in_service(NOW, doc)


def test_demo_session_round_trips_and_can_be_redone_from_a_demo():
    doc = demo_session(NOW, minutes_per_window=0.5)
    assert SessionDocument.from_dict(json.loads(json.dumps(doc.to_dict()))) == doc
    assert parse_session(yaml.safe_dump(doc.to_dict(), allow_unicode=True)) == doc
    again = demo_session(NOW + timedelta(hours=1), base=doc)
    assert again.session_id == "2026-shanghai-jiliang-demo-202603011023"


def test_demo_session_needs_usable_slots():
    with pytest.raises(ValueError):
        demo_session(NOW, minutes_per_window=0)
    with pytest.raises(ValueError):
        demo_session(datetime(2026, 3, 1, 9, 0))  # naive
