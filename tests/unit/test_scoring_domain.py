"""The scoring domain without I/O: the score file checked whole (every refusal kind under
its row number), pass marks at their boundaries, publication, rolling validity across
exam years (with hypothesis over random histories of sittings) and voiding."""

from datetime import UTC, datetime
from functools import cache

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from nameko.testing.services import worker_factory

from services.scoring import domain
from services.scoring.domain import (
    CANCELLED,
    FORFEITED,
    TicketView,
    check_score_file,
    read_score_file,
)
from services.scoring.schemas import REGISTRY
from services.scoring.service import ScoringService
from shared.errors import Refused, ValidationFailed
from shared.events import StoredEvent
from shared.session import SessionDocument, reference_session

SESSION = "2026-shanghai-jiliang"


@cache
def session(year: int = 2026) -> SessionDocument:
    """The reference session moved to ``year`` (windows and all)."""
    d = reference_session().to_dict()
    if year == 2026:
        return SessionDocument.from_dict(d)

    def move(s):
        t = datetime.fromisoformat(s)
        return t.replace(year=t.year + year - 2026).isoformat()

    d["session_id"] = f"{year}-shanghai-jiliang"
    d["exam_year"] = year
    d["eligibility_cutoff"] = f"{year}-12-31"
    d["windows"] = {n: {"start": move(w["start"]), "end": move(w["end"])}
                    for n, w in d["windows"].items()}
    d["exam_schedule"] = [{**e, "start": move(e["start"]), "end": move(e["end"])}
                          for e in d["exam_schedule"]]
    return SessionDocument.from_dict(d)


L1 = ("L1-LAW", "L1-DATA", "L1-CASE")
L2 = ("L2-LAW", "L2-PRACTICE")
CANDIDATE = {"name": "王建国", "id_type": "resident_id", "id_number": "310104198805123455"}


def ticket(n, *, level="L1", subjects=None, status="issued", absent=(), exemption=None,
           account=None, session_id=SESSION):
    subjects = subjects or (L1 if level == "L1" else L2)
    number = f"20262916{level}{n:06d}"
    account = account or f"acc{n}"
    return TicketView(number, account, f"{session_id}.{account}", session_id, level,
                      tuple(subjects), exemption, CANDIDATE, status, frozenset(absent))


def tickets_of(*ts):
    return {t.ticket_number: t for t in ts}


T1, T2, T3 = ticket(1), ticket(2), ticket(3, level="L2")
TICKETS = tickets_of(T1, T2, T3)


def csv_of(*rows, header="ticket_number,subject,score"):
    return "\n".join([header, *rows]) + "\n"


def check(text, tickets=TICKETS, doc=None):
    return check_score_file(read_score_file(text), doc or session(), tickets, "scores.csv")


def refusal(text, tickets=TICKETS, **kw):
    with pytest.raises(ValidationFailed) as exc:
        check_score_file(read_score_file(text, **kw), session(), tickets, "scores.csv")
    return exc.value


# --- the score file -------------------------------------------------------------------


def test_a_good_file_with_bom_crlf_blank_lines_names_and_absences():
    text = "\ufeff" + "\r\n".join([
        "Ticket_Number, subject ,SCORE",
        f"{T1.ticket_number},L1-LAW,72",
        f"{T1.ticket_number},测量数据处理与计量专业实务,71.9",  # a subject by its name
        "",
        f"{T1.ticket_number},L1-CASE,缺考",
        f"{T2.ticket_number},L1-LAW,",
        f"{T3.ticket_number},计量法律法规及综合知识,100",  # the L2 paper of that name
        f"{T3.ticket_number},L2-PRACTICE, 0 ",
    ]) + "\r\n"
    got = check(text)
    assert got.rows == [(T1.ticket_number, "L1-LAW", 72.0), (T1.ticket_number, "L1-DATA", 71.9),
                        (T1.ticket_number, "L1-CASE", None), (T2.ticket_number, "L1-LAW", None),
                        (T3.ticket_number, "L2-LAW", 100.0), (T3.ticket_number, "L2-PRACTICE", 0.0)]
    assert (got.candidates, got.absent_rows) == (3, 2)
    assert got.missing == 2  # T2's L1-DATA and L1-CASE: neither a row nor an absence


