import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from shared.config import (
    DEFAULT_AMQP_URI,
    amqp_uri,
    database_url,
    mask_url,
    resolve_database_url,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # {service} placeholder, anywhere
        ("sqlite:///var/{service}.db", "sqlite:///var/account.db"),
        (
            "postgresql://postgres@127.0.0.1/kaowu_{service}",
            "postgresql://postgres@127.0.0.1/kaowu_account",
        ),
        (
            "postgresql://{service}:pw@127.0.0.1/{service}",
            "postgresql://account:pw@127.0.0.1/account",
        ),
        # server databases: _<service> suffix
        ("postgresql://postgres@127.0.0.1/kaowu", "postgresql://postgres@127.0.0.1/kaowu_account"),
        (
            "postgresql+psycopg2://u:p%40ss@db:5433/kaowu?sslmode=require",
            "postgresql+psycopg2://u:p%40ss@db:5433/kaowu_account?sslmode=require",
        ),
        ("postgresql://postgres@127.0.0.1/", "postgresql://postgres@127.0.0.1/account"),
        # sqlite files: -<service> before the extension
        ("sqlite:///var/kaowu.db", "sqlite:///var/kaowu-account.db"),
        ("sqlite:///kaowu.sqlite3", "sqlite:///kaowu-account.sqlite3"),
        ("sqlite:////srv/data/kaowu.db", "sqlite:////srv/data/kaowu-account.db"),
        ("sqlite:///var/kaowu", "sqlite:///var/kaowu-account"),
        ("sqlite:///var.d/kaowu", "sqlite:///var.d/kaowu-account"),
        # sqlite directory
        ("sqlite:///var/", "sqlite:///var/account.db"),
        # in-memory sqlite is per process anyway
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
    ],
)
def test_resolve_database_url(template, expected):
    assert resolve_database_url(template, "account") == expected


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///var/account.db",
        "sqlite:///var/kaowu-account.db",
        "postgresql://postgres@127.0.0.1/kaowu_account",
        "postgresql://postgres@127.0.0.1/account",
    ],
)
def test_already_resolved_urls_are_left_alone(url):
    assert resolve_database_url(url, "account") == url


def test_other_services_get_their_own_database():
    template = "postgresql://postgres@127.0.0.1/kaowu"
    urls = {resolve_database_url(template, s) for s in ("account", "registration", "scoring")}
    assert len(urls) == 3


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "my service"])
def test_rejects_what_is_not_a_service_name(bad):
    with pytest.raises(ValueError):
        resolve_database_url("sqlite:///var/{service}.db", bad)


_names = st.from_regex(r"[a-z][a-z0-9]{0,11}", fullmatch=True)
_templates = st.one_of(
    st.builds("sqlite:///var/{}.db".format, _names),
    st.builds("sqlite:///{}".format, _names),
    st.builds("postgresql://postgres@127.0.0.1/{}".format, _names),
    st.just("sqlite:///var/{service}.db"),
    st.just("sqlite:///var/"),
)


@given(template=_templates, service=_names)
def test_resolving_is_idempotent(template, service):
    once = resolve_database_url(template, service)
    assert resolve_database_url(once, service) == once
    assert service in once


def test_config_yml_parses_and_its_database_default_matches_the_runner(monkeypatch):
    """config.yml's DATABASE_URL default and shared.config's default name the same file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nameko.cli imports pkg_resources
        from nameko.cli.main import setup_yaml_parser
    setup_yaml_parser()
    for var in ("AMQP_URI", "DATABASE_URL", "MAX_WORKERS", "WEB_SERVER_ADDRESS"):
        monkeypatch.delenv(var, raising=False)

    config = yaml.safe_load((ROOT / "config.yml").read_text())

    assert config["AMQP_URI"] == DEFAULT_AMQP_URI
    assert config["WEB_SERVER_ADDRESS"] == "0.0.0.0:8000"
    assert config["max_workers"] == 10
    assert config["serializer"] == "json"
    for service in ("account", "gateway"):
        assert resolve_database_url(config["DATABASE_URL"], service) == database_url(service)

    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1/kaowu_{service}")
    monkeypatch.setenv("MAX_WORKERS", "3")
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    assert config["DATABASE_URL"] == "postgresql://postgres@127.0.0.1/kaowu_{service}"
    assert config["max_workers"] == 3


def test_environment_and_defaults(monkeypatch):
    monkeypatch.delenv("AMQP_URI", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert amqp_uri() == "amqp://guest:guest@127.0.0.1:5672/"
    assert database_url("account") == "sqlite:///var/account.db"

    monkeypatch.setenv("AMQP_URI", "amqp://kaowu:secret@mq:5672/kaowu")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1/kaowu")
    assert amqp_uri() == "amqp://kaowu:secret@mq:5672/kaowu"
    assert database_url("scoring") == "postgresql://postgres@127.0.0.1/kaowu_scoring"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        (
            "postgresql+psycopg2://kaowu:s3cr%40t@db:5432/kaowu?sslmode=require",
            "postgresql+psycopg2://kaowu:***@db:5432/kaowu?sslmode=require",
        ),
        ("amqp://u:p@a:5672/;amqp://u:q@b:5672/", "amqp://u:***@a:5672/;amqp://u:***@b:5672/"),
        ("amqp://user:p@ss@host/", "amqp://user:***@host/"),
        # nothing to hide
        ("amqp://guest@127.0.0.1:5672/", "amqp://guest@127.0.0.1:5672/"),
        ("postgresql://postgres@127.0.0.1/kaowu", "postgresql://postgres@127.0.0.1/kaowu"),
        ("sqlite:///var/account.db", "sqlite:///var/account.db"),
        ("amqp://127.0.0.1", "amqp://127.0.0.1"),
        ("", ""),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_mask_url_survives_unparsable_urls():
    assert "secret" not in mask_url("amqp://guest:secret@[::1/")
