"""The other commands, over a fake RPC layer: argument parsing, summaries, refusals."""

import time

import pytest
from typer.testing import CliRunner

from cli import rebuild as rb
from cli.main import State, app
from cli.scores import row_problems
from shared.errors import Refused, ValidationFailed
from shared.session import REFERENCE_SESSION_PATH, parse_session
from tests.unit.test_cli_rpc import FakeServices


def run(fake, args, **kw):
    return CliRunner().invoke(app, args, obj=State(client_factory=fake.factory), **kw)


# -- session load --------------------------------------------------------------------------

def _load_session(data):
    doc = parse_session(data["yaml"])  # the service's own check
    return {"session_id": doc.session_id, "name": doc.name, "phase": None,
            "windows": {n: {"label": n, "start": w.start.isoformat(), "end": w.end.isoformat()}
                        for n, w in doc.windows.items()}}


def test_session_load_prints_the_timetable(tmp_path):
    fake = FakeServices({("registration", "load_session"): _load_session})
    result = run(fake, ["session", "load", str(REFERENCE_SESSION_PATH)])
    assert result.exit_code == 0, result.output
    assert "Loaded 2026-shanghai-jiliang" in result.stdout and "confirmation" in result.stdout
    assert fake.calls[0][2][0]["yaml"] == REFERENCE_SESSION_PATH.read_text("utf-8")


BAD = (REFERENCE_SESSION_PATH.read_text("utf-8")
       .replace("exam_year: 2026", "exam_year: twenty")
       .replace('confirmation:     {start: "2026-04-17 10:00"', 'confirmation:     {start: "2026-02-30 10:00"')
       .replace("full_marks: 120}", "full_marks: -1}", 1))


