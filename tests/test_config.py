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


def test_every_field_is_documented_and_listed_in_env_example():
    listed = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert f"ASSISTANT_{name.upper()}" in listed, f"{name} missing from .env.example"
