"""The signing key from configuration: JWK, PEM, a path, or a development key made once."""

import json
import stat

import pytest
from joserfc.jwk import OKPKey

from services.certificate import keys
from services.certificate.keys import ConfigError, issuer_from_config, load_key


def test_jwk_pem_and_path(tmp_path):
    key = OKPKey.generate_key("Ed25519")
    want = key.thumbprint()
    as_jwk = json.dumps(key.as_dict(private=True))
    as_pem = key.as_pem(private=True).decode()
    assert load_key(as_jwk, tmp_path / "dev.pem")[0].thumbprint() == want
    assert load_key(as_pem, tmp_path / "dev.pem")[0].thumbprint() == want
    path = tmp_path / "issuer.jwk"
    path.write_text(as_jwk)
    got, source = load_key(str(path), tmp_path / "dev.pem")
    assert got.thumbprint() == want and source == f"file {path}"
    assert not (tmp_path / "dev.pem").exists()  # a configured key makes no development key


@pytest.mark.parametrize("value, says", [
    ("/nonexistent/key.pem", "not a readable file"),
    ('{"kty": "OKP"', "not a usable"),
    ("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----", "not a usable"),
])
def test_bad_keys_say_what_is_wrong(tmp_path, value, says):
    with pytest.raises(ConfigError) as exc:
        load_key(value, tmp_path / "dev.pem")
    assert says in str(exc.value)


def test_public_only_and_wrong_curve_keys_are_refused(tmp_path):
    key = OKPKey.generate_key("Ed25519")
    with pytest.raises(ConfigError, match="only a public key"):
        load_key(json.dumps(key.as_dict(private=False)), tmp_path / "dev.pem")
    x = OKPKey.generate_key("X25519")
    with pytest.raises(ConfigError, match="not an Ed25519 key"):
        load_key(json.dumps(x.as_dict(private=True)), tmp_path / "dev.pem")


def test_the_development_key_is_made_once_private_and_reused(tmp_path):
    path = tmp_path / "var" / "certificate-signing-key.pem"
    first, source = load_key(None, path)
    assert source.startswith("development key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    again, _ = load_key(None, path)
    assert again.thumbprint() == first.thumbprint()


def test_where_keys_are_required_no_development_key_is_made(tmp_path, monkeypatch):
    monkeypatch.delenv("CERTIFICATE_SIGNING_KEY", raising=False)
    monkeypatch.setenv("KAOWU_SECRETS_REQUIRED", "1")
    path = tmp_path / "dev.pem"
    with pytest.raises(ConfigError, match="kaowu-certificate-signing-key"):
        issuer_from_config({"CERTIFICATE_DEV_KEY_PATH": str(path)})
    assert not path.exists()


def test_issuer_from_config(tmp_path):
    key = OKPKey.generate_key("Ed25519")
    iss = issuer_from_config({"CERTIFICATE_SIGNING_KEY": json.dumps(key.as_dict(private=True)),
                              "PUBLIC_BASE_URL": "https://certs.example/", "CERTIFICATE_ISSUER":
                              "did:web:certs.example"})
    assert iss.kid == key.thumbprint() and iss.issuer_id == "did:web:certs.example"
    assert iss.verify_url("t0k") == "https://certs.example/verify/t0k"
    dev = issuer_from_config({"CERTIFICATE_DEV_KEY_PATH": str(tmp_path / "k.pem")})
    assert dev.issuer_id == "http://127.0.0.1:8000/issuer"
    assert (tmp_path / "k.pem").exists()


def test_number_format_from_config():
    assert keys.number_format_from_config({}) == "JL{year}{level_no}{seq:07d}"
    with pytest.raises(ConfigError, match="CERTIFICATE_NUMBER_FORMAT"):
        keys.number_format_from_config({"CERTIFICATE_NUMBER_FORMAT": "JL{year}"})
