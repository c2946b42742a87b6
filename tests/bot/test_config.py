"""Settings: defaults, normalisation, and the one clear message when something is missing."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, Settings, load_settings, normalise_database_url, parse_duration

REQUIRED = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s3cret", "LD_API_TOKEN": "api-1"}
ALL_VARS = [
    *REQUIRED,
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "LD_BASE_URL",
    "LD_PROJECT",
    "DATABASE_URL",
    "PORT",
    "FLAGOPS_COMMAND",
    "FLAGOPS_CONFIRM_TTL",
    "FLAGOPS_SCHEDULER",
    "FLAGOPS_SECRET_KEY",
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment in an empty directory (so no stray .env is read)."""
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults(env: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        env.setenv(name, value)
    settings = load_settings()
    assert settings.slack_bot_token.get_secret_value() == "xoxb-1"
    assert settings.ld_base_url == "https://app.launchdarkly.com"
    assert settings.ld_project == "default"
    assert settings.database_url == "sqlite+aiosqlite:///flagops.sqlite3"
    assert settings.port == 3000
    assert settings.flagops_command == "/flag"
    assert settings.flagops_confirm_ttl == timedelta(minutes=15)
    assert settings.flagops_scheduler == "on"
    assert settings.slack_app_token is None and settings.slack_api_base is None


def test_missing_settings_are_named_in_one_message(env: pytest.MonkeyPatch) -> None:
    env.setenv("SLACK_SIGNING_SECRET", "s3cret")
    env.setenv("SLACK_BOT_TOKEN", "  ")  # blank counts as missing
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert "SLACK_BOT_TOKEN" in message and "LD_API_TOKEN" in message
    assert "SLACK_SIGNING_SECRET" not in message
    assert "python -m bot console" in message


def test_invalid_values_are_explained_without_echoing_them(env: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        env.setenv(name, value)
    env.setenv("PORT", "not-a-port-xyz")
    env.setenv("FLAGOPS_CONFIRM_TTL", "soon")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "PORT" in caught.value.message and "FLAGOPS_CONFIRM_TTL" in caught.value.message
    assert "not-a-port-xyz" not in caught.value.message


def test_dotenv_file_is_read(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-env\nSLACK_SIGNING_SECRET=s\nLD_API_TOKEN=api\nLD_PROJECT=shop\n"
        "FLAGOPS_CONFIRM_TTL=1h\nSLACK_API_URL=http://127.0.0.1:9/api/\n",
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.ld_project == "shop"
    assert settings.flagops_confirm_ttl == timedelta(hours=1)
    assert settings.slack_api_base == "http://127.0.0.1:9/api/"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("sqlite:///flagops.sqlite3", "sqlite+aiosqlite:///flagops.sqlite3"),
        ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
    ],
)
def test_database_urls_get_an_async_driver(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected
    credentials: dict[str, Any] = {k.lower(): v for k, v in REQUIRED.items()}
    settings = Settings(_env_file=None, database_url=given, **credentials)
    assert settings.database_url == expected
    assert "u:p" not in repr(settings)


@pytest.mark.parametrize(
    ("given", "seconds"), [("900", 900), (60, 60), ("15m", 900), ("1h", 3600), ("30s", 30), ("1.5h", 5400)]
)
def test_durations(given: object, seconds: int) -> None:
    assert parse_duration(given) == timedelta(seconds=seconds)


@pytest.mark.parametrize("given", ["soon", "0", "-5", "", "5 weeks", True])
def test_bad_durations(given: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(given)


def test_console_needs_no_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("LD_API_TOKEN", "real-token-must-not-be-used")
    settings = load_settings("console")
    assert settings.ld_api_token.get_secret_value() != "real-token-must-not-be-used"
    assert settings.ld_project == "demo"


def test_main_prints_the_message_and_exits_2(tmp_path: Path) -> None:
    clean = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2
    assert "SLACK_BOT_TOKEN" in run.stderr and "python -m bot console" in run.stderr
    assert "Traceback" not in run.stderr
