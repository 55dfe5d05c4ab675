"""The scoring service's decisions (成绩). Pure: no I/O, no clock reads (``now`` is passed in).

Aggregates and their streams:

- ``session-<id>``: the exam session document as scoring knows it (scheduled, amended);
- ``ticket-<application>``: an admission ticket (准考证) and what happened on exam day:
  checked in or absent (缺考) per subject, forfeited (逾期未打印), cancelled (报名无效).
  Keyed by the application (``<session>.<account>``), which no two sessions share; logs
  written before kept ``ticket-<ticket number>``, and a ticket recorded there goes on
  there (``ticket_stream_of``);
- ``scores-<session>``: the session's score sheet: imports from the marking centre
  (阅卷中心), each superseding the one before, then publication (ScoresPublished);
- ``candidate-<account>``: a candidate's sittings across sessions and years, voided
  scores, and qualifications attained or withdrawn. Rolling validity is decided here.

The score file (one row per candidate and subject, ``ticket_number,subject,score``) is
checked whole: every problem is reported under its row number (the file's line number,
the header being row 1), and nothing is stored from a file with any problem.

Scores: a decimal from 0 to the subject's full marks, with at most one decimal place
(``71.5``; not ``71.55``); an absent candidate's row may carry an empty score or ``缺考``.
A subject passes at its pass mark, the full marks times the pass ratio (相对固定合格标准,
60%): 72 of 120 passes, 71.9 does not. Compared as decimals, never as binary floats.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

from shared.clock import iso
from shared.errors import Refused, ValidationFailed
from shared.events import NewEvent, StoredEvent
from shared.evolve import Evolve, Step
from shared.session import WINDOW_LABELS, Level, SessionDocument, Subject, require_open

MAX_FILE_BYTES = 50 * 1024 * 1024  # 50 MiB of UTF-8
MAX_ROWS = 1_000_000  # data rows (a national sitting has well under a million papers)
MAX_REPORTED_ROWS = 1000  # rows listed in a refusal; the message counts them all
ROWS_PER_EVENT = 1000  # score rows per private ScoreRowsRecorded event (whole tickets each)
HEADER = ("ticket_number", "subject", "score")
ABSENT_MARKERS = ("", "缺考")
_NUMBER = re.compile(r"[+-]?([0-9]+)(?:\.([0-9]+))?")  # ASCII digits only, no exponent

# per-subject status in a published sitting
PASSED, FAILED, ABSENT, NOT_SCORED, VOIDED = "passed", "failed", "absent", "not_scored", "voided"
STATUS_LABELS = {PASSED: "合格", FAILED: "不合格", ABSENT: "缺考", NOT_SCORED: "无成绩",
                 VOIDED: "成绩无效"}

# ticket status (from admission's events)
ISSUED, FORFEITED, CANCELLED = "issued", "forfeited", "cancelled"


# --- streams --------------------------------------------------------------------------


def session_stream(session_id: str) -> str:
    return f"session-{session_id}"


def ticket_stream(application_id: str) -> str:
    return f"ticket-{application_id}"


def legacy_ticket_stream(ticket_number: str) -> str:
    """Where a ticket was recorded before tickets were keyed by application."""
    return f"ticket-{ticket_number}"


def ticket_stream_of(p: Mapping, version_of, read) -> tuple[str, int]:
    """(stream, its version) of the ticket admission's event ``p`` is about: its own
    stream, or the stream an older log recorded it on by number alone, if that one holds
    this application's ticket (a number another session shared is not this ticket)."""
    stream = ticket_stream(p["application_id"])
    version = version_of(stream)
    if version:
        return stream, version
    legacy = legacy_ticket_stream(p["ticket_number"])
    if legacy != stream and version_of(legacy):
        events = read(legacy)
        if events[0].payload.get("application_id") == p["application_id"]:
            return legacy, events[-1].stream_version
    return stream, 0


def scores_stream(session_id: str) -> str:
    return f"scores-{session_id}"


