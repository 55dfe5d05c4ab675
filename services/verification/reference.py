"""Reference data for the auto check (自动核查): the education/degree registry (学信网-like)
and the integrity archive (诚信档案).

``ReferenceData`` is the port the verification service depends on. ``CsvReferenceData`` is
a SIMULATED registry for development and tests: it reads two CSV files shipped in
``deploy/reference/`` once, at construction, and answers from memory. The real adapter (an
HTTPS client to the authority's registry) would implement the same Protocol; nothing in
this module touches the network. ``IntegrityArchive`` is the archive's whole list, which
verification publishes for other services (``archive_feed``).

``gather_facts`` is the I/O step the service runs before the pure decision
(``domain.open_case``): it asks the reference data everything the auto check needs about
one candidate and hands the answers over as plain data.

Records are JSON-plain dicts: dates are ISO 8601 strings.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_EDUCATION_CSV = "deploy/reference/education-registry.csv"
DEFAULT_INTEGRITY_CSV = "deploy/reference/integrity-archive.csv"

EDUCATION_LEVELS = ("中专", "大专", "本科", "双学士", "研究生班", "硕士", "博士")
MAJOR_CATEGORIES = ("science_engineering", "other")

_EDUCATION_COLUMNS = ("id_number", "certificate_no", "level", "major", "major_category",
                      "graduated_on")
_INTEGRITY_COLUMNS = ("record_id", "id_type", "id_number", "reason", "recorded_on",
                      "expires_on")


@runtime_checkable
class ReferenceData(Protocol):
    def education_record(self, id_number: str, certificate_no: str) -> dict | None:
        """The registry's record of one diploma held by this ID number, or None if it has none.

        Keys: ``level``, ``major``, ``major_category``, ``graduated_on`` (ISO date).
        """

    def integrity_record(self, id_type: str, id_number: str, on: date) -> dict | None:
        """A record of this person that is live on ``on``, or None.

        Keys: ``record_id``, ``reason``, ``recorded_on``, ``expires_on`` (ISO dates;
        ``expires_on`` None: never expires). A record is live from ``recorded_on`` up to and
        including ``expires_on``.
        """


@runtime_checkable
class IntegrityArchive(Protocol):
    def integrity_records(self) -> list[dict]:
        """Every record the archive holds, live or not, for publishing it
        (``archive_feed``). Keys: ``record_id``, ``id_type``, ``id_number`` (normalised),
        ``recorded_on``, ``expires_on`` (as ``integrity_record``'s)."""


def _norm_id(id_number: str) -> str:
    return (id_number or "").strip().upper()


def _norm_cert(certificate_no: str) -> str:
    return (certificate_no or "").strip().upper()


def _read_csv(path: Path, columns: tuple[str, ...]):
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        for line, row in enumerate(reader, start=2):
            yield line, {k: (v or "").strip() for k, v in row.items() if k is not None}


def _iso(value: str, where: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


class CsvReferenceData:
    """SIMULATED reference data for development and tests, loaded from two CSV files.

    Not the authority's registry: the real adapter, an HTTPS client to it, implements the
    same ``ReferenceData`` Protocol. No network here; both files are read once, now.

    ``education-registry.csv``: id_number, certificate_no, level, major, major_category,
    graduated_on (other columns, e.g. name and school, are ignored).
    ``integrity-archive.csv``: record_id, id_type, id_number, reason, recorded_on,
    expires_on (blank: never expires).
    """

    def __init__(self, education_csv_path, integrity_csv_path):
        self.education_csv_path = Path(education_csv_path)
        self.integrity_csv_path = Path(integrity_csv_path)
        self._education: dict[tuple[str, str], dict] = {}
        self._integrity: dict[tuple[str, str], list[dict]] = {}
        self._load_education()
        self._load_integrity()

    def _load_education(self):
        path = self.education_csv_path
        for line, row in _read_csv(path, _EDUCATION_COLUMNS):
            where = f"{path.name} line {line}"
            if row["level"] not in EDUCATION_LEVELS:
                raise ValueError(f"{where}: unknown education level {row['level']!r}")
            if row["major_category"] not in MAJOR_CATEGORIES:
                raise ValueError(f"{where}: unknown major category {row['major_category']!r}")
            key = (_norm_id(row["id_number"]), _norm_cert(row["certificate_no"]))
            if not all(key):
                raise ValueError(f"{where}: id_number and certificate_no are required")
            if key in self._education:
                raise ValueError(f"{where}: certificate {key[1]} listed twice for one person")
            self._education[key] = {
                "level": row["level"],
                "major": row["major"],
                "major_category": row["major_category"],
                "graduated_on": _iso(row["graduated_on"], where),
            }

    def _load_integrity(self):
        path = self.integrity_csv_path
        for line, row in _read_csv(path, _INTEGRITY_COLUMNS):
            where = f"{path.name} line {line}"
            if not (row["record_id"] and row["id_type"] and row["id_number"]):
                raise ValueError(f"{where}: record_id, id_type and id_number are required")
            record = {
                "record_id": row["record_id"],
                "reason": row["reason"],
                "recorded_on": _iso(row["recorded_on"], where),
                "expires_on": _iso(row["expires_on"], where) if row["expires_on"] else None,
            }
            if record["expires_on"] and record["expires_on"] < record["recorded_on"]:
                raise ValueError(f"{where}: expires_on is before recorded_on")
            key = (row["id_type"], _norm_id(row["id_number"]))
            self._integrity.setdefault(key, []).append(record)

    def integrity_records(self) -> list[dict]:
        return [{"record_id": r["record_id"], "id_type": id_type, "id_number": id_number,
                 "recorded_on": r["recorded_on"], "expires_on": r["expires_on"]}
                for (id_type, id_number), records in self._integrity.items() for r in records]

    def education_record(self, id_number: str, certificate_no: str) -> dict | None:
        record = self._education.get((_norm_id(id_number), _norm_cert(certificate_no)))
        return dict(record) if record else None

    def integrity_record(self, id_type: str, id_number: str, on: date) -> dict | None:
        today = (on.date() if isinstance(on, datetime) else on).isoformat()
        live = [
            r
            for r in self._integrity.get((id_type, _norm_id(id_number)), ())
            if r["recorded_on"] <= today and (r["expires_on"] is None or r["expires_on"] >= today)
        ]
        if not live:
            return None
        return dict(max(live, key=lambda r: r["recorded_on"]))  # the latest, if several


class ReferenceFileMissing(ValueError):
    """A configured reference file that is not there: refused at start, with the setting."""


def _path(config: Mapping, key: str, default: str) -> Path:
    path = Path(str(config.get(key) or "").strip() or default)
    path = path if path.is_absolute() else REPO_ROOT / path
    if not path.is_file():
        raise ReferenceFileMissing(f"{key}: no such file: {path}")
    return path


def configured_paths(config: Mapping | None) -> tuple[Path, Path]:
    """The two files ``REFERENCE_EDUCATION_CSV`` and ``REFERENCE_INTEGRITY_CSV`` name
    (relative paths: to the repository root; unset or empty: the shipped ones), checked to
    exist (``ReferenceFileMissing`` names the setting otherwise)."""
    config = config or {}
    return (_path(config, "REFERENCE_EDUCATION_CSV", DEFAULT_EDUCATION_CSV),
            _path(config, "REFERENCE_INTEGRITY_CSV", DEFAULT_INTEGRITY_CSV))


def from_config(config: Mapping | None) -> CsvReferenceData:
    """The simulated reference data from ``REFERENCE_EDUCATION_CSV`` and
    ``REFERENCE_INTEGRITY_CSV`` (``configured_paths``)."""
    return CsvReferenceData(*configured_paths(config))


def gather_facts(reference: ReferenceData, candidate: dict, on: date) -> dict:
    """What the auto check needs to know about ``candidate`` (an ApplicationSubmitted
    candidate snapshot), asked of ``reference`` as of ``on``::

        {"integrity": live record | None,
         "education": {certificate_no: registry record | None, ...}}

    ``education`` has one key per education entry that carries a ``certificate_no``
    (as the candidate entered it).
    """
    id_type, id_number = candidate["id_type"], candidate["id_number"]
    education = {}
    for entry in candidate.get("education") or ():
        cert = entry.get("certificate_no")
        if cert and cert not in education:
            education[cert] = reference.education_record(id_number, cert)
    return {
        "integrity": reference.integrity_record(id_type, id_number, on),
        "education": education,
    }
