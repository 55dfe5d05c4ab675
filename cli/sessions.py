"""Exam session documents (考试计划) for the command line: YAML out, problems listed.

``to_yaml`` writes a ``SessionDocument`` as the YAML ``registration.load_session`` reads
(``to_dict`` gives ISO times with their offset, which the loader accepts as they are).
``problems`` turns a refusal's ``fields`` (path -> messages) into rows in document
order, so an operator fixes a bad file in one round.
"""

from __future__ import annotations

import re

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