def candidate_stream(account_id: str) -> str:
    return f"candidate-{account_id}"


def _local(doc: SessionDocument, t: datetime) -> str:
    return f"{t.astimezone(doc.tz):%Y-%m-%d %H:%M:%S} {doc.timezone}"


# --- the session document -------------------------------------------------------------


def fold_session(events: list[StoredEvent]) -> SessionDocument | None:
    return SessionDocument.from_dict(events[-1].payload["document"]) if events else None


def session_recorded(doc: SessionDocument) -> NewEvent:
    return NewEvent(session_stream(doc.session_id), "SessionRecorded",
                    {"session_id": doc.session_id, "document": doc.to_dict()})


# --- tickets (from admission) ---------------------------------------------------------


class TicketView(NamedTuple):
    """What an import and a publication need of one admission ticket (a tuple: an import
    reads every ticket of the session)."""

    ticket_number: str
    account_id: str
    application_id: str
    session_id: str
    level: str
    subjects: tuple[str, ...]
    exemption: dict | None = None
    candidate: Mapping = MappingProxyType({})  # name, id_type, id_number
    status: str = ISSUED
    absent: frozenset = frozenset()  # subjects the candidate was absent from (缺考)


# admission's event type -> this service's record of it
TICKET_EVENTS = {
    "AdmissionTicketIssued": "TicketRecorded",
    "CandidateCheckedIn": "CheckInRecorded",
    "CandidateAbsent": "AbsenceRecorded",
    "ExamForfeited": "ForfeitRecorded",
    "AdmissionTicketCancelled": "TicketCancellationRecorded",
}


def ticket_events(event: StoredEvent, version: int, stream: str | None = None) -> list[NewEvent]:
    """Admission's event about a ticket, recorded on the ticket's stream (``version``: the
    stream's version now; ``stream``: default the application's). A ticket issued twice is
    recorded once; news of a ticket never issued here is passed over (nothing to attach it
    to)."""
    kind = TICKET_EVENTS.get(event.type)
    if kind is None:
        return []
    p = event.payload
    if (kind == "TicketRecorded") == bool(version):
        return []
    base = {"ticket_number": p["ticket_number"], "session_id": p["session_id"],
            "account_id": p["account_id"], "application_id": p["application_id"]}
    if kind == "TicketRecorded":
        payload = {**base, "level": p["level"], "subjects": list(p["subjects"]),
                   "exemption": p.get("exemption"), "candidate": dict(p["candidate"]),
                   "exam_year": p["exam_year"]}
    elif kind in ("CheckInRecorded", "AbsenceRecorded"):
        payload = {**base, "subject": p["subject"]}
    else:
        payload = {**base, "reason": p.get("reason") or ""}
    return [NewEvent(stream or ticket_stream(p["application_id"]), kind, payload)]


# --- the score file -------------------------------------------------------------------


class ScoreRow(NamedTuple):  # a tuple: a file has up to a million of them
    row: int  # the file's line number; the header is row 1
    ticket_number: str
    subject: str  # as written: a subject code, or its name within the ticket's level
    score: float | None  # None: absent (an empty score or 缺考)


@dataclass
class ScoreFile:
    """A score file read line by line: the rows that read well, and what did not."""

    rows: list[ScoreRow]
    problems: dict[int, list[str]]
    data_rows: int  # rows after the header, blank lines not counted


def file_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _utf8_size(text: str, limit: int) -> int:
    # a character is at most 4 bytes of UTF-8: encode only when the count could pass the cap
    return len(text) * 4 if len(text) * 4 <= limit else len(text.encode("utf-8"))


