import csv
from datetime import date, datetime

import pytest

from services.account.identity import validate_resident_id
from services.verification import reference
from services.verification.reference import (
    REPO_ROOT,
    CsvReferenceData,
    ReferenceData,
    from_config,
    gather_facts,
)

WANG = "310104198805123455"  # 本科 同济, nothing in the archive
ZHANG = "310110198511200037"  # 大专; a live integrity record until 2027-06-14
CHEN = "320102199007080044"  # 本科 other major; an integrity record that expired 2024-05-09
LI = "31011519920315002X"  # 本科 + 硕士
ON = date(2026, 4, 7)


@pytest.fixture(scope="module")
def ref():
    return from_config({})


def write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


EDU_HEADER = ["id_number", "name", "certificate_no", "level", "school", "major",
              "major_category", "graduated_on"]
INT_HEADER = ["record_id", "id_type", "id_number", "name", "reason", "recorded_on", "expires_on"]


def test_it_says_plainly_that_it_is_simulated():
    for doc in (reference.__doc__, CsvReferenceData.__doc__):
        assert "SIMULATED" in doc and "HTTPS" in doc and "same" in doc


def test_defaults_ship_with_the_repository(ref):
    assert isinstance(ref, ReferenceData)
    assert ref.education_csv_path == REPO_ROOT / "deploy/reference/education-registry.csv"
    assert ref.integrity_csv_path == REPO_ROOT / "deploy/reference/integrity-archive.csv"


def test_shipped_id_numbers_are_valid_resident_ids():
    for name in ("education-registry.csv", "integrity-archive.csv"):
        with open(REPO_ROOT / "deploy/reference" / name, encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert rows
        for row in rows:
            assert validate_resident_id(row["id_number"], date(2026, 1, 1)) == row["id_number"]


def test_education_lookup(ref):
    assert ref.education_record(WANG, "102471201005001234") == {
        "level": "本科",
        "major": "测控技术与仪器",
        "major_category": "science_engineering",
        "graduated_on": "2010-07-01",
    }
    assert ref.education_record(LI, "103561201702000045")["level"] == "硕士"
    # the ID number is matched case-insensitively (x/X) and trimmed
    assert ref.education_record(LI.lower(), " 103561201702000045 ")["level"] == "硕士"


def test_education_lookup_misses(ref):
    assert ref.education_record(WANG, "999999999999999999") is None
    assert ref.education_record(ZHANG, "102471201005001234") is None  # someone else's diploma


def test_a_copy_is_returned(ref):
    ref.education_record(WANG, "102471201005001234")["level"] = "博士"
    assert ref.education_record(WANG, "102471201005001234")["level"] == "本科"


def test_live_integrity_record(ref):
    assert ref.integrity_record("resident_id", ZHANG, ON) == {
        "record_id": "CX-2024-0031",
        "reason": "2024年度考试违纪（携带通讯工具进入考场）",
        "recorded_on": "2024-06-15",
        "expires_on": "2027-06-14",
    }
    # live up to and including its expiry day, and only from the day it was recorded
    assert ref.integrity_record("resident_id", ZHANG, date(2027, 6, 14)) is not None
    assert ref.integrity_record("resident_id", ZHANG, date(2027, 6, 15)) is None
    assert ref.integrity_record("resident_id", ZHANG, date(2024, 6, 14)) is None
    # a datetime is taken by its date
    assert ref.integrity_record("resident_id", ZHANG, datetime(2027, 6, 14, 23, 0)) is not None


def test_expired_integrity_record_is_not_live(ref):
    assert ref.integrity_record("resident_id", CHEN, ON) is None
    assert ref.integrity_record("resident_id", CHEN, date(2024, 5, 9))["record_id"] == "CX-2021-0007"


def test_integrity_lookup_is_by_id_type_too(ref):
    assert ref.integrity_record("passport", ZHANG, ON) is None
    assert ref.integrity_record("resident_id", WANG, ON) is None


def test_from_config_paths(tmp_path):
    edu = write_csv(tmp_path / "edu.csv", EDU_HEADER,
                    [[WANG, "王建国", "C1", "硕士", "复旦大学", "物理学", "science_engineering",
                      "2012-07-01"]])
    integ = write_csv(tmp_path / "int.csv", INT_HEADER,
                      [["R1", "resident_id", WANG, "王建国", "失信", "2025-01-01", ""]])
    data = from_config({"REFERENCE_EDUCATION_CSV": str(edu), "REFERENCE_INTEGRITY_CSV": str(integ)})
    assert data.education_record(WANG, "C1")["level"] == "硕士"
    never = data.integrity_record("resident_id", WANG, date(2099, 1, 1))
    assert never == {"record_id": "R1", "reason": "失信", "recorded_on": "2025-01-01",
                     "expires_on": None}
    # relative paths are relative to the repository root, wherever the process runs
    relative = from_config({"REFERENCE_EDUCATION_CSV": "deploy/reference/education-registry.csv"})
    assert relative.education_csv_path == REPO_ROOT / "deploy/reference/education-registry.csv"


def test_the_latest_of_several_live_records(tmp_path):
    integ = write_csv(tmp_path / "int.csv", INT_HEADER, [
        ["R1", "resident_id", WANG, "", "a", "2024-01-01", ""],
        ["R2", "resident_id", WANG, "", "b", "2025-01-01", "2030-01-01"],
        ["R3", "resident_id", WANG, "", "c", "2026-01-01", "2026-02-01"],
    ])
    data = CsvReferenceData(REPO_ROOT / reference.DEFAULT_EDUCATION_CSV, integ)
    assert data.integrity_record("resident_id", WANG, ON)["record_id"] == "R2"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([WANG, "", "C1", "高中", "", "", "science_engineering", "2012-07-01"], "education level"),
        ([WANG, "", "C1", "本科", "", "", "arts", "2012-07-01"], "major category"),
        ([WANG, "", "C1", "本科", "", "", "other", "2012-13-01"], "not a date"),
        ([WANG, "", "", "本科", "", "", "other", "2012-07-01"], "required"),
    ],
)
def test_bad_education_rows_are_refused_at_load(tmp_path, row, message):
    edu = write_csv(tmp_path / "edu.csv", EDU_HEADER, [row])
    with pytest.raises(ValueError, match=message):
        CsvReferenceData(edu, REPO_ROOT / reference.DEFAULT_INTEGRITY_CSV)


