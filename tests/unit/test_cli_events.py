"""``kaowu events``: a log read page by page over RPC, filtered, masked, followed."""

import json

import pytest
from typer.testing import CliRunner

from cli import events as ev
from cli.main import State, app
from tests.unit.test_cli_rpc import FakeServices


def event(position, type_="ProfileUpdated", stream="account-a1", **payload):
    return {"position": position, "stream_id": stream, "stream_version": position, "type": type_,
            "schema_version": 1, "payload": payload,
            "metadata": {"occurred_at": f"2026-04-07T02:{position % 60:02d}:00+00:00"}}


LOG = [event(i, "AccountRegistered" if i % 10 == 1 else "ProfileUpdated",
             f"account-a{i % 3}", account_id=f"a{i % 3}") for i in range(1, 26)]


def log_of(events):
    def events_after(position, limit):
        return [e for e in events if e["position"] > position][:limit]
    return events_after


def test_the_reader_pages_through_the_whole_log():
    calls = []

    def call(service, method, position, limit):
        calls.append((position, limit))
        return log_of(LOG)(position, limit)

    reader = ev.LogReader(call, "account", page=10)
    assert [e["position"] for e in reader.read()] == list(range(1, 26))
    assert calls == [(0, 10), (10, 10), (20, 10)]
    assert reader.position == 25 and reader.scanned == 25


def test_filters_by_type_and_stream_and_stops_at_the_limit():
    call = lambda s, m, p, n: log_of(LOG)(p, n)  # noqa: E731
    got = ev.LogReader(call, "account", types=["AccountRegistered"], page=7).read()
    assert [e["position"] for e in got] == [1, 11, 21]
    got = list(ev.LogReader(call, "account", stream="account-a2").read(limit=3))
    assert [e["position"] for e in got] == [2, 5, 8]
    glob = list(ev.LogReader(call, "account", stream="account-a[12]").read())
    assert glob and all(e["stream_id"] in ("account-a1", "account-a2") for e in glob)


def test_a_line_masks_personal_data():
    line = ev.line(event(3, "AccountRegistered", account_id="a1", name="王建国",
                         id_number="310104198805123455", mobile="13912345678"))
    assert "310104198805123455" not in line and "13912345678" not in line
    assert "**************3455" in line and "AccountRegistered" in line
    assert "2026-04-07 10:03:00" in line  # Asia/Shanghai
    assert ev.line({**event(4), "private": True, "payload": {}}).endswith("(private)")


def _invoke(args, events):
    fake = FakeServices({("account", "events_after"): log_of(events)})
    return CliRunner().invoke(app, args, obj=State(client_factory=fake.factory)), fake


def test_events_command_filters_and_prints_one_line_each():
    result, _ = _invoke(["events", "account", "--type", "AccountRegistered", "--after", "5"], LOG)
    assert result.exit_code == 0, result.output
    lines = [x for x in result.stdout.splitlines() if x.strip()]
    assert len(lines) == 2 and all("AccountRegistered" in x for x in lines)


def test_events_json_is_one_masked_object_per_line():
    log = [event(1, "AccountRegistered", id_number="310104198805123455")]
    result, _ = _invoke(["events", "account", "--json"], log)
    obj = json.loads(result.stdout.strip())
    assert obj["payload"]["id_number"] == "**************3455" and obj["position"] == 1


def test_events_limit_says_where_to_go_on():
    result, _ = _invoke(["events", "account", "-n", "5"], LOG)
    assert len(result.stdout.strip().splitlines()) == 5
    assert "--after 5" in result.stderr


def test_follow_polls_for_new_events_until_interrupted(monkeypatch):
    log = list(LOG[:3])
    polls = []

    def events_after(position, limit):
        polls.append(position)
        if len(polls) == 2:
            log.append(event(4, "AccountRegistered", account_id="a9"))
        if len(polls) == 4:
            raise KeyboardInterrupt
        return [e for e in log if e["position"] > position][:limit]

    monkeypatch.setattr("cli.main.time.sleep", lambda s: None)
    fake = FakeServices({("account", "events_after"): events_after})
    result = CliRunner().invoke(app, ["events", "account", "--follow"],
                                obj=State(client_factory=fake.factory))
    assert result.exit_code == 0, result.output
    assert [x.split()[0] for x in result.stdout.splitlines()] == ["1", "2", "3", "4"]
    assert "stopped at position 4" in result.stderr


def test_a_down_service_is_one_line_not_a_traceback():
    fake = FakeServices(down={"account"})
    result = CliRunner().invoke(app, ["events", "account"], obj=State(client_factory=fake.factory))
    assert result.exit_code == 1
    assert result.stderr.startswith("kaowu: the account service did not answer")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [["events"], ["events", "account", "--after", "-1"]])
def test_bad_arguments_are_refused_by_the_parser(args):
    result = CliRunner().invoke(app, args, obj=State(client_factory=FakeServices().factory))
    assert result.exit_code == 2
