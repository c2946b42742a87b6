"""The demo project: flag documents in the exact shape of LaunchDarkly's flag response.

The sandbox serves them, the offline console starts from them, and every help example refers to
them, so a new user can paste any example into the console.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import Any

DEMO_PROJECT = "demo"
DEMO_ENVIRONMENTS = ("test", "production")


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    text = resources.files("commands").joinpath("data/demo.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def demo_flags() -> dict[str, dict[str, Any]]:
    """Return fresh copies of the demo flags, by key."""
    return {flag["key"]: copy.deepcopy(flag) for flag in _raw()["flags"]}


def demo_flag(key: str) -> dict[str, Any] | None:
    """Return a fresh copy of one demo flag, or None."""
    return demo_flags().get(key)


def demo_project() -> dict[str, Any]:
    """Return the demo project, with its environments and their approval settings."""
    project: dict[str, Any] = copy.deepcopy(_raw()["project"])
    return project


def demo_members() -> list[dict[str, Any]]:
    """Return the demo account's members (alice and bob are writers, carol a reader, tara a reader
    with a custom role limited to targets in ``test``, pat a role attribute and a team)."""
    members: list[dict[str, Any]] = copy.deepcopy(_raw()["members"])
    return members


def demo_roles() -> dict[str, dict[str, Any]]:
    """Return the demo account's custom roles, by key (``GET /api/v2/roles/{key}``'s shape)."""
    return {role["key"]: copy.deepcopy(role) for role in _raw().get("roles") or []}


def demo_teams() -> dict[str, dict[str, Any]]:
    """Return the demo account's teams, by key (each with the keys of its custom roles)."""
    return {team["key"]: copy.deepcopy(team) for team in _raw().get("teams") or []}


def demo_segments() -> dict[str, dict[str, dict[str, Any]]]:
    """Return the demo segments: environment -> segment key -> segment (LaunchDarkly's shape)."""
    segments: dict[str, list[dict[str, Any]]] = copy.deepcopy(_raw().get("segments") or {})
    return {env: {s["key"]: s for s in items} for env, items in segments.items()}
