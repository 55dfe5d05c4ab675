"""The exam session document (考试计划): timetable, levels, subjects, registration points.

An operator loads a session as YAML (``deploy/sessions/*.yml``); the registration service
publishes it whole as ``ExamSessionScheduled`` (``SessionDocument.to_dict()``) and every
other service rebuilds it with ``SessionDocument.from_dict``. Both ways in run the same
marshmallow schema (``SessionSchema``), which reports *every* problem it finds, each under
the path of the offending key (``windows.exam.start``, ``subjects.L1-LAW.full_marks`` …),
so an operator fixes a bad document in one round.

Pure: no clock, no I/O beyond reading the file ``load_session_file`` is given.

Time. Times in the YAML are wall-clock times in the document's ``timezone``:
``2026-04-07 10:00``, ``2026-04-07 10:00:00``, or a bare date ``2026-04-15`` (00:00:00 as
a start, 23:59:59 as an end); ISO strings with an offset are accepted too (that is what
``to_dict`` writes). A window's end is inclusive to the second: a window ending 16:00:00
still admits 16:00:00.999, and refuses 16:00:01.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)
from marshmallow.experimental.context import Context

from shared.clock import SHANGHAI, iso
from shared.errors import Refused, ValidationFailed

WINDOW_NAMES = ("application", "verification", "spot_check", "confirmation", "ticket_printing",
                "exam", "scores", "certificates")
WINDOW_LABELS = {"application": "网上报名", "verification": "资格核查", "spot_check": "抽查复核",
                 "confirmation": "核对确认", "ticket_printing": "打印准考证", "exam": "考试",
                 "scores": "查询成绩", "certificates": "证书"}

REFERENCE_SESSION_PATH = Path(__file__).resolve().parents[1] / "deploy/sessions/2026-shanghai-jiliang.yml"
DEFAULT_PASS_RATIO = 0.6  # 相对固定合格标准: 60% of the paper's full marks
DEFAULT_SEATS = 30
#: a ticket number ends with the sequence every session shares, zero-padded to at least
#: this many digits (``{seq:06d}``): see ``unique_ticket_format``
SEQ_DIGITS = 6
ONE_SECOND = timedelta(seconds=1)

_END_OF_DAY = time.max  # "24:00" as the end of a service-hours range


def _local(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def _zone_name(tz) -> str:
    return getattr(tz, "key", None) or str(tz)


def _need_aware(t: datetime):
    if not isinstance(t, datetime) or t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"an aware datetime is needed, not {t!r}")


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Window:
    name: str
    start: datetime  # aware
    end: datetime  # aware; inclusive to the second

    def contains(self, t: datetime) -> bool:
        _need_aware(t)
        return self.start <= t < self.end + ONE_SECOND

    @property
    def end_exclusive(self) -> datetime:
        """The first instant no longer in the window (``end`` + 1 s): when deadline timers fire."""
        return self.end + ONE_SECOND

    def describe(self) -> str:
        tz = self.start.tzinfo
        label = WINDOW_LABELS.get(self.name)
        head = f"{label} ({self.name})" if label else self.name
        return (f"{head} {_local(self.start)} – {_local(self.end.astimezone(tz))} "
                f"{_zone_name(tz)}")


@dataclass(frozen=True)
class Subject:
    code: str
    name: str
    level: str
    full_marks: int
    pass_ratio: float = DEFAULT_PASS_RATIO

    @property
    def pass_mark(self) -> float:
        """相对固定合格标准: the paper's full marks times the pass ratio (60%)."""
        return round(self.full_marks * self.pass_ratio, 6)


@dataclass(frozen=True)
class Level:
    code: str
    name: str
    subjects: tuple[str, ...]
    exemptions: dict[str, str]  # ground -> exempted subject code
    validity_years: int
    validity_years_exempt: int


@dataclass(frozen=True)
class RegistrationPoint:
    code: str
    name: str
    address: str
    phone: str
    email: str
    service_hours: tuple[tuple[time, time], ...]  # local [start, end)
    service_windows: tuple[str, ...]

    def in_hours(self, local: time) -> bool:
        return any(s <= local < e or (e == _END_OF_DAY and local >= s)
                   for s, e in self.service_hours)

    def in_service(self, t: datetime, session: SessionDocument) -> bool:
        """Staff serve: inside one of the service windows and the service hours, never during
        the spot check (不含资格抽查复核期间)."""
        _need_aware(t)
        spot = session.windows.get("spot_check")
        if spot is not None and spot.contains(t):
            return False
        if not any(session.windows[w].contains(t) for w in self.service_windows
                   if w in session.windows):
            return False
        return self.in_hours(t.astimezone(session.tz).time())


