"""The exam session document (考试计划): timetable, levels, subjects, registration points.

An operator loads a session as YAML (``deploy/sessions/*.yml``); the registration service
publishes it whole as ``ExamSessionScheduled`` (``SessionDocument.to_dict()``) and every
other service rebuilds it with ``SessionDocument.from_dict``. Both ways in run the same
validation, which reports *every* problem it finds, each under the path of the offending
key (``windows.exam.start``, ``subjects.L1-LAW.full_marks`` …), so an operator fixes a bad
document in one round.

Pure: no clock, no I/O beyond reading the file ``load_session_file`` is given.

Time. Times in the YAML are wall-clock times in the document's ``timezone``:
``2026-04-07 10:00``, ``2026-04-07 10:00:00``, or a bare date ``2026-04-15`` (00:00:00 as
a start, 23:59:59 as an end); ISO strings with an offset are accepted too (that is what
``to_dict`` writes). A window's end is inclusive to the second: a window ending 16:00:00
still admits 16:00:00.999, and refuses 16:00:01.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

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
            raise ValidationFailed(f"There is no {name!r} window to amend.",
                                   {"window": f"must be one of {', '.join(WINDOW_NAMES)}"})
        p = _Problems()
        s = _when(p, start, f"windows.{name}.start", self.tz, "start")
        e = _when(p, end, f"windows.{name}.end", self.tz, "end")
        if s is not None and e is not None and s >= e:
            p.add(f"windows.{name}", f"must start before it ends ({_local(s)} is not before {_local(e)})")
        if p:
            raise ValidationFailed(f"The amended {name} window is not valid.", p.fields())
        d = self.to_dict()
        d["windows"][name] = {"start": s.isoformat(), "end": e.isoformat()}
        try:
            return SessionDocument.from_dict(d)
        except ValidationFailed as exc:
            n = exc.message.split(" has ", 1)[-1].rstrip(".")
            raise ValidationFailed(
                f"Moving the {name} window to {_local(s)} – {_local(e)} would leave the session "
                f"document with {n}.", exc.fields) from None

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
        return _build(d)


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
    p = _Problems()
    data = _load_yaml(p, text)
    if p:
        p.raise_if_any()
    return _build(data, p, loading=True)


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


# --------------------------------------------------------------------------- validation


class _Problems:
    def __init__(self):
        self.items: dict[str, list[str]] = {}

    def add(self, path: str, message: str):
        self.items.setdefault(path or "document", []).append(message)

    def __len__(self):
        return sum(len(v) for v in self.items.values())

    def fields(self) -> dict[str, str]:
        return {k: "; ".join(v) for k, v in self.items.items()}

    def raise_if_any(self):
        if self.items:
            raise ValidationFailed(f"The session document has {len(self)} problem(s).", self.fields())


_MISSING = object()
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
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


def _load_yaml(p: _Problems, text) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        p.add("document", f"expected YAML text, not {type(text).__name__}")
        return None
    try:
        loader = _Loader(text)  # its reader refuses control characters already here
    except yaml.reader.ReaderError as exc:
        p.add("document", f"the character U+{exc.character:04X} at position {exc.position} "
                          "is not allowed (control characters cannot appear in YAML text)")
        return None
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = exc.problem or exc.context or "unreadable YAML"
        p.add("document", f"YAML syntax error at {where}: {what}")
        return None
    except yaml.YAMLError as exc:
        p.add("document", f"YAML syntax error: {exc}")
        return None
    finally:
        loader.dispose()
    for key, line in loader.duplicates:
        p.add(f"line {line}", f"duplicate key {key!r}: a key may appear only once in a mapping")
    return data


def _kind(v) -> str:
    if v is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _mapping(p: _Problems, v, path: str) -> dict | None:
    if isinstance(v, dict):
        return v
    p.add(path, f"must be a mapping, not {_kind(v)}")
    return None


def _list(p: _Problems, v, path: str) -> list | None:
    if isinstance(v, list | tuple):
        return list(v)
    p.add(path, f"must be a list, not {_kind(v)}")
    return None


def _keys(p: _Problems, m: dict, path: str, required, optional=()):
    for k in required:
        if k not in m:
            p.add(_join(path, k), "is missing")
    known = (*required, *optional)
    for k in m:
        if k not in known:
            p.add(_join(path, k), f"unknown key (expected {', '.join(known)})")


def _text(p: _Problems, m: dict, key: str, path: str, *, code=False, max_len=None) -> str | None:
    v = m.get(key, _MISSING)
    if v is _MISSING:
        return None  # reported by _keys
    if code and isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str) or not v.strip():
        p.add(path, f"must be non-empty text, not {_kind(v) if not isinstance(v, str) else 'empty text'}")
        return None
    v = v.strip()
    if code and not _CODE.fullmatch(v):
        p.add(path, f"{v!r} is not a code: letters, digits, '.', '_' or '-', at most 100")
        return None
    if max_len and len(v) > max_len:
        p.add(path, f"must be at most {max_len} characters")
        return None
    return v


def _int(p: _Problems, m: dict, key: str, path: str, *, lo=None, hi=None, default=_MISSING):
    v = m.get(key, default)
    if v is _MISSING:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        p.add(path, f"must be a whole number, not {_kind(v)}")
        return None
    if lo is not None and v < lo:
        p.add(path, "must be a positive whole number" if lo == 1 else f"must be at least {lo}")
        return None
    if hi is not None and v > hi:
        p.add(path, f"must be at most {hi}")
        return None
    return v


def _ratio(p: _Problems, v, path: str) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 1:
        p.add(path, f"must be a fraction in (0, 1], like 0.6, not {v!r}")
        return None
    return float(v)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")


def _date(p: _Problems, v, path: str) -> date | None:
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    if isinstance(v, str) and _DATE.fullmatch(v.strip()):
        try:
            return date.fromisoformat(v.strip())
        except ValueError as exc:
            p.add(path, f"{v!r} is not a date: {exc}")
            return None
    p.add(path, f"must be a date like 2026-12-31, not {v!r}")
    return None


def _when(p: _Problems, v, path: str, tz, role: str) -> datetime | None:
    """A point in time. Wall-clock text is read in ``tz``; a bare date is the day's first
    second as a start and its last second as an end; offsets are honoured."""
    if isinstance(v, datetime):
        return v.astimezone(tz) if v.tzinfo is not None else v.replace(tzinfo=tz)
    if isinstance(v, date):
        return datetime.combine(v, time(23, 59, 59) if role == "end" else time(0), tz)
    if isinstance(v, str):
        s = v.strip()
        try:
            if _DATE.fullmatch(s):
                return _when(p, date.fromisoformat(s), path, tz, role)
            if _DATETIME.fullmatch(s):
                return _when(p, datetime.fromisoformat(s), path, tz, role)
        except ValueError as exc:
            p.add(path, f"{v!r} is not a real date and time: {exc}")
            return None
    hint = " (quote it: unquoted HH:MM is read by YAML as a number)" if isinstance(v, int) else ""
    p.add(path, f"must be a time like '2026-04-07 10:00' or a date like '2026-04-15', not {v!r}{hint}")
    return None


_HHMM = re.compile(r"(\d{1,2}):(\d{2})")


def _hhmm(t: time) -> str:
    return "24:00" if t == _END_OF_DAY else t.strftime("%H:%M")


def _clock_time(s: str, end: bool) -> time | None:
    m = _HHMM.fullmatch(s.strip())
    if not m:
        return None
    h, mi = int(m.group(1)), int(m.group(2))
    if end and (h, mi) == (24, 0):
        return _END_OF_DAY
    if h > 23 or mi > 59:
        return None
    return time(h, mi)


def _hours_range(p: _Problems, v, path: str) -> tuple[time, time] | None:
    if isinstance(v, str):
        parts = re.split(r"\s*[-–~]\s*", v.strip())
    elif isinstance(v, list | tuple):
        parts = list(v)
    else:
        parts = []
    if len(parts) == 2 and all(isinstance(x, str) for x in parts):
        s, e = _clock_time(parts[0], False), _clock_time(parts[1], True)
        if s is not None and e is not None:
            if s < e:
                return s, e
            p.add(path, f"{v!r}: service hours must start before they end")
            return None
    p.add(path, f"must be a range of local times like '09:30-11:30', not {v!r}")
    return None


_TOP_REQUIRED = ("session_id", "name", "exam_year", "timezone", "eligibility_cutoff",
                 "pledge_version", "pledge_text", "levels", "subjects", "registration_points",
                 "windows", "exam_schedule", "venues", "ticket_number_format")
_TOP_OPTIONAL = ("pass_ratio",)

# (earlier window, its edge, strict?, later window, its edge, wording)
_ORDER = (
    ("application", "start", False, "verification", "start", "must not start before application starts"),
    ("application", "end", False, "verification", "end", "must not end before application ends"),
    ("verification", "end", True, "spot_check", "start", "must start after verification ends"),
    ("spot_check", "end", True, "confirmation", "start", "must start after spot_check ends"),
    ("confirmation", "end", True, "ticket_printing", "start", "must start after confirmation ends"),
    ("ticket_printing", "end", True, "exam", "start", "must start after ticket_printing ends"),
    ("exam", "end", True, "scores", "start", "must start after the exam ends"),
    ("scores", "start", False, "certificates", "start", "must not start before scores start"),
)


def _build(data, p: _Problems | None = None, loading: bool = False) -> SessionDocument:
    p = p if p is not None else _Problems()
    if not isinstance(data, dict):
        if data is None:
            p.add("document", "is empty: expected a mapping with session_id, windows, levels, …")
        else:
            p.add("document", f"the top level must be a mapping of keys, not {_kind(data)}")
        p.raise_if_any()
    _keys(p, data, "", _TOP_REQUIRED, _TOP_OPTIONAL)

    session_id = _text(p, data, "session_id", "session_id", code=True)
    name = _text(p, data, "name", "name", max_len=200)
    exam_year = _int(p, data, "exam_year", "exam_year", lo=2000, hi=2100)
    tz_name = _text(p, data, "timezone", "timezone")
    tz = SHANGHAI
    if tz_name is not None:
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            p.add("timezone", f"unknown time zone {tz_name!r} (like Asia/Shanghai)")
            tz_name = None
    cutoff = _date(p, data["eligibility_cutoff"], "eligibility_cutoff") if "eligibility_cutoff" in data else None
    pledge_version = _text(p, data, "pledge_version", "pledge_version", code=True)
    pledge_text = _text(p, data, "pledge_text", "pledge_text")
    default_ratio = DEFAULT_PASS_RATIO
    if "pass_ratio" in data:
        default_ratio = _ratio(p, data["pass_ratio"], "pass_ratio") or DEFAULT_PASS_RATIO

    subjects, declared = _subjects(p, data.get("subjects", _MISSING), default_ratio)
    levels = _levels(p, data.get("levels", _MISSING), declared)
    windows = _windows(p, data.get("windows", _MISSING), tz)
    points = _points(p, data.get("registration_points", _MISSING))
    schedule = _schedule(p, data.get("exam_schedule", _MISSING), tz, declared, windows.get("exam"))
    venues = _venues(p, data.get("venues", _MISSING))
    ticket_format = _ticket_format(p, data)
    if loading and ticket_format is not None:
        problem = unique_ticket_format(ticket_format)
        if problem:
            p.add("ticket_number_format", problem)

    p.raise_if_any()
    return SessionDocument(
        session_id=session_id, name=name, exam_year=exam_year, timezone=tz_name,
        eligibility_cutoff=cutoff, pledge_version=pledge_version, pledge_text=pledge_text,
        levels=levels, subjects=subjects, points=points, windows=windows,
        exam_schedule=schedule, venues=venues, ticket_number_format=ticket_format,
    )


def _entries(p: _Problems, raw, path: str, what: str):
    """(path, mapping) per entry of a list of mappings keyed by ``code``; paths name the code."""
    if raw is _MISSING:
        return []
    items = _list(p, raw, path)
    if items is None:
        return []
    if not items:
        p.add(path, f"must list at least one {what}")
    out = []
    for i, item in enumerate(items):
        at = f"{path}[{i}]"
        m = _mapping(p, item, at)
        if m is None:
            continue
        code = m.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            code = str(code)
        if isinstance(code, str) and _CODE.fullmatch(code.strip()):
            at = f"{path}.{code.strip()}"
        out.append((at, m))
    return out


def _unique(p: _Problems, seen: dict, code, at: str, what: str) -> bool:
    if code is None:
        return False
    if code in seen:
        p.add(f"{at}.code", f"duplicate {what} code {code!r}: each {what} is listed once")
        return False
    seen[code] = at
    return True


def _subjects(p: _Problems, raw, default_ratio):
    """The valid subjects, and every declared code -> its level (str or None), so that a
    subject with a bad field still counts as known elsewhere (no cascade of problems)."""
    out: dict[str, Subject] = {}
    seen: dict[str, str] = {}
    declared: dict[str, str | None] = {}
    for at, m in _entries(p, raw, "subjects", "subject"):
        _keys(p, m, at, ("code", "name", "level", "full_marks"), ("pass_ratio",))
        code = _text(p, m, "code", f"{at}.code", code=True)
        name = _text(p, m, "name", f"{at}.name")
        level = _text(p, m, "level", f"{at}.level", code=True)
        full = _int(p, m, "full_marks", f"{at}.full_marks", lo=1)
        ratio = _ratio(p, m["pass_ratio"], f"{at}.pass_ratio") if "pass_ratio" in m else default_ratio
        if not _unique(p, seen, code, at, "subject"):
            continue
        declared[code] = level
        if None not in (name, level, full, ratio):
            out[code] = Subject(code, name, level, full, ratio)
    return out, declared


def _levels(p: _Problems, raw, subjects: dict[str, str | None]) -> dict[str, Level]:
    out: dict[str, Level] = {}
    seen: dict[str, str] = {}
    for at, m in _entries(p, raw, "levels", "level"):
        _keys(p, m, at, ("code", "name", "validity_years", "validity_years_exempt"),
              ("subjects", "exemptions"))
        code = _text(p, m, "code", f"{at}.code", code=True)
        name = _text(p, m, "name", f"{at}.name")
        years = _int(p, m, "validity_years", f"{at}.validity_years", lo=1, hi=10)
        years_exempt = _int(p, m, "validity_years_exempt", f"{at}.validity_years_exempt", lo=1, hi=10)
        if years and years_exempt and years_exempt > years:
            p.add(f"{at}.validity_years_exempt",
                  f"must not be longer than validity_years ({years_exempt} > {years})")
        if not _unique(p, seen, code, at, "level"):
            continue
        own = [c for c, lv in subjects.items() if lv == code]
        listed = tuple(own)
        if "subjects" in m:
            given = _list(p, m["subjects"], f"{at}.subjects")
            if given is not None:
                if sorted(map(str, given)) != sorted(own) or len(set(given)) != len(given):
                    p.add(f"{at}.subjects", f"must list exactly the subjects whose level is {code} "
                          f"({', '.join(own) or 'none'}), each once")
                else:
                    listed = tuple(map(str, given))
        if not own:
            p.add(f"{at}", f"level {code} has no subjects")
        exemptions: dict[str, str] = {}
        if "exemptions" in m:
            ex = _mapping(p, m["exemptions"] if m["exemptions"] is not None else {}, f"{at}.exemptions")
            for ground, subject in (ex or {}).items():
                gat = f"{at}.exemptions.{ground}"
                if not isinstance(ground, str) or not _CODE.fullmatch(ground):
                    p.add(gat, "the ground must be a code like senior_title")
                elif not isinstance(subject, str) or subject not in subjects:
                    p.add(gat, f"names no known subject: {subject!r}")
                elif subjects[subject] != code:
                    p.add(gat, f"subject {subject} belongs to level {subjects[subject]}, "
                          f"not {code}")
                else:
                    exemptions[ground] = subject
            if len(set(exemptions.values())) == len(own) and own:
                p.add(f"{at}.exemptions", "would exempt every subject of the level")
        if None not in (name, years, years_exempt):
            out[code] = Level(code, name, listed, exemptions, years, years_exempt)
    known = set(seen)
    for c, lv in subjects.items():
        if lv is not None and lv not in known and raw is not _MISSING:
            p.add(f"subjects.{c}.level",
                  f"unknown level {lv!r} (levels: {', '.join(sorted(known)) or 'none'})")
    return out


def _windows(p: _Problems, raw, tz) -> dict[str, Window]:
    if raw is _MISSING:
        return {}
    m = _mapping(p, raw, "windows")
    if m is None:
        return {}
    out: dict[str, Window] = {}
    for name in m:
        if name not in WINDOW_NAMES:
            p.add(f"windows.{name}", f"unknown window (windows are {', '.join(WINDOW_NAMES)})")
    for name in WINDOW_NAMES:
        at = f"windows.{name}"
        if name not in m:
            p.add(at, f"is missing ({WINDOW_LABELS[name]})")
            continue
        w = _mapping(p, m[name], at)
        if w is None:
            continue
        _keys(p, w, at, ("start", "end"))
        s = _when(p, w["start"], f"{at}.start", tz, "start") if "start" in w else None
        e = _when(p, w["end"], f"{at}.end", tz, "end") if "end" in w else None
        if s is None or e is None:
            continue
        if s >= e:
            p.add(at, f"must start before it ends ({_local(s)} is not before {_local(e)})")
            continue
        out[name] = Window(name, s, e)
    for first, edge1, strict, second, edge2, wording in _ORDER:
        if first in out and second in out:
            a, b = getattr(out[first], edge1), getattr(out[second], edge2)
            if (a >= b) if strict else (a > b):
                p.add(f"windows.{second}.{edge2}",
                      f"{wording} ({second} {edge2} {_local(b)}, {first} {edge1} {_local(a)})")
    return out


def _points(p: _Problems, raw) -> dict[str, RegistrationPoint]:
    out: dict[str, RegistrationPoint] = {}
    seen: dict[str, str] = {}
    for at, m in _entries(p, raw, "registration_points", "registration point"):
        _keys(p, m, at, ("code", "name", "address", "phone", "email", "service_hours",
                         "service_windows"))
        code = _text(p, m, "code", f"{at}.code", code=True)
        name = _text(p, m, "name", f"{at}.name")
        address = _text(p, m, "address", f"{at}.address")
        if isinstance(m.get("phone"), int) and not isinstance(m["phone"], bool):
            m = {**m, "phone": str(m["phone"])}  # an unquoted number in the YAML
        phone = _text(p, m, "phone", f"{at}.phone")
        email = _text(p, m, "email", f"{at}.email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            p.add(f"{at}.email", f"{email!r} is not an email address")
            email = None
        hours: list[tuple[time, time]] = []
        if "service_hours" in m:
            given = _list(p, m["service_hours"], f"{at}.service_hours")
            if given is not None and not given:
                p.add(f"{at}.service_hours", "a registration point needs service hours")
            for i, h in enumerate(given or []):
                r = _hours_range(p, h, f"{at}.service_hours[{i}]")
                if r:
                    hours.append(r)
        serve: list[str] = []
        if "service_windows" in m:
            given = _list(p, m["service_windows"], f"{at}.service_windows")
            if given is not None and not given:
                p.add(f"{at}.service_windows", "must name at least one window")
            for w in given or []:
                if w in WINDOW_NAMES:
                    serve.append(w)
                else:
                    p.add(f"{at}.service_windows",
                          f"unknown window {w!r} (windows are {', '.join(WINDOW_NAMES)})")
        if _unique(p, seen, code, at, "registration point") and None not in (name, address, phone, email) \
                and hours and serve:
            out[code] = RegistrationPoint(code, name, address, phone, email, tuple(sorted(hours)),
                                          tuple(serve))
    return out


def _schedule(p: _Problems, raw, tz, subjects: dict[str, str | None], exam: Window | None):
    if raw is _MISSING:
        return ()
    items = _list(p, raw, "exam_schedule")
    if items is None:
        return ()
    out: list[dict] = []
    where: dict[str, int] = {}
    for i, item in enumerate(items):
        at = f"exam_schedule[{i}]"
        m = _mapping(p, item, at)
        if m is None:
            continue
        _keys(p, m, at, ("subject", "start", "end"))
        subject = _text(p, m, "subject", f"{at}.subject", code=True)
        s = _when(p, m["start"], f"{at}.start", tz, "start") if "start" in m else None
        e = _when(p, m["end"], f"{at}.end", tz, "end") if "end" in m else None
        if subject is not None:
            if subject not in subjects:
                p.add(f"{at}.subject", f"unknown subject {subject!r}")
                subject = None
            elif subject in where:
                p.add(f"{at}.subject", f"{subject} is already scheduled in exam_schedule[{where[subject]}]")
                subject = None
            else:
                where[subject] = i
        if s is not None and e is not None:
            if s >= e:
                p.add(at, f"must start before it ends ({_local(s)} is not before {_local(e)})")
                continue
            if exam is not None and not (exam.start <= s and e <= exam.end_exclusive):
                p.add(at, f"{_local(s)} – {_local(e)} is outside the exam window "
                      f"({_local(exam.start)} – {_local(exam.end)})")
        if subject is not None and s is not None and e is not None:
            out.append({"subject": subject, "start": s, "end": e})
    missing = [c for c in subjects if c not in where]
    if missing and items:
        p.add("exam_schedule", f"every subject sits exactly once; no sitting for {', '.join(missing)}")
    elif missing:
        p.add("exam_schedule", "must schedule every subject")
    for i, a in enumerate(out):
        for b in out[i + 1:]:
            if subjects[a["subject"]] == subjects[b["subject"]] is not None \
                    and a["start"] < b["end"] and b["start"] < a["end"]:
                p.add(f"exam_schedule[{where[b['subject']]}]",
                      f"{b['subject']} overlaps {a['subject']} of the same level: a candidate sits both")
    return tuple(out)


def _venues(p: _Problems, raw) -> tuple[dict, ...]:
    out: list[dict] = []
    seen: dict[str, str] = {}
    for at, m in _entries(p, raw, "venues", "venue"):
        _keys(p, m, at, ("code", "name", "address", "rooms"))
        code = _text(p, m, "code", f"{at}.code", code=True)
        name = _text(p, m, "name", f"{at}.name")
        address = _text(p, m, "address", f"{at}.address")
        rooms: list[dict] = []
        room_seen: dict[str, str] = {}
        for rat, r in _entries(p, m.get("rooms", _MISSING), f"{at}.rooms", "room"):
            _keys(p, r, rat, ("code",), ("seats",))
            rcode = _text(p, r, "code", f"{rat}.code", code=True)
            seats = _int(p, r, "seats", f"{rat}.seats", lo=1, hi=1000, default=DEFAULT_SEATS)
            if _unique(p, room_seen, rcode, rat, "room") and seats is not None:
                rooms.append({"code": rcode, "seats": seats})
        if _unique(p, seen, code, at, "venue") and None not in (name, address) and rooms:
            out.append({"code": code, "name": name, "address": address, "rooms": rooms})
    return tuple(out)


def _ticket_format(p: _Problems, data: dict) -> str | None:
    fmt = _text(p, data, "ticket_number_format", "ticket_number_format")
    if fmt is None:
        return None
    sample = {"year": 2026, "point": "2916", "level": "L1"}
    try:
        one, two = fmt.format(seq=1, **sample), fmt.format(seq=2, **sample)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        p.add("ticket_number_format",
              f"{fmt!r} does not format with year, point, level and seq: {type(exc).__name__}: {exc}")
        return None
    if one == two:
        p.add("ticket_number_format", f"{fmt!r} must use {{seq}}: every ticket would get number {one}")
        return None
    return fmt


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
    "RegistrationPoint", "SessionDocument", "parse_session", "require_open", "load_session_file",
    "reference_session", "demo_session", "unique_ticket_format", "SEQ_DIGITS",
]


# --- reading YAML for other documents (the eligibility rules) ---------------------------


def read_yaml(text) -> tuple[Any, dict[str, str]]:
    """YAML text -> (data, problems): the same reading as a session document's (safe,
    duplicate keys reported, syntax errors with their line); ``problems`` maps a path
    (``document``, ``line 7``) to what is wrong, empty when the text reads."""
    p = _Problems()
    try:
        data = _load_yaml(p, text)
    except RecursionError:  # the reader recurses per level of nesting
        return None, {"document": "nested too deeply to be a document"}
    return data, p.fields()

