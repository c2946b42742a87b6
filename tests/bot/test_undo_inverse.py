"""The inverse of every reversible kind, computed by ``bot.lifecycle.undo`` and checked with the engine.

For each command: resolve it against a demo flag, apply it with the engine, compute the inverse
from (before, after), apply that, and compare with ``before``, ignoring only what LaunchDarkly
generates (versions, timestamps, rule and clause ``_id``s: see tests/bot/test_undo.py). The
end-to-end tests cover the loop; these cover the breadth of kinds fast.
"""

from __future__ import annotations

from typing import Any

import pytest

from commands import parse, resolve
from commands.demo import demo_flags, demo_members
from commands.engine import apply
from commands.engine.inverse import aspects_of, inverse_patch
from commands.errors import CommandError
from commands.instructions import SemanticPatch
from commands.intents import ChangeCommand
from tests.bot.test_undo import comparable

MEMBERS = {m["email"]: m["_id"] for m in demo_members()}


def applied(text: str) -> tuple[dict[str, Any], dict[str, Any], SemanticPatch, dict[str, dict[str, Any]]]:
    flags = demo_flags()
    command = parse(text)
    assert isinstance(command, ChangeCommand)
    before = flags[command.flag]
    patch = resolve(command, before, members=MEMBERS, flags=flags)
    return before, apply(before, patch, other_flags=flags), patch, flags


@pytest.mark.parametrize(
    "text",
    [
        "on new-checkout production",
        "off-variation new-checkout test true",
        "track-events pricing-page test on",
        "track-events pricing-page test default on",
        "serve pricing-page test rule 2 v2",
        "rename rule pricing-page test 1 to Beta",
        "reorder rules pricing-page test 3,1,2",
        "add clause pricing-page test rule 1 if country in DE",
        "untarget new-checkout test user:alice",
        "clear targets new-checkout test true",
        "add prereq holiday-banner test new-checkout true",
        "remove prereq express-shipping test new-checkout",
        "update prereq express-shipping test new-checkout false",
        'rename new-checkout "Checkout v2"',
        'describe new-checkout "A new description"',
        "make temporary new-checkout",
        "make permanent holiday-banner",
        "expose new-checkout mobile,client-side",
        "remove maintainer new-checkout",
        "maintainer new-checkout bob@example.com",
        "add property new-checkout jira CHK-1",
        "update variation banner-color blue named Azure",
        "add variation banner-color yellow",
        "default-variations new-checkout on false off true",
        "deprecate new-checkout",
        "archive holiday-banner; add tags holiday-banner gone",
    ],
)
def test_the_inverse_restores_the_flag(text: str) -> None:
    before, after, patch, flags = applied(text)
    assert comparable(after) != comparable(before), "the command changed something"
    inverse = inverse_patch(before, after, patch, other_flags=flags)
    restored = apply(after, inverse, other_flags=flags)
    assert without_expansions(restored) == without_expansions(before), inverse.body()


def without_expansions(flag: dict[str, Any]) -> Any:
    """Also without ``_maintainer``: LaunchDarkly expands the maintainer id into it on every read;
    the engine, knowing no members, drops it when the maintainer changes."""
    return comparable({k: v for k, v in flag.items() if k not in ("_maintainer", "_maintainerTeam")})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("delete new-checkout confirm new-checkout", "deleted flag cannot be undone"),
        ("remove variation banner-color red", "Removing a variation cannot be undone"),
    ],
)
def test_what_cannot_be_undone_says_why(text: str, message: str) -> None:
    command = parse(text)
    assert isinstance(command, ChangeCommand)
    flags = demo_flags()
    patch = resolve(command, flags[command.flag], members=MEMBERS, flags=flags)
    with pytest.raises(CommandError, match=message):
        aspects_of(patch)


def test_nothing_to_undo_when_the_flag_is_already_back() -> None:
    before, _after, patch, flags = applied("off new-checkout test")
    with pytest.raises(CommandError, match="Nothing to undo"):
        inverse_patch(before, before, patch, other_flags=flags)