def read_score_file(text: str, *, max_bytes: int = MAX_FILE_BYTES,
                    max_rows: int = MAX_ROWS) -> ScoreFile:
    """Read the CSV (UTF-8, with or without a BOM; header required). An empty or oversized
    file is refused at once; row problems are collected for the whole-file report."""
    if _utf8_size(text, max_bytes) > max_bytes:
        raise ValidationFailed(
            f"The score file is larger than {max_bytes / (1024 * 1024):g} MiB; nothing was "
            "imported. A session's scores come in one file (a re-import replaces it whole): "
            "ask the marking centre for one without padding or extra columns.",
            {"csv": f"larger than {max_bytes} bytes"})
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ValidationFailed("The score file is empty: expected the header "
                               "ticket_number,subject,score and one row per candidate and subject.",
                               {"csv": "empty"})
    reader = csv.reader(text.splitlines())  # a row is a line: row N is line N of the file
    problems: dict[int, list[str]] = {}
    rows: list[ScoreRow] = []
    header_seen = False
    data_rows = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.setdefault(reader.line_num, []).append(f"not readable as CSV: {exc}")
            continue
        n = reader.line_num
        if not cells or (not cells[0].strip() and all(not c.strip() for c in cells)):
            continue  # blank line
        if not header_seen:
            header_seen = True
            found = tuple(c.strip().lower() for c in cells)
            if found != HEADER:
                problems.setdefault(n, []).append(
                    f"the first row must be the header {','.join(HEADER)}; found "
                    f"{','.join(cells)[:200]!r}")
                break  # the columns cannot be trusted: nothing further is read
            continue
        data_rows += 1
        if data_rows > max_rows:
            raise ValidationFailed(
                f"The score file has more than {max_rows:,} rows; nothing was imported.",
                {"csv": f"more than {max_rows} rows"})
        if len(cells) != len(HEADER):
            problems.setdefault(n, []).append(
                f"expected 3 columns (ticket_number, subject, score), found {len(cells)}")
            continue
        ticket, subject, raw = cells
        ticket, subject, raw = ticket.strip(), subject.strip(), raw.strip()
        row_problems = []
        if not ticket:
            row_problems.append("the ticket number is empty")
        if not subject:
            row_problems.append("the subject is empty")
        score = None
        if raw not in ABSENT_MARKERS:
            m = _NUMBER.fullmatch(raw)
            if m is None:
                row_problems.append(f"score {raw[:50]!r} is not a number (an absent candidate's "
                                    "score is left empty or written 缺考)")
            elif m.group(2) is not None and len(m.group(2)) > 1:
                row_problems.append(f"score {raw} has more than one decimal place")
            else:
                score = float(raw) or 0.0  # "-0" is 0
                if score < 0:
                    row_problems.append(f"score {raw} is negative")
        if row_problems:
            problems.setdefault(n, []).extend(row_problems)
            continue
        rows.append(ScoreRow(n, ticket, subject, score))
    if not data_rows and not problems:
        raise ValidationFailed("The score file has a header but no score rows; nothing was "
                               "imported.", {"csv": "no rows"})
    return ScoreFile(rows, problems, data_rows)


@dataclass
class CheckedImport:
    """A score file that passed every check: rows as (ticket, subject code, score)."""

    rows: list[tuple[str, str, float | None]]
    candidates: int
    absent_rows: int  # rows marking an absence (empty score or 缺考)
    missing: int  # subjects on live tickets with neither a row nor a recorded absence


def _subject_code(doc: SessionDocument, level: str, written: str) -> str | None:
    if written in doc.subjects:
        return written
    for code in doc.levels[level].subjects if level in doc.levels else ():
        if doc.subjects[code].name == written:
            return code  # the subject's name, unambiguous within the ticket's level
    return None