@dataclass(frozen=True)
class SessionDocument:
    session_id: str
    name: str
    exam_year: int
    timezone: str
    eligibility_cutoff: date
    pledge_version: str
    pledge_text: str
    levels: dict[str, Level]
    subjects: dict[str, Subject]
    points: dict[str, RegistrationPoint]
    windows: dict[str, Window]
    exam_schedule: tuple[dict, ...]
    venues: tuple[dict, ...]
    ticket_number_format: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def window(self, name: str) -> Window:
        try:
            return self.windows[name]
        except KeyError:
            raise ValueError(f"unknown window {name!r}: one of {', '.join(WINDOW_NAMES)}") from None

    def phase(self, t: datetime) -> str | None:
        """The first window (in timetable order) that contains ``t``; None between windows."""
        for name in WINDOW_NAMES:
            w = self.windows.get(name)
            if w is not None and w.contains(t):
                return name
        return None

    def amended(self, name: str, start, end) -> SessionDocument:
        """A new document with window ``name`` moved to [start, end]; the whole document is
        validated again (order of windows, exam schedule inside the exam window)."""
        if name not in WINDOW_NAMES:
            raise ValidationFailed(f"没有 {name!r} 这个时间窗口 (there is no {name!r} window to "
                                   f"amend).", {"window": f"须为以下之一 (must be one of "
                                                          f"{', '.join(WINDOW_NAMES)})"})
        d = self.to_dict()
        d["windows"][name] = {"start": start, "end": end}
        with _Zone({"tz": self.tz}):
            try:
                _WindowSchema().load(d["windows"][name])
            except ValidationError as exc:
                raise _refusal(_paths(exc.messages, None, f"windows.{name}"),
                               f"调整后的 {name} 窗口无效 (the amended {name} window is not "
                               "valid).") from None
            try:
                return _schema(False).load(d)
            except ValidationError as exc:
                problems = _paths(exc.messages, d)
        n, (s, e) = sum(map(len, problems.values())), (_when(start, self.tz, "start"),
                                                       _when(end, self.tz, "end"))
        raise _refusal(problems, f"把 {name} 窗口调整为 {_local(s)} – {_local(e)} 后，考试计划会有 "
                                 f"{n} 处问题 (moving the {name} window to {_local(s)} – "
                                 f"{_local(e)} would leave the session document with {n} "
                                 "problem(s)).")

    def to_dict(self) -> dict:
        """JSON-plain; lists keep their order even in a JSONB column."""
        tz = self.tz

        def t(dt):
            return dt.astimezone(tz).isoformat()

        return {
            "session_id": self.session_id,
            "name": self.name,
            "exam_year": self.exam_year,
            "timezone": self.timezone,
            "eligibility_cutoff": self.eligibility_cutoff.isoformat(),
            "pledge_version": self.pledge_version,
            "pledge_text": self.pledge_text,
            "levels": [
                {"code": lv.code, "name": lv.name, "subjects": list(lv.subjects),
                 "exemptions": dict(lv.exemptions), "validity_years": lv.validity_years,
                 "validity_years_exempt": lv.validity_years_exempt}
                for lv in self.levels.values()
            ],
            "subjects": [
                {"code": s.code, "name": s.name, "level": s.level, "full_marks": s.full_marks,
                 "pass_ratio": s.pass_ratio}
                for s in self.subjects.values()
            ],
            "registration_points": [
                {"code": pt.code, "name": pt.name, "address": pt.address, "phone": pt.phone,
                 "email": pt.email,
                 "service_hours": [f"{_hhmm(s)}-{_hhmm(e)}" for s, e in pt.service_hours],
                 "service_windows": list(pt.service_windows)}
                for pt in self.points.values()
            ],
            "windows": {n: {"start": t(w.start), "end": t(w.end)} for n, w in self.windows.items()},
            "exam_schedule": [{"subject": e["subject"], "start": t(e["start"]), "end": t(e["end"])}
                              for e in self.exam_schedule],
            "venues": [
                {"code": v["code"], "name": v["name"], "address": v["address"],
                 "rooms": [{"code": r["code"], "seats": r["seats"]} for r in v["rooms"]]}
                for v in self.venues
            ],
            "ticket_number_format": self.ticket_number_format,
        }

    @classmethod
    def from_dict(cls, d) -> SessionDocument:
        """A recorded document, checked as when it was loaded. Services read the same few
        documents on every fold and deadline tick: each reads once (cached by its JSON)."""
        try:
            key = json.dumps(d, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError):
            return check_session(d)  # not JSON-plain (dates from YAML): not cached
        return _recorded(key)


# --------------------------------------------------------------------------- entry points


def require_open(session: SessionDocument, window_name: str, now: datetime, action: str) -> None:
    """Refuse ``action`` unless ``now`` is inside the named window."""
    w = session.window(window_name)
    if w.contains(now):
        return
    when = "has not opened yet" if now < w.start else "has closed"
    raise Refused(
        f"{action} is only possible in the {w.describe()} window, which {when}; "
        f"it is now {_local(now.astimezone(session.tz))}.",
        {"window": window_name, "opens": iso(w.start), "closes": iso(w.end)},
    )


def parse_session(text: str) -> SessionDocument:
    """YAML text -> a validated document; ``ValidationFailed`` listing every problem. This
    is how a session is loaded, so it also refuses a ticket number format that could give
    a number another session gives (``unique_ticket_format``); documents recorded before
    that rule (``from_dict``) still read."""
    data, problems = read_yaml(text)
    if problems:
        raise _refusal({k: [v] for k, v in problems.items()})
    return check_session(data, loading=True)


