"""The ``kaowu`` operator commands against real services (account, registration,
verification) in a ServiceRunner on a fresh vhost and fresh PostgreSQL databases, invoked
through Typer's CliRunner with AMQP_URI pointing at the test's vhost.

One short season gives the logs something to say: two candidates register and complete
their profiles, one applies with the commitment (auto check passes), one without (proof
requested). Then: status (all up; one down after stopping it), events (filters, JSON,
masking), rebuild (progress, summary, the read model equals the one before), history of
one candidate (across the three logs, in time order, ID number masked), and session load
of a bad document (every problem listed with its path)."""

import json
import time
from datetime import datetime, timedelta

import pytest
from nameko.testing.services import entrypoint_hook
from typer.testing import CliRunner

from cli.main import app
from services.account.service import AccountService
from services.registration.service import RegistrationService
from services.verification.service import VerificationService
from shared.clock import SHANGHAI, ControlledClock
from shared.dependencies import EventStoreProvider
from shared.projection import snapshot
from shared.session import REFERENCE_SESSION_PATH
from tests.integration.test_account_flow import jpeg
from tests.support import CATCH_UP, DEADLINE, wait_for

pytestmark = pytest.mark.integration

SESSION = "2026-shanghai-jiliang"
WANG = ("王建国", "310104198805123455", "102471201005001234", "本科")
ZHOU = ("周婷", "310104199502210062", "140671201606001105", "大专")


class World:
    def __init__(self, runner, amqp_uri, clock):
        self.runner, self.amqp_uri, self.clock = runner, amqp_uri, clock
        self.accounts = {}

    def container(self, name):
        return next(c for c in self.runner.containers if c.service_name == name)

    def store(self, name):
        return next(d for d in self.container(name).dependencies
                    if isinstance(d, EventStoreProvider)).store

    def call(self, service, method, *args):
        with entrypoint_hook(self.container(service), method) as hook:
            return hook(*args)

    def kaowu(self, *args, input=None):
        return CliRunner().invoke(app, list(args), env={"AMQP_URI": self.amqp_uri, "COLUMNS": "200"},
                                  input=input)

    def wait(self, predicate, timeout=15):
        return wait_for(predicate, timeout)

    def candidate(self, person, mobile):
        name, id_number, cert, level = person
        account_id = self.call("account", "register", {
            "name": name, "id_type": "resident_id", "id_number": id_number, "mobile": mobile,
            "username": f"u{id_number[-6:]}", "password": "pass2026word"})["account_id"]
        birth = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
        for section, data in {
            "photo": {"jpeg_base64": jpeg()},
            "basic": {"gender": "M" if int(id_number[16]) % 2 else "F", "birth_date": birth,
                      "ethnicity": "汉族"},
            "education": {"education": [{"level": level, "school": "某大学", "major": "测控",
                                         "major_category": "science_engineering",
                                         "graduated_on": "2006-07-01", "certificate_no": cert}]},
            "work": {"entries": [{"employer": "上海市计量测试技术研究院", "position": "工程师",
                                  "start": "2008-01-01", "end": None, "metrology": True}]},
            "contact": {"email": f"u{id_number[-6:]}@example.com", "address": "上海市徐汇区"},
        }.items():
            self.call("account", "update_profile_section", account_id, section, data)
        self.accounts[name] = account_id
        return account_id


@pytest.fixture(scope="module")
def world(module_amqp_uri, databases, module_factories):
    """Built once for the module; the test that stops a service runs last."""
    amqp_uri = module_amqp_uri
    clock = ControlledClock(datetime(2026, 4, 7, 10, 30, tzinfo=SHANGHAI))
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("cli") + "_{service}",
              "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "DEADLINE_INTERVAL": DEADLINE,
              "max_workers": 10, "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024}}
    make_runner, _ = module_factories
    # killed, not stopped, at the end: with verification stopped, registration's catch-up
    # waits on it
    runner = make_runner(config, AccountService, RegistrationService, VerificationService)
    runner.start()
    return _season(World(runner, amqp_uri, clock))


def _season(w):
    w.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    wang, zhou = w.candidate(WANG, "13900000001"), w.candidate(ZHOU, "13900000002")
    w.wait(lambda: all(_complete(w, a) for a in (wang, zhou)))
    for account_id, name, commitment in ((wang, "王建国", True), (zhou, "周婷", False)):
        w.call("registration", "submit_application", account_id, {
            "session_id": SESSION, "level": "L1", "registration_point": "2916",
            "commitment": ({"pledge_version": "2026-v1", "signed_name": name, "agreed": True}
                           if commitment else None)})
    w.wait(lambda: w.call("registration", "get_application", wang, SESSION)["status"] == "auto_passed"
           and w.call("registration", "get_application", zhou, SESSION)["status"] == "proof_requested")
    return w


def _complete(w, account_id):
    try:
        return w.call("registration", "get_candidate", account_id)["complete"]
    except Exception:
        return False


