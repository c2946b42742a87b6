"""manifest.yml creates the Slack app wave 1 needs, no more; the Procfile runs the web process."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from bot.config import Settings
from bot.slack.server import EVENTS_PATH

ROOT = Path(__file__).resolve().parents[2]


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    return loaded


def test_bot_scopes_are_exactly_what_wave_one_needs() -> None:
    assert manifest()["oauth_config"]["scopes"]["bot"] == [
        "commands",
        "chat:write",
        "chat:write.public",
        "users:read",
        "users:read.email",
        "usergroups:read",
    ]
    assert "user" not in manifest()["oauth_config"]["scopes"]


def test_slash_command() -> None:
    [command] = manifest()["features"]["slash_commands"]
    assert command["command"] == Settings.model_fields["flagops_command"].default
    # Escaped mentions (<@U123|bob>) are how `--reviewers @bob` reaches the bot as a user id.
    assert command["should_escape"] is True
    assert command["description"] and len(command["description"]) <= 100
    assert len(command["usage_hint"]) <= 100


def test_message_shortcuts() -> None:
    shortcuts = manifest()["features"]["shortcuts"]
    assert [(s["name"], s["type"], s["callback_id"]) for s in shortcuts] == [
        ("Change flag from message", "message", "flag_from_message"),
        ("Link message to flag", "message", "link_message_to_flag"),
    ]
    for shortcut in shortcuts:
        assert len(shortcut["name"]) <= 24 and 0 < len(shortcut["description"]) <= 80


def test_every_url_is_the_bots_events_endpoint_on_one_host() -> None:
    data = manifest()
    urls = [
        data["features"]["slash_commands"][0]["url"],
        data["settings"]["interactivity"]["request_url"],
        data["settings"]["interactivity"]["message_menu_options_url"],
    ]
    parsed = [urlparse(u) for u in urls]
    assert {p.scheme for p in parsed} == {"https"}
    assert len({p.netloc for p in parsed}) == 1
    assert {p.path for p in parsed} == {EVENTS_PATH}
    assert data["settings"]["interactivity"]["is_enabled"] is True


def test_the_home_tab_is_on_and_http_mode_by_default() -> None:
    data = manifest()
    assert data["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in data["settings"]["event_subscriptions"]["bot_events"]
    assert data["settings"]["socket_mode_enabled"] is False
    assert data["display_information"]["name"] == "flagops"
    assert data["features"]["bot_user"]["display_name"]


def test_procfile_runs_the_web_process() -> None:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    assert "web: python -m bot" in lines
    assert "release: python -m bot migrate" in lines