def check_score_file(parsed: ScoreFile, doc: SessionDocument, tickets: Mapping[str, TicketView],
                     filename: str) -> CheckedImport:
    """Check every row against the session's tickets, subjects and exam-day records.
    Any problem refuses the whole file with a row-by-row report."""
    problems = {n: list(v) for n, v in parsed.problems.items()}
    seen: dict[tuple[str, str], int] = {}
    accepted: list[tuple[str, str, float | None]] = []
    absent_rows = 0
    for r in parsed.rows:
        bad = []
        ticket = tickets.get(r.ticket_number)
        code = None
        if ticket is None:
            bad.append(f"unknown ticket {r.ticket_number!r}: no admission ticket with this "
                       f"number was issued for {doc.session_id}")
        elif ticket.status == CANCELLED:
            bad.append(f"ticket {r.ticket_number} was cancelled (报名无效): it takes no scores")
        if ticket is not None:
            code = _subject_code(doc, ticket.level, r.subject)
            if code is None:
                bad.append(f"unknown subject {r.subject!r} (subjects of this ticket: "
                           f"{', '.join(ticket.subjects)})")
            elif code not in ticket.subjects:
                exempt = (ticket.exemption or {}).get("subject") == code
                bad.append(f"ticket {r.ticket_number} does not sit {code}"
                           + (" (exempt)" if exempt else
                              f" (it sits {', '.join(ticket.subjects)})"))
        key = (r.ticket_number, code or r.subject)
        if key in seen:
            bad.append(f"duplicate of row {seen[key]} (ticket {r.ticket_number}, subject "
                       f"{code or r.subject})")
        else:
            seen[key] = r.row
        if code is not None and r.score is not None:
            subject = doc.subjects[code]
            if r.score > subject.full_marks:
                bad.append(f"score {r.score:g} is out of range 0..{subject.full_marks} for {code}")
            if ticket is not None and ticket.status == FORFEITED:
                bad.append(f"ticket {r.ticket_number} was forfeited (逾期未打印准考证, 缺考): "
                           "it cannot have a score")
            elif ticket is not None and code in ticket.absent:
                bad.append(f"ticket {r.ticket_number} was absent from {code} (缺考): it cannot "
                           "have a score")
        if bad:
            problems.setdefault(r.row, []).extend(bad)
            continue
        if r.score is None:
            absent_rows += 1
        accepted.append((r.ticket_number, code, r.score))
    if problems:
        rows = sorted(problems)
        count = sum(len(v) for v in problems.values())
        fields = {f"row {n}": "; ".join(problems[n]) for n in rows[:MAX_REPORTED_ROWS]}
        if len(rows) > MAX_REPORTED_ROWS:
            fields["more"] = (f"{len(rows) - MAX_REPORTED_ROWS} more rows have problems; the "
                              f"first {MAX_REPORTED_ROWS} are listed")
        raise ValidationFailed(
            f"{filename}: {count} problem(s) in {len(rows)} row(s); nothing was imported. "
            "Correct the rows listed and import the whole file again.", fields)
    taken = {t for t, _, _ in accepted}
    missing = sum(1 for t in tickets.values() if t.status != CANCELLED
                  for code in t.subjects
                  if (t.ticket_number, code) not in seen and code not in t.absent
                  and t.status != FORFEITED)
    return CheckedImport(accepted, len(taken), absent_rows, missing)


# --- the score sheet of a session -----------------------------------------------------


@dataclass
class ScoreSheet:
    """A session's imports and publication (the ``scores-<session>`` stream, without the
    rows themselves: every import ends with ScoresImported, so the last event of the
    stream is always one of the types folded here and its version is the stream's)."""

    session_id: str
    version: int = 0
    current: dict | None = None  # ImportRecorded of the import in force
    current_position: int = 0  # its position in the log (its rows follow it)
    imports: int = 0
    published_at: str | None = None


SHEET_TYPES = ("ImportRecorded", "ScoresImported", "ScoresPublished")


def fold_sheet(session_id: str, events: Iterable[StoredEvent]) -> ScoreSheet:
    sheet = ScoreSheet(session_id)
    for e in events:
        sheet.version = e.stream_version
        if e.type == "ImportRecorded":
            sheet.current = e.payload
            sheet.current_position = e.position
            sheet.imports += 1
        elif e.type == "ScoresPublished":
            sheet.published_at = e.payload["published_at"]
    return sheet


