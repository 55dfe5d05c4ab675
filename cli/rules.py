"""报考条件 (eligibility rules per exam year) for the command line: the table as people read
it, one row per exam level and education level, and the versions with who loaded each."""

from __future__ import annotations

from rich.table import Table

CATEGORIES = ("science_engineering", "other")


def rules_table(got: dict) -> Table:
    """The years of metrology work each education level needs, per exam level."""
    doc = got["document"]
    table = Table(title=f"报考条件 {got['exam_year']} (version {got['version']}"
                        f"{', in force' if got['version'] == got.get('in_force') else ''}"
                        f"; {got.get('source', '')})", title_justify="left")
    for col in ("level", "education", "理工类 science/engineering", "其他 other"):
        table.add_column(col)
    order = {e: i for i, e in enumerate(doc["education_levels"])}
    for level, spec in doc["levels"].items():
        for education in sorted(spec["years"], key=lambda e: order.get(e, len(order))):
            cell = spec["years"][education]
            years = ([str(cell[c]) for c in CATEGORIES] if isinstance(cell, dict)
                     else [str(cell), str(cell)])
            table.add_row(f"{level} {spec['name']}", education, *years)
    return table


def versions_table(got: dict) -> Table:
    table = Table(title=f"Versions of {got['exam_year']}", title_justify="left")
    for col in ("version", "source", "loaded by", "loaded at", "digest", "why"):
        table.add_column(col, overflow="fold")
    for v in got.get("versions") or ():
        mark = " *" if v["version"] == got.get("in_force") else ""
        table.add_row(f"{v['version']}{mark}", v["source"], v.get("loaded_by") or "",
                      v.get("loaded_at") or "", v["digest"][:12], v.get("reason") or "")
    return table


def years_table(rows: list[dict]) -> Table:
    table = Table(title="报考条件 by exam year (the version in force)", title_justify="left")
    for col in ("exam year", "version", "source", "levels", "loaded by", "loaded at"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["exam_year"]), str(r["version"]), r["source"],
                      ", ".join(r.get("levels") or ()), r.get("loaded_by") or "",
                      r.get("loaded_at") or "")
    return table
