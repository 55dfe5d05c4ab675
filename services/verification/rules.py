"""Eligibility rules (报考条件) as data, versioned by exam year. Pure: no clock, no network.

The rules of an exam year are a document: for each exam level, the years of metrology
work each education level needs, by major category (``rules/2026.yml`` shows the form).
The exam authority loads them (``check_rules_document`` checks a document whole; the
verification service keeps each loaded version as an event); the file ``rules/Y.yml``
shipped next to this module is year Y's default, version 0, until a version is loaded.
Each table cell is a ``Rule`` row with a stable id such as ``2026.L1.本科.science_engineering``
(``any`` instead of the category where the major does not matter), which every outcome
names, so a decision can always be traced to the row that made it.

How years of metrology work are counted (``metrology_years``)
--------------------------------------------------------------
- Only work entries with ``metrology`` true count (从事计量技术工作).
- An entry covers the days from ``start`` (inclusive) to ``end`` (inclusive: the last day
  worked); an entry without ``end`` is the current job and runs up to the cut-off.
- The cut-off day itself counts (截至12月31日: up to and including it). Everything is
  clipped there: the covered period is ``[start, min(end, cutoff) + 1 day)``, so an entry
  starting after the cut-off counts nothing, one starting on it counts one day, and a job
  ending on the cut-off counts exactly as much as one still running.
- Overlapping (or adjacent) entries are merged first: a day counts once however many jobs
  cover it. The total is a number of days.
- A candidate **has N years** when that total is at least the number of days in the N
  calendar years ending with the cut-off day: ``(after - (after minus N years)).days`` where
  ``after`` is the day after the cut-off (29 February steps back to 28 February). With the
  usual cut-off 31 December Y, N years are 1 January Y-N+1 to 31 December Y: a single
  continuous job that started on the same month and day as the day after the cut-off, N
  years earlier, has N years; one starting a day later does not. Months are counted the
  same way (the N years and M months ending with the cut-off day) and only serve the
  reason a person reads.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.contracts.registration import LEVELS
from shared.errors import NotFound, ValidationFailed, flat_fields
from shared.fields import Text
from shared.session import read_yaml

RULES_DIR = Path(__file__).resolve().parent / "rules"
MAJOR_CATEGORIES = ("science_engineering", "other")
ANY_MAJOR = "any"
CATEGORY_TEXT = {
    "science_engineering": "理工类专业",
    "other": "其他专业",
    ANY_MAJOR: "专业不限",
}


# --- rules as data --------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One cell of the table: ``education`` + ``major_category`` needs ``years`` for ``level``."""

    id: str
    exam_year: int
    level: str  # L1 (一级) | L2 (二级)
    education: str  # 中专 … 博士
    major_category: str  # science_engineering | other | any
    years: int


@dataclass(frozen=True)
class Rules:
    exam_year: int
    education_levels: tuple[str, ...]  # lowest first
    level_names: MappingProxyType  # "L1" -> "一级"
    rows: tuple[Rule, ...]
    version: int = 0  # 0: the file shipped with the code; 1, 2, …: loaded by the authority
    digest: str = ""  # sha256 of the checked document (``document_digest``)

    @property
    def ref(self) -> dict:
        """Which rules: what a case records of the rules it was opened under."""
        return {"exam_year": self.exam_year, "version": self.version, "digest": self.digest}

    def levels(self) -> tuple[str, ...]:
        return tuple(self.level_names)

    def for_level(self, level: str) -> tuple[Rule, ...]:
        if level not in self.level_names:
            raise ValueError(
                f"no eligibility rules for level {level!r} in exam year {self.exam_year}"
            )
        return tuple(r for r in self.rows if r.level == level)

    def row(self, level: str, education: str | None, major_category: str | None) -> Rule | None:
        """The row that applies to one education entry, or None if it does not qualify."""
        for r in self.for_level(level):
            if r.education == education and r.major_category in (major_category, ANY_MAJOR):
                return r
        return None

    def get(self, rule_id: str) -> Rule:
        for r in self.rows:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def rank(self, education: str) -> int:
        """Position of an education level, lowest first (-1 if unknown)."""
        try:
            return self.education_levels.index(education)
        except ValueError:
            return -1