@pytest.mark.parametrize("row, reason", [
    ("{t1},L1-LAW,72,extra", "expected 3 columns"),
    ("{t1},L1-LAW", "expected 3 columns"),
    ("{t1},L1-LAW,七十", "is not a number"),
    ("{t1},L1-LAW,1e2", "is not a number"),
    ("{t1},L1-LAW,７２", "is not a number"),  # full-width digits are not read as a number
    ("{t1},L1-LAW,72.55", "more than one decimal place"),
    ("{t1},L1-LAW,-1", "negative"),
    ("{t1},L1-LAW,120.1", "out of range 0..120"),
    ("{t3},L2-LAW,100.5", "out of range 0..100"),
    ("20262916L1999999,L1-LAW,80", "unknown ticket"),
    ("{t1},L2-LAW,80", "does not sit L2-LAW"),
    ("{t1},L9-NOPE,80", "unknown subject"),
    (",L1-LAW,80", "the ticket number is empty"),
    ("{t1},,80", "the subject is empty"),
])
def test_each_bad_row_refuses_the_file_under_its_row_number(row, reason):
    row = row.format(t1=T1.ticket_number, t3=T3.ticket_number)
    text = csv_of(f"{T2.ticket_number},L1-LAW,80", row, f"{T2.ticket_number},L1-DATA,80")
    exc = refusal(text)
    assert set(exc.fields) == {"row 3"}, exc.fields
    assert reason in exc.fields["row 3"]
    assert "1 problem(s) in 1 row(s)" in exc.message and "nothing was imported" in exc.message


def test_duplicate_rows_name_the_first():
    exc = refusal(csv_of(f"{T1.ticket_number},L1-LAW,80", f"{T1.ticket_number},L1-DATA,80",
                         f"{T1.ticket_number},计量法律法规及综合知识,81"))
    assert exc.fields == {"row 4": f"duplicate of row 2 (ticket {T1.ticket_number}, subject L1-LAW)"}


def test_subject_not_taken_exempt_or_unchosen():
    exempt = ticket(4, subjects=("L1-DATA", "L1-CASE"),
                    exemption={"subject": "L1-LAW", "ground": "senior_title"})
    chose = ticket(5, subjects=("L1-DATA",))
    exc = refusal(csv_of(f"{exempt.ticket_number},L1-LAW,80", f"{chose.ticket_number},L1-CASE,80"),
                  tickets_of(exempt, chose))
    assert exc.fields["row 2"].endswith("does not sit L1-LAW (exempt)")
    assert exc.fields["row 3"].endswith("does not sit L1-CASE (it sits L1-DATA)")


def test_absent_forfeited_and_cancelled_tickets():
    absent = ticket(6, absent=("L1-LAW",))
    forfeited = ticket(7, status=FORFEITED, absent=L1)
    cancelled = ticket(8, status=CANCELLED)
    tickets = tickets_of(absent, forfeited, cancelled)
    exc = refusal(csv_of(f"{absent.ticket_number},L1-LAW,80", f"{forfeited.ticket_number},L1-DATA,70",
                         f"{cancelled.ticket_number},L1-LAW,缺考"), tickets)
    assert "was absent from L1-LAW (缺考)" in exc.fields["row 2"]
    assert "forfeited" in exc.fields["row 3"]
    assert "was cancelled (报名无效)" in exc.fields["row 4"]
    # the absences themselves are fine, as an empty score or 缺考
    got = check(csv_of(f"{absent.ticket_number},L1-LAW,", f"{forfeited.ticket_number},L1-DATA,缺考",
                       f"{absent.ticket_number},L1-DATA,88"), tickets)
    assert got.absent_rows == 2 and got.rows[-1] == (absent.ticket_number, "L1-DATA", 88.0)


