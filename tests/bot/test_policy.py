"""The policy end to end: who may propose and apply, checked at the card and again at Apply.

Every refusal is ephemeral, names the rule that refused, and changes nothing in LaunchDarkly.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError
from bot.guardrails.policy import load_policy
from tests.bot.harness import ALICE, BOB, CAROL, Harness, buttons, card_text, click, run

StartBot = Callable[..., Awaitable[Harness]]
ROOT = Path(__file__).resolve().parents[2]
OTHER_CHANNEL = "C_RANDOM"

#: A second person for deleting and archiving, alice and bob propose and apply in demo, production
#: is read-only (the patch tests use it as it is).
PROJECT_POLICY = """
[default]
second_person = ["deleteFlag", "archiveFlag"]

[projects.demo]
propose = { users = ["U_ALICE", "U_BOB"] }
apply = { users = ["U_ALICE", "U_BOB"] }

[projects.demo.environments.production]
read_only = true
"""
#: And in test: proposed in C_RELEASES only, applied by the user group S_RELEASE.
POLICY = (
    PROJECT_POLICY
    + """
[projects.demo.environments.test]
propose = { users = ["U_ALICE", "U_BOB"], channels = ["C_RELEASES"] }
apply = { groups = ["S_RELEASE"] }
"""
)


def write(path: Path, text: str) -> None:
    """Write the policy and move its mtime on, so a rewrite within one clock tick is seen."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


@pytest.fixture
async def guarded(start_bot: StartBot, tmp_path: Path) -> tuple[Harness, Path]:
    """A bot under POLICY; the user group S_RELEASE holds alice and bob."""
    policy = tmp_path / "policy.toml"
    write(policy, POLICY)
    bot = await start_bot(flagops_policy=str(policy))
    bot.slack.set_usergroup("S_RELEASE", [ALICE, BOB])
    return bot, policy


def env(bot: Harness, key: str, environment: str) -> dict[str, Any]:
    return dict(bot.sandbox.projects["demo"].flags[key]["environments"][environment])


def last_ephemeral(bot: Harness, user: str) -> str:
    texts = bot.ephemeral_texts(user)
    assert texts, f"{user} was told nothing"
    return texts[-1]


async def test_without_a_policy_everything_is_allowed_and_the_bot_says_so(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="flagops.guardrails"):
        bot = await start_bot()
    assert any("No policy file" in r.getMessage() for r in caplog.records)
    await run(bot, "/flag help")
    assert "No policy file" in last_ephemeral(bot, ALICE)
    # Anyone the bot's token and their own LaunchDarkly role allow (carol, a reader, is refused by
    # the role check: tests/bot/test_roles.py).
    await run(bot, "/flag off new-checkout test", user=BOB)
    await click(bot, "Apply", user=BOB)
    assert env(bot, "new-checkout", "test")["on"] is False


async def test_someone_outside_the_policy_cannot_propose(guarded: tuple[Harness, Path]) -> None:
    bot, _ = guarded
    await run(bot, "/flag add tags new-checkout hotfix", user=CAROL)
    answer = last_ephemeral(bot, CAROL)
    assert "may not propose" in answer and "`projects.demo.propose`" in answer
    await run(bot, "/flag off new-checkout test", user=CAROL)
    assert "`projects.demo.environments.test.propose`" in last_ephemeral(bot, CAROL)
    assert not bot.slack.messages("C_RELEASES"), "no card"
    assert not bot.ld_patches(dry_runs=True), "not even a preview was asked for"


async def test_changes_only_from_the_channels_the_rule_names(guarded: tuple[Harness, Path]) -> None:
    bot, _ = guarded
    await run(bot, "/flag off new-checkout test", channel=OTHER_CHANNEL)
    answer = last_ephemeral(bot, ALICE)
    assert "<#C_RELEASES>" in answer and "`projects.demo.environments.test.propose`" in answer
    assert not bot.ld_patches(dry_runs=True)


async def test_someone_outside_the_apply_rule_cannot_apply_and_the_card_says_who_may(
    guarded: tuple[Harness, Path],
) -> None:
    bot, _ = guarded
    await run(bot, "/flag off new-checkout test")
    assert "Apply: <!subteam^S_RELEASE>" in card_text(bot), "the card says who may apply"
    await click(bot, "Apply", user=CAROL)
    answer = last_ephemeral(bot, CAROL)
    assert "may not apply" in answer and "`projects.demo.environments.test.apply`" in answer
    assert env(bot, "new-checkout", "test")["on"] is True and not bot.ld_patches()
    assert buttons(bot) == ["Apply", "Cancel"], "the card still waits"

    # Bob is in the group the rule names: he may apply alice's change.
    await click(bot, "Apply", user=BOB)
    assert env(bot, "new-checkout", "test")["on"] is False


async def test_group_membership_is_read_again_at_apply(guarded: tuple[Harness, Path]) -> None:
    bot, _ = guarded
    await run(bot, "/flag off new-checkout test")
    bot.slack.set_usergroup("S_RELEASE", [BOB])  # alice leaves the release group meanwhile
    await click(bot, "Apply")
    answer = last_ephemeral(bot, ALICE)
    assert "may not apply" in answer and "S_RELEASE" in answer
    assert env(bot, "new-checkout", "test")["on"] is True and not bot.ld_patches()
    calls = [c for c in bot.slack.calls if c.method == "usergroups.users.list"]
    assert calls and all(c.params.get("usergroup") == "S_RELEASE" for c in calls)