def require_import_period(doc: SessionDocument, sheet: ScoreSheet, now: datetime) -> None:
    """Scores come in after the exam window has ended and before publication."""
    exam, scores = doc.window("exam"), doc.window("scores")
    if sheet.published_at:
        raise Refused(
            f"The scores of {doc.session_id} were published at {sheet.published_at}; "
            "imports are refused after publication (void a candidate's scores instead).",
            {"session_id": "published"})
    if now < exam.end_exclusive:
        raise Refused(
            f"Scores can be imported only after the {exam.describe()} window has ended; "
            f"it is now {_local(doc, now)}.",
            {"window": "exam", "opens": iso(exam.end_exclusive), "closes": iso(scores.end)})
    if now >= scores.end_exclusive:
        raise Refused(
            f"The {scores.describe()} window has closed; scores of this session can no longer "
            f"be imported; it is now {_local(doc, now)}.",
            {"window": "scores", "opens": iso(exam.end_exclusive), "closes": iso(scores.end)})


def import_events(doc: SessionDocument, sheet: ScoreSheet, checked: CheckedImport, *,
                  import_id: str, filename: str, sha256: str, by: str,
                  now: datetime) -> list[NewEvent]:
    """A checked file, recorded whole; it supersedes the session's earlier import (if any)
    whole. The rows go into private events, whole tickets each, so scores never leave the
    service before publication; ScoresImported (public) carries counts only."""
    stream = scores_stream(doc.session_id)
    meta = {"session_id": doc.session_id, "import_id": import_id, "filename": filename,
            "sha256": sha256, "rows": len(checked.rows), "candidates": checked.candidates,
            "absent_rows": checked.absent_rows, "missing": checked.missing, "imported_by": by,
            "imported_at": iso(now),
            "supersedes": sheet.current["import_id"] if sheet.current else None}
    events = [NewEvent(stream, "ImportRecorded", meta)]
    by_ticket: dict[str, list] = {}
    for ticket, code, score in checked.rows:
        by_ticket.setdefault(ticket, []).append([ticket, code, score])
    chunk: list = []
    for rows in by_ticket.values():
        chunk.extend(rows)
        if len(chunk) >= ROWS_PER_EVENT:
            events.append(NewEvent(stream, "ScoreRowsRecorded", {
                "session_id": doc.session_id, "import_id": import_id, "rows": chunk}))
            chunk = []
    if chunk:
        events.append(NewEvent(stream, "ScoreRowsRecorded", {
            "session_id": doc.session_id, "import_id": import_id, "rows": chunk}))
    events.append(NewEvent(stream, "ScoresImported", {
        "session_id": doc.session_id, "import_id": import_id, "sha256": sha256,
        "rows": len(checked.rows), "imported_by": by}))
    return events


def rows_by_ticket(import_id: str, events: Iterable[StoredEvent]) -> dict[str, dict]:
    """The rows of one import, as ticket -> {subject code: score or None (absent)}."""
    out: dict[str, dict] = {}
    for e in events:
        if e.type == "ScoreRowsRecorded" and e.payload["import_id"] == import_id:
            for ticket, code, score in e.payload["rows"]:
                out.setdefault(ticket, {})[code] = score
    return out


# --- judging a subject ----------------------------------------------------------------


def passes(score: float, subject: Subject) -> bool:
    """相对固定合格标准: at or above the pass mark (60% of the full marks), as decimals."""
    return Decimal(repr(float(score))) >= Decimal(repr(float(subject.pass_mark)))


def subject_results(doc: SessionDocument, ticket: TicketView, scores: Mapping[str, float | None]
                    ) -> list[dict]:
    """Each subject on the ticket: score, full marks, passed, status."""
    out = []
    for code in ticket.subjects:
        subject = doc.subjects[code]
        score = scores.get(code)
        if score is not None:
            passed = passes(score, subject)
            status = PASSED if passed else FAILED
        else:
            passed = False
            absent = code in scores or code in ticket.absent or ticket.status == FORFEITED
            status = ABSENT if absent else NOT_SCORED
        out.append({"code": code, "name": subject.name, "score": score,
                    "full_marks": subject.full_marks, "pass_mark": subject.pass_mark,
                    "passed": passed, "status": status})
    return out