def test_every_problem_at_once_counted_in_the_message():
    text = csv_of(f"{T1.ticket_number},L1-LAW,80",                 # 2 fine
                  f"{T1.ticket_number},L1-LAW,abc",                # 3 not a number
                  "nope,L1-LAW,500",                               # 4 unknown ticket
                  f"{T1.ticket_number},L1-DATA,130",               # 5 out of range
                  f"{T1.ticket_number},L1-DATA,30,1",              # 6 columns
                  f"{T3.ticket_number},L1-LAW,999.99")             # 7 not taken + decimals
    exc = refusal(text)
    assert sorted(exc.fields) == ["row 3", "row 4", "row 5", "row 6", "row 7"]
    assert exc.message.startswith("scores.csv: 5 problem(s) in 5 row(s); nothing was imported")


def test_the_report_lists_the_first_thousand_rows_and_counts_the_rest():
    rows = [f"X{i},L1-LAW,80" for i in range(1500)]
    exc = refusal(csv_of(*rows))
    assert len([k for k in exc.fields if k.startswith("row ")]) == domain.MAX_REPORTED_ROWS
    assert exc.fields["more"].startswith("500 more rows")
    assert "1500 problem(s) in 1500 row(s)" in exc.message


@pytest.mark.parametrize("text, field", [
    ("", "empty"), ("\ufeff\r\n\n  \n", "empty"), ("ticket_number,subject,score\n", "no rows"),
])
def test_empty_files(text, field):
    with pytest.raises(ValidationFailed) as exc:
        read_score_file(text)
    assert exc.value.fields == {"csv": field}


def test_a_header_is_required():
    exc = refusal(f"{T1.ticket_number},L1-LAW,80\n{T1.ticket_number},L1-DATA,80\n")
    assert list(exc.fields) == ["row 1"] and "header ticket_number,subject,score" in exc.fields["row 1"]
    exc = refusal("\n\nticket,subject,score\nx,y,1\n")  # the first non-blank line is row 3
    assert list(exc.fields) == ["row 3"]


def test_too_large_and_too_many_rows():
    text = csv_of(*[f"{T1.ticket_number},L1-LAW,80"] * 5)
    with pytest.raises(ValidationFailed) as exc:
        read_score_file(text, max_bytes=100)
    assert "larger than" in exc.value.message and "csv" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        read_score_file(text, max_rows=4)
    assert "more than 4 rows" in exc.value.message
    assert read_score_file(text, max_rows=5).data_rows == 5
    # the cap counts UTF-8 bytes, not characters
    wide = "ticket_number,subject,score\n" + "准" * 30
    with pytest.raises(ValidationFailed):
        read_score_file(wide, max_bytes=100)
    assert read_score_file(wide, max_bytes=200).problems


def test_a_nul_byte_is_reported_not_a_traceback():
    exc = refusal(csv_of(f"{T1.ticket_number},L1-LAW,8\x000"))
    assert "row 2" in exc.fields


# --- pass marks ---------------------------------------------------------------------------


@pytest.mark.parametrize("code, score, passed", [
    ("L1-LAW", 72, True), ("L1-LAW", 72.0, True), ("L1-LAW", 71.9, False),
    ("L1-LAW", 120, True), ("L1-LAW", 0, False),
    ("L2-LAW", 60, True), ("L2-LAW", 59.9, False),
])
def test_pass_mark_is_sixty_percent_of_full_marks(code, score, passed):
    assert domain.passes(score, session().subjects[code]) is passed


def test_pass_marks_compare_as_decimals():
    from shared.session import Subject

    odd = Subject("X", "x", "L1", full_marks=111)  # pass mark 66.6
    assert domain.passes(66.6, odd) and not domain.passes(66.5, odd)
    assert domain.passes(0.7 * 100 - 4, Subject("Y", "y", "L1", 110))  # 66.0 (66.00000000000001)


