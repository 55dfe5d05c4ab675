"""Operator commands over a fake RPC layer: staff accounts (the password rule shown, the
registration point checked), the gateway in ``kaowu status``, service names checked, and
``kaowu session list | show | amend``."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from typer.testing import CliRunner

from cli import status as st
from cli.main import State, app
from shared.errors import NotFound, Refused, ValidationFailed
from shared.session import REFERENCE_SESSION_PATH, parse_session
from tests.unit.test_cli_rpc import FakeServices
from tests.unit.test_cli_status import ANSWERS

DOC = parse_session(REFERENCE_SESSION_PATH.read_text("utf-8"))
SID = DOC.session_id


def run(fake, args, gateway=None, **kw):
    return CliRunner().invoke(app, args, obj=State(client_factory=fake.factory,
                                                   gateway_probe=gateway), **kw)


def session_answer(doc=DOC, phase=None):
    return {"session_id": doc.session_id, "name": doc.name, "exam_year": doc.exam_year,
            "windows": {n: {"label": n, "start": w.start.isoformat(), "end": w.end.isoformat()}
                        for n, w in doc.windows.items()},
            "levels": {c: {"name": lv.name, "subjects": list(lv.subjects)}
                       for c, lv in doc.levels.items()},
            "registration_points": {c: {"name": p.name, "address": p.address, "phone": p.phone}
                                    for c, p in doc.points.items()},
            "phase": phase}


def _get_session(sid):
    if sid != SID:
        raise NotFound("No such exam session.", {"session_id": sid})
    return session_answer()


REGISTRATION = {("registration", "list_sessions"): [{"session_id": SID, "name": DOC.name,
                                                     "exam_year": DOC.exam_year}],
                ("registration", "get_session"): _get_session}
POINTS = sorted(DOC.points)


# -- staff add ---------------------------------------------------------------------------------

def _weak(data):
    raise ValidationFailed("Some fields are not valid.",
                           {"password": ["a password needs at least one letter and one digit"]})


def test_a_weak_password_shows_the_rule_never_the_password():
    fake = FakeServices({**REGISTRATION, ("account", "create_staff"): _weak})
    result = run(fake, ["staff", "add", "--username", "wang_1", "--name", "王老师", "--role",
                        "staff", "--point", POINTS[0]], input="12345678\n12345678\n")
    assert result.exit_code == 1
    assert "password: a password needs at least one letter and one digit" in result.stderr
    assert "***" not in result.stderr and "12345678" not in result.output
    assert "Traceback" not in result.output
    # the rule is said before the password is asked for
    assert "at least one letter and one digit" in result.stdout


def test_a_weak_password_is_asked_again_and_three_end_the_command():
    made = []
    fake = FakeServices({**REGISTRATION, ("account", "create_staff"): lambda data: made.append(data)
                         or {"account_id": "a1"}})
    args = ["staff", "add", "--username", "wang2916", "--name", "王老师", "--role", "staff",
            "--point", POINTS[0]]
    result = run(fake, args, input="12345678\n12345678\nWANG2916\nWANG2916\nwang2916pass\nwang2916pass\n")
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "password: a password needs at least one letter and one digit; try again" in err
    assert "password: the password must not be the same as the username; try again" in err
    assert [d["password"] for d in made] == ["wang2916pass"]
    assert "12345678" not in result.output and "wang2916pass" not in result.output
    three = run(fake, args, input="12345678\n12345678\n" * 3)
    assert three.exit_code == 1 and len(made) == 1


@pytest.mark.parametrize("args, words", [
    (["--username", "w a", "--name", "王老师"], "username: a username is 4–32 letters"),
    (["--username", "wang_1", "--name", " "], "name: "),
])
def test_a_bad_username_or_name_is_refused_before_the_password_is_asked(args, words):
    fake = FakeServices({**REGISTRATION, ("account", "create_staff"): {}})
    result = run(fake, ["staff", "add", *args, "--role", "staff", "--point", POINTS[0]])
    assert result.exit_code == 1 and words in result.stderr
    assert "Password" not in result.output and not fake.calls


def test_a_refusal_that_would_echo_the_password_does_not():
    def echo(data):
        raise ValidationFailed(f"Bad: {data['password']}", {"password": f"{data['password']} is weak"})

    fake = FakeServices({("account", "create_staff"): echo})
    result = run(fake, ["staff", "add", "--username", "op_1", "--name", "运维", "--role",
                        "operator"], input="Secret99x\nSecret99x\n")
    assert result.exit_code == 1 and "Secret99x" not in result.output
    assert "password: *** is weak" in result.stderr


def test_an_unknown_registration_point_is_refused_listing_the_known_ones():
    fake = FakeServices({**REGISTRATION, ("account", "create_staff"): {}})
    result = run(fake, ["staff", "add", "--username", "wang_1", "--name", "王老师", "--role",
                        "staff", "--point", "29161"])
    assert result.exit_code == 1
    assert "unknown registration point '29161'" in result.stderr
    for code in POINTS:
        assert code in result.stderr and DOC.points[code].name in result.stderr
    assert not [c for c in fake.calls if c[1] == "create_staff"]
    assert "Password" not in result.output  # refused before asking


def test_a_point_without_any_session_loaded_says_to_load_one():
    fake = FakeServices({("registration", "list_sessions"): [], ("account", "create_staff"): {}})
    result = run(fake, ["staff", "add", "--username", "wang_1", "--name", "王老师", "--role",
                        "staff", "--point", "2916"])
    assert result.exit_code == 1 and "no exam session is loaded" in result.stderr


def test_a_point_for_a_role_without_one_is_refused():
    fake = FakeServices(REGISTRATION)
    result = run(fake, ["staff", "add", "--username", "auth_1", "--name", "李", "--role",
                        "authority", "--point", POINTS[0]])
    assert result.exit_code == 1 and "--point is for registration-point staff only" in result.stderr
    assert not fake.calls


# -- status: the gateway too ---------------------------------------------------------------

@pytest.fixture
def every_service(monkeypatch):
    monkeypatch.setattr("cli.main._dead_letter_counts", lambda state: ({}, None))
    monkeypatch.setattr(st, "known_services", lambda: ["account", "registration", "verification"])
    monkeypatch.setattr(st, "all_services", lambda: ["account", "registration", "verification",
                                                     "gateway"])
    return FakeServices({(s, "status"): a for s, a in ANSWERS.items()})


def test_status_counts_the_gateway_by_its_health(every_service):
    result = run(every_service, ["status"], gateway=lambda t: {"service": "gateway", "http": 200})
    assert result.exit_code == 0, result.output
    assert "gateway" in result.stdout and "all 4 services up" in result.stdout
    down = run(every_service, ["status"],
               gateway=lambda t: st.CliError("no answer at http://127.0.0.1:8000/health/ready"))
    assert down.exit_code == 1
    assert "1 of 4 services down: gateway" in down.stdout and "no answer at" in down.stdout
    only = run(every_service, ["status", "--json", "gateway"],
               gateway=lambda t: {"service": "gateway", "http": 200})
    assert json.loads(only.stdout)["services"] == [{
        "service": "gateway", "up": True, "error": None, "head": None, "relay_position": None,
        "relay_lag": None, "projections": {}, "consumers": []}]


class _Health(BaseHTTPRequestHandler):
    status, body = 200, b'{"status": "ok"}'

    def do_GET(self):
        assert self.path == "/health/ready"
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, body, up, words", [
    (200, b'{"status": "ok"}', True, None),
    (503, b'{"down": ["broker"], "checks": {}}', False, "answered 503: down: broker")])
def test_the_gateway_probe_reads_health_ready(status, body, up, words):
    handler = type("H", (_Health,), {"status": status, "body": body})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        got = st.probe_gateway(f"http://127.0.0.1:{server.server_port}", 2)
    finally:
        server.shutdown()
    assert isinstance(got, dict) is up
    if words:
        assert words in str(got)
    nobody = st.probe_gateway(f"http://127.0.0.1:{server.server_port}", 1)
    assert isinstance(nobody, Exception) and "no answer at" in str(nobody)


# -- service names -------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["events", "acount"], ["rebuild", "acount"],
                                  ["history", "11010519491231002X", "--service", "acount"],
                                  ["status", "acount"]])
def test_a_mistyped_service_lists_the_valid_names(args, monkeypatch):
    monkeypatch.setattr("cli.main._dead_letter_counts", lambda state: ({}, None))
    fake = FakeServices()
    result = run(fake, args)
    assert result.exit_code == 1, result.output
    err = result.stderr
    assert "no service 'acount' (did you mean account?)" in err
    assert "account, registration, verification, admission, scoring, certificate, notification" in err
    assert "not running" not in err and not fake.calls


# -- sessions ------------------------------------------------------------------------------------

def test_session_list_shows_each_session_and_what_is_open():
    result = run(FakeServices(REGISTRATION), ["session", "list"])
    assert result.exit_code == 0, result.output
    assert SID in result.stdout and str(DOC.exam_year) in result.stdout
    assert run(FakeServices({("registration", "list_sessions"): []}),
               ["session", "list"]).stdout.startswith("no exam session is loaded")


def test_session_show_prints_the_timetable_in_shanghai_time():
    result = run(FakeServices(REGISTRATION), ["session", "show", SID])
    assert result.exit_code == 0, result.output
    out = result.stdout
    w = DOC.windows["confirmation"]
    assert w.start.strftime("%Y-%m-%d %H:%M") in out  # the document's own local times
    assert "+08:00" not in out and "T" not in w.start.strftime("%Y-%m-%d %H:%M")
    for code in POINTS:
        assert code in out


def test_session_show_of_an_unknown_session_lists_the_loaded_ones():
    result = run(FakeServices(REGISTRATION), ["session", "show", "2026-shanghai"])
    assert result.exit_code == 1
    assert f"no exam session '2026-shanghai'; the loaded sessions are: {SID}" in result.stderr


def test_session_amend_sends_shanghai_times_and_shows_the_result():
    sent = []

    def amend(data):
        sent.append(data)
        return session_answer()

    fake = FakeServices({**REGISTRATION, ("registration", "amend_timetable"): amend})
    result = run(fake, ["session", "amend", SID, "--window", "confirmation", "--start",
                        "2026-04-18 10:00", "--end", "2026-04-25 16:00", "--reason", "系统维护",
                        "--yes"])
    assert result.exit_code == 0, result.output
    assert sent == [{"session_id": SID, "window": "confirmation",
                     "start": "2026-04-18T10:00:00+08:00", "end": "2026-04-25T16:00:00+08:00",
                     "reason": "系统维护"}]
    assert "Amended" in result.stdout and "2026-04-18 10:00 – 2026-04-25 16:00" in result.stdout


@pytest.mark.parametrize("args, words", [
    (["--window", "confirm"], "no window 'confirm' (did you mean confirmation?); the windows are: application"),
    (["--start", "18/04/2026"], "--start '18/04/2026' is not a time: write YYYY-MM-DD HH:MM"),
    (["--end", "2026-04-18 09:00"], "is not after --start"),
    (["--reason", "  "], "--reason must say why"),
])
def test_session_amend_refuses_bad_input_before_sending(args, words):
    base = {"--window": "confirmation", "--start": "2026-04-18 10:00",
            "--end": "2026-04-25 16:00", "--reason": "系统维护"}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    fake = FakeServices({**REGISTRATION, ("registration", "amend_timetable"): {}})
    result = run(fake, ["session", "amend", SID, *[x for kv in base.items() for x in kv], "-y"])
    assert result.exit_code == 1, result.output
    assert words in result.stderr
    assert not [c for c in fake.calls if c[1] == "amend_timetable"]


def test_session_amend_refused_by_the_service_says_why():
    def refuse(data):
        raise ValidationFailed("The amended timetable is not valid.",
                               {"windows.confirmation": "must start after verification ends"})

    fake = FakeServices({**REGISTRATION, ("registration", "amend_timetable"): refuse})
    result = run(fake, ["session", "amend", SID, "-w", "confirmation", "--start",
                        "2026-04-01 10:00", "--end", "2026-04-02 10:00", "--reason", "x", "-y"])
    assert result.exit_code == 1
    assert "windows.confirmation: must start after verification ends" in result.stderr


def test_session_amend_of_a_closed_window_shows_the_services_refusal():
    def refuse(data):
        raise Refused("核对确认 (confirmation) 窗口已于 2026-04-18 16:00:00 结束，不能再调整。The "
                      "confirmation window closed at 2026-04-18 16:00:00; a closed window cannot "
                      "be amended.", {"window": "已结束"}, code="window_closed")

    fake = FakeServices({**REGISTRATION, ("registration", "amend_timetable"): refuse})
    result = run(fake, ["session", "amend", SID, "-w", "confirmation", "--start",
                        "2026-04-17 10:00", "--end", "2026-04-20 16:00", "--reason", "x", "-y"])
    assert result.exit_code == 1
    assert "窗口已于 2026-04-18 16:00:00 结束，不能再调整" in result.stderr
    assert "Traceback" not in result.output and "Amended" not in result.stdout


def test_a_mistyped_event_type_is_refused_with_the_likeliest_meant():
    fake = FakeServices({("registration", "events_after"): []})
    result = run(fake, ["events", "registration", "--type", "ApplicationSubmited"])
    assert result.exit_code == 1
    assert "no event type 'ApplicationSubmited' (did you mean ApplicationSubmitted?)" in result.stderr
    assert not fake.calls
    fine = run(fake, ["events", "registration", "--type", "ApplicationSubmitted"])
    assert fine.exit_code == 0, fine.output


def test_an_empty_session_document_says_so(tmp_path):
    empty = tmp_path / "s.yml"
    empty.write_text("\n", encoding="utf-8")
    fake = FakeServices(REGISTRATION)
    result = run(fake, ["session", "load", str(empty)])
    assert result.exit_code == 1 and "is empty: a session document is YAML" in result.stderr
    assert not fake.calls