async def test_a_policy_change_between_propose_and_apply_is_honoured(guarded: tuple[Harness, Path]) -> None:
    bot, policy = guarded
    await run(bot, "/flag add tags new-checkout hotfix")
    assert buttons(bot) == ["Apply", "Cancel"]
    write(policy, POLICY.replace('apply = { users = ["U_ALICE", "U_BOB"] }', 'apply = { users = ["U_BOB"] }'))
    await click(bot, "Apply")
    answer = last_ephemeral(bot, ALICE)
    assert "may not apply" in answer and "`projects.demo.apply`" in answer
    assert "hotfix" not in bot.sandbox.projects["demo"].flags["new-checkout"]["tags"]
    assert not bot.ld_patches()

    await click(bot, "Apply", user=BOB)
    assert "hotfix" in bot.sandbox.projects["demo"].flags["new-checkout"]["tags"]


async def test_a_read_only_environment(guarded: tuple[Harness, Path]) -> None:
    bot, policy = guarded
    await run(bot, "/flag on new-checkout production")
    answer = last_ephemeral(bot, ALICE)
    assert "read-only" in answer and "`projects.demo.environments.production.read_only`" in answer
    assert not bot.slack.messages("C_RELEASES") and not bot.ld_patches(dry_runs=True)

    # Made read-only after the card was posted: Apply is refused.
    await run(bot, "/flag off new-checkout test")
    section = "[projects.demo.environments.test]\n"
    write(policy, POLICY.replace(section, section + "read_only = true\n"))
    await click(bot, "Apply")
    assert "`projects.demo.environments.test.read_only`" in last_ephemeral(bot, ALICE)
    assert env(bot, "new-checkout", "test")["on"] is True and not bot.ld_patches()


async def test_archiving_needs_a_second_person(guarded: tuple[Harness, Path]) -> None:
    bot, _ = guarded
    await run(bot, "/flag archive holiday-banner")
    assert "needs a second person" in card_text(bot)
    await click(bot, "Apply")
    answer = last_ephemeral(bot, ALICE)
    assert "second person" in answer and "`default.second_person`" in answer
    await click(bot, "Apply", user=CAROL)
    assert "`projects.demo.apply`" in last_ephemeral(bot, CAROL)
    assert bot.sandbox.projects["demo"].flags["holiday-banner"]["archived"] is False
    assert not bot.ld_patches()

    await click(bot, "Apply", user=BOB)
    assert bot.sandbox.projects["demo"].flags["holiday-banner"]["archived"] is True
    assert "Applied by <@U_BOB>" in card_text(bot)


async def test_a_policy_file_that_cannot_be_read_stops_the_start(start_bot: StartBot, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[projects.demo]\npropose = { users = "U_ALICE" }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"propose\.users must be a list"):
        await start_bot(flagops_policy=str(bad))
    with pytest.raises(ConfigError, match="no file"):
        await start_bot(flagops_policy=str(tmp_path / "missing.toml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[projects.demo\n", "not valid TOML"),
        ("[teams]\n", "unknown top-level key"),
        ("[projects.demo]\nwho = 1\n", "unknown key"),
        ('[default]\nsecond_person = ["nukeFlag"]\n', "unknown instruction kind"),
        ("[default]\nread_only = 1\n", "read_only must be true or false"),
        ('[default]\npropose = { people = ["U1"] }\n', "unknown key"),
    ],
)
def test_policy_file_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_policy(path)


def test_the_example_policy_loads_and_means_what_it_says(tmp_path: Path) -> None:
    copy = tmp_path / "policy.toml"
    shutil.copy(ROOT / "policy.example.toml", copy)
    policy = load_policy(copy)
    production = policy.scope("demo", "production")
    assert (
        production.apply is not None
        and production.apply.name == "projects.demo.environments.production.apply"
    )
    assert "turnFlagOff" in production.second_person
    assert policy.scope("demo", "staging").read_only == "projects.demo.environments.staging.read_only"
    flag_level = policy.scope("demo", None)
    assert flag_level.propose is not None and flag_level.propose.name == "projects.demo.propose"
    assert flag_level.second_person == frozenset({"deleteFlag", "archiveFlag"})
    assert policy.scope("other", "test").propose is None, "other projects: allowed"


async def test_a_policy_file_broken_while_running_refuses_every_change(guarded: tuple[Harness, Path]) -> None:
    bot, policy = guarded
    await run(bot, "/flag off new-checkout test")
    write(policy, POLICY + "\n[projects.demo\n")
    await click(bot, "Apply")
    assert "policy file is invalid" in last_ephemeral(bot, ALICE)
    await run(bot, "/flag add tags new-checkout hotfix")
    assert "policy file is invalid" in last_ephemeral(bot, ALICE)
    assert len(bot.ld_patches(dry_runs=True)) == 1, "only the first card's preview"
    assert env(bot, "new-checkout", "test")["on"] is True

    write(policy, POLICY)  # fixed: the card posted before still works
    await click(bot, "Apply")
    assert env(bot, "new-checkout", "test")["on"] is False


async def test_send_again_follows_the_policy_like_apply(guarded: tuple[Harness, Path]) -> None:
    bot, policy = guarded
    await run(bot, "/flag off new-checkout test")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"error_every": 1, "error_status": 503, "methods": ["PATCH"]}
    )
    await click(bot, "Apply")
    assert buttons(bot) == ["Send again", "Cancel"]
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"error_every": 0})
    section = "[projects.demo.environments.test]\n"
    write(policy, POLICY.replace(section, section + "read_only = true\n"))
    await click(bot, "Send again")
    assert "`projects.demo.environments.test.read_only`" in last_ephemeral(bot, ALICE)
    assert env(bot, "new-checkout", "test")["on"] is True
    assert len(bot.ld_patches()) == 1, "only the first attempt was ever sent"
