"""``kaowu status``: lags computed from what the services answer; exit status by health."""

import json

from typer.testing import CliRunner

from cli import status as st
from cli.main import State, app
from cli.rpc import ServiceUnavailable
from tests.unit.test_cli_rpc import FakeServices

ANSWERS = {
    "account": {"service": "account", "head": 120, "relay_position": 118, "relay_lag": 2,
                "tracking": {}, "projections": {"account": 120}},
    "registration": {"service": "registration", "head": 300, "relay_position": 300, "relay_lag": 0,
                     "tracking": {"account": 110, "verification": 50},
                     "projections": {"registration": 300}},
    "verification": {"service": "verification", "head": 64, "relay_position": 60,
                     "tracking": {"registration": 300}, "projections": {"verification": 64}},
}


def test_consumer_lag_is_the_upstream_head_minus_what_was_applied():
    rows = {r.service: r for r in st.lags(ANSWERS)}
    reg = rows["registration"]
    assert [(c.upstream, c.tracked, c.upstream_head, c.lag) for c in reg.consumers] == [
        ("account", 110, 120, 10), ("verification", 50, 64, 14)]
    assert rows["verification"].consumers[0].lag == 0
    assert rows["account"].relay_lag == 2
    assert rows["verification"].relay_lag == 4  # computed when the service does not say


def test_lag_behind_a_down_upstream_is_unknown_not_zero():
    answers = {**ANSWERS, "account": ServiceUnavailable("account", "did not answer")}
    rows = {r.service: r for r in st.lags(answers)}
    assert not rows["account"].up and rows["account"].error == "did not answer"
    lag = {c.upstream: c.lag for c in rows["registration"].consumers}
    assert lag == {"account": None, "verification": 14}


def test_services_are_listed_upstream_first():
    assert [r.service for r in st.lags({"scoring": {}, "account": {}, "zeta": {},
                                        "admission": {}})] == \
        ["account", "admission", "scoring", "zeta"]


def test_verdict_and_exit_code():
    assert st.summarize(st.lags(ANSWERS))[0] == 0
    code, verdict = st.summarize(st.lags({**ANSWERS, "verification": RuntimeError("x")}))
    assert code == 1 and "verification" in verdict


def _services(down=()):
    return FakeServices({(s, "status"): a for s, a in ANSWERS.items()}, down=down)


def test_status_table_all_up(monkeypatch):
    monkeypatch.setattr("cli.main._dead_letter_counts", lambda state: ({"kaowu.dead-letters": 2}, None))
    fake = _services()
    result = CliRunner().invoke(app, ["status", "account", "registration", "verification"],
                                obj=State(client_factory=fake.factory))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "account: 10" in out and "verification: 14" in out  # registration's consumers
    assert "all 3 services up" in out
    assert "dead letters in kaowu.dead-letters: 2" in out
    assert fake.clients == 3  # one client (proxy) per service asked, each on its own thread


def test_status_exits_non_zero_when_a_service_is_down(monkeypatch):
    monkeypatch.setattr("cli.main._dead_letter_counts", lambda state: (None, "dead letters: not available"))
    result = CliRunner().invoke(app, ["status", "account", "registration", "verification"],
                                obj=State(client_factory=_services(down={"verification"}).factory))
    assert result.exit_code == 1
    assert "DOWN" in result.output and "1 of 3 services down: verification" in result.output
    assert "dead letters: not available" in result.output


def test_status_as_json(monkeypatch):
    monkeypatch.setattr("cli.main._dead_letter_counts", lambda state: ({"kaowu.dead-letters": 0}, None))
    result = CliRunner().invoke(app, ["status", "--json", "account", "registration"],
                                obj=State(client_factory=_services(down={"account"}).factory))
    assert result.exit_code == 1
    data = json.loads(result.output)
    by = {s["service"]: s for s in data["services"]}
    assert by["account"]["up"] is False
    assert by["registration"]["consumers"][0] == {"upstream": "account", "applied": 110,
                                                  "upstream_head": None, "lag": None}