# --- a candidate across sittings: rolling validity ------------------------------------


@dataclass(frozen=True)
class Sitting:
    """One published sitting of a candidate (one session, one level)."""

    session_id: str
    application_id: str
    ticket_number: str
    exam_year: int
    level: str
    exemption: dict | None
    subjects: tuple  # subject_results(...) items


@dataclass
class Qualification:
    """A level attained (资格), until scores it rested on are voided (withdrawn)."""

    qualification_id: str
    account_id: str
    level: str
    session_id: str
    exam_year: int
    subjects: list  # the qualifying passes: {subject, exam_year, session_id, score}
    status: str = "attained"  # attained | withdrawn
    withdrawn_reason: str | None = None
    version: int = 0  # the candidate stream's version of its last event


def _attained(event) -> Qualification:
    p = event.payload
    return Qualification(p["qualification_id"], p["account_id"], p["level"], p["session_id"],
                         p["exam_year"], p["subjects"])


# a Qualification's evolve (within the candidate's stream): the fold and the qualifications
# row both use it
QUALIFICATION = Evolve("qualification", {
    "QualificationAttained": Step.opening(_attained),
    "QualificationWithdrawn": Step(("attained",), lambda ev: {
        "status": "withdrawn", "withdrawn_reason": ev.payload["reason"]}),
}, ident=lambda q: q.qualification_id)


@dataclass
class CandidateRecord:
    account_id: str
    version: int = 0
    sittings: dict[str, Sitting] = field(default_factory=dict)  # by session
    voided: dict[str, str] = field(default_factory=dict)  # session -> reason (成绩无效)
    qualifications: dict[str, Qualification] = field(default_factory=dict)  # by id

    def live_qualification(self, level: str) -> Qualification | None:
        return next((q for q in self.qualifications.values()
                     if q.level == level and q.status == "attained"), None)


def fold_candidate(account_id: str, events: Iterable[StoredEvent]) -> CandidateRecord:
    rec = CandidateRecord(account_id)
    for e in events:
        rec.version = e.stream_version
        p = e.payload
        if e.type == "SittingResulted":
            rec.sittings[p["session_id"]] = Sitting(
                p["session_id"], p["application_id"], p["ticket_number"], p["exam_year"],
                p["level"], p["exemption"], tuple(p["subjects"]))
        elif e.type == "ScoresVoided":
            rec.voided[p["session_id"]] = p["reason"]
        elif e.type in QUALIFICATION:
            qid = p["qualification_id"]
            rec.qualifications[qid] = QUALIFICATION(rec.qualifications.get(qid), e)
    return rec


def requirement(level: Level, exemption: dict | None) -> tuple[list[str], int]:
    """The subjects to pass and the rolling period in exam years: 一级 all three within 3
    consecutive years (the two left within 2 with an exemption); 二级 both within 2 (the
    one left within 1 with an exemption) — the session document's validity_years(_exempt)."""
    exempt = (exemption or {}).get("subject")
    if exempt in level.subjects:
        return [s for s in level.subjects if s != exempt], level.validity_years_exempt
    return list(level.subjects), level.validity_years


def qualifying_passes(sittings: Iterable[Sitting], voided: Mapping[str, str], level: Level,
                      exemption: dict | None, exam_year: int) -> list[dict] | None:
    """The passes that complete the level as of ``exam_year``: for every required subject a
    pass of a sitting not voided, in the ``period`` exam years ending with ``exam_year``
    (a pass older than that no longer counts). None if a subject lacks one. Of several
    passes of a subject, the latest counts (the highest score within a year)."""
    required, period = requirement(level, exemption)
    first = exam_year - period + 1
    best: dict[str, tuple] = {}
    for s in sittings:
        if s.level != level.code or s.session_id in voided or not first <= s.exam_year <= exam_year:
            continue
        for r in s.subjects:
            if r["passed"] and r["code"] in required:
                key = (s.exam_year, r["score"])
                if r["code"] not in best or key > best[r["code"]][0]:
                    best[r["code"]] = (key, {"subject": r["code"], "exam_year": s.exam_year,
                                             "session_id": s.session_id, "score": r["score"]})
    if any(code not in best for code in required):
        return None
    return [best[code][1] for code in required]


