"""``kaowu rules list | show | load`` over a fake RPC layer."""

from typer.testing import CliRunner

from cli.main import State, app
from services.verification.rules import RULES_DIR, check_rules_document
from tests.unit.test_cli_rpc import FakeServices

TEXT = (RULES_DIR / "2026.yml").read_text("utf-8")
TEXT_2027 = TEXT.replace("exam_year: 2026", "exam_year: 2027")


def run(fake, args):
    return CliRunner().invoke(app, args, obj=State(client_factory=fake.factory))


def view(text, version=1, changed=True):
    doc = check_rules_document(text)
    return {"exam_year": doc["exam_year"], "version": version, "in_force": version,
            "source": "authority", "digest": "a" * 64, "levels": sorted(doc["levels"]),
            "document": doc, "yaml": text, "changed": changed,
            "versions": [{"version": 0, "source": "shipped", "digest": "b" * 64,
                          "loaded_by": None, "loaded_at": None, "reason": "默认"},
                         {"version": version, "source": "authority", "digest": "a" * 64,
                          "loaded_by": "authority-7", "loaded_at": "2026-11-02T02:00:00+00:00",
                          "reason": "公告"}]}


def load_rules(who, data):
    check_rules_document(data["yaml"], data["exam_year"])  # the service's own check
    return view(data["yaml"])


def test_rules_load_sends_the_document_as_the_authority_and_shows_the_table(tmp_path, monkeypatch):
    monkeypatch.setenv("KAOWU_STAFF_ID", "authority-7")
    path = tmp_path / "2027.yml"
    path.write_text(TEXT_2027, encoding="utf-8")
    fake = FakeServices({("verification", "load_rules"): load_rules})
    result = run(fake, ["rules", "load", "2027", str(path), "--reason", "2027年度公告"])
    assert result.exit_code == 0, result.output
    assert fake.calls == [("verification", "load_rules", (
        {"staff_id": "authority-7"}, {"exam_year": 2027, "yaml": TEXT_2027, "reason": "2027年度公告"}))]
    assert "Loaded 报考条件 2027 as version 1" in result.stdout
    assert "本科" in result.stdout and "L1 一级" in result.stdout


def test_rules_load_of_the_rules_in_force_says_unchanged(tmp_path):
    path = tmp_path / "2026.yml"
    path.write_text(TEXT, encoding="utf-8")
    fake = FakeServices({("verification", "load_rules"): lambda who, data: view(TEXT, 3, False)})
    result = run(fake, ["rules", "load", "2026", str(path)])
    assert result.exit_code == 0 and "Unchanged" in result.stdout and "version 3" in result.stdout


def test_a_bad_rules_document_lists_every_problem_and_dry_run_sends_nothing(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(TEXT.replace("硕士:     {science_engineering: 1, other: 2}",
                                 "硕士:     {science_engineering: x}"), encoding="utf-8")
    fake = FakeServices({("verification", "load_rules"): load_rules})
    result = run(fake, ["rules", "load", "2027", str(path)])
    assert result.exit_code == 1
    for where in ("exam_year", "levels.L1.years.硕士.science_engineering",
                  "levels.L1.years.硕士.other"):
        assert where in result.stderr, result.stderr
    assert "Traceback" not in result.output
    dry = run(FakeServices(), ["rules", "load", "--dry-run", "2027", str(path)])
    assert dry.exit_code == 1 and "levels.L1.years.硕士.other" in dry.stderr
    good = tmp_path / "good.yml"
    good.write_text(TEXT_2027, encoding="utf-8")
    ok = run(FakeServices(), ["rules", "load", "--dry-run", "2027", str(good)])
    assert ok.exit_code == 0 and "nothing loaded" in ok.stdout


def test_a_file_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    path = tmp_path / "gbk.yml"
    path.write_bytes(TEXT.encode("gbk"))
    result = run(FakeServices(), ["rules", "load", "2026", str(path)])
    assert result.exit_code == 1 and "not a UTF-8 text file" in result.stderr
    assert "Traceback" not in result.output


def test_rules_show_prints_the_table_and_the_versions_or_the_yaml():
    fake = FakeServices({("verification", "get_rules"): lambda year, version: view(TEXT_2027)})
    result = run(fake, ["rules", "show", "2027"])
    assert result.exit_code == 0, result.output
    assert fake.calls == [("verification", "get_rules", (2027, None))]
    assert "报考条件 2027 (version 1, in force" in result.stdout
    assert "authority-7" in result.stdout and "shipped" in result.stdout
    as_yaml = run(fake, ["rules", "show", "2027", "--version", "1", "--yaml"])
    assert as_yaml.stdout == TEXT_2027 and fake.calls[-1][2] == (2027, 1)


def test_rules_show_of_a_year_without_rules_is_a_refusal_not_a_traceback():
    from shared.errors import NotFound

    def missing(year, version):
        raise NotFound("2031年度没有报考条件，请先加载", {"exam_year": "no rules"})

    result = run(FakeServices({("verification", "get_rules"): missing}), ["rules", "show", "2031"])
    assert result.exit_code == 1 and "2031年度没有报考条件" in result.stderr


def test_rules_list():
    fake = FakeServices({("verification", "list_rules"): [
        {"exam_year": 2027, "version": 1, "source": "authority", "levels": ["L1", "L2"],
         "loaded_by": "authority-7", "loaded_at": "2026-11-02T02:00:00+00:00"},
        {"exam_year": 2026, "version": 0, "source": "shipped", "levels": ["L1", "L2"],
         "loaded_by": None, "loaded_at": None}]})
    result = run(fake, ["rules", "list"])
    assert result.exit_code == 0 and "2027" in result.stdout and "shipped" in result.stdout