def test_events_are_filtered_and_masked(world):
    w = world
    wang = w.accounts["王建国"]
    result = w.kaowu("events", "account", "--type", "AccountRegistered")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all("AccountRegistered" in x for x in lines)
    assert WANG[1] not in result.stdout and "**************3455" in result.stdout
    assert "13900000001" not in result.stdout and "139****0001" in result.stdout

    by_stream = w.kaowu("events", "registration", "--stream", f"application-{SESSION}.{wang}",
                        "--json")
    events = [json.loads(x) for x in by_stream.stdout.strip().splitlines()]
    assert events and {e["stream_id"] for e in events} == {f"application-{SESSION}.{wang}"}
    assert events[0]["type"] == "ApplicationSubmitted"
    assert events[0]["payload"]["candidate"]["id_number"] == "**************3455"

    profile = w.kaowu("events", "account", "--type", "ProfileUpdated", "--json")
    contacts = [e["payload"]["data"] for e in map(json.loads, profile.stdout.strip().splitlines())
                if e["payload"]["section"] == "contact"]
    assert contacts and f"u{WANG[1][-6:]}@example.com" not in profile.stdout
    assert all(c["email"] == "u***@example.com" and c["address"] != "上海市徐汇区"
               for c in contacts)  # the one rule (shared.masking), as /api/ops/events shows

    head = w.store("verification").head()
    tail = w.kaowu("events", "verification", "--after", str(head - 1))
    assert len(tail.stdout.strip().splitlines()) == 1
    paged = w.kaowu("events", "account", "-n", "3")
    assert len(paged.stdout.strip().splitlines()) == 3 and "--after" in paged.stderr


def test_rebuild_with_progress_gives_the_same_read_model(world):
    w = world
    store = w.store("registration")
    projection = store.projections[0]
    before = snapshot(store.engine, projection)
    result = w.kaowu("rebuild", "registration")
    assert result.exit_code == 0, result.output
    head = store.head()
    assert "registration: rebuilt in" in result.stdout
    assert f"registration/{projection.name}" in result.stdout  # the progress line
    assert f"log head {head} before" in result.stdout
    assert snapshot(store.engine, projection) == before

    bad = w.kaowu("rebuild", "registration", "--projection", "nope")
    assert bad.exit_code == 1 and "no projection 'nope'" in bad.stderr


def test_history_of_one_candidate_across_the_logs(world):
    w = world
    wang = w.accounts["王建国"]
    logs = ("-s", "account", "-s", "registration", "-s", "verification")  # the ones running
    result = w.kaowu("history", WANG[1], *logs)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert WANG[1] not in out and "ID number **************3455" in out
    assert f"account {wang}" in out and f"{SESSION}.{wang}" in out
    lines = [x for x in out.splitlines() if x.startswith(("account ", "registration ",
                                                          "verification "))]
    types = [x.split()[4] for x in lines]
    for expected in ("AccountRegistered", "ProfileCompleted", "ApplicationSubmitted",
                     "CaseOpened", "AutoCheckPassed"):
        assert expected in types, types
    assert types.index("AccountRegistered") < types.index("ApplicationSubmitted") \
        < types.index("AutoCheckPassed")
    assert {x.split()[0] for x in lines} == {"account", "registration", "verification"}
    assert w.accounts["周婷"] not in out  # nobody else's story
    assert "scanned" in out and "in 3 service logs" in out
    # a log that cannot be read makes the history incomplete: said, and exit status 1
    partial = w.kaowu("history", WANG[1], *logs, "-s", "scoring")
    assert partial.exit_code == 1 and "scoring's log could not be read" in partial.stderr
    # by application id, the same story
    by_app = w.kaowu("history", f"{SESSION}.{wang}", *logs)
    assert by_app.exit_code == 0 and by_app.stdout.count("\n") == out.count("\n")


def test_loading_a_bad_session_document_lists_every_problem(world, tmp_path):
    w = world
    bad = tmp_path / "bad-session.yml"
    bad.write_text(REFERENCE_SESSION_PATH.read_text("utf-8")
                   .replace("session_id: 2026-shanghai-jiliang", "session_id: 2026-bad")
                   .replace("exam_year: 2026", "exam_year: twenty")
                   .replace('spot_check:       {start: "2026-04-15"', 'spot_check:       {start: "2026-04-31"'),
                   encoding="utf-8")
    result = w.kaowu("session", "load", str(bad))
    assert result.exit_code == 1
    assert "exam_year" in result.stderr and "windows.spot_check.start" in result.stderr
    assert "Traceback" not in result.output
    assert [s["session_id"] for s in w.call("registration", "list_sessions")] == [SESSION]
    again = w.kaowu("session", "load", str(REFERENCE_SESSION_PATH))
    assert again.exit_code == 1 and "refused" in again.stderr  # scheduled once