def load_session_file(path) -> SessionDocument:
    return parse_session(Path(path).read_text(encoding="utf-8"))


def reference_session() -> SessionDocument:
    """The 2026 Shanghai sitting as shipped in ``deploy/sessions``."""
    return load_session_file(REFERENCE_SESSION_PATH)


# application alone in slot 0; verification over slots 0-1; then one slot each
_DEMO_LAYOUT = {"application": (0, 1), "verification": (0, 2), "spot_check": (2, 1),
                "confirmation": (3, 1), "ticket_printing": (4, 1), "exam": (5, 1),
                "scores": (6, 1), "certificates": (7, 1)}


def demo_session(now: datetime, minutes_per_window: float = 2.0,
                 base: SessionDocument | None = None) -> SessionDocument:
    """``base`` (the reference session) with its windows compressed into consecutive slots of
    ``minutes_per_window`` starting at ``now`` (truncated to the second):

    application [0, 1), verification [0, 2), spot_check [2, 3), confirmation [3, 4),
    ticket_printing [4, 5), exam [5, 6), scores [6, 7), certificates [7, 8) slots; each
    window ends one second before the next begins. The exam schedule's distinct sittings
    share the exam window equally, in their original order; registration points serve
    around the clock (00:00-24:00) so a demo works at any hour. The session id gets
    ``-demo-<yyyymmddHHMM>``.
    """
    _need_aware(now)
    if not minutes_per_window or minutes_per_window * 60 < 2:
        raise ValueError("minutes_per_window must give windows of at least 2 seconds")
    base = base if base is not None else reference_session()
    tz = base.tz
    slot = timedelta(seconds=round(minutes_per_window * 60))
    t0 = now.astimezone(tz).replace(microsecond=0)
    d = base.to_dict()
    d["session_id"] = f"{re.sub(r'-demo-[0-9]{12}$', '', base.session_id)}-demo-{t0:%Y%m%d%H%M}"
    if not d["name"].endswith("（演示）"):
        d["name"] += "（演示）"
    windows = {}
    for name, (first, count) in _DEMO_LAYOUT.items():
        start = t0 + first * slot
        windows[name] = (start, start + count * slot - ONE_SECOND)
    d["windows"] = {n: {"start": s.isoformat(), "end": e.isoformat()} for n, (s, e) in windows.items()}

    sittings = sorted({(e["start"], e["end"]) for e in base.exam_schedule})
    if sittings:
        exam_start, exam_end = windows["exam"]
        span = int((exam_end + ONE_SECOND - exam_start).total_seconds())
        part = span // len(sittings)
        if part < 1:
            raise ValueError(f"minutes_per_window too small for {len(sittings)} exam sittings")
        index = {s: i for i, s in enumerate(sittings)}
        d["exam_schedule"] = []
        for e in base.exam_schedule:
            i = index[(e["start"], e["end"])]
            s = exam_start + timedelta(seconds=i * part)
            d["exam_schedule"].append({"subject": e["subject"], "start": s.isoformat(),
                                       "end": (s + timedelta(seconds=part)).isoformat()})
    for pt in d["registration_points"]:
        pt["service_hours"] = ["00:00-24:00"]
    return SessionDocument.from_dict(d)