def test_boundaries_through_the_whole_check():
    got = check(csv_of(f"{T1.ticket_number},L1-LAW,72", f"{T1.ticket_number},L1-DATA,71.9",
                       f"{T1.ticket_number},L1-CASE,120"))
    results = domain.subject_results(session(), T1, {c: s for _, c, s in got.rows})
    assert [(r["code"], r["passed"], r["status"]) for r in results] == [
        ("L1-LAW", True, "passed"), ("L1-DATA", False, "failed"), ("L1-CASE", True, "passed")]
    assert refusal(csv_of(f"{T1.ticket_number},L1-LAW,120.1")).fields["row 2"].startswith("score 120.1")


# --- the score sheet: import period, supersession, publication ----------------------------

NOW_AFTER_EXAM = datetime(2026, 6, 20, 2, 0, tzinfo=UTC)


def stored(new_events, first_position=1, versions=None):
    """NewEvents as the log would store them (positions and versions given)."""
    versions = dict(versions or {})
    out = []
    for i, e in enumerate(new_events):
        versions[e.stream_id] = versions.get(e.stream_id, 0) + 1
        REGISTRY.validate(e.type, e.payload)
        out.append(StoredEvent(first_position + i, e.stream_id, versions[e.stream_id], e.type, 1,
                               e.payload, {}))
    return out


def test_import_period():
    doc, sheet = session(), domain.ScoreSheet(SESSION)
    with pytest.raises(Refused) as exc:
        domain.require_import_period(doc, sheet, datetime(2026, 6, 14, 15, 59, 59, tzinfo=UTC))
    assert exc.value.fields["window"] == "exam" and "考试 (exam)" in exc.value.message
    domain.require_import_period(doc, sheet, datetime(2026, 6, 14, 16, 0, 0, tzinfo=UTC))  # 00:00 SH
    with pytest.raises(Refused) as exc:
        domain.require_import_period(doc, sheet, datetime(2027, 1, 1, 0, 0, tzinfo=UTC))
    assert exc.value.fields["window"] == "scores"
    sheet.published_at = "2026-08-15T01:00:00+00:00"
    with pytest.raises(Refused) as exc:
        domain.require_import_period(doc, sheet, NOW_AFTER_EXAM)
    assert "after publication" in exc.value.message


def test_a_reimport_supersedes_the_earlier_one_whole():
    doc = session()
    first = domain.import_events(doc, domain.ScoreSheet(SESSION), check(csv_of(
        f"{T1.ticket_number},L1-LAW,50", f"{T2.ticket_number},L1-LAW,60")),
        import_id="imp1", filename="a.csv", sha256="a" * 64, by="auth", now=NOW_AFTER_EXAM)
    log = stored(first)
    sheet = domain.fold_sheet(SESSION, [e for e in log if e.type in domain.SHEET_TYPES])
    assert sheet.version == len(first) and sheet.current["import_id"] == "imp1"
    second = domain.import_events(doc, sheet, check(csv_of(f"{T1.ticket_number},L1-LAW,90")),
                                  import_id="imp2", filename="b.csv", sha256="b" * 64, by="auth",
                                  now=NOW_AFTER_EXAM)
    assert second[0].payload["supersedes"] == "imp1"
    log += stored(second, len(log) + 1, {domain.scores_stream(SESSION): sheet.version})
    sheet = domain.fold_sheet(SESSION, [e for e in log if e.type in domain.SHEET_TYPES])
    assert sheet.current["import_id"] == "imp2" and sheet.imports == 2
    assert domain.rows_by_ticket("imp2", log) == {T1.ticket_number: {"L1-LAW": 90.0}}
    # ScoresImported, the public one, carries counts only
    public = [e for e in second if REGISTRY.get(e.type).public]
    assert [e.type for e in public] == ["ScoresImported"] and "rows" in public[0].payload
    assert "90" not in str(public[0].payload)


def test_rows_go_in_whole_tickets_per_event():
    many = {f"T{i:05d}": ticket(i) for i in range(1200)}
    many = {t.ticket_number: t for t in many.values()}
    rows = [f"{t},{s},80" for t in many for s in ("L1-LAW", "L1-DATA")]
    events = domain.import_events(session(), domain.ScoreSheet(SESSION), check(csv_of(*rows), many),
                                  import_id="i", filename="f", sha256="c" * 64, by="a",
                                  now=NOW_AFTER_EXAM)
    chunks = [e.payload["rows"] for e in events if e.type == "ScoreRowsRecorded"]
    assert [len(c) for c in chunks] == [1000, 1000, 400]
    seen = set()
    for c in chunks:
        mine = {r[0] for r in c}
        assert not mine & seen
        seen |= mine


