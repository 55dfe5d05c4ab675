"""Message templates (通知模板) and the notice timetable, loaded from ``templates.yml``.

Pure: reads the YAML once, then renders. Every template is checked when the file is
loaded (known placeholders only, title and text present, notices naming a known window
and template), so a typo is an error at start-up, never a message with ``{nmae}`` in it.

Times are rendered in Asia/Shanghai to the minute, the way the notices write them:
``2026年04月18日16:00``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import yaml

from shared.clock import SHANGHAI
from shared.contracts.verification import PROOF_CAUSES
from shared.session import WINDOW_NAMES

TEMPLATES_PATH = Path(__file__).resolve().parent / "templates.yml"
TIME_FORMAT = "%Y年%m月%d日%H:%M"

PLACEHOLDERS = frozenset({
    "name", "exam", "reason", "cause", "deadline", "confirmation_start", "confirmation_end",
    "printing_start", "printing_end", "ticket_number", "certificate_number", "level_name",
    "answer", "point", "code", "expires",
})
#: placeholders that only an SMS may carry (the in-site copy and the title are stored whole)
SMS_ONLY = frozenset({"code"})

_DURATION = re.compile(r"(\d+)\s*([dhm])\Z")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def format_time(dt: datetime) -> str:
    """A time as the candidate reads it: Asia/Shanghai, to the minute."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"an aware datetime is needed, not {dt!r}")
    return dt.astimezone(SHANGHAI).strftime(TIME_FORMAT)


@dataclass(frozen=True)
class Template:
    key: str
    title: str
    sms: str  # without the signature
    body: str  # the in-site message (站内信)


@dataclass(frozen=True)
class NoticeRule:
    """A notice scheduled from the timetable: ``before`` ahead of a window's start or end."""

    kind: str
    window: str
    at: str  # start | end
    before: timedelta
    template: str


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str  # in-site text
    sms: str  # with the signature


class Catalogue:
    def __init__(self, signature: str, templates: dict[str, Template],
                 notices: dict[str, NoticeRule], proof_causes: dict[str, str]):
        self.signature = signature
        self.templates = templates
        self.notices = notices
        self.proof_causes = proof_causes  # ProofRequested.cause -> what the candidate reads

    def render(self, key: str, context: dict) -> Rendered:
        """Fill template ``key``; datetimes become Shanghai times to the minute. A
        placeholder without a value is a bug in the caller: ``KeyError`` names it."""
        t = self.templates[key]
        values = {k: (format_time(v) if isinstance(v, datetime) else v) for k, v in context.items()}
        missing = (_fields(t.sms) | _fields(t.body) | _fields(t.title)) - set(values)
        if missing:
            raise KeyError(f"template {key} needs {', '.join(sorted(missing))}")
        sms = t.sms.format_map(values)
        return Rendered(title=t.title.format_map(values), body=t.body.format_map(values),
                        sms=f"{self.signature}{sms}")


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: a non-empty text is needed")
    # a |- block: lines joined without spaces (Chinese puts none between them)
    return "".join(line.strip() for line in value.strip().splitlines())


def _check_placeholders(text: str, where: str):
    try:
        names = _fields(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    unknown = {n for n in names if n not in PLACEHOLDERS}
    if unknown or "" in names:
        raise ValueError(f"{where}: unknown placeholder(s) {sorted(unknown) or ['{}']}; "
                         f"known: {', '.join(sorted(PLACEHOLDERS))}")


def parse_duration(value) -> timedelta:
    """``24h``, ``90m``, ``1d`` (or 0)."""
    if value in (None, 0, "0"):
        return timedelta(0)
    m = _DURATION.fullmatch(str(value).strip())
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. 24h, 90m, 1d)")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse_catalogue(data: dict) -> Catalogue:
    if not isinstance(data, dict):
        raise ValueError("templates: expected a mapping")
    signature = _text(data.get("signature"), "signature")
    templates: dict[str, Template] = {}
    for key, t in (data.get("templates") or {}).items():
        where = f"templates.{key}"
        if not isinstance(t, dict) or set(t) - {"title", "sms", "body"}:
            raise ValueError(f"{where}: expected title, sms and optionally body")
        title, sms = _text(t.get("title"), f"{where}.title"), _text(t.get("sms"), f"{where}.sms")
        body = _text(t["body"], f"{where}.body") if "body" in t else sms
        for part, text in (("title", title), ("sms", sms), ("body", body)):
            _check_placeholders(text, f"{where}.{part}")
            if part != "sms" and _fields(text) & SMS_ONLY:
                raise ValueError(f"{where}.{part}: {{code}} may appear in the sms text only")
        templates[key] = Template(key, title, sms, body)
    notices: dict[str, NoticeRule] = {}
    for kind, n in (data.get("notices") or {}).items():
        where = f"notices.{kind}"
        if not isinstance(n, dict):
            raise ValueError(f"{where}: expected a mapping")
        if n.get("window") not in WINDOW_NAMES:
            raise ValueError(f"{where}.window: one of {', '.join(WINDOW_NAMES)}")
        if n.get("at") not in ("start", "end"):
            raise ValueError(f"{where}.at: start or end")
        if n.get("template") not in templates:
            raise ValueError(f"{where}.template: no template {n.get('template')!r}")
        notices[kind] = NoticeRule(kind, n["window"], n["at"], parse_duration(n.get("before")),
                                   n["template"])
    causes = data.get("proof_causes") or {}
    missing = [c for c in PROOF_CAUSES if not isinstance(causes.get(c), str) or not causes[c]]
    if missing:
        raise ValueError(f"proof_causes: no text for {', '.join(missing)}")
    return Catalogue(signature, templates, notices, {c: _text(causes[c], f"proof_causes.{c}")
                                                     for c in PROOF_CAUSES})


@cache
def load_catalogue(path: str | None = None) -> Catalogue:
    text = Path(path or TEMPLATES_PATH).read_text(encoding="utf-8")
    return parse_catalogue(yaml.safe_load(text))
