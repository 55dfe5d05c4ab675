"""``kaowu history``: one candidate's story across every log, in time order, masked."""

from typer.testing import CliRunner

from cli import history as h
from cli.main import State, app
from tests.unit.test_cli_rpc import FakeServices

ME = "a" * 32
OTHER = "b" * 32
APP = f"2026-demo.{ME}"
ID = "310104198805123455"


def ev(position, type_, stream, at, **payload):
    return {"position": position, "stream_id": stream, "stream_version": 1, "type": type_,
            "payload": payload, "metadata": {"occurred_at": f"2026-04-07T02:00:{at:02d}+00:00"}}


LOGS = {
    "account": [
        ev(1, "AccountRegistered", f"account-{OTHER}", 0, account_id=OTHER, name="李敏",
           id_number="31011519920315002X"),
        ev(2, "AccountRegistered", f"account-{ME}", 1, account_id=ME, name="王建国", id_number=ID,
           mobile="13912345678"),
        ev(3, "CredentialsSet", f"account-{ME}", 1) | {"private": True},
        ev(4, "ProfileCompleted", f"account-{ME}", 5, account_id=ME, completeness=100),
    ],
    "registration": [
        ev(1, "ApplicationSubmitted", f"application-{APP}", 10, application_id=APP,
           account_id=ME, session_id="2026-demo", candidate={"id_number": ID}),
        ev(2, "ApplicationSubmitted", f"application-2026-demo.{OTHER}", 11,
           application_id=f"2026-demo.{OTHER}", account_id=OTHER),
        ev(3, "ApplicationConfirmed", f"application-{APP}", 40, application_id=APP,
           account_id=ME),
    ],
    "verification": [
        # same second as the submission: the pipeline order breaks the tie
        ev(1, "AutoCheckPassed", f"case-{APP}", 10, application_id=APP, account_id=ME),
        ev(2, "SpotCheckDrawn", "spotcheck-2026-demo", 30, population=[APP, f"2026-demo.{OTHER}"],
           selected=[]),
    ],
    "admission": [
        ev(1, "SeatAllocated", f"ticket-{APP}", 50, ticket_number="20262916L1000001",
           application_id=APP, account_id=ME),
        ev(2, "SeatAllocated", "ticket-x", 50, ticket_number="20262916L1000002",
           application_id="x", account_id=OTHER),
    ],
    "scoring": [
        # names only the ticket (found through admission's event), and one of another
        # session with the same ticket number but another account
        ev(1, "TicketRecorded", "ticket-20262916L1000001", 55, ticket_number="20262916L1000001"),
        ev(2, "TicketRecorded", "ticket-20262916L1000001", 56, ticket_number="20262916L1000001",
           account_id=OTHER),
    ],
}


def call(service, method, position, limit):
    assert method == "events_after"
    return [e for e in LOGS.get(service, []) if e["position"] > position][:limit]


def test_what_the_operator_typed():
    assert h.classify(APP).query_kind == "application"
    assert h.classify(APP).account_ids == {ME} and h.classify(APP).application_ids == {APP}
    assert h.classify(ME).query_kind == "account"
    t = h.classify(" 31011519920315002x ")
    assert t.query_kind == "id_number" and t.id_number == "31011519920315002X"


def test_an_id_number_is_resolved_from_the_account_log():
    t = h.resolve(h.classify(ID), call, cost := {})
    assert t.account_ids == {ME} and t.name == "王建国" and cost == {"account": 4}


def test_the_story_is_in_time_order_with_only_this_candidate():
    t = h.resolve(h.classify(ID), call, cost := {})
    story = h.collect(t, list(LOGS), call, cost)
    got = [(s, e["type"], e["position"]) for s, e in story.events]
    assert got == [
        ("account", "AccountRegistered", 2), ("account", "CredentialsSet", 3),
        ("account", "ProfileCompleted", 4), ("registration", "ApplicationSubmitted", 1),
        ("verification", "AutoCheckPassed", 1), ("verification", "SpotCheckDrawn", 2),
        ("registration", "ApplicationConfirmed", 3), ("admission", "SeatAllocated", 1),
        ("scoring", "TicketRecorded", 1),
    ]
    assert story.target.application_ids == {APP}
    assert story.scanned == {"account": 8, "registration": 3, "verification": 2, "admission": 2,
                             "scoring": 2}  # the account log twice: lookup, then story
    assert story.unreadable == {}


def test_a_log_that_cannot_be_read_is_named():
    def flaky(service, method, position, limit):
        if service == "scoring":
            raise RuntimeError("scoring did not answer")
        return call(service, method, position, limit)

    story = h.collect(h.classify(APP), list(LOGS), flaky)
    assert "scoring" in story.unreadable and story.events


def _fake():
    return FakeServices({(s, "events_after"): (lambda p, n, s=s: call(s, "events_after", p, n))
                         for s in LOGS})


def test_history_command_masks_the_id_number(monkeypatch):
    monkeypatch.setattr("cli.main._services", lambda names: list(LOGS))
    result = CliRunner().invoke(app, ["history", ID], obj=State(client_factory=_fake().factory))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert ID not in out and "13912345678" not in out
    assert "ID number **************3455" in out
    lines = [x for x in out.splitlines() if x.startswith(("account", "registration", "verification",
                                                          "admission", "scoring"))]
    assert len(lines) == 9 and "ApplicationConfirmed" in lines[6]
    assert "scanned 17 events in 5 service logs" in out


def test_history_of_nobody_says_so(monkeypatch):
    monkeypatch.setattr("cli.main._services", lambda names: list(LOGS))
    result = CliRunner().invoke(app, ["history", "11010519491231002X"],
                                obj=State(client_factory=_fake().factory))
    assert result.exit_code == 1
    assert "no account with ID number **************002X" in result.stderr
