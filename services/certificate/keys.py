"""The signing key and the issuer, from configuration (adapter: reads files, logs).

``CERTIFICATE_SIGNING_KEY`` (the nameko config, else the environment) holds the issuer's
Ed25519 private key: a JWK (JSON, ``{"kty": "OKP", "crv": "Ed25519", "d": …, "x": …}``),
a PEM (PKCS#8), or the path of a file holding either. The key never lives in the
repository.

With nothing configured (``make run`` on a developer's machine) a development key is made
on first start at ``var/certificate-signing-key.pem`` (mode 0600, gitignored;
``CERTIFICATE_DEV_KEY_PATH`` moves it), a warning says so, and later starts reuse it.
Certificates signed with a development key verify only against that key. Where
``KAOWU_SECRETS_REQUIRED`` is set (the Kubernetes manifests; ``shared.dev_secrets``) no
development key is made: the service refuses to start without its key.

Further settings: ``CERTIFICATE_ISSUER`` (the issuer id in every credential, default
``{PUBLIC_BASE_URL}/issuer``), ``CERTIFICATE_ISSUER_NAME`` (default 上海市职业能力考试院),
``PUBLIC_BASE_URL`` (default http://127.0.0.1:8000: verification pages
``{PUBLIC_BASE_URL}/verify/{token}`` and status lists
``{PUBLIC_BASE_URL}/credentials/status/{n}``), ``CERTIFICATE_NUMBER_FORMAT`` (see
``domain.DEFAULT_NUMBER_FORMAT``).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from services.certificate import domain
from services.certificate.credential import Issuer
from shared.dev_secrets import required as secrets_required
from shared.logging import get_logger

log = get_logger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DEV_KEY_PATH = ROOT / "var" / "certificate-signing-key.pem"
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_ISSUER_NAME = "上海市职业能力考试院"


class ConfigError(RuntimeError):
    """The configured key cannot be used; the message says why (never the key itself)."""


def _setting(config, name, default=None):
    value = (config or {}).get(name)
    if value in (None, ""):
        value = os.environ.get(name)
    return default if value in (None, "") else value


def parse_key(text: str, where: str) -> OKPKey:
    """An Ed25519 private key from JWK JSON or PEM text."""
    text = text.strip()
    try:
        if text.startswith("{"):
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            key = OKPKey.import_key(data)
        elif "-----BEGIN" in text:
            key = OKPKey.import_key(text.encode())
        else:
            raise ConfigError(f"{where} is neither a JWK (JSON) nor a PEM key")
    except (ValueError, TypeError, KeyError, JoseError) as exc:
        raise ConfigError(f"{where} is not a usable OKP key: {type(exc).__name__}") from None
    if key.as_dict(private=False).get("crv") != "Ed25519":
        raise ConfigError(f"{where} is not an Ed25519 key (certificates are signed with "
                             "JWS alg Ed25519)")
    if not key.is_private:
        raise ConfigError(f"{where} holds only a public key; signing needs the private key")
    return key


def load_key(value: str | None, dev_path: Path, required: bool = False) -> tuple[OKPKey, str]:
    """The signing key and where it came from (for the start-up log line); no development
    key where keys are ``required`` (``KAOWU_SECRETS_REQUIRED``, shared.dev_secrets)."""
    if value:
        text = str(value).strip()
        if text.startswith("{") or "-----BEGIN" in text:
            return parse_key(text, "CERTIFICATE_SIGNING_KEY"), "CERTIFICATE_SIGNING_KEY"
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"CERTIFICATE_SIGNING_KEY names {path}, which is not a readable "
                                 "file (give a JWK, a PEM, or the path of one)")
        return parse_key(path.read_text(encoding="utf-8"), f"key file {path}"), f"file {path}"
    if required:
        raise ConfigError("CERTIFICATE_SIGNING_KEY is not set, and KAOWU_SECRETS_REQUIRED says "
                          "this is no place for a development key: give it the Secret "
                          "kaowu-certificate-signing-key (deploy/k8s/README.md)")
    return dev_key(dev_path), f"development key {dev_path}"


def dev_key(path: Path) -> OKPKey:
    """The development key at ``path``: made (0600) on first use, reused after."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = OKPKey.generate_key("Ed25519")
        pem = key.as_pem(private=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            log.warning("certificate.dev_key_generated", path=str(path),
                        warning="CERTIFICATE_SIGNING_KEY is not set: certificates are signed "
                                "with a DEVELOPMENT key generated here; configure a real key "
                                "for production")
            return key
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("certificate.dev_key_permissions", path=str(path), mode=oct(mode),
                    warning="the development signing key is readable by others; chmod 600 it")
    log.warning("certificate.dev_key", path=str(path),
                warning="CERTIFICATE_SIGNING_KEY is not set: certificates are signed with the "
                        "DEVELOPMENT key at this path; configure a real key for production")
    return parse_key(path.read_text(encoding="utf-8"), f"development key {path}")


def issuer_from_config(config) -> Issuer:
    """The issuer the service signs as, from its config (read once per container, by the
    service's ``IssuerProvider``)."""
    raw = _setting(config, "CERTIFICATE_SIGNING_KEY")
    dev_path = Path(_setting(config, "CERTIFICATE_DEV_KEY_PATH", DEV_KEY_PATH))
    base_url = str(_setting(config, "PUBLIC_BASE_URL", DEFAULT_PUBLIC_BASE_URL)).rstrip("/")
    issuer_id = str(_setting(config, "CERTIFICATE_ISSUER", f"{base_url}/issuer"))
    name = str(_setting(config, "CERTIFICATE_ISSUER_NAME", DEFAULT_ISSUER_NAME))
    key, source = load_key(raw, dev_path, secrets_required(config))
    issuer = Issuer(issuer_id=issuer_id, name=name, key=key, base_url=base_url)
    log.info("certificate.issuer", issuer=issuer_id, kid=issuer.kid, key_source=source)
    return issuer


def number_format_from_config(config) -> str:
    fmt = str(_setting(config, "CERTIFICATE_NUMBER_FORMAT", domain.DEFAULT_NUMBER_FORMAT))
    try:
        return domain.check_number_format(fmt)
    except ValueError as exc:
        raise ConfigError(f"CERTIFICATE_NUMBER_FORMAT: {exc}") from None