# --------------------------------------------------------------------------- reading YAML

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
MAX_NESTING = 32  # levels of mappings/lists in a session document (it needs fewer than 6)


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves timestamps as text (we read them in the document's zone, not
    as naive or UTC values) and notes duplicate keys instead of silently keeping the last."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[tuple[str, int]] = []
        self.depth = 0
        self.open_anchors: set[str] = set()

    def compose_node(self, parent, index):
        # PyYAML composes recursively: bound the nesting before it exhausts the stack, and
        # refuse an alias to a node that contains it (a cycle no reader could walk)
        event = self.peek_event()
        if self.depth >= MAX_NESTING:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_NESTING} levels deep", event.start_mark)
        if isinstance(event, yaml.AliasEvent) and event.anchor in self.open_anchors:
            raise yaml.composer.ComposerError(
                None, None, f"the alias *{event.anchor} refers to a node that contains it",
                event.start_mark)
        anchor = None if isinstance(event, yaml.AliasEvent) else event.anchor
        self.depth += 1
        if anchor:
            self.open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1
            self.open_anchors.discard(anchor)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    self.duplicates.append((key_node.value, key_node.start_mark.line + 1))
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def read_yaml(text) -> tuple[Any, dict[str, str]]:
    """YAML text -> (data, problems): safe, duplicate keys reported, syntax errors with their
    line; ``problems`` maps a path (``document``, ``line 7``) to what is wrong, empty when
    the text reads. The session document and the eligibility rules are read this way."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        return None, {"document": f"须为 YAML 文本 (expected YAML text, not {type(text).__name__})"}
    try:
        loader = _Loader(text)  # its reader refuses control characters already here
    except yaml.reader.ReaderError as exc:
        return None, {"document": f"不允许的字符 U+{exc.character:04X}，位置 {exc.position} "
                                  f"(the character U+{exc.character:04X} at position "
                                  f"{exc.position} is not allowed: control characters cannot "
                                  "appear in YAML text)"}
    try:
        data = loader.get_single_data()
    except RecursionError:  # the reader recurses per level of nesting
        return None, {"document": "嵌套过深 (nested too deeply to be a document)"}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = exc.problem or exc.context or "unreadable YAML"
        return None, {"document": f"YAML 语法错误 (YAML syntax error at {where}: {what})"}
    except yaml.YAMLError as exc:
        return None, {"document": f"YAML 语法错误 (YAML syntax error: {exc})"}
    finally:
        loader.dispose()
    return data, {f"line {line}": f"重复的键 {key!r}：一个映射里每个键只能出现一次 (duplicate key "
                                  f"{key!r}: a key may appear only once in a mapping)"
                  for key, line in loader.duplicates}


# --------------------------------------------------------------------------- the schema
#
# marshmallow schemas check the document whole. The nested schemas give plain dicts (a
# partly valid entry still reaches the cross-field checks, so one mistake is not reported
# again as its consequences); ``SessionSchema``'s post_load builds the model. Messages are
# Chinese with the English beside them; ``_paths`` names list entries by their code.


def _kind(v) -> str:
    if v is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _said(**messages) -> dict:
    return {"required": "缺少此项 (is missing)", "null": "不能为空 (must not be empty)", **messages}


class _Text(fields.Field):
    """Non-empty text, stripped; ``numbers``: an unquoted number in the YAML is text too."""

    def __init__(self, numbers=False, **kw):
        super().__init__(**({"required": True, "error_messages": _said()} | kw))
        self.numbers = numbers

    def _deserialize(self, v, attr, data, **kw):
        if self.numbers and _is_int(v):
            v = str(v)
        if not isinstance(v, str) or not v.strip():
            raise ValidationError(f"须为非空文本 (must be non-empty text, not "
                                  f"{'empty text' if isinstance(v, str) else _kind(v)})")
        return v.strip()


def _code(**kw) -> _Text:
    return _Text(numbers=True, validate=validate.Regexp(_CODE, error=(
        "{input!r} 不是代码：只用字母、数字、'.'、'_'、'-'，至多 100 个 ({input!r} is not a code: "
        "letters, digits, '.', '_' or '-', at most 100)")), **kw)


def _whole(lo: int, hi: int | None = None, **kw) -> fields.Integer:
    checks = [validate.Range(min=lo, error="须为正整数 (must be a positive whole number)" if lo == 1
                             else "至少为 {min} (must be at least {min})")]
    if hi is not None:
        checks.append(validate.Range(max=hi, error="至多为 {max} (must be at most {max})"))
    return fields.Integer(strict=True, validate=checks, **({"required": True} | kw),
                          error_messages=_said(invalid="须为整数 (must be a whole number, not "
                                                       "{input!r})"))


def _ratio() -> fields.Float:
    return fields.Float(validate=validate.Range(0, 1, min_inclusive=False, error=(
        "须为 (0, 1] 之间的比例，如 0.6 (must be a fraction in (0, 1], like 0.6, not {input!r})")),
        error_messages=_said(invalid="须为比例，如 0.6 (must be a fraction like 0.6, not "
                                     "{input!r})"))


def _items(inner, what: str = "", **kw) -> fields.List:
    """A list; with ``what``, of at least one (the message names what is missing)."""
    least = kw.pop("least", f"须至少列出一个 (must list at least one {what})")
    return fields.List(inner, validate=validate.Length(min=1, error=least) if what else None,
                       **({"required": True} | kw),
                       error_messages=_said(invalid="须为列表 (must be a list)"))


def _nested(schema, **kw) -> fields.Nested:
    return fields.Nested(schema, required=True, **({"error_messages": _said()} | kw))


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")


def _when(v, tz, role: str) -> datetime:
    """A point in time. Wall-clock text is read in ``tz``; a bare date is the day's first
    second as a start and its last second as an end; offsets are honoured."""
    if isinstance(v, datetime):
        return v.astimezone(tz) if v.tzinfo is not None else v.replace(tzinfo=tz)
    if isinstance(v, date):
        return datetime.combine(v, time(23, 59, 59) if role == "end" else time(0), tz)
    if isinstance(v, str) and (_DATE.fullmatch(v.strip()) or _DATETIME.fullmatch(v.strip())):
        try:
            return _when((date if len(v.strip()) == 10 else datetime).fromisoformat(v.strip()),
                         tz, role)
        except ValueError as exc:
            raise ValidationError(f"{v!r} 不是有效的日期时间 ({v!r} is not a real date and "
                                  f"time: {exc})") from None
    hint = ("；请加引号：不加引号的 HH:MM 会被 YAML 读成数字 (quote it: unquoted HH:MM is read "
            "by YAML as a number)") if _is_int(v) else ""
    raise ValidationError(f"须为时间如 '2026-04-07 10:00' 或日期如 '2026-04-15' (must be a time "
                          f"like '2026-04-07 10:00' or a date like '2026-04-15', not {v!r}){hint}")


_Zone = Context  # the document's time zone while it is checked: {"tz": ZoneInfo}


class _When(fields.Field):
    def __init__(self, role: str):
        super().__init__(required=True, error_messages=_said())
        self.role = role

    def _deserialize(self, v, attr, data, **kw):
        return _when(v, _Zone.get()["tz"], self.role)


_HHMM = re.compile(r"(\d{1,2}):(\d{2})")


def _hhmm(t: time) -> str:
    return "24:00" if t == _END_OF_DAY else t.strftime("%H:%M")


def _clock_time(s: str, end: bool) -> time | None:
    m = _HHMM.fullmatch(s.strip())
    h, mi = (int(m.group(1)), int(m.group(2))) if m else (99, 99)
    if end and (h, mi) == (24, 0):
        return _END_OF_DAY
    return time(h, mi) if h <= 23 and mi <= 59 else None


class _Hours(fields.Field):
    """Service hours: a range of local times, '09:30-11:30' (an end may be 24:00)."""

    def _deserialize(self, v, attr, data, **kw):
        parts = (re.split(r"\s*[-–~]\s*", v.strip()) if isinstance(v, str)
                 else list(v) if isinstance(v, list | tuple) else [])
        if len(parts) == 2 and all(isinstance(x, str) for x in parts):
            s, e = _clock_time(parts[0], False), _clock_time(parts[1], True)
            if s is not None and e is not None and s < e:
                return s, e
            if s is not None and e is not None:
                raise ValidationError(f"{v!r}：服务时间须先开始后结束 (service hours must start "
                                      "before they end)")
        raise ValidationError(f"须为当地时间段，如 '09:30-11:30' (must be a range of local times "
                              f"like '09:30-11:30', not {v!r})")


def _zone(name: str):
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"未知时区 {name!r}，如 Asia/Shanghai (unknown time zone {name!r}, "
                              "like Asia/Shanghai)") from None


def _numbers_tickets(fmt: str):
    sample = {"year": 2026, "point": "2916", "level": "L1"}
    try:
        one, two = fmt.format(seq=1, **sample), fmt.format(seq=2, **sample)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise ValidationError(f"{fmt!r} 不能用 year、point、level、seq 排出准考证号 (does not format "
                              f"with year, point, level and seq: {type(exc).__name__}: {exc})") from None
    if one == two:
        raise ValidationError(f"{fmt!r} 须使用 {{seq}} (must use {{seq}}: every ticket would get "
                              f"number {one})")


class _Part(Schema):
    """Unknown keys are refused, naming the keys there are."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": "未知的键 (unknown key; expected {keys})",
                      "type": "须为映射 (must be a mapping)"}

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.error_messages["unknown"] = self.error_messages["unknown"].format(
            keys=", ".join(self.fields))


