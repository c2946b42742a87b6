"""Deleting a scheduled change follows the rule of Apply: its requester, or whoever the policy lets
apply there; through the clicker's linked LaunchDarkly account when they have one. A scheduled
change made outside flagops is deleted only through the clicker's own linked account. ``remind``
and ``scheduled`` use the channel's project (``/flag config project``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.offline.fake_slack import Ephemeral, Message
from bot.scheduling.jobs import USER_REMINDER
from commands.instructions import TurnFlagOff
from tests.bot.harness import ALICE, BOB, CAROL, Harness
from tests.bot.test_approvals import link, member_id, start
from tests.bot.test_config_command import second_project

StartBot = Callable[..., Awaitable[Harness]]
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
POLICY = '[projects.demo.environments.test]\napply = { users = ["U_ALICE", "U_BOB"] }\n'


async def run(bot: Harness, text: str, *, user: str = ALICE) -> None:
    bot.stack.runtime.changes.clock = lambda: NOW
    assert (await bot.command(text, user=user)).status_code == 200
    await bot.idle()


async def schedule(bot: Harness) -> str:
    """Alice schedules new-checkout off in test in 2 hours; the scheduled change's id."""
    await run(bot, "/flag off new-checkout test in 2 hours")
    assert (await bot.click("Apply", user=ALICE)).status_code == 200
    await bot.idle()
    (stored,) = bot.sandbox.scheduled.values()
    return str(stored.doc["_id"])


def as_message(ephemeral: Ephemeral) -> Message:
    return Message(ephemeral.channel, "1700000000.000009", ephemeral.text, ephemeral.blocks, "U_FLAGOPS")


async def click_delete(bot: Harness, user: str) -> None:
    await run(bot, "/flag scheduled new-checkout test", user=user)
    listing = as_message(bot.slack.ephemerals(user)[-1])
    assert (await bot.click("Delete", user=user, message=listing)).status_code == 200
    await bot.idle()


async def test_without_a_policy_only_the_requester_deletes_it(bot: Harness) -> None:
    scheduled_id = await schedule(bot)
    await run(bot, f"/flag scheduled cancel {scheduled_id}", user=BOB)
    refusal = bot.ephemeral_texts(BOB)[-1]
    assert "Only <@U_ALICE>" in refusal and f"`{scheduled_id}` was not deleted" in refusal
    await click_delete(bot, BOB)
    assert f"`{scheduled_id}` was not deleted" in bot.ephemeral_texts(BOB)[-1]
    assert scheduled_id in bot.sandbox.scheduled, "still scheduled"
    await run(bot, f"/flag scheduled cancel {scheduled_id}")
    assert "Deleted scheduled change" in bot.ephemeral_texts(ALICE)[-1]
    assert not bot.sandbox.scheduled


async def test_an_applier_the_policy_names_deletes_it_with_their_linked_token(
    start_bot: StartBot, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    bot = await start(start_bot, flagops_policy=str(policy))
    await link(bot, BOB, "sandbox-bob")
    scheduled_id = await schedule(bot)
    await run(bot, f"/flag scheduled cancel {scheduled_id}", user=CAROL)
    assert "was not deleted" in bot.ephemeral_texts(CAROL)[-1]
    assert scheduled_id in bot.sandbox.scheduled
    await run(bot, f"/flag scheduled cancel {scheduled_id}", user=BOB)
    assert "Deleted scheduled change" in bot.ephemeral_texts(BOB)[-1]
    assert not bot.sandbox.scheduled
    (deleted,) = [e for e in bot.sandbox.audit if e.get("kind") == "deleteScheduledChange"]
    assert deleted["memberId"] == member_id(bot, "bob@example.com"), "as bob, not as the bot"


async def test_one_made_outside_flagops_is_deleted_only_through_a_linked_account(
    start_bot: StartBot,
) -> None:
    bot = await start(start_bot)
    created = await bot.stack.runtime.ld.create_scheduled_change(
        "demo",
        "new-checkout",
        "test",
        execution_date=int((NOW + timedelta(hours=2)).timestamp() * 1000),
        instructions=[TurnFlagOff()],
        comment="made in LaunchDarkly",
    )
    await click_delete(bot, CAROL)
    assert "was not made through flagops" in bot.ephemeral_texts(CAROL)[-1]
    assert created.id in bot.sandbox.scheduled
    await link(bot, BOB, "sandbox-bob")
    await click_delete(bot, BOB)
    assert "Deleted scheduled change" in bot.ephemeral_texts(BOB)[-1]
    assert not bot.sandbox.scheduled


async def test_remind_and_scheduled_use_the_channels_project(bot: Harness) -> None:
    second_project(bot)
    await run(bot, "/flag config project shop")
    await run(bot, '/flag remind new-checkout test in 1 minute "shop"')
    (job,) = await bot.stack.runtime.scheduler.jobs.all(USER_REMINDER)  # type: ignore[union-attr]
    assert job.target["project"] == "shop"
    await bot.stack.runtime.ld.create_scheduled_change(
        "shop",
        "new-checkout",
        "test",
        execution_date=int((NOW + timedelta(hours=2)).timestamp() * 1000),
        instructions=[TurnFlagOff()],
    )
    await run(bot, "/flag scheduled new-checkout test")
    assert "Scheduled changes for *new-checkout* in *test* (1)" in bot.ephemeral_texts(ALICE)[-1]
