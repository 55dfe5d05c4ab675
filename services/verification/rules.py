"""Eligibility rules (报考条件) as data, versioned by exam year. Pure: no clock, no network.

The rules of exam year ``Y`` live in ``rules/Y.yml`` next to this module: for each exam
level, the years of metrology work each education level needs, by major category. Each
table cell is a ``Rule`` row with a stable id such as ``2026.L1.本科.science_engineering``
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
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import yaml

from shared.errors import NotFound

RULES_DIR = Path(__file__).resolve().parent / "rules"
MAJOR_CATEGORIES = ("science_engineering", "other")
ANY_MAJOR = "any"
CATEGORY_TEXT = {
    "science_engineering": "理工类专业",
    "other": "其他专业",
    ANY_MAJOR: "专业不限",
}


class RulesError(ValueError):
    """A rules file that does not say what this module can read."""


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


def available_years() -> list[int]:
    return sorted(int(p.stem) for p in RULES_DIR.glob("*.yml") if p.stem.isdigit())


@cache
def load_rules(exam_year: int) -> Rules:
    """The rules of ``exam_year`` from ``rules/<exam_year>.yml``; ``NotFound`` if there are none."""
    path = RULES_DIR / f"{int(exam_year)}.yml"
    if not path.is_file():
        known = ", ".join(map(str, available_years())) or "none"
        raise NotFound(
            f"no eligibility rules (报考条件) for exam year {exam_year}: "
            f"{path.name} does not exist (rules exist for: {known})"
        )
    return parse_rules(yaml.safe_load(path.read_text(encoding="utf-8")), int(exam_year), path.name)


def parse_rules(doc, exam_year: int, source: str = "rules") -> Rules:
    """Check and expand a rules document (see ``rules/2026.yml``)."""

    def fail(msg):
        raise RulesError(f"{source}: {msg}")

    if not isinstance(doc, dict):
        fail("not a mapping")
    if doc.get("exam_year") != exam_year:
        fail(f"exam_year is {doc.get('exam_year')!r}, expected {exam_year}")
    edu_levels = doc.get("education_levels")
    if not isinstance(edu_levels, list) or not edu_levels or len(set(edu_levels)) != len(edu_levels):
        fail("education_levels must be a non-empty list without repeats")
    levels = doc.get("levels")
    if not isinstance(levels, dict) or not levels:
        fail("levels must be a non-empty mapping")
    names, rows = {}, []
    for level, spec in levels.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("years"), dict):
            fail(f"{level}: needs a 'years' table")
        names[level] = str(spec.get("name") or level)
        for education, cell in spec["years"].items():
            if education not in edu_levels:
                fail(f"{level}: unknown education level {education!r}")
            cells = {ANY_MAJOR: cell} if not isinstance(cell, dict) else cell
            for category, years in cells.items():
                if category not in (*MAJOR_CATEGORIES, ANY_MAJOR):
                    fail(f"{level}.{education}: unknown major category {category!r}")
                if isinstance(years, bool) or not isinstance(years, int) or years < 0:
                    fail(f"{level}.{education}.{category}: years must be a whole number >= 0")
                rule_id = f"{exam_year}.{level}.{education}.{category}"
                rows.append(Rule(rule_id, exam_year, level, education, category, years))
            if isinstance(cell, dict) and set(cell) != set(MAJOR_CATEGORIES):
                fail(f"{level}.{education}: give every major category {MAJOR_CATEGORIES} or one number")
    return Rules(exam_year, tuple(edu_levels), MappingProxyType(names), tuple(rows))


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
