"""Exam session documents (考试计划) for the command line: YAML out, problems listed.

``to_yaml`` writes a ``SessionDocument`` as the YAML ``registration.load_session`` reads
(``to_dict`` gives ISO times with their offset, which the loader accepts as they are).
``problems`` turns a refusal's ``fields`` (path -> messages) into rows in document
order, so an operator fixes a bad file in one round.
"""

from __future__ import annotations

import re
from datetime import datetime

import yaml

from shared.session import SessionDocument

_TOP_ORDER = ("document", "session_id", "name", "exam_year", "timezone", "eligibility_cutoff",
              "pledge_version", "pledge_text", "pass_ratio", "levels", "subjects", "windows",
              "registration_points", "exam_schedule", "venues", "ticket_number_format")


def to_yaml(doc: SessionDocument) -> str:
    return yaml.safe_dump(doc.to_dict(), allow_unicode=True, sort_keys=False, width=100)


def _path_key(path: str):
    head = re.split(r"[.\[]", path, maxsplit=1)[0]
    first = _TOP_ORDER.index(head) if head in _TOP_ORDER else len(_TOP_ORDER)
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"[^.\[\]]+", path))
    return (first, parts)


def problems(fields: dict) -> list[tuple[str, str]]:
    """[(path, problem)], one per problem, sorted by where they are in the document."""
    rows = []
    for path in sorted(fields or {}, key=_path_key):
        text = fields[path]
        # a path's messages arrive joined with "; "; some messages hold "; " themselves, so
        # they stay together: one row per path
        items = text if isinstance(text, list) else [str(text)]
        rows.extend((path, item) for item in items if item)
    return rows


# -- for the session commands ----------------------------------------------------------------

def registration_points(call) -> dict[str, str]:
    """{code: name} of the registration points of every loaded session (over RPC)."""
    points: dict[str, str] = {}
    for s in call("registration", "list_sessions") or []:
        got = call("registration", "get_session", s["session_id"])
        for code, p in (got.get("registration_points") or {}).items():
            points.setdefault(code, p.get("name", ""))
    return points


def local_time(value: str | None) -> str:
    """An ISO time from a service, as people read it: Asia/Shanghai, to the minute (the
    timetable's precision) or the second when it has seconds."""
    from shared.clock import SHANGHAI

    if not value:
        return ""
    try:
        dt = datetime.fromisoformat(value).astimezone(SHANGHAI)
    except ValueError:
        return value
    return dt.strftime("%Y-%m-%d %H:%M" if dt.second == 0 else "%Y-%m-%d %H:%M:%S")


_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?")


def parse_time(value: str, option: str) -> datetime:
    """A time an operator typed: ``YYYY-MM-DD HH:MM[:SS]`` in Asia/Shanghai, or ISO 8601
    with its offset. ValueError says what is expected."""
    from shared.clock import SHANGHAI

    text = (value or "").strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        dt = None
    if dt is None or (dt.tzinfo is None and not _LOCAL.fullmatch(text)):
        raise ValueError(f"{option} {value!r} is not a time: write YYYY-MM-DD HH:MM "
                         "(Asia/Shanghai), e.g. 2026-04-17 10:00")
    return dt.replace(tzinfo=SHANGHAI) if dt.tzinfo is None else dt
