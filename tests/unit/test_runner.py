import socket

import pytest

from shared import runner
from shared.runner import StartupError, discover_services, http_ports, service_targets


def _service(root, name, source):
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "service.py").write_text(source)


def test_discovers_packages_with_a_service_module(tmp_path):
    _service(tmp_path, "account", "class AccountService:\n    name = 'account'\n")
    _service(tmp_path, "gateway", "class Gateway:\n    name: str = 'gateway'\n")
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "util.py").write_text("")
    assert discover_services(tmp_path) == ["account", "gateway"]
    assert discover_services(tmp_path / "missing") == []


def test_names_only_the_classes_that_set_a_service_name(tmp_path):
    _service(
        tmp_path,
        "account",
        "from shared.service import EventSourcedService\n"
        "class Passwords:\n    pass\n"
        "class AccountService(EventSourcedService):\n    name = 'account'\n",
    )
    assert service_targets("account", tmp_path) == ["services.account.service:AccountService"]


def test_falls_back_to_the_module_when_no_class_is_named(tmp_path):
    _service(tmp_path, "odd", "def f(:\n")
    assert service_targets("odd", tmp_path) == ["services.odd.service"]


# -- ports: a setting for a second copy; a stopped run's TIME_WAIT does not hold them ------


ALL = ["account", "admission", "certificate", "gateway", "notification", "registration",
       "scoring", "verification"]


def _free_base():
    """A base with its ports 1..12 free now (the test binds nothing there)."""
    for base in range(20100, 60000, 100):
        if all(runner._port_free(base + n) for n in range(1, 13)):
            return base
    pytest.skip("no free port range")


def test_default_ports_are_the_documented_ones(monkeypatch):
    monkeypatch.delenv("SERVICE_PORT_BASE", raising=False)
    monkeypatch.delenv("GATEWAY_PORT", raising=False)
    monkeypatch.setattr(runner, "_port_free", lambda port: True)
    ports = http_ports(ALL)
    assert ports["gateway"] == 8000 and ports["account"] == 8101 and ports["certificate"] == 8106
    assert ports["notification"] == 8107


def test_service_port_base_moves_every_service_port(monkeypatch):
    base = _free_base()
    monkeypatch.setenv("SERVICE_PORT_BASE", str(base))
    monkeypatch.setenv("GATEWAY_PORT", str(base))
    ports = http_ports(ALL)
    assert ports["gateway"] == base
    assert {ports[n] - base for n in ALL if n != "gateway"} == set(range(1, 8))
    assert len(set(ports.values())) == len(ALL)


@pytest.mark.parametrize("value, words", [("x81", "must be a port number"),
                                          ("0", "between 1 and"), ("65500", "between 1 and")])
def test_a_bad_service_port_base_is_refused(monkeypatch, value, words):
    monkeypatch.setenv("SERVICE_PORT_BASE", value)
    with pytest.raises(StartupError, match=words):
        http_ports(["account"])


def test_a_gateway_port_on_a_service_port_is_refused(monkeypatch):
    base = _free_base()
    monkeypatch.setenv("SERVICE_PORT_BASE", str(base))
    monkeypatch.setenv("GATEWAY_PORT", str(base + 2))
    with pytest.raises(StartupError, match="registration's port"):
        http_ports(["gateway", "registration"])


def test_a_port_in_use_names_the_setting_that_moves_it(monkeypatch):
    base = _free_base()
    monkeypatch.setenv("SERVICE_PORT_BASE", str(base))
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the services do
        listener.bind(("0.0.0.0", base + 1))
        listener.listen()
        assert not runner._port_free(base + 1)
        with pytest.raises(StartupError, match="SERVICE_PORT_BASE"):
            http_ports(["account"])


def test_a_port_left_in_time_wait_by_a_stopped_run_counts_as_free():
    """The server side closes first, as a stopping service does: its connection waits out
    TIME_WAIT on the port. A service can listen there again (SO_REUSEADDR), so the runner's
    check must say free (it said "in use" for about a minute)."""
    port = _free_base() + 1
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the service's side closes first: TIME_WAIT on (127.0.0.1, port)
    listener.close()
    client.recv(1)
    client.close()
    # what the check did before: refused while TIME_WAIT lasts
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    assert runner._port_free(port)


# -- the stop timeout is derived from what the code waits for ---------------------------------

def test_the_stop_timeout_outlasts_every_wait_of_the_code(monkeypatch):
    from services.gateway.web import DEFAULT_RPC_TIMEOUT as GATEWAY_RPC_TIMEOUT
    from shared.dependencies import DEFAULT_RPC_TIMEOUT

    for key in ("SMS_CONNECT_TIMEOUT_S", "SMS_TIMEOUT_S"):
        monkeypatch.delenv(key, raising=False)
    waits = runner.stop_waits()
    assert waits == {"RPC_TIMEOUT": DEFAULT_RPC_TIMEOUT, "GATEWAY_RPC_TIMEOUT": GATEWAY_RPC_TIMEOUT,
                     "SMS_CONNECT_TIMEOUT_S + SMS_TIMEOUT_S": 13.0}
    assert runner.stop_timeout() == DEFAULT_RPC_TIMEOUT + runner.STOP_MARGIN
    assert runner.stop_timeout() > DEFAULT_RPC_TIMEOUT  # it was 15 s, under RPC_TIMEOUT's 20
    monkeypatch.setenv("SMS_TIMEOUT_S", "40")
    assert runner.stop_timeout() == 43 + runner.STOP_MARGIN