def qualification_id(record: CandidateRecord, level: str) -> str:
    """``<account>-<level>``; a qualification attained again after one was withdrawn gets
    ``-2``, ``-3``…: an id is attained once, never twice."""
    base = f"{record.account_id}-{level}"
    taken = sum(1 for q in record.qualifications.values() if q.level == level)
    return base if not taken else f"{base}-{taken + 1}"


def sitting_events(record: CandidateRecord, doc: SessionDocument, ticket: TicketView,
                   scores: Mapping[str, float | None], published_at: str) -> list[NewEvent]:
    """At publication: the sitting's results; SubjectPassed for each subject passed; and
    QualificationAttained once every required subject is passed within the period."""
    stream = candidate_stream(ticket.account_id)
    subjects = subject_results(doc, ticket, scores)
    voided = record.voided.get(doc.session_id)
    events = [NewEvent(stream, "SittingResulted", {
        "account_id": ticket.account_id, "application_id": ticket.application_id,
        "session_id": doc.session_id, "ticket_number": ticket.ticket_number,
        "exam_year": doc.exam_year, "level": ticket.level, "exemption": ticket.exemption,
        "subjects": subjects, "voided": voided, "published_at": published_at})]
    if voided is not None:
        return events  # 成绩无效: nothing passes
    for r in subjects:
        if r["passed"]:
            events.append(NewEvent(stream, "SubjectPassed", {
                "account_id": ticket.account_id, "application_id": ticket.application_id,
                "session_id": doc.session_id, "exam_year": doc.exam_year, "level": ticket.level,
                "subject": r["code"], "score": r["score"], "full_marks": r["full_marks"]}))
    level = doc.levels[ticket.level]
    if record.live_qualification(level.code) is not None:
        return events
    this = Sitting(doc.session_id, ticket.application_id, ticket.ticket_number, doc.exam_year,
                   ticket.level, ticket.exemption, tuple(subjects))
    earlier = [s for sid, s in record.sittings.items() if sid != doc.session_id]
    found = qualifying_passes([*earlier, this], record.voided, level, ticket.exemption,
                              doc.exam_year)
    if found is not None:
        events.append(NewEvent(stream, "QualificationAttained", {
            "qualification_id": qualification_id(record, level.code),
            "account_id": ticket.account_id, "session_id": doc.session_id,
            "exam_year": doc.exam_year, "level": level.code, "exemption": ticket.exemption,
            "subjects": found,
            "candidate": {k: ticket.candidate.get(k) for k in ("name", "id_type", "id_number")}}))
    return events


# --- publication ----------------------------------------------------------------------


@dataclass
class Publication:
    events: list[NewEvent]
    expected: dict[str, int]
    summary: dict


def require_publishable(doc: SessionDocument, sheet: ScoreSheet, now: datetime) -> None:
    """The authority publishes in the 查询成绩 window, once, an import there must be."""
    if sheet.published_at:
        raise Refused(f"The scores of {doc.session_id} were already published at "
                      f"{sheet.published_at}.", {"session_id": "published"})
    require_open(doc, "scores", now, "Publishing scores")
    if sheet.current is None:
        raise Refused(f"No scores have been imported for {doc.session_id}; import the marking "
                      "centre's file first.", {"session_id": "nothing imported"})