def _span(item) -> tuple[datetime, datetime] | None:
    """(start, end) of a window or sitting that read well, else None."""
    s, e = (item or {}).get("start"), (item or {}).get("end")
    return (s, e) if s is not None and e is not None and s < e else None


class _WindowSchema(_Part):
    start = _When("start")
    end = _When("end")

    @validates_schema(skip_on_field_errors=False)
    def _start_before_end(self, data, **kw):
        if {"start", "end"} <= data.keys() and data["start"] >= data["end"]:
            raise ValidationError(f"须先开始后结束 (must start before it ends: "
                                  f"{_local(data['start'])} is not before {_local(data['end'])})")


# (earlier window, its edge, strict?, later window, its edge, wording; its times go in the
# parenthesis)
_ORDER = (
    ("application", "start", False, "verification", "start",
     "不得早于 application 开始 (must not start before application starts)"),
    ("application", "end", False, "verification", "end",
     "不得早于 application 结束 (must not end before application ends)"),
    *((a, "end", True, b, "start", f"须在 {a} 结束后开始 (must start after {a} ends)")
      for a, b in (("verification", "spot_check"), ("spot_check", "confirmation"),
                   ("confirmation", "ticket_printing"), ("ticket_printing", "exam"))),
    ("exam", "end", True, "scores", "start", "须在考试结束后开始 (must start after the exam ends)"),
    ("scores", "start", False, "certificates", "start",
     "不得早于 scores 开始 (must not start before scores start)"),
)


def _window(name: str) -> fields.Nested:
    return _nested(_WindowSchema, error_messages=_said(
        required=f"缺少此窗口 (is missing: {WINDOW_LABELS[name]})"))


class _WindowsSchema(_Part):
    error_messages = {"unknown": f"未知的时间窗口 (unknown window; windows are "
                                 f"{', '.join(WINDOW_NAMES)})"}
    application = _window("application")
    verification = _window("verification")
    spot_check = _window("spot_check")
    confirmation = _window("confirmation")
    ticket_printing = _window("ticket_printing")
    exam = _window("exam")
    scores = _window("scores")
    certificates = _window("certificates")

    @validates_schema(skip_on_field_errors=False)
    def _in_order(self, data, **kw):
        spans, errors = {n: _span(data.get(n)) for n in WINDOW_NAMES}, {}
        for first, edge1, strict, second, edge2, wording in _ORDER:
            if spans[first] and spans[second]:
                a, b = spans[first][edge1 == "end"], spans[second][edge2 == "end"]
                if (a >= b) if strict else (a > b):
                    errors.setdefault(second, {})[edge2] = [
                        f"{wording[:-1]}: {second} {edge2} {_local(b)}, {first} {edge1} "
                        f"{_local(a)})"]
        if errors:
            raise ValidationError(errors)