def test_publication_window_and_once():
    doc, sheet = session(), domain.ScoreSheet(SESSION, version=3, current={"import_id": "i"})
    before = datetime(2026, 8, 15, 0, 59, 59, tzinfo=UTC)  # 08:59:59 in Shanghai
    with pytest.raises(Refused) as exc:
        domain.require_publishable(doc, sheet, before)
    assert exc.value.fields["window"] == "scores" and "查询成绩 (scores)" in exc.value.message
    domain.require_publishable(doc, sheet, datetime(2026, 8, 15, 1, 0, tzinfo=UTC))
    with pytest.raises(Refused) as exc:
        domain.require_publishable(doc, domain.ScoreSheet(SESSION), datetime(2026, 8, 16, tzinfo=UTC))
    assert "No scores have been imported" in exc.value.message
    sheet.published_at = "2026-08-15T01:00:00+00:00"
    with pytest.raises(Refused):
        domain.require_publishable(doc, sheet, datetime(2026, 8, 16, tzinfo=UTC))


def test_candidates_see_nothing_before_publication():
    doc = session()
    with pytest.raises(Refused) as exc:
        domain.require_published(doc, None, NOW_AFTER_EXAM)
    assert "2026-08-15 09:00:00 Asia/Shanghai" in exc.value.message
    assert exc.value.fields["published_at"] == "2026-08-15T01:00:00+00:00"
    with pytest.raises(Refused) as exc:
        domain.require_published(doc, None, datetime(2026, 8, 20, tzinfo=UTC))
    assert "not been published yet" in exc.value.message
    domain.require_published(doc, "2026-08-15T01:00:00+00:00", NOW_AFTER_EXAM)


def test_publish_results_passes_and_statuses():
    doc = session()
    absent = ticket(6, absent=("L1-CASE",))
    cancelled = ticket(8, status=CANCELLED)
    views = [T1, absent, cancelled]
    rows = {T1.ticket_number: {"L1-LAW": 72.0, "L1-DATA": 71.9, "L1-CASE": None},
            absent.ticket_number: {"L1-LAW": 100.0, "L1-DATA": 99.5}}
    sheet = domain.ScoreSheet(SESSION, version=4, current={"import_id": "i"})
    pub = domain.publish(doc, sheet, rows, views, {}, datetime(2026, 8, 15, 1, 0, tzinfo=UTC))
    types = [e.type for e in pub.events]
    assert types.count("SittingResulted") == 2 and types[-1] == "ScoresPublished"
    assert pub.summary == {"session_id": SESSION, "published_at": "2026-08-15T01:00:00+00:00",
                           "candidates": 2, "passed_subjects": 3, "qualified": 0}
    assert pub.expected == {domain.scores_stream(SESSION): 4, "candidate-acc1": 0, "candidate-acc6": 0}
    first = next(e for e in pub.events if e.type == "SittingResulted")
    assert [s["status"] for s in first.payload["subjects"]] == ["passed", "failed", "absent"]
    stored(pub.events)  # every payload matches its schema
    with pytest.raises(Refused):
        domain.publish(doc, domain.ScoreSheet(SESSION), rows, views, {}, NOW_AFTER_EXAM)


# --- rolling validity ---------------------------------------------------------------------