def publish(doc: SessionDocument, sheet: ScoreSheet, rows: Mapping[str, dict],
            tickets: Iterable[TicketView], records: Mapping[str, CandidateRecord],
            published_at: datetime) -> Publication:
    """Publish the import in force: every live ticket's sitting gets its results, passes
    and qualifications are decided, then ScoresPublished. Cancelled tickets take none."""
    if sheet.published_at or sheet.current is None:
        raise Refused(f"Nothing to publish for {doc.session_id}.", {"session_id": "state"})
    when = iso(published_at)
    events: list[NewEvent] = []
    expected = {scores_stream(doc.session_id): sheet.version}
    summary = {"candidates": 0, "passed_subjects": 0, "qualified": 0}
    done: set[str] = set()
    for ticket in sorted(tickets, key=lambda t: t.ticket_number):
        if ticket.status == CANCELLED or ticket.account_id in done:
            continue
        done.add(ticket.account_id)
        record = records.get(ticket.account_id) or CandidateRecord(ticket.account_id)
        if doc.session_id in record.sittings:
            continue
        mine = sitting_events(record, doc, ticket, rows.get(ticket.ticket_number, {}), when)
        events += mine
        expected[candidate_stream(ticket.account_id)] = record.version
        summary["candidates"] += 1
        summary["passed_subjects"] += sum(1 for e in mine if e.type == "SubjectPassed")
        summary["qualified"] += sum(1 for e in mine if e.type == "QualificationAttained")
    events.append(NewEvent(scores_stream(doc.session_id), "ScoresPublished", {
        "session_id": doc.session_id, "published_at": when,
        "candidates": summary["candidates"]}))
    return Publication(events, expected, {"session_id": doc.session_id, "published_at": when,
                                          **summary})


def require_published(doc: SessionDocument, published_at: str | None, now: datetime) -> None:
    """Before publication nobody but the authority sees scores: say when they come."""
    if published_at:
        return
    scores = doc.window("scores")
    label = f"{WINDOW_LABELS['scores']} (scores)"
    if now < scores.start:
        message = (f"Scores of {doc.name} are published at {_local(doc, scores.start)} "
                   f"({label}); not before.")
    else:
        message = (f"Scores of {doc.name} have not been published yet (the {label} window "
                   f"opened at {_local(doc, scores.start)}); please check again later.")
    raise Refused(message, {"published_at": iso(scores.start), "window": "scores"})


# --- voiding (成绩无效) -----------------------------------------------------------------


def void_events(record: CandidateRecord, *, session_id: str, application_id: str, reason: str,
                by: str, integrity: bool) -> list[NewEvent]:
    """The candidate's scores of one sitting no longer count; a qualification that rested
    on them is withdrawn (the certificate is revoked on it)."""
    if session_id in record.voided:
        raise Refused(f"These scores were already voided: {record.voided[session_id]}",
                      {"session_id": "already voided"})
    stream = candidate_stream(record.account_id)
    events = [NewEvent(stream, "ScoresVoided", {
        "account_id": record.account_id, "application_id": application_id,
        "session_id": session_id, "reason": reason, "by": by, "integrity": integrity})]
    for q in record.qualifications.values():
        if q.status == "attained" and any(p["session_id"] == session_id for p in q.subjects):
            events.append(NewEvent(stream, "QualificationWithdrawn", {
                "qualification_id": q.qualification_id, "account_id": record.account_id,
                "level": q.level,
                # the candidate reads it (certificate revoked): Chinese; the code is the type
                "reason": f"考试（{session_id}）成绩无效：{reason}"}))
    return events


def candidate_view(doc: SessionDocument, result: Mapping, qualification: Mapping | None) -> dict:
    """What a candidate sees of one published sitting (查询成绩)."""
    voided = result.get("void_reason") if result.get("voided") else None
    subjects = []
    for r in result.get("subjects") or []:
        item = {k: r[k] for k in ("code", "name", "score", "full_marks", "passed", "status")}
        if voided is not None:
            item.update(score=None, passed=False, status=VOIDED)
        item["status_label"] = STATUS_LABELS[item["status"]]
        subjects.append(item)
    return {"session_id": doc.session_id, "session_name": doc.name, "exam_year": doc.exam_year,
            "published": True, "published_at": result.get("published_at"),
            "level": result.get("level"), "ticket_number": result.get("ticket_number"),
            "subjects": subjects, "voided": voided is not None, "void_reason": voided,
            "qualification": dict(qualification) if qualification else None}