def test_missing_columns_and_bad_integrity_rows_are_refused(tmp_path):
    edu = write_csv(tmp_path / "edu.csv", ["id_number", "level"], [])
    with pytest.raises(ValueError, match="missing column"):
        CsvReferenceData(edu, REPO_ROOT / reference.DEFAULT_INTEGRITY_CSV)
    integ = write_csv(tmp_path / "int.csv", INT_HEADER,
                      [["R1", "resident_id", WANG, "", "x", "2025-01-01", "2024-01-01"]])
    with pytest.raises(ValueError, match="before recorded_on"):
        CsvReferenceData(REPO_ROOT / reference.DEFAULT_EDUCATION_CSV, integ)


class Recording:
    """A ReferenceData double that records what it was asked."""

    def __init__(self):
        self.asked = []

    def education_record(self, id_number, certificate_no):
        self.asked.append(("education", id_number, certificate_no))
        return {"level": "本科"} if certificate_no == "C1" else None

    def integrity_record(self, id_type, id_number, on):
        self.asked.append(("integrity", id_type, id_number, on))
        return None


def test_gather_facts_asks_about_each_certificate():
    candidate = {
        "id_type": "resident_id",
        "id_number": WANG,
        "education": [
            {"level": "本科", "certificate_no": "C1"},
            {"level": "硕士", "certificate_no": "C2"},
            {"level": "大专"},  # no certificate number: nothing to ask
            {"level": "本科", "certificate_no": "C1"},  # asked once
        ],
        "work": [],
    }
    spy = Recording()
    assert isinstance(spy, ReferenceData)
    facts = gather_facts(spy, candidate, ON)
    assert facts == {"integrity": None, "education": {"C1": {"level": "本科"}, "C2": None}}
    assert spy.asked == [
        ("education", WANG, "C1"),
        ("education", WANG, "C2"),
        ("integrity", "resident_id", WANG, ON),
    ]


def test_gather_facts_against_the_shipped_csvs(ref):
    facts = gather_facts(ref, {"id_type": "resident_id", "id_number": ZHANG, "education": [
        {"level": "大专", "certificate_no": "102521200606000512"}]}, ON)
    assert facts["integrity"]["record_id"] == "CX-2024-0031"
    assert facts["education"]["102521200606000512"]["level"] == "大专"


# -- the settings reach the service and a wrong path is refused at start -----------------

def _config_yml(monkeypatch, **env):
    import warnings

    import yaml
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nameko.cli imports pkg_resources
        from nameko.cli.main import setup_yaml_parser
    setup_yaml_parser()
    for key in ("REFERENCE_EDUCATION_CSV", "REFERENCE_INTEGRITY_CSV"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return yaml.safe_load((REPO_ROOT / "config.yml").read_text("utf-8"))


def test_config_yml_reads_the_reference_files_from_the_environment(monkeypatch, tmp_path):
    edu = write_csv(tmp_path / "edu.csv", EDU_HEADER,
                    [[WANG, "王", "C-1", "本科", "X大学", "测控", "science_engineering", "2010-07-01"]])
    integ = write_csv(tmp_path / "int.csv", INT_HEADER, [])
    config = _config_yml(monkeypatch, REFERENCE_EDUCATION_CSV=str(edu),
                         REFERENCE_INTEGRITY_CSV=str(integ))
    data = from_config(config)
    assert data.education_csv_path == edu and data.integrity_csv_path == integ
    assert data.education_record(WANG, "C-1")["level"] == "本科"
    # unset: the shipped files
    data = from_config(_config_yml(monkeypatch))
    assert data.education_csv_path == REPO_ROOT / "deploy/reference/education-registry.csv"


@pytest.mark.parametrize("key", ["REFERENCE_EDUCATION_CSV", "REFERENCE_INTEGRITY_CSV"])
def test_a_reference_file_that_does_not_exist_is_refused_naming_the_setting(key, tmp_path):
    with pytest.raises(reference.ReferenceFileMissing, match=f"{key}: no such file"):
        from_config({key: str(tmp_path / "missing.csv")})
    with pytest.raises(reference.ReferenceFileMissing, match=key):
        from_config({key: str(tmp_path)})  # a directory is no file either


def test_make_run_refuses_a_missing_reference_file_before_starting(monkeypatch, tmp_path):
    from shared.runner import StartupError, check_reference_data

    monkeypatch.setenv("REFERENCE_INTEGRITY_CSV", str(tmp_path / "nope.csv"))
    with pytest.raises(StartupError, match="REFERENCE_INTEGRITY_CSV: no such file"):
        check_reference_data(["account", "verification"])
    check_reference_data(["account"])  # no verification service: nothing reads it
    monkeypatch.delenv("REFERENCE_INTEGRITY_CSV")
    check_reference_data(["verification"])