def test_a_file_that_is_not_utf8_is_refused_in_one_line(world, tmp_path):
    w = world
    gbk = tmp_path / "成绩.csv"
    gbk.write_bytes("ticket_number,subject,score\n准考证,L1-LAW,70\n".encode("gbk"))
    doc = tmp_path / "session.yml"
    doc.write_bytes(REFERENCE_SESSION_PATH.read_text("utf-8").encode("gbk", errors="replace"))
    for args in (["scores", "import", str(gbk), "--session", SESSION],
                 ["session", "load", str(doc)]):
        result = w.kaowu(*args)
        assert result.exit_code == 1, result.output
        assert "is not UTF-8 text" in result.stderr and "iconv -f GBK -t UTF-8" in result.stderr
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_staff_add_shows_the_password_rule_and_checks_the_point(world):
    w = world
    weak = w.kaowu("staff", "add", "--username", "wang_2916", "--name", "王老师", "--role", "staff",
                   "--point", "2916", input="12345678\n12345678\n")
    assert weak.exit_code == 1, weak.output
    assert "password: a password needs at least one letter and one digit" in weak.stderr
    assert "12345678" not in weak.output and "Traceback" not in weak.output
    unknown = w.kaowu("staff", "add", "--username", "wang_2916", "--name", "王老师", "--role",
                      "staff", "--point", "29160")
    assert unknown.exit_code == 1
    assert "unknown registration point '29160'; the loaded sessions have: 2916 " in unknown.stderr
    made = w.kaowu("staff", "add", "--username", "wang_2916", "--name", "王老师", "--role", "staff",
                   "--point", "2916", input="wang2916pass\nwang2916pass\n")
    assert made.exit_code == 0, made.output
    assert [s["registration_point"] for s in w.call("account", "list_staff")
            if s["username"] == "wang_2916"] == ["2916"]


def test_session_list_show_and_amend(world):
    w = world
    listed = w.kaowu("session", "list")
    assert listed.exit_code == 0 and SESSION in listed.stdout and "application" in listed.stdout
    shown = w.kaowu("session", "show", SESSION)
    assert shown.exit_code == 0, shown.output
    assert "2026-04-17 10:00" in shown.stdout  # confirmation opens, Asia/Shanghai
    typo = w.kaowu("session", "show", "2026-shanghai")
    assert typo.exit_code == 1 and f"the loaded sessions are: {SESSION}" in typo.stderr

    before = w.call("registration", "get_session", SESSION)["windows"]["confirmation"]
    bad = w.kaowu("session", "amend", SESSION, "-w", "confirmation", "--start", "2026-03-01 10:00",
                  "--end", "2026-03-02 10:00", "--reason", "测试", "-y")
    assert bad.exit_code == 1 and "refused" in bad.stderr and "Traceback" not in bad.output
    assert w.call("registration", "get_session", SESSION)["windows"]["confirmation"] == before

    end = datetime.fromisoformat(before["end"]).astimezone(SHANGHAI)
    later = (end + timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    start = datetime.fromisoformat(before["start"]).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    amended = w.kaowu("session", "amend", SESSION, "-w", "confirmation", "--start", start,
                      "--end", later, "--reason", "系统维护，延长一天", "-y")
    assert amended.exit_code == 0, amended.output
    assert f"to {start} – {later}" in amended.stdout
    now = w.call("registration", "get_session", SESSION)["windows"]["confirmation"]
    assert datetime.fromisoformat(now["end"]) == end + timedelta(days=1)


def test_status_counts_the_gateway_and_typos_list_the_services(world, monkeypatch):
    w = world
    monkeypatch.setenv("KAOWU_GATEWAY_URL", "http://127.0.0.1:9")  # nothing listens there
    result = w.kaowu("status", "account", "gateway", "--wait", "2")
    assert result.exit_code == 1
    assert "gateway" in result.stdout and "no answer at http://127.0.0.1:9/health/ready" in result.stdout
    assert "1 of 2 services down: gateway" in result.stdout
    typo = w.kaowu("events", "registraton")
    assert typo.exit_code == 1 and "did you mean registration?" in typo.stderr


def test_status_shows_the_services_up_and_one_down_after_stopping_it(world):
    w = world
    # caught up on both upstreams, as its status() counts it (the earlier tests' new staff
    # among them: events it passes over)
    w.wait(lambda: all(w.call("registration", "status")["tracking"].get(up, 0)
                       == w.store(up).head() for up in ("verification", "account")))
    result = w.kaowu("status", "account", "registration", "verification", "--wait", "2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "all 3 services up" in out and "DOWN" not in out
    head = w.store("account").head()
    assert f"│ account      │ up    │ {head:>8} │" in out
    assert "account: 0" in out  # registration has applied every account event
    as_json = json.loads(w.kaowu("status", "--json", "account", "registration").stdout)
    reg = next(s for s in as_json["services"] if s["service"] == "registration")
    assert reg["up"] and reg["head"] == w.store("registration").head()
    assert {c["upstream"]: c["upstream_head"] for c in reg["consumers"]}["account"] == head

    w.container("verification").stop()
    started = time.monotonic()
    result = w.kaowu("status", "account", "registration", "verification", "--wait", "1")
    assert time.monotonic() - started < 10  # a down service costs one timeout, not a hang
    assert result.exit_code == 1
    out = result.stdout
    assert "verification │ DOWN" in out and "did not answer status() within 1 s" in out
    assert "1 of 3 services down: verification" in out
    assert "verification: ? (upstream down)" in out  # registration's lag behind it: unknown
