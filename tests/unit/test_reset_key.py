"""PASSWORD_RESET_KEY (shared/reset_key.py): configured, it is used; unset outside
production, a random development key is made once in var/ (0600) and read by every later
start and every process; where one is required (the Kubernetes manifests), a process
without it refuses to start."""

import stat
import subprocess
import sys

import pytest

from shared import reset_codes
from shared.reset_key import KeyRequired, reset_key
from shared.runner import StartupError, check_reset_key

RESET_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def unset(monkeypatch, tmp_path):
    for name in ("PASSWORD_RESET_KEY", "PASSWORD_RESET_KEY_REQUIRED"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "var" / "password-reset.key"
    monkeypatch.setenv("PASSWORD_RESET_DEV_KEY_PATH", str(path))
    return path


def test_a_configured_key_is_used_and_a_short_one_refused(unset):
    assert reset_key({"PASSWORD_RESET_KEY": "k" * 32}) == (b"k" * 32, True)
    with pytest.raises(KeyRequired, match="at least 32 bytes"):
        reset_key({"PASSWORD_RESET_KEY": "short"})
    assert not unset.exists()


def test_unset_a_random_key_is_made_once_private_and_kept_across_restarts(unset, tmp_path,
                                                                          monkeypatch):
    key, configured = reset_key({})
    assert not configured and len(key) >= 32
    assert unset.read_text().strip().encode() == key
    assert stat.S_IMODE(unset.stat().st_mode) == 0o600
    assert reset_key({}) == (key, False)  # the next start: the same key, codes still good

    # no key written in the code: another machine's (another var/) is another key
    monkeypatch.setenv("PASSWORD_RESET_DEV_KEY_PATH", str(tmp_path / "elsewhere.key"))
    other, _ = reset_key({})
    assert other != key


def test_processes_starting_together_share_one_key(unset):
    """The account and notification services (two processes under ``make run``) start at
    once: each either makes the file or reads the one the other made, whole."""
    code = "from shared.reset_key import reset_key; print(reset_key({})[0].decode())"
    starts = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
              for _ in range(4)]
    keys = {p.communicate(timeout=60)[0].strip().splitlines()[-1] for p in starts}  # after logs
    assert len(keys) == 1 and keys == {unset.read_text().strip()}
    assert [p.name for p in unset.parent.iterdir()] == [unset.name]  # no scratch left


def test_where_a_key_is_required_none_is_made(unset, monkeypatch):
    monkeypatch.setenv("PASSWORD_RESET_KEY_REQUIRED", "1")
    with pytest.raises(KeyRequired, match="PASSWORD_RESET_KEY is not set"):
        reset_key({})
    with pytest.raises(StartupError, match="PASSWORD_RESET_KEY"):
        check_reset_key(["account", "notification"])
    assert not unset.exists()
    monkeypatch.setenv("PASSWORD_RESET_KEY", "r" * 64)
    assert reset_key({}) == (b"r" * 64, True)


def test_make_run_makes_the_key_before_the_services_start(unset):
    assert check_reset_key(["gateway", "scoring"]) == []  # neither needs it
    assert not unset.exists()
    assert check_reset_key(["account", "notification"]) == [
        f"password-reset key: development key {unset}"]
    assert unset.exists()


def test_a_reset_code_is_not_sent_without_a_key():
    text = f"验证码：{reset_codes.placeholder(RESET_ID)}"
    with pytest.raises(ValueError, match="PASSWORD_RESET_KEY"):
        reset_codes.reveal(text, None)
    assert reset_codes.reveal("no code here", None) == "no code here"
    assert reset_codes.reveal(text, b"k" * 32) == \
        f"验证码：{reset_codes.code_for(b'k' * 32, RESET_ID)}"
