"""Kaowu's secret keys, and their development stand-ins (adapter: reads the configuration,
reads and makes files, logs). One mechanism for every symmetric secret:

- the key's own setting (the nameko config, else the environment), at least 32 bytes: used.
- Not set, outside production (``make run``, a developer's ``nameko run``): a development
  key, made at random on first use in ``var/`` (mode 0600, gitignored; ``KAOWU_DEV_SECRETS_DIR``
  moves the directory) and read by every later start and every process that needs it, so
  processes sharing a key agree and what was made under it survives restarts. Never a key
  written in the code: a known key would let anyone forge what it protects.
- ``KAOWU_SECRETS_REQUIRED`` set (the Kubernetes manifests set it): no development key; a
  process without its key refuses to start (:class:`KeyRequired`), naming the Secret.

The certificate issuer's Ed25519 key is no shared secret but a key pair; it keeps its own
development file (``services/certificate/keys.py``).
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from shared.logging import get_logger

log = get_logger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEV_DIR = ROOT / "var"
MIN_KEY_BYTES = 32
REQUIRED = "KAOWU_SECRETS_REQUIRED"
DIR_SETTING = "KAOWU_DEV_SECRETS_DIR"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Secret:
    """A secret key: its setting, its development file's name, the Kubernetes Secret that
    carries it (deploy/k8s/README.md) and what it protects (for messages)."""

    setting: str
    dev_file: str
    k8s_secret: str
    protects: str


PASSWORD_RESET = Secret("PASSWORD_RESET_KEY", "password-reset.key", "kaowu-password-reset-key",
                        "password-reset codes (the account and notification services share it)")
ADMISSION_QR = Secret("ADMISSION_QR_KEY", "admission-qr.key", "kaowu-admission-qr-key",
                      "the admission tickets' QR check values")
GATEWAY_TOKEN = Secret("GATEWAY_TOKEN_KEY", "gateway-token.key", "kaowu-gateway-token-key",
                       "the gateway's sign-in tokens (every replica shares it)")
ALL = (PASSWORD_RESET, ADMISSION_QR, GATEWAY_TOKEN)
#: the services that hold each secret (make run makes their development keys before they start)
USED_BY = {PASSWORD_RESET: {"account", "notification"}, ADMISSION_QR: {"admission"},
           GATEWAY_TOKEN: {"gateway"}}


class KeyRequired(RuntimeError):
    """No usable key where one is required; the message says what to set (never a key)."""


def _setting(config, name: str):
    value = (config or {}).get(name)
    if value in (None, ""):
        value = os.environ.get(name)
    return None if value in (None, "") else value


def required(config=None) -> bool:
    """Whether every secret must be configured (production: no development keys)."""
    return str(_setting(config, REQUIRED) or "").strip().lower() in _TRUE


def dev_path(spec: Secret, config=None) -> Path:
    """Where the development key of ``spec`` is kept."""
    return Path(_setting(config, DIR_SETTING) or DEV_DIR).expanduser() / spec.dev_file


def _checked(value, where: str) -> bytes:
    key = value.encode() if isinstance(value, str) else bytes(value)
    if len(key) < MIN_KEY_BYTES:
        raise KeyRequired(f"{where} must be at least {MIN_KEY_BYTES} bytes long")
    return key


def secret(spec: Secret, config=None, announce: bool = True) -> tuple[bytes, bool]:
    """``(key, configured)``: the configured key, else the development key file
    (``configured`` False; a warning says so unless not ``announce``), else
    :class:`KeyRequired` where keys are required."""
    value = _setting(config, spec.setting)
    if value is not None:
        return _checked(value, spec.setting), True
    if required(config):
        raise KeyRequired(
            f"{spec.setting} is not set, and {REQUIRED} says this is no place for a "
            f"development key: give it the Secret {spec.k8s_secret} (deploy/k8s/README.md); "
            f"it protects {spec.protects}")
    return dev_key(spec, dev_path(spec, config), announce), False


def dev_key(spec: Secret, path: Path, announce: bool = True) -> bytes:
    """The development key at ``path``: made at random (0600) if there is none, else read.
    Processes starting together agree: the file appears whole or not at all."""
    path = Path(path)
    fields = {"key": spec.setting, "path": str(path)}
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
                log.warning("dev_secrets.generated", **fields,
                            warning=f"{spec.setting} is not set: a DEVELOPMENT key was generated "
                                    f"here for {spec.protects}; set {spec.setting} in production")
            return made.encode()
        finally:
            tmp.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("dev_secrets.permissions", **fields, mode=oct(mode),
                    warning="the development key is readable by others; chmod 600 it")
    if announce:
        log.warning("dev_secrets.development_key", **fields,
                    warning=f"{spec.setting} is not set: {spec.protects} use the DEVELOPMENT "
                            f"key at this path; set {spec.setting} in production")
    text = path.read_text(encoding="ascii").strip()
    return _checked(text, f"the development key {path} (delete it to have a new one made)")
