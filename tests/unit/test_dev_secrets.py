"""Kaowu's secret keys (shared/dev_secrets.py), each of them: configured, it is used; unset
outside production, a random development key is made once in var/ (0600) and read by every
later start and every process; where keys are required (the Kubernetes manifests), a
process without its key refuses to start. No key falls back to a value in the code."""

import stat
import subprocess
import sys
from types import SimpleNamespace

import pytest

from shared import dev_secrets, reset_codes
from shared.dev_secrets import ALL, KeyRequired, secret
from shared.runner import StartupError, check_secrets

RESET_ID = "0123456789abcdef0123456789abcdef"
EACH = pytest.mark.parametrize("spec", ALL, ids=lambda s: s.setting)


@pytest.fixture
def unset(monkeypatch, tmp_path):
    for spec in ALL:
        monkeypatch.delenv(spec.setting, raising=False)
    monkeypatch.delenv("KAOWU_SECRETS_REQUIRED", raising=False)
    folder = tmp_path / "var"
    monkeypatch.setenv("KAOWU_DEV_SECRETS_DIR", str(folder))
    return folder


@EACH
def test_a_configured_key_is_used_and_a_short_one_refused(unset, spec):
    assert secret(spec, {spec.setting: "k" * 32}) == (b"k" * 32, True)
    with pytest.raises(KeyRequired, match=f"{spec.setting} must be at least 32 bytes"):
        secret(spec, {spec.setting: "short"})
    assert not unset.exists()


@EACH
def test_unset_a_random_key_is_made_once_private_and_kept_across_restarts(
        unset, tmp_path, monkeypatch, spec):
    key, configured = secret(spec, {})
    path = unset / spec.dev_file
    assert not configured and len(key) >= 32
    assert path.read_text().strip().encode() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret(spec, {}) == (key, False)  # the next start: the same key

    # no key written in the code: another machine's (another var/) is another key
    monkeypatch.setenv("KAOWU_DEV_SECRETS_DIR", str(tmp_path / "elsewhere"))
    other, _ = secret(spec, {})
    assert other != key


def test_each_secret_has_a_key_of_its_own(unset):
    keys = {secret(spec, {})[0] for spec in ALL}
    assert len(keys) == len(ALL)
    assert sorted(p.name for p in unset.iterdir()) == sorted(s.dev_file for s in ALL)


@EACH
def test_processes_starting_together_share_one_key(unset, spec):
    """Services that share a key (the account and notification services; the gateway's
    replicas) start at once under ``make run``: each either makes the file or reads the one
    another made, whole."""
    code = ("from shared import dev_secrets as d; "
            f"print(d.secret(d.{_name(spec)}, {{}})[0].decode())")
    starts = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
              for _ in range(4)]
    keys = {p.communicate(timeout=60)[0].strip().splitlines()[-1] for p in starts}  # after logs
    path = unset / spec.dev_file
    assert len(keys) == 1 and keys == {path.read_text().strip()}
    assert [p.name for p in unset.iterdir()] == [spec.dev_file]  # no scratch left


def _name(spec) -> str:
    return next(n for n, v in vars(dev_secrets).items() if v is spec)


@EACH
def test_where_keys_are_required_none_is_made(unset, monkeypatch, spec):
    monkeypatch.setenv("KAOWU_SECRETS_REQUIRED", "1")
    with pytest.raises(KeyRequired, match=f"{spec.setting} is not set.*{spec.k8s_secret}"):
        secret(spec, {})
    with pytest.raises(StartupError, match=spec.setting):
        check_secrets(sorted(dev_secrets.USED_BY[spec]))
    assert not unset.exists()
    monkeypatch.setenv(spec.setting, "r" * 64)
    assert secret(spec, {}) == (b"r" * 64, True)


def test_make_run_makes_the_keys_before_the_services_start(unset):
    assert check_secrets(["scoring", "verification", "registration"]) == []  # none needed
    assert not unset.exists()
    assert check_secrets(["account", "notification"]) == [
        f"PASSWORD_RESET_KEY: development key {unset / 'password-reset.key'}"]
    assert check_secrets(["gateway", "admission", "account"]) == [
        f"{spec.setting}: development key {unset / spec.dev_file}" for spec in ALL]
    assert sorted(p.name for p in unset.iterdir()) == sorted(s.dev_file for s in ALL)


def test_the_services_load_their_keys_through_it(unset):
    """Each service's key provider: the development key in var/, or the configured one."""
    from services.account.service import ResetKey
    from services.admission.service import TicketKey
    from services.gateway.web import Gate

    for provider, spec in ((ResetKey(), dev_secrets.PASSWORD_RESET),
                           (TicketKey(), dev_secrets.ADMISSION_QR)):
        provider.container = SimpleNamespace(config={})
        provider.setup()
        assert provider.key == (unset / spec.dev_file).read_text().strip().encode()
        provider.container = SimpleNamespace(config={spec.setting: "c" * 40})
        provider.setup()
        assert provider.key == b"c" * 40
    gate = Gate()
    gate.container = SimpleNamespace(config={})
    gate.setup()
    assert gate.tokens.development
    gate.container = SimpleNamespace(config={"GATEWAY_TOKEN_KEY": "g" * 40})
    gate.setup()
    assert not gate.tokens.development


def test_a_reset_code_is_not_sent_without_a_key():
    text = f"验证码：{reset_codes.placeholder(RESET_ID)}"
    with pytest.raises(ValueError, match="PASSWORD_RESET_KEY"):
        reset_codes.reveal(text, None)
    assert reset_codes.reveal("no code here", None) == "no code here"
    assert reset_codes.reveal(text, b"k" * 32) == \
        f"验证码：{reset_codes.code_for(b'k' * 32, RESET_ID)}"