# --- the rules document, checked whole ---------------------------------------------------
#
# The authority loads an exam year's rules as a YAML document (see rules/2026.yml). It is
# checked whole with marshmallow, as every other input of the service: every problem is
# listed at once, each with its path in the document (``levels.L1.years.本科.other``).

MAX_YEARS = 50


def _whole_years(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_YEARS:
        raise ValidationError(f"年限须为 0–{MAX_YEARS} 的整数 (a whole number of years "
                              f"0..{MAX_YEARS}), not {value!r}")
    return value


class YearsCell(fields.Field):
    """One education level's years: a number for any major, or one per major category."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            return _whole_years(value)
        errors, out = {}, {}
        for category, years in value.items():
            if category not in MAJOR_CATEGORIES:
                errors[str(category)] = (f"未知专业类别 (unknown major category); one of "
                                         f"{', '.join(MAJOR_CATEGORIES)}")
                continue
            try:
                out[category] = _whole_years(years)
            except ValidationError as exc:
                errors[category] = exc.messages
        for category in MAJOR_CATEGORIES:
            if category not in value:
                errors[category] = ("缺少该专业类别 (missing): give every major category, or one "
                                    "number for any major")
        if errors:
            raise ValidationError(errors)
        return out


class LevelRulesSchema(Schema):
    """One exam level (L1 一级, L2 二级): its name and the years each education level needs;
    an education level not listed does not qualify for it."""

    name = Text(max_length=20, required=True)
    years = fields.Dict(keys=Text(max_length=20), values=YearsCell(), required=True,
                        validate=validate.Length(min=1, error="须列出至少一个学历 (at least one "
                                                                   "education level)"))


class RulesDocumentSchema(Schema):
    """报考条件 of one exam year, as the authority loads it."""

    exam_year = fields.Integer(required=True, strict=True, validate=validate.Range(2000, 2100))
    education_levels = fields.List(
        Text(max_length=20), required=True,
        validate=validate.Length(min=1, max=20, error="须列出 1–20 个学历层次，从低到高 "
                                                      "(1..20 education levels, lowest first)"))
    levels = fields.Dict(
        keys=fields.String(validate=validate.OneOf(LEVELS, error="未知级别 (unknown exam level); "
                                                                 f"one of {', '.join(LEVELS)}")),
        values=fields.Nested(LevelRulesSchema), required=True,
        validate=validate.Length(min=1, error="须至少有一个级别 (at least one exam level)"))

    @validates_schema(skip_on_field_errors=False)
    def _consistent(self, data, **kwargs):
        errors = {}
        known = data.get("education_levels")
        if known is not None:
            repeated = sorted({e for e in known if known.count(e) > 1})
            if repeated:
                errors["education_levels"] = f"重复的学历层次 (repeated): {', '.join(repeated)}"
        for level, spec in (data.get("levels") or {}).items():
            for education in spec.get("years") or {}:
                if known is not None and education not in known:
                    errors[f"levels.{level}.years.{education}"] = (
                        "education_levels 中没有这个学历层次 (not one of education_levels)")
        if errors:
            raise ValidationError(errors)


def _tidy(path: str) -> str:
    """marshmallow's Dict nests a value's messages under ``value`` and a key's under ``key``:
    the document's own path reads better (``levels.L1.years.本科``)."""
    parts = path.split(".")
    return ".".join(p for i, p in enumerate(parts) if not (i and p in ("value", "key")))


def _refuse(problems: dict) -> ValidationFailed:
    return ValidationFailed(
        f"报考条件文件有 {len(problems)} 处问题 (the rules document has {len(problems)} "
        f"problem(s)).", problems)


def check_rules_document(text, exam_year: int | None = None) -> dict:
    """A rules document (YAML text, or its mapping) checked whole: the document as stored
    (plain JSON), or ``ValidationFailed`` listing every problem with its path. With
    ``exam_year``, the document must be that year's."""
    if isinstance(text, str):
        data, problems = read_yaml(text)
        if problems:
            raise _refuse(problems)
    else:
        data = text
    if not isinstance(data, dict):
        raise _refuse({"document": "须为映射 (must be a mapping with exam_year, "
                                   "education_levels, levels)"})
    problems, doc = {}, None
    try:
        doc = RulesDocumentSchema().load(data)
    except ValidationError as exc:
        problems = {_tidy(k): v for k, v in flat_fields(exc.normalized_messages()).items()}
    year = data.get("exam_year")
    if exam_year is not None and "exam_year" not in problems and year != exam_year:
        problems["exam_year"] = (f"文件写的是 {year} 年，应为 {exam_year} 年 "
                                 f"(the document is for {year}, not {exam_year})")
    if problems:
        raise _refuse(problems)
    return doc


def document_digest(doc: dict) -> str:
    """sha256 of the checked document's canonical JSON: the same rules, the same digest
    (comments and layout of the YAML do not count)."""
    canonical = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def rules_from_document(doc: dict, version: int = 0) -> Rules:
    """The table of a checked document, one ``Rule`` row per cell."""
    year, rows, names = doc["exam_year"], [], {}
    for level, spec in doc["levels"].items():
        names[level] = spec["name"]
        for education, cell in spec["years"].items():
            cells = cell if isinstance(cell, dict) else {ANY_MAJOR: cell}
            for category, years in cells.items():
                rows.append(Rule(f"{year}.{level}.{education}.{category}", year, level,
                                 education, category, years))
    return Rules(year, tuple(doc["education_levels"]), MappingProxyType(names), tuple(rows),
                 version, document_digest(doc))


# --- the rules shipped with the code (version 0) ----------------------------------------


def shipped_path(exam_year: int) -> Path:
    return RULES_DIR / f"{int(exam_year)}.yml"


def available_years() -> list[int]:
    """The exam years with a shipped rules file."""
    return sorted(int(p.stem) for p in RULES_DIR.glob("*.yml") if p.stem.isdigit())


@cache
def shipped_rules(exam_year: int) -> Rules | None:
    """The default rules of ``exam_year`` (``rules/<exam_year>.yml``, version 0), or None.
    A version the authority loads takes their place."""
    path = shipped_path(exam_year)
    if not path.is_file():
        return None
    return rules_from_document(check_rules_document(path.read_text(encoding="utf-8"),
                                                    int(exam_year)))


def load_rules(exam_year: int) -> Rules:
    """The shipped rules of ``exam_year``; ``NotFound`` if none ship."""
    rules = shipped_rules(int(exam_year))
    if rules is None:
        known = ", ".join(map(str, available_years())) or "none"
        raise NotFound(
            f"no eligibility rules (报考条件) for exam year {exam_year}: "
            f"{shipped_path(exam_year).name} does not exist (rules exist for: {known})"
        )
    return rules


# --- years of metrology work ----------------------------------------------------------


class Tenure(NamedTuple):
    """Metrology work up to a cut-off: total days, and the whole years and months they make."""

    days: int
    years: int
    months: int

    def text(self) -> str:
        """As a candidate reads it: 2年11个月, 1年, 2个月, 不足1个月, 无计量技术工作经历."""
        if self.days == 0:
            return "无计量技术工作经历"
        parts = (f"{self.years}年" if self.years else "") + (
            f"{self.months}个月" if self.months else "")
        return parts or "不足1个月"


def cutoff_text(cutoff: date) -> str:
    """截至2026年12月31日 as the notices write it."""
    return f"{cutoff.year}年{cutoff.month}月{cutoff.day}日"


def _as_date(value) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def months_before(d: date, months: int) -> date:
    """``d`` moved back by calendar months; a day the month lacks becomes its last day."""
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    return date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


def day_after(cutoff: date) -> date:
    """The first day that no longer counts: the cut-off day itself is counted."""
    return cutoff + timedelta(days=1)


def span_days(cutoff: date, years: int, months: int = 0) -> int:
    """Days in the ``years`` years and ``months`` months that end with the cut-off day
    (included)."""
    after = day_after(cutoff)
    return (after - months_before(after, years * 12 + months)).days


def metrology_intervals(work: list[dict], cutoff: date) -> list[tuple[date, date]]:
    """The merged half-open periods ``[from, to)`` of metrology work up to and including
    the cut-off day."""
    after = day_after(cutoff)
    spans = []
    for entry in work or ():
        if entry.get("metrology") is not True or not entry.get("start"):
            continue
        start = _as_date(entry["start"])
        end = entry.get("end")
        stop = after if end in (None, "") else min(_as_date(end) + timedelta(days=1), after)
        if start < stop:  # entries starting after the cut-off (or empty) cover nothing
            spans.append((start, stop))
    merged: list[tuple[date, date]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def metrology_years(work: list[dict], cutoff: date) -> Tenure:
    """``(days, years, months)`` of metrology work counted up to ``cutoff`` (see module doc)."""
    cutoff = _as_date(cutoff)
    days = sum((stop - start).days for start, stop in metrology_intervals(work, cutoff))
    years = 0
    while days >= span_days(cutoff, years + 1):
        years += 1
    months = 0
    while months < 11 and days >= span_days(cutoff, years, months + 1):
        months += 1
    return Tenure(days, years, months)


def has_years(work: list[dict], cutoff: date, n: int) -> bool:
    """Whether the metrology work up to ``cutoff`` makes at least ``n`` years."""
    cutoff = _as_date(cutoff)
    return metrology_years(work, cutoff).days >= span_days(cutoff, n)


# --- evaluation -----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    passed: bool
    rule: str  # the deciding row's id, or "<year>.<level>.no-qualifying-education"
    reason: str  # in Chinese, for the candidate, with the numbers and the rule's id


def evaluate(rules: Rules, level: str, education: list[dict], work: list[dict],
             cutoff: date) -> Outcome:
    """Judge one candidate for ``level``.

    The best education entry is the one whose row needs the fewest years (on a tie, the
    higher education level, then the first entered); the candidate passes when the metrology
    work up to ``cutoff`` makes at least that many years.
    """
    cutoff = _as_date(cutoff)
    rows = rules.for_level(level)  # ValueError for a level the year has no rules for
    options = []
    for position, entry in enumerate(education or ()):
        row = rules.row(level, entry.get("level"), entry.get("major_category"))
        if row is not None:
            options.append((row.years, -rules.rank(row.education), position, row))
    level_name = rules.level_names[level]
    if not options:
        lowest = min((r.education for r in rows), key=rules.rank)
        held = "、".join(str(e.get("level")) for e in education or ()) or "未填写学历"
        rule = f"{rules.exam_year}.{level}.no-qualifying-education"
        return Outcome(
            False, rule,
            f"报考{level_name}需{lowest}及以上学历，所填学历均不符合（现有：{held}）。"
            f"[规则 {rule}]",
        )
    row = min(options)[3]
    tenure = metrology_years(work, cutoff)
    passed = tenure.days >= span_days(cutoff, row.years)
    reason = (
        f"{row.education}（{CATEGORY_TEXT[row.major_category]}）报考{level_name}需从事计量"
        f"技术工作满{row.years}年（截至{cutoff_text(cutoff)}，含当日），现有{tenure.text()}。"
        f"[规则 {row.id}]"
    )
    return Outcome(passed, row.id, reason)