class _SubjectSchema(_Part):
    code, name, level = _code(), _Text(), _code()
    full_marks = _whole(1)
    pass_ratio = _ratio()


class _LevelSchema(_Part):
    code, name = _code(), _Text()
    validity_years, validity_years_exempt = _whole(1, 10), _whole(1, 10)
    subjects = _items(_code(), required=False)
    exemptions = fields.Dict(keys=_Text(validate=validate.Regexp(_CODE, error=(
        "免试依据须为代码 (the ground must be a code like senior_title)"))), values=_code(),
        allow_none=True, error_messages=_said(invalid="须为映射 (must be a mapping)"))

    @validates_schema(skip_on_field_errors=False)
    def _years(self, data, **kw):
        years, exempt = data.get("validity_years"), data.get("validity_years_exempt")
        if years and exempt and exempt > years:
            raise ValidationError(f"不得长于 validity_years (must not be longer than "
                                  f"validity_years ({exempt} > {years}))", "validity_years_exempt")


_WINDOW = validate.OneOf(WINDOW_NAMES, error=(
    f"未知的时间窗口 {{input!r}} (unknown window {{input!r}}; windows are {', '.join(WINDOW_NAMES)})"))


class _PointSchema(_Part):
    code, name, address, phone = _code(), _Text(), _Text(), _Text(numbers=True)
    email = _Text(validate=validate.Regexp(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z", error=(
        "{input!r} 不是电子邮箱地址 ({input!r} is not an email address)")))
    service_hours = _items(_Hours(), "hours", least="报名点须有服务时间 (a registration point "
                                                    "needs service hours)")
    service_windows = _items(_Text(validate=_WINDOW), "window",
                             least="须至少指定一个时间窗口 (must name at least one window)")


class _SittingSchema(_WindowSchema):
    subject = _code()


class _RoomSchema(_Part):
    code = _code()
    seats = _whole(1, 1000, required=False, load_default=DEFAULT_SEATS)


_WHAT = {"level": "级别", "subject": "科目", "registration point": "报名点", "venue": "考点",
         "room": "考场"}


def _duplicates(items, what: str) -> dict:
    """{index: {"code": [message]}} for every entry whose code an earlier entry has."""
    seen, errors = set(), {}
    for i, code in enumerate(item.get("code") for item in items or ()):
        if code is None:
            continue
        if code in seen:
            errors[i] = {"code": [f"重复的{_WHAT[what]}代码 {code!r}：每个{_WHAT[what]}只列一次 "
                                  f"(duplicate {what} code {code!r}: each {what} is listed once)"]}
        seen.add(code)
    return errors


class _VenueSchema(_Part):
    code, name, address = _code(), _Text(), _Text()
    rooms = _items(_nested(_RoomSchema), "room")

    @validates_schema(skip_on_field_errors=False)
    def _unique_rooms(self, data, **kw):
        if errors := _duplicates(data.get("rooms"), "room"):
            raise ValidationError({"rooms": errors})