class Candidate:
    """One candidate's log, driven through the domain as the service does."""

    def __init__(self, account="acc1"):
        self.account = account
        self.events = []

    @property
    def record(self):
        return domain.fold_candidate(self.account, self.events)

    def add(self, new):
        self.events += stored(new, len(self.events) + 1, {f"candidate-{self.account}": len(self.events)})
        return new

    def sit(self, year, scores, level="L1", exemption=None):
        doc = session(year)
        subjects = [c for c in doc.levels[level].subjects if c != (exemption or {}).get("subject")]
        t = TicketView(f"{year}{level}{self.account}", self.account, f"{doc.session_id}.{self.account}",
                       doc.session_id, level, tuple(subjects), exemption, CANDIDATE)
        return self.add(domain.sitting_events(self.record, doc, t, scores, "2026-08-15T01:00:00+00:00"))

    def void(self, year, reason="false commitment"):
        sid = session(year).session_id
        return self.add(domain.void_events(self.record, session_id=sid,
                                           application_id=f"{sid}.{self.account}", reason=reason,
                                           by="auth", integrity=True))


def attained(events):
    return [e for e in events if e.type == "QualificationAttained"]


def test_two_sittings_complete_level_one():
    c = Candidate()
    first = c.sit(2026, {"L1-LAW": 80, "L1-DATA": 75.5, "L1-CASE": 60})
    assert [e.type for e in first] == ["SittingResulted", "SubjectPassed", "SubjectPassed"]
    second = c.sit(2027, {"L1-CASE": 88})
    [q] = attained(second)
    assert q.payload["qualification_id"] == "acc1-L1" and q.payload["exam_year"] == 2027
    assert [(s["subject"], s["exam_year"]) for s in q.payload["subjects"]] == [
        ("L1-LAW", 2026), ("L1-DATA", 2026), ("L1-CASE", 2027)]
    assert q.payload["candidate"] == CANDIDATE
    assert not attained(c.sit(2028, {"L1-LAW": 100, "L1-DATA": 100, "L1-CASE": 100}))  # once


@pytest.mark.parametrize("years, level, exemption, expected", [
    ((2026, 2027, 2028), "L1", None, True),     # three consecutive years
    ((2026, 2027, 2029), "L1", None, False),    # 2026's pass is too old by 2029
    ((2026, 2026, 2028), "L1", None, True),
    ((2026, 2027), "L1", "L1-LAW", True),       # exempt: two subjects within 2 years
    ((2026, 2028), "L1", "L1-LAW", False),
    ((2026, 2027), "L2", None, True),           # 二级: within 2
    ((2026, 2028), "L2", None, False),
    ((2026,), "L2", "L2-PRACTICE", True),       # 二级 exempt: within 1
])
def test_rolling_periods(years, level, exemption, expected):
    doc_level = session().levels[level]
    exempt = {"subject": exemption, "ground": "x"} if exemption else None
    required = [s for s in doc_level.subjects if s != exemption]
    c = Candidate()
    by_year: dict[int, dict] = {}
    for code, year in zip(required, years, strict=False):
        by_year.setdefault(year, {})[code] = 90
    got = []
    for year in sorted(by_year):
        got += c.sit(year, by_year[year], level=level, exemption=exempt)
    assert bool(attained(got)) is expected


def test_exempt_one_year_needs_the_same_sitting():
    c = Candidate()
    exempt = {"subject": "L2-PRACTICE", "ground": "verifier_certificate"}
    assert not attained(c.sit(2026, {"L2-LAW": 59.9}, level="L2", exemption=exempt))
    assert attained(c.sit(2027, {"L2-LAW": 60}, level="L2", exemption=exempt))


def test_voided_scores_do_not_count_and_withdraw_what_rested_on_them():
    c = Candidate()
    c.sit(2026, {"L1-LAW": 80, "L1-DATA": 80})
    [q] = attained(c.sit(2027, {"L1-CASE": 80}))
    voided = c.void(2026, "告知承诺不实")
    assert [e.type for e in voided] == ["ScoresVoided", "QualificationWithdrawn"]
    assert voided[1].payload["qualification_id"] == q.payload["qualification_id"]
    assert "告知承诺不实" in voided[1].payload["reason"]
    assert c.record.live_qualification("L1") is None
    with pytest.raises(Refused):
        c.void(2026)
    # 2026 no longer counts; passing LAW and DATA again in 2028 (with CASE 2027) attains anew
    [again] = attained(c.sit(2028, {"L1-LAW": 90, "L1-DATA": 90}))
    assert again.payload["qualification_id"] == "acc1-L1-2"
    assert {s["session_id"] for s in again.payload["subjects"]} == {
        "2027-shanghai-jiliang", "2028-shanghai-jiliang"}


