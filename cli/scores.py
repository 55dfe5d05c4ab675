"""Score sheets (成绩单) for the command line: a refused import, row by row.

The scoring service refuses a whole sheet when any row is wrong and names each problem
under a key that carries the row number (``rows.3.score``, ``row 3``, ``line 4.subject``
…). ``row_problems`` turns those keys into (row, field, problem), sorted by row, so the
operator sees the sheet's problems in its own order.
"""

from __future__ import annotations

import re

_ROW = re.compile(r"(?:^|[^A-Za-z])(?:rows?|lines?)?[ ._\[]*(\d+)\]?(?:[ .:_]+(.*))?$", re.I)


def row_problems(fields: dict) -> list[tuple[int | None, str, str]]:
    out = []
    for key, message in (fields or {}).items():
        messages = message if isinstance(message, list) else [message]
        m = _ROW.search(str(key))
        if m and any(w in str(key).lower() for w in ("row", "line")) or (m and str(key)[:1].isdigit()):
            row, field = int(m.group(1)), (m.group(2) or "").strip(" .")
        else:
            row, field = None, str(key)
        for msg in messages:
            if isinstance(msg, dict):  # nested {field: message}
                out.extend((row, f"{field}.{k}".strip("."), str(v)) for k, v in msg.items())
            else:
                out.append((row, field, str(msg)))
    return sorted(out, key=lambda r: (r[0] is not None, r[0] or 0, r[1]))
