"""Settings: environment overrides, validation, and .env.example documents every field."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT
from pydantic import ValidationError

from assistant.config import Settings, load_settings


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("ASSISTANT_TOP_K", "7")
    settings = load_settings(_env_file=None)
    assert settings.corpus_dir == tmp_path / "c" and settings.top_k == 7
    assert settings.chroma_dir == tmp_path / "d" / "chroma"


def test_dotenv_file(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text(
        "ASSISTANT_DATA_DIR=/srv/assistant\nASSISTANT_MIN_RELEVANCE=0.9\n", encoding="utf-8"
    )
    settings = Settings(_env_file=env)
    assert settings.data_dir == Path("/srv/assistant") and settings.min_relevance == 0.9


def test_invalid_value_names_the_field(monkeypatch):
    monkeypatch.setenv("ASSISTANT_TOP_K", "zero")
    with pytest.raises(ValidationError, match="top_k"):
        load_settings(_env_file=None)


def test_list_settings_read_comma_separated_or_json(monkeypatch):
    origins = "https://intranet.example.com/, https://wiki.example.com"
    monkeypatch.setenv("ASSISTANT_EMBED_ORIGINS", origins)
    monkeypatch.setenv("ASSISTANT_TRUSTED_PROXIES", '["10.0.0.0/8", " 192.168.1.5"]')
    monkeypatch.setenv("ASSISTANT_LOGIN_USERS", "anna:geheim:hr|management, ben:pw,")
    settings = load_settings(_env_file=None)
    assert settings.embed_origins == ["https://intranet.example.com", "https://wiki.example.com"]
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.168.1.5"]
    users = [u.get_secret_value() for u in settings.login_users]
    assert users == ["anna:geheim:hr|management", "ben:pw"]
    assert "geheim" not in repr(settings)  # the entries hold passwords: kept secret
    # Built in code: lists, or the same strings the environment gives.
    assert Settings(_env_file=None, trusted_proxies="10.0.0.5").trusted_proxies == ["10.0.0.5"]
    assert Settings(_env_file=None, embed_origins=["https://a.example/"]).embed_origins == [
        "https://a.example"
    ]


def test_list_settings_from_a_dotenv_file(tmp_path):
    env = tmp_path / ".env"
    env.write_text(
        "ASSISTANT_EMBED_ORIGINS=https://a.example,https://b.example\n"
        "ASSISTANT_TRUSTED_PROXIES=\n"
        'ASSISTANT_LOGIN_USERS=["anna:ge,heim:hr"]\n',
        encoding="utf-8",
    )
    settings = Settings(_env_file=env)
    assert settings.embed_origins == ["https://a.example", "https://b.example"]
    assert settings.trusted_proxies == []
    assert [u.get_secret_value() for u in settings.login_users] == ["anna:ge,heim:hr"]
    example = Settings(_env_file=ROOT / ".env.example")  # its empty lists load as lists
    assert example.embed_origins == example.trusted_proxies == example.login_users == []


def test_a_broken_json_list_names_the_field(monkeypatch):
    monkeypatch.setenv("ASSISTANT_EMBED_ORIGINS", '["https://a.example"')
    with pytest.raises(ValidationError, match="embed_origins"):
        load_settings(_env_file=None)


def test_every_field_is_documented_and_listed_in_env_example():
    listed = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert f"ASSISTANT_{name.upper()}" in listed, f"{name} missing from .env.example"


def test_one_database_url_for_every_record(tmp_path):
    default = Settings(_env_file=None, data_dir=tmp_path)
    assert default.app_db_url == f"sqlite:///{tmp_path.resolve() / 'app.sqlite'}"
    assert default.record_db_url == f"sqlite:///{tmp_path.resolve() / 'records.sqlite'}"
    assert default.chroma_url == "" and default.chroma_token.get_secret_value() == ""

    url = "postgresql+psycopg://assistant:pw@db.internal/assistant"
    shared = Settings(_env_file=None, data_dir=tmp_path, database_url=url)
    assert shared.app_db_url == shared.record_db_url == shared.feedback_url == url


def test_deprecated_feedback_db_url_moves_app_records_only(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ASSISTANT_FEEDBACK_DB_URL", "sqlite:////srv/feedback.sqlite")
    settings = load_settings(_env_file=None, data_dir=tmp_path)
    assert settings.app_db_url == "sqlite:////srv/feedback.sqlite"
    assert settings.record_db_url.endswith("records.sqlite")
    assert "ASSISTANT_FEEDBACK_DB_URL is deprecated" in caplog.text
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", "postgresql+psycopg://h/db")
    assert load_settings(_env_file=None).app_db_url == "postgresql+psycopg://h/db"


def test_store_urls_are_checked(monkeypatch):
    monkeypatch.setenv("ASSISTANT_CHROMA_URL", "chroma.internal:8000")
    with pytest.raises(ValidationError, match="chroma_url"):
        load_settings(_env_file=None)
    monkeypatch.setenv("ASSISTANT_CHROMA_URL", "https://chroma.internal/")
    assert load_settings(_env_file=None).chroma_url == "https://chroma.internal"
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", "mysql://h/db")
    with pytest.raises(ValidationError, match="database_url"):
        load_settings(_env_file=None)