def test_a_voided_pass_no_longer_counts_towards_a_later_sitting():
    c = Candidate()
    c.sit(2026, {"L1-LAW": 80, "L1-DATA": 80})
    assert [e.type for e in c.void(2026)] == ["ScoresVoided"]
    assert not attained(c.sit(2027, {"L1-CASE": 80}))
    assert attained(c.sit(2028, {"L1-LAW": 80, "L1-DATA": 80}))


def test_voiding_before_publication_means_nothing_passes():
    c = Candidate()
    c.void(2026)
    out = c.sit(2026, {"L1-LAW": 100, "L1-DATA": 100, "L1-CASE": 100})
    assert [e.type for e in out] == ["SittingResulted"] and out[0].payload["voided"]


def test_voiding_what_a_qualification_did_not_use_withdraws_nothing():
    c = Candidate()
    c.sit(2026, {"L1-LAW": 80})
    assert attained(c.sit(2027, {"L1-LAW": 85, "L1-DATA": 80, "L1-CASE": 80}))
    assert [e.type for e in c.void(2026)] == ["ScoresVoided"]


def test_another_level_does_not_count():
    c = Candidate()
    c.sit(2026, {"L2-LAW": 90, "L2-PRACTICE": 90}, level="L2")
    assert not attained(c.sit(2027, {"L1-DATA": 90, "L1-CASE": 90}))  # L1-LAW never passed


LEVEL_SUBJECTS = {"L1": L1, "L2": L2}
EXEMPT = {"L1": "L1-LAW", "L2": "L2-PRACTICE"}
PERIOD = {("L1", False): 3, ("L1", True): 2, ("L2", False): 2, ("L2", True): 1}
FULL = {"L1": 120, "L2": 100}


@st.composite
def histories(draw):
    """Sittings in increasing exam years: level, exemption, a score (tenths) or absence per
    subject taken, and when (if ever) the sitting's scores are voided."""
    steps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 3]), min_size=1, max_size=6))
    years = [2020 + sum(steps[:i + 1]) for i in range(len(steps))]  # mostly consecutive
    main = draw(st.sampled_from(["L1", "L2"]))
    out = []
    for year in years:
        level = draw(st.sampled_from([main] * 4 + [{"L1": "L2", "L2": "L1"}[main]]))
        exempt = draw(st.booleans())
        subjects = [s for s in LEVEL_SUBJECTS[level] if not (exempt and s == EXEMPT[level])]
        taken = draw(st.lists(st.sampled_from(subjects), min_size=1, unique=True))
        full = FULL[level]
        scores = {s: draw(st.one_of(st.none(), st.integers(0, full * 10).map(lambda t: t / 10),
                                    st.integers(full * 6, full * 10).map(lambda t: t / 10),
                                    st.sampled_from([full * 0.6, full * 0.6 - 0.1])))
                  for s in taken}
        void = draw(st.sampled_from([None, None, "before", "after"]))
        out.append((year, level, exempt, [s for s in subjects if s in taken], scores, void))
    return out


def passes_oracle(score, level):
    return score is not None and round(score * 10) * 10 >= FULL[level] * 10 * 6