class SessionSchema(_Part):
    """The exam session document (考试计划) as an operator writes it and ``to_dict`` gives
    it; ``load`` gives a ``SessionDocument``. Times are read in the document's time zone,
    so load it with ``check_session``. ``loading``: a document being loaded now, which must
    also have a ticket number format no other session can collide with."""

    session_id, name = _code(), _Text(validate=validate.Length(max=200, error=(
        "至多 {max} 个字符 (must be at most {max} characters)")))
    exam_year = _whole(2000, 2100)
    timezone = _Text(validate=_zone)
    eligibility_cutoff = fields.Date(required=True, error_messages=_said(
        invalid="不是有效日期，应如 2026-12-31 (not a date like 2026-12-31)"))
    pledge_version, pledge_text = _code(), _Text()
    pass_ratio = _ratio()
    levels = _items(_nested(_LevelSchema), "level")
    subjects = _items(_nested(_SubjectSchema), "subject")
    registration_points = _items(_nested(_PointSchema), "registration point")
    windows = _nested(_WindowsSchema)
    exam_schedule = _items(_nested(_SittingSchema))
    venues = _items(_nested(_VenueSchema), "venue")
    ticket_number_format = _Text(validate=_numbers_tickets)

    def __init__(self, *, loading: bool = False, **kw):
        super().__init__(**kw)
        self.loading = loading

    @validates("ticket_number_format")
    def _unique_tickets(self, fmt, **kw):
        if self.loading and (problem := unique_ticket_format(fmt)):
            raise ValidationError(problem)

    @validates_schema(skip_on_field_errors=False)
    def _consistent(self, data, **kw):
        errors: dict = {}

        def add(path: tuple, message: str):
            node = errors
            for key in path:
                node = node.setdefault(key, {})
            node.setdefault("_schema", []).append(message)

        for key, what in (("levels", "level"), ("subjects", "subject"),
                          ("registration_points", "registration point"), ("venues", "venue")):
            for i, e in _duplicates(data.get(key), what).items():
                add((key, i, "code"), e["code"][0])
        subjects = {}  # code -> level (None: unreadable) of each subject, the first if repeated
        for s in data.get("subjects") or ():
            if s.get("code") is not None:
                subjects.setdefault(s["code"], s.get("level"))
        self._levels(data, subjects, add)
        self._schedule(data, subjects, add)
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _levels(data, subjects: dict, add):
        if "levels" not in data:
            return
        seen = set()
        for i, lv in enumerate(data["levels"]):
            code = lv.get("code")
            if code is None or code in seen:
                continue
            seen.add(code)
            own = [c for c, level in subjects.items() if level == code]
            given = lv.get("subjects")
            if given is not None and (sorted(given) != sorted(own) or len(set(given)) != len(given)):
                add(("levels", i, "subjects"), f"须恰好列出级别为 {code} 的科目，各一次 (must list "
                    f"exactly the subjects whose level is {code} ({', '.join(own) or 'none'}), "
                    "each once)")
            if not own:
                add(("levels", i), f"级别 {code} 没有科目 (level {code} has no subjects)")
            exemptions = lv.get("exemptions") or {}
            for ground, subject in exemptions.items():
                if subject not in subjects:
                    add(("levels", i, "exemptions", ground),
                        f"不是已知科目 (names no known subject: {subject!r})")
                elif subjects[subject] != code:
                    add(("levels", i, "exemptions", ground),
                        f"科目 {subject} 属于级别 {subjects[subject]}，不属于 {code} (subject "
                        f"{subject} belongs to level {subjects[subject]}, not {code})")
            if own and set(own) <= set(exemptions.values()):
                add(("levels", i, "exemptions"),
                    "会免试该级别的全部科目 (would exempt every subject of the level)")
        for i, s in enumerate(data.get("subjects") or ()):
            if s.get("level") is not None and s["level"] not in seen:
                add(("subjects", i, "level"), f"未知级别 {s['level']!r} (unknown level "
                    f"{s['level']!r}; levels: {', '.join(sorted(seen)) or 'none'})")

    @staticmethod
    def _schedule(data, subjects: dict, add):
        if "exam_schedule" not in data:
            return
        exam = _span((data.get("windows") or {}).get("exam"))
        where: dict[str, int] = {}
        sittings = []
        for i, sitting in enumerate(data["exam_schedule"]):
            subject, span = sitting.get("subject"), _span(sitting)
            if subject is not None and subject not in subjects:
                add(("exam_schedule", i, "subject"), f"未知科目 (unknown subject {subject!r})")
            elif subject in where:
                add(("exam_schedule", i, "subject"), f"{subject} 已安排在 exam_schedule"
                    f"[{where[subject]}] ({subject} is already scheduled in "
                    f"exam_schedule[{where[subject]}])")
            elif subject is not None:
                where[subject] = i
                if span:
                    sittings.append((i, subject, span))
            if span and exam and not (exam[0] <= span[0] and span[1] <= exam[1] + ONE_SECOND):
                add(("exam_schedule", i), f"{_local(span[0])} – {_local(span[1])} 不在考试窗口内 "
                    f"(is outside the exam window ({_local(exam[0])} – {_local(exam[1])}))")
        missing = [c for c in subjects if c not in where]
        if missing:
            add(("exam_schedule",), f"每个科目只考一场，{', '.join(missing)} 没有安排 (every subject "
                f"sits exactly once; no sitting for {', '.join(missing)})" if data["exam_schedule"]
                else "须为每个科目安排考试 (must schedule every subject)")
        for n, (_, a, (a0, a1)) in enumerate(sittings):
            for j, b, (b0, b1) in sittings[n + 1:]:
                if subjects[a] == subjects[b] is not None and a0 < b1 and b0 < a1:
                    add(("exam_schedule", j), f"{b} 与同级别的 {a} 时间重叠 ({b} overlaps {a} "
                        "of the same level: a candidate sits both)")

    @post_load
    def _document(self, d, **kw):
        ratio = d.get("pass_ratio", DEFAULT_PASS_RATIO)
        subjects = {s["code"]: Subject(s["code"], s["name"], s["level"], s["full_marks"],
                                       s.get("pass_ratio", ratio)) for s in d["subjects"]}
        levels = {lv["code"]: Level(
            lv["code"], lv["name"],
            tuple(lv.get("subjects") or [c for c, s in subjects.items() if s.level == lv["code"]]),
            lv.get("exemptions") or {}, lv["validity_years"], lv["validity_years_exempt"])
            for lv in d["levels"]}
        return SessionDocument(
            session_id=d["session_id"], name=d["name"], exam_year=d["exam_year"],
            timezone=d["timezone"], eligibility_cutoff=d["eligibility_cutoff"],
            pledge_version=d["pledge_version"], pledge_text=d["pledge_text"],
            levels=levels, subjects=subjects,
            points={p["code"]: RegistrationPoint(
                p["code"], p["name"], p["address"], p["phone"], p["email"],
                tuple(sorted(p["service_hours"])), tuple(p["service_windows"]))
                for p in d["registration_points"]},
            windows={n: Window(n, d["windows"][n]["start"], d["windows"][n]["end"])
                     for n in WINDOW_NAMES},
            exam_schedule=tuple(d["exam_schedule"]), venues=tuple(d["venues"]),
            ticket_number_format=d["ticket_number_format"])


