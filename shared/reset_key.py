"""``PASSWORD_RESET_KEY``, the secret password-reset codes are derived from (adapter: reads
the configuration, reads and makes a file, logs). The codes themselves: ``shared.reset_codes``.

- ``PASSWORD_RESET_KEY`` (the nameko config, else the environment), at least 32 bytes: the
  key. The account service (which checks codes) and the notification service (which sends
  them) must hold the same one.
- Not set, outside production (``make run``, a developer's ``nameko run``): a development
  key, made at random on first use at ``var/password-reset.key`` (mode 0600, in the
  gitignored ``var/``; ``PASSWORD_RESET_DEV_KEY_PATH`` moves it) and read by every later
  start and by every process that needs it, so the account and notification services agree
  and codes survive restarts. Never a key written in the code: with a known key, a reset's
  id (which operators' event views show) would give its code away.
- ``PASSWORD_RESET_KEY_REQUIRED`` set (the Kubernetes manifests set it): no development
  key; a process without ``PASSWORD_RESET_KEY`` refuses to start (:class:`KeyRequired`).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from shared.logging import get_logger

log = get_logger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEV_KEY_PATH = ROOT / "var" / "password-reset.key"
MIN_KEY_BYTES = 32
_TRUE = {"1", "true", "yes", "on"}


class KeyRequired(RuntimeError):
    """No usable key where one is required; the message says what to set (never a key)."""


def _setting(config, name: str):
    value = (config or {}).get(name)
    if value in (None, ""):
        value = os.environ.get(name)
    return None if value in (None, "") else value


def required(config) -> bool:
    """Whether ``PASSWORD_RESET_KEY`` must be configured (production: no development key)."""
    return str(_setting(config, "PASSWORD_RESET_KEY_REQUIRED") or "").strip().lower() in _TRUE


def dev_key_path(config) -> Path:
    return Path(_setting(config, "PASSWORD_RESET_DEV_KEY_PATH") or DEV_KEY_PATH).expanduser()


def _checked(value, where: str) -> bytes:
    key = value.encode() if isinstance(value, str) else bytes(value)
    if len(key) < MIN_KEY_BYTES:
        raise KeyRequired(f"{where} must be at least {MIN_KEY_BYTES} bytes long")
    return key


def reset_key(config, announce: bool = True) -> tuple[bytes, bool]:
    """``(key, configured)``: ``PASSWORD_RESET_KEY``, else the development key file
    (``configured`` False; a warning says so unless not ``announce``), else
    :class:`KeyRequired` where one is required."""
    value = _setting(config, "PASSWORD_RESET_KEY")
    if value is not None:
        return _checked(value, "PASSWORD_RESET_KEY"), True
    if required(config):
        raise KeyRequired(
            "PASSWORD_RESET_KEY is not set, and PASSWORD_RESET_KEY_REQUIRED says this is no "
            "place for a development key: give it the Secret kaowu-password-reset-key "
            "(deploy/k8s/README.md), the same for the account and notification services")
    return dev_key(dev_key_path(config), announce), False


def dev_key(path: Path, announce: bool = True) -> bytes:
    """The development key at ``path``: made at random (0600) if there is none, else read.
    Processes starting together agree: the file appears whole or not at all."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = secrets.token_hex(MIN_KEY_BYTES)  # 64 characters, as `openssl rand -hex 32`
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(made + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)  # fails if another process made it first: theirs is used
        except FileExistsError:
            pass
        else:
            if announce:
                log.warning("reset_key.dev_key_generated", path=str(path),
                            warning="PASSWORD_RESET_KEY is not set: password-reset codes "
                                    "are derived from a DEVELOPMENT key generated here; set "
                                    "PASSWORD_RESET_KEY in production")
            return made.encode()
        finally:
            tmp.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("reset_key.dev_key_permissions", path=str(path), mode=oct(mode),
                    warning="the development password-reset key is readable by others; "
                            "chmod 600 it")
    if announce:
        log.warning("reset_key.dev_key", path=str(path),
                    warning="PASSWORD_RESET_KEY is not set: password-reset codes are derived "
                            "from the DEVELOPMENT key at this path; set PASSWORD_RESET_KEY "
                            "in production")
    text = path.read_text(encoding="ascii").strip()
    return _checked(text, f"the development key {path} (delete it to have a new one made)")