@settings(max_examples=120, deadline=None)
@given(histories())
def test_attained_iff_every_required_subject_has_a_live_pass_within_the_period(history):
    c = Candidate()
    published = []  # (year, level, scores, session) of sittings published so far
    voided: set[str] = set()
    live: dict[str, dict] = {}  # level -> the live qualification's payload
    for year, level, exempt, _taken, scores, void in history:
        doc = session(year)
        sid = doc.session_id
        exemption = {"subject": EXEMPT[level], "ground": "g"} if exempt else None
        if void == "before":
            c.void(year)
            voided.add(sid)
        out = c.sit(year, scores, level=level, exemption=exemption)
        published.append((year, level, scores, sid))
        required = [s for s in LEVEL_SUBJECTS[level] if not (exempt and s == EXEMPT[level])]
        period = PERIOD[(level, exempt)]

        def has_pass(code, year=year, level=level, period=period):
            return any(lv == level and sid_ not in voided and year - period < y <= year
                       and passes_oracle(sc.get(code), level)
                       for y, lv, sc, sid_ in published)

        should = sid not in voided and level not in live and all(map(has_pass, required))
        got = attained(out)
        event(f"attained: {bool(got)}")
        assert bool(got) is should, (history, year)
        if got:
            q = got[0].payload
            assert [p["subject"] for p in q["subjects"]] == required
            for p in q["subjects"]:  # every pass it names is a real, live one in the period
                y, lv, sc, psid = next(h for h in published if h[3] == p["session_id"])
                assert lv == level and psid not in voided and year - period < y <= year
                assert passes_oracle(sc[p["subject"]], level) and sc[p["subject"]] == p["score"]
            live[level] = q
        if void == "after":
            events = c.void(year)
            voided.add(sid)
            withdrawn = [e.payload for e in events if e.type == "QualificationWithdrawn"]
            rested = [lv for lv, q in live.items()
                      if any(p["session_id"] == sid for p in q["subjects"])]
            assert sorted(w["level"] for w in withdrawn) == sorted(rested)
            event(f"withdrawn: {bool(withdrawn)}")
            for lv in rested:
                del live[lv]
    # and asked of the whole history, for every level, exemption and year
    record = c.record
    for level in ("L1", "L2"):
        for exempt in (False, True):
            required = [s for s in LEVEL_SUBJECTS[level] if not (exempt and s == EXEMPT[level])]
            period = PERIOD[(level, exempt)]
            exemption = {"subject": EXEMPT[level], "ground": "g"} if exempt else None
            for year in range(2020, 2036):
                should = all(any(lv == level and sid not in voided and year - period < y <= year
                                 and passes_oracle(sc.get(code), level)
                                 for y, lv, sc, sid in published) for code in required)
                got = domain.qualifying_passes(record.sittings.values(), record.voided,
                                               session().levels[level], exemption, year)
                assert (got is not None) is should, (level, exempt, year)


# --- the service refuses bad input before touching the store ------------------------------


@pytest.mark.parametrize("method, args", [
    ("import_scores", ({"staff_id": ""}, {"session_id": SESSION, "filename": "a.csv", "csv": "x"})),
    ("import_scores", ({"staff_id": "a"}, {"session_id": SESSION, "csv": "x"})),
    ("import_scores", ({"staff_id": "a"}, "not a dict")),
    ("void_scores", ({"staff_id": "a"}, {"account_id": "../x", "session_id": SESSION,
                                         "reason": "r"})),
    ("void_scores", ({"staff_id": "a"}, {"account_id": "abc", "session_id": SESSION, "reason": ""})),
    ("publish_scores", ({"staff_id": "a"}, "")),
    ("candidate_results", ("not/an/id", SESSION)),
    ("session_results", (None, SESSION)),
])
def test_bad_input_is_refused_before_the_store(method, args):
    service = worker_factory(ScoringService)
    with pytest.raises(ValidationFailed) as exc:
        getattr(service, method)(*args)
    assert exc.value.fields
    service.store.execute.assert_not_called()


def test_private_rows_have_a_cheap_strict_schema():
    ok = {"session_id": "s", "import_id": "i", "rows": [["T1", "L1-LAW", 72.5], ["T1", "L1-DATA", None]]}
    REGISTRY.validate("ScoreRowsRecorded", ok)
    for bad in ([["T1", "L1-LAW"]], [["T1", "L1-LAW", "72"]], [["T1", 3, 72]], "rows",
                [["T1", "L1-LAW", True]]):
        with pytest.raises(ValidationFailed):
            REGISTRY.validate("ScoreRowsRecorded", {**ok, "rows": bad})
    assert not REGISTRY.get("ScoreRowsRecorded").public and not REGISTRY.get("SittingResulted").public