def test_a_bad_session_document_lists_every_problem_with_its_path(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(BAD, encoding="utf-8")
    fake = FakeServices({("registration", "load_session"): _load_session})
    result = run(fake, ["session", "load", str(path)])
    assert result.exit_code == 1
    err = result.stderr
    assert "problem(s)" in err
    for where in ("exam_year", "windows.confirmation.start", "subjects"):
        assert where in err, err
    assert "Traceback" not in result.output
    # the same check runs locally with --dry-run, and nothing is sent
    dry = run(FakeServices(), ["session", "load", "--dry-run", str(path)])
    assert dry.exit_code == 1 and "windows.confirmation.start" in dry.stderr


def test_a_missing_file_is_a_usage_error():
    result = run(FakeServices(), ["session", "load", "/nonexistent.yml"])
    assert result.exit_code == 2


# -- spot check ------------------------------------------------------------------------------

def test_spot_check_draws_as_the_authority_and_summarizes(monkeypatch):
    monkeypatch.setenv("KAOWU_STAFF_ID", "authority-7")
    fake = FakeServices({("verification", "draw_spot_check"): lambda who, data: {
        "draw_id": "d1", "population": 4, "selected": ["s.a", "s.b"], "seed": data["seed"],
        "rate": data["rate"], "by": who["staff_id"]}})
    result = run(fake, ["spot-check", "--session", "s", "--rate", "0.5", "--seed", "2026"])
    assert result.exit_code == 0, result.output
    assert fake.calls == [("verification", "draw_spot_check",
                           ({"staff_id": "authority-7"}, {"session_id": "s", "rate": 0.5, "seed": 2026}))]
    assert "drew 2 of 4" in result.stdout and "s.a" in result.stdout
    assert "2 passed through" in result.stdout
    result = run(fake, ["spot-check", "--session", "s", "--rate", "0.5", "--seed", "1", "--as", "x9"])
    assert fake.calls[-1][2][0] == {"staff_id": "x9"}


def test_spot_check_outside_its_window_says_which_window():
    def refuse(who, data):
        raise Refused("Drawing the spot check is possible only in 抽查复核 (spot_check) …",
                      {"window": "spot_check"})
    result = run(FakeServices({("verification", "draw_spot_check"): refuse}),
                 ["spot-check", "--session", "s", "--rate", "0.5", "--seed", "1"])
    assert result.exit_code == 1
    assert "refused (refused)" in result.stderr and "window: spot_check" in result.stderr


def test_spot_check_needs_its_options():
    assert run(FakeServices(), ["spot-check", "--session", "s"]).exit_code == 2


# -- scores ------------------------------------------------------------------------------------

def test_row_problems_are_sorted_by_row():
    rows = row_problems({"row 12": "score 130 is out of range", "row 3": "unknown ticket 'X'",
                         "more": "5 more rows have problems", "csv": "empty"})
    assert rows == [(None, "csv", "empty"), (None, "more", "5 more rows have problems"),
                    (3, "", "unknown ticket 'X'"), (12, "", "score 130 is out of range")]


def test_a_refused_score_file_is_reported_row_by_row(tmp_path):
    sheet = tmp_path / "scores.csv"
    sheet.write_text("ticket_number,subject,score\nX,L1-LAW,70\nY,L1-LAW,130\n", encoding="utf-8")

    def refuse(who, data):
        assert data["filename"] == "scores.csv" and data["csv"].startswith("ticket_number")
        raise ValidationFailed("scores.csv: 2 problem(s) in 2 row(s); nothing was imported.",
                               {"row 2": "unknown ticket 'X'", "row 3": "score 130 is out of range"})

    result = run(FakeServices({("scoring", "import_scores"): refuse}),
                 ["scores", "import", str(sheet), "--session", "s"])
    assert result.exit_code == 1
    err = result.stderr
    assert err.index("unknown ticket") < err.index("out of range")
    assert "nothing imported" in err


def test_score_import_and_publication_summaries(tmp_path):
    sheet = tmp_path / "scores.csv"
    sheet.write_text("ticket_number,subject,score\n", encoding="utf-8")
    fake = FakeServices({
        ("scoring", "import_scores"): {"import_id": "i1", "rows": 9, "candidates": 3},
        ("scoring", "publish_scores"): lambda who, sid: {"session_id": sid, "candidates": 3,
                                                          "qualified": 2}})
    result = run(fake, ["scores", "import", str(sheet), "--session", "s", "--as", "a1"])
    assert result.exit_code == 0 and "rows" in result.stdout and "9" in result.stdout
    result = run(fake, ["scores", "publish", "--session", "s", "--as", "a1"])
    assert result.exit_code == 0 and "qualified" in result.stdout
    assert fake.calls[-1] == ("scoring", "publish_scores", ({"staff_id": "a1"}, "s"))


# -- staff ------------------------------------------------------------------------------------

SESSIONS = {("registration", "list_sessions"): [{"session_id": "s1", "name": "n", "exam_year": 2026}],
            ("registration", "get_session"): lambda sid: {
                "session_id": sid, "registration_points": {
                    "2916": {"name": "上海市计量测试技术研究院"}, "2917": {"name": "浦东报名点"}}}}


def test_staff_add_asks_for_the_password_twice_hidden():
    fake = FakeServices({**SESSIONS, ("account", "create_staff"): lambda data: {
        "account_id": "f" * 32, "username": data["username"], "role": data["role"]}})
    result = run(fake, ["staff", "add", "--username", "zhou_2916", "--name", "周敏", "--role",
                        "staff", "--point", "2916"], input="Passw0rd!x\nPassw0rd!x\n")
    assert result.exit_code == 0, result.output
    assert "Passw0rd" not in result.output  # hidden
    assert result.output.count("Password") >= 1 and "Repeat" in result.output
    sent = fake.calls[-1][2][0]
    assert sent == {"username": "zhou_2916", "password": "Passw0rd!x", "name": "周敏",
                    "role": "staff", "registration_point": "2916"}


def test_staff_add_with_mismatched_passwords_asks_again():
    fake = FakeServices({("account", "create_staff"): {"account_id": "1"}})
    result = run(fake, ["staff", "add", "--username", "auth_1", "--name", "李", "--role",
                        "authority"], input="Passw0rd1\nother1234\nPassw0rd1\nPassw0rd1\n")
    assert result.exit_code == 0, result.output
    assert fake.calls[0][2][0]["registration_point"] is None


@pytest.mark.parametrize("args, words", [
    (["--role", "boss"], "--role must be one of"),
    (["--role", "staff"], "need --point"),
])
def test_staff_add_refuses_bad_roles_before_asking(args, words):
    fake = FakeServices()
    result = run(fake, ["staff", "add", "--username", "u_123", "--name", "n", *args])
    assert result.exit_code == 1 and words in result.stderr and not fake.calls


def test_staff_add_against_an_account_service_without_it():
    result = run(FakeServices(), ["staff", "add", "--username", "u_123", "--name", "n", "--role",
                                  "operator"], input="Passw0rd1\nPassw0rd1\n")
    assert result.exit_code == 1
    assert "has no create_staff() here" in result.stderr


# -- dead letters ----------------------------------------------------------------------------

class FakeDeadLetters:
    def __init__(self):
        self.letters = [{"kind": "poison", "consumer": "registration", "upstream": "account",
                         "position": 7, "type": "ProfileUpdated", "error": "KeyError: 'x'",
                         "at": 1.0},
                        {"kind": "undecodable", "queue": "evt-account--registration", "bytes": 5,
                         "content_type": "text/plain", "preview": "13912345678", "error": "bad"}]

    def counts(self, uri):
        return {"kaowu.dead-letters": len(self.letters)}

    def peek(self, uri, limit=50):
        return self.letters[:limit]

    def replay(self, uri, call, limit=None, on_each=None):
        done = failed = 0
        for letter in list(self.letters)[:limit]:
            try:
                outcome = call(letter.get("consumer") or "x", "replay_dead_letter",
                               (letter.get("upstream"), letter.get("position")))
                done += 1
                self.letters.remove(letter)
            except Exception as exc:
                outcome = exc
                failed += 1
            on_each(letter, outcome)
        return {"replayed": done, "failed": failed}


def test_dlq_list_show_and_replay(monkeypatch):
    dl = FakeDeadLetters()
    monkeypatch.setattr("cli.main._deadletter_module", lambda: dl)
    fake = FakeServices({("registration", "replay_dead_letter"): lambda up, pos: {"applied": True}})
    listed = run(fake, ["dlq", "list"])
    assert listed.exit_code == 0 and "kaowu.dead-letters: 2" in listed.stdout
    assert "registration ← account #7" in listed.stdout
    shown = run(fake, ["dlq", "show", "-n", "5"])
    assert "13912345678" not in shown.stdout and "139****5678" in shown.stdout
    replayed = run(fake, ["dlq", "replay", "--yes"])
    assert "replayed 1, still failing 1" in replayed.stdout and replayed.exit_code == 1
    assert ("registration", "replay_dead_letter", ("account", 7)) in fake.calls


def test_dlq_replay_asks_first(monkeypatch):
    monkeypatch.setattr("cli.main._deadletter_module", lambda: FakeDeadLetters())
    result = run(FakeServices(), ["dlq", "replay"], input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output


def test_dlq_without_the_module_says_it_is_not_available(monkeypatch):
    monkeypatch.setattr("cli.main._deadletter_module", lambda: None)
    result = run(FakeServices(), ["dlq", "list"])
    assert result.exit_code == 1 and "not available" in result.stderr


# -- rebuild ---------------------------------------------------------------------------------

def _rebuilding_services(report_progress: bool):
    state = {"polls": 0}

    def status():
        state["polls"] += 1
        out = {"service": "verification", "head": 200, "projections": {"verification": 200}}
        if report_progress and state.get("running"):
            out["rebuilding"] = {"verification": {"position": min(50 * state["polls"], 200),
                                                  "head": 200}}
        return out

    def rebuild(projection):
        state["running"] = True
        time.sleep(0.5)
        state["running"] = False
        return {"verification": 200}

    return FakeServices({("verification", "status"): status,
                         ("verification", "rebuild"): rebuild})


@pytest.mark.parametrize("report_progress", [True, False])
def test_rebuild_runs_in_the_background_and_polls_status(report_progress):
    fake = _rebuilding_services(report_progress)
    seen = []
    result = rb.rebuild("verification", None, fake.factory, seen.append, interval=0.05)
    assert result.replayed == {"verification": 200} and result.head_before == 200
    assert result.polls >= 2
    positions = [p.position for batch in seen for p in batch if not p.done]
    if report_progress:
        assert result.progress_seen and any(x is not None and x < 200 for x in positions)
    else:
        assert set(positions) == {None}  # nothing to say but "running"
    assert seen[-1][0].done and seen[-1][0].position == 200
    assert fake.clients >= 2  # the rebuild has a client of its own


def test_rebuild_command_prints_a_summary():
    result = run(_rebuilding_services(True), ["rebuild", "verification"])
    assert result.exit_code == 0, result.output
    assert "verification: rebuilt in" in result.stdout and "200" in result.stdout


def test_rebuild_of_an_unknown_projection_names_the_ones_there_are():
    result = run(_rebuilding_services(False), ["rebuild", "verification", "-p", "cases"])
    assert result.exit_code == 1
    assert "no projection 'cases'; it has: verification" in result.stderr


# -- demo --------------------------------------------------------------------------------------

def test_demo_refuses_windows_under_two_seconds():
    result = run(FakeServices(), ["demo", "--minutes-per-window", "0.02"])
    assert result.exit_code == 1 and "at least 2 seconds" in result.stderr


def test_demo_without_the_core_services_says_which_are_missing():
    fake = FakeServices({("account", "status"): {"head": 0}}, down={"registration", "verification"})
    result = run(fake, ["demo", "-n", "2"])
    assert result.exit_code == 1
    assert "not answering: registration, verification" in result.stderr


def test_rebuild_progress_is_read_from_what_status_says():
    names = ["a", "b", "c"]
    status = {"head": 100, "projections": {"a": 100, "b": 40, "c": 100},
              "rebuilding": {"a": {"position": 70, "head": 100}}}
    assert rb.reported(status, names, 100) == {"a": 70, "b": 40, "c": None}


# -- files that are not UTF-8 ------------------------------------------------------------------

@pytest.mark.parametrize("command", [["session", "load"], ["session", "load", "--dry-run"],
                                     ["scores", "import", "--session", "s"]])
def test_a_file_that_is_not_utf8_is_one_clear_line_not_a_traceback(tmp_path, command):
    sheet = tmp_path / "成绩.csv"
    sheet.write_bytes("准考证号,科目,成绩\n".encode("gbk"))  # as Excel saves it on a Chinese PC
    fake = FakeServices({("scoring", "import_scores"): {}, ("registration", "load_session"): {}})
    result = run(fake, [*command[:2], str(sheet), *command[2:]])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "is not UTF-8" in result.stderr and "iconv -f GBK -t UTF-8" in result.stderr
    assert not fake.calls  # nothing sent


def test_a_session_document_with_a_utf8_bom_loads(tmp_path):
    fake = FakeServices({("registration", "load_session"): _load_session})
    path = tmp_path / "s.yml"
    path.write_bytes(b"\xef\xbb\xbf" + REFERENCE_SESSION_PATH.read_bytes())
    result = run(fake, ["session", "load", str(path)])
    assert result.exit_code == 0, result.output
    assert not fake.calls[0][2][0]["yaml"].startswith("\ufeff")