def _paths(messages, raw, path: str = "", out: dict | None = None) -> dict[str, list[str]]:
    """marshmallow's nested messages as {document path: [message]}: a list entry is named by
    its code (``subjects.L1-LAW.full_marks``), else by its index (``exam_schedule[1]``);
    a schema-level message belongs to the part it is about."""
    out = {} if out is None else out
    if isinstance(messages, dict):
        for key, node in messages.items():
            own = key == "_schema" or (  # a Dict's key or value: the entry's own path
                key in ("key", "value") and key not in (raw if isinstance(raw, dict) else ()))
            if own:
                _paths(node, raw, path, out)
            elif isinstance(key, int) and isinstance(raw, list):
                item = raw[key] if key < len(raw) else None
                code = item.get("code") if isinstance(item, dict) else None
                code = str(code).strip() if _is_int(code) or isinstance(code, str) else None
                at = f"{path}.{code}" if code and _CODE.fullmatch(code) else f"{path}[{key}]"
                _paths(node, item, at, out)
            else:
                _paths(node, raw.get(key) if isinstance(raw, dict) else None,
                       f"{path}.{key}" if path else str(key), out)
    else:
        items = messages if isinstance(messages, list) else [messages]
        out.setdefault(path or "document", []).extend(map(str, items))
    return out


def _refusal(problems: dict[str, list[str]], head: str = "") -> ValidationFailed:
    n = sum(map(len, problems.values()))
    return ValidationFailed(head or f"考试计划文件有 {n} 处问题 (the session document has {n} "
                                    f"problem(s)).", {k: "; ".join(v) for k, v in problems.items()})


@cache
def _schema(loading: bool) -> SessionSchema:
    return SessionSchema(loading=loading)  # built once: a schema's fields are copied per instance


@lru_cache(maxsize=64)
def _recorded(key: str) -> SessionDocument:
    return check_session(json.loads(key))


def check_session(data, *, loading: bool = False) -> SessionDocument:
    """A session document (the mapping) checked whole with ``SessionSchema``: the document,
    or ``ValidationFailed`` listing every problem under its path."""
    if not isinstance(data, dict):
        raise _refusal({"document": [
            "为空：须为包含 session_id、windows、levels 等键的映射 (is empty: expected a mapping "
            "with session_id, windows, levels, …)" if data is None else
            f"顶层须为映射 (the top level must be a mapping of keys, not {_kind(data)})"]})
    try:
        tz = ZoneInfo(data["timezone"].strip())
    except (KeyError, AttributeError, ZoneInfoNotFoundError, ValueError):
        tz = SHANGHAI  # the timezone field says what is wrong
    with _Zone({"tz": tz}):
        try:
            return _schema(loading).load(data)
        except ValidationError as exc:
            raise _refusal(_paths(exc.messages, data)) from None


def unique_ticket_format(fmt: str) -> str | None:
    """Why ``fmt`` could give one ticket number to two tickets, or None if it cannot.

    Admission counts one sequence for every session it ever seats, and a sequence number
    below ``10**SEQ_DIGITS`` is handed out once. A format that ends with ``{seq}``
    zero-padded to at least ``SEQ_DIGITS`` digits, and nothing after it, prints every such
    number as its last ``SEQ_DIGITS`` characters, whatever comes before (year, point,
    level, another session's format): two tickets never share a number. Anything else
    (no padding, text after the sequence, a sequence shown twice or converted) could."""
    want = f"{{seq:0{SEQ_DIGITS}d}}"
    try:
        parts = list(string.Formatter().parse(fmt))
    except ValueError:
        return None  # _ticket_format says what is wrong with it
    fields = [(name, spec, conv) for _, name, spec, conv in parts if name is not None]
    seqs = [f for f in fields if f[0] == "seq"]
    last = parts[-1] if parts else None
    m = re.fullmatch(r"0(\d+)d", seqs[-1][1] or "") if seqs else None
    ok = (len(seqs) == 1 and last is not None and last[1] == "seq" and last[3] is None
          and m is not None and int(m.group(1)) >= SEQ_DIGITS)
    if ok:
        return None
    return (f"{fmt!r} must end with the sequence zero-padded to at least {SEQ_DIGITS} digits, "
            f"{want}, and nothing after it: the sequence is shared by every session, so only "
            f"then can no two tickets, in this session or another, get one number "
            f"(like '{{year}}{{point}}{{level}}{want}')")


__all__ = [
    "WINDOW_NAMES", "WINDOW_LABELS", "REFERENCE_SESSION_PATH", "Window", "Subject", "Level",
    "RegistrationPoint", "SessionDocument", "SessionSchema", "check_session", "parse_session",
    "require_open", "load_session_file", "reference_session", "demo_session",
    "unique_ticket_format", "SEQ_DIGITS", "read_yaml",
]
