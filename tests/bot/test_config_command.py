"""``/flag config`` end to end: settings shown and set per channel, stored in the database, and used
by later commands in that channel only."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable

import pytest

from bot.guardrails.channel_config import ChannelConfig, channel_ref, check_digest, user_refs
from commands.errors import CommandError
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, run

OTHER = "C_OTHER"


def last_ephemeral(bot: Harness, user: str = ALICE) -> str:
    ephemerals = bot.slack.ephemerals(user)
    assert ephemerals, "nothing was said"
    last = ephemerals[-1]
    return last.text + " " + " ".join(str(b) for b in last.blocks)


def second_project(bot: Harness) -> None:
    """A second LaunchDarkly project, ``shop``, with the demo's flags and environments."""
    shop = copy.deepcopy(bot.sandbox.projects["demo"])
    shop.doc = {**shop.doc, "key": "shop", "name": "Shop"}
    bot.sandbox.projects["shop"] = shop


async def test_config_shows_defaults_then_what_this_channel_set(
    start_bot: Callable[..., Awaitable[Harness]], database_url: str
) -> None:
    bot = await start_bot(database_url=database_url)
    await run(bot, "/flag config")
    shown = last_ephemeral(bot)
    assert "Settings of this channel" in shown
    assert "*project*: `demo` _(default)_" in shown and "*tz*: `UTC` _(default)_" in shown

    await run(bot, "/flag config tz Europe/Paris")
    await run(bot, "/flag config env test")
    await run(bot, '/flag config digest "mon 09:00"')
    await run(bot, "/flag config approvals-channel #flag-approvals")
    # As Slack sends them with should_escape: mentions arrive escaped, unquoted.
    await run(bot, "/flag config reviewers production <@U_BOB|bob>, <@U_CAROL>")
    announced = [m.text for m in bot.slack.messages(RELEASES)]
    assert any("set this channel's *tz* to `Europe/Paris`" in t for t in announced)
    assert any("*reviewers* to <@U_BOB>, <@U_CAROL> for `production`" in t for t in announced)

    await run(bot, "/flag config")
    shown = last_ephemeral(bot)
    assert "*tz*: `Europe/Paris` _(set here)_" in shown
    assert "*env*: `test` _(set here)_" in shown
    assert "*digest*: `mon 09:00` _(set here)_" in shown
    assert "*approvals-channel*: #flag-approvals _(set here)_" in shown
    assert "`production`: <@U_BOB>, <@U_CAROL> _(set here)_" in shown

    settings = await ChannelConfig(bot.store.engine, bot.stack.settings).get(RELEASES)
    assert settings.reviewers_for("production") == ["U_BOB", "U_CAROL"]
    assert settings.timezone == "Europe/Paris" and settings.digest == "mon 09:00"

    await run(bot, "/flag config approvals-channel <#C_APPROVALS|approvals>")
    await run(bot, "/flag config")
    assert "*approvals-channel*: <#C_APPROVALS> _(set here)_" in last_ephemeral(bot)

    await run(bot, "/flag config tz reset")
    await run(bot, "/flag config")
    assert "*tz*: `UTC` _(default)_" in last_ephemeral(bot)


async def test_the_channels_project_and_environment_are_used_by_later_commands(bot: Harness) -> None:
    second_project(bot)
    shop = bot.sandbox.projects["shop"]
    demo = bot.sandbox.projects["demo"]

    await run(bot, "/flag config project shop", user=BOB)
    await run(bot, "/flag off new-checkout test")
    await bot.click("Apply")
    await bot.idle()
    assert shop.flags["new-checkout"]["environments"]["test"]["on"] is False
    assert demo.flags["new-checkout"]["environments"]["test"]["on"] is True, "the other project is untouched"
    assert "project shop" in str(bot.card().blocks)

    # Another channel keeps the default project.
    await run(bot, "/flag off new-checkout test", channel=OTHER)
    await bot.click("Apply", message=bot.card(OTHER))
    await bot.idle()
    assert demo.flags["new-checkout"]["environments"]["test"]["on"] is False

    # `show` without an environment shows the channel's default one.
    await run(bot, "/flag config env production")
    await run(bot, "/flag show new-checkout")
    shown = last_ephemeral(bot)
    assert "Targeting in production" in shown and "project shop" in shown
    await run(bot, "/flag list")
    assert "Flags in `shop`" in last_ephemeral(bot)


async def test_on_and_off_without_an_environment_use_the_channels_default(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout")
    assert "Which environment?" in last_ephemeral(bot) and "config env" in last_ephemeral(bot)
    assert not bot.slack.messages(RELEASES)

    await run(bot, "/flag config env test")
    await run(bot, "/flag off new-checkout")
    assert "in *test*" in str(bot.card().blocks)
    await bot.click("Apply")
    await bot.idle()
    assert bot.sandbox.projects["demo"].flags["new-checkout"]["environments"]["test"]["on"] is False


async def test_config_values_are_checked(bot: Harness) -> None:
    cases = [
        ("/flag config project nope", "There is no project `nope`"),
        ("/flag config env prod", "There is no environment `prod` in project `demo`"),
        ("/flag config tz Mars/Olympus", "not a time zone"),
        ('/flag config digest "someday"', "not a digest schedule"),
        ("/flag config colour blue", "There is no setting `colour`"),
        ('/flag config reviewers "prod @bob"', "there is no environment `prod`"),
        ("/flag config reviewers production", "Name the reviewers"),
    ]
    for command, message in cases:
        await run(bot, command)
        assert message in last_ephemeral(bot), command
    await run(bot, "/flag config")
    assert "_(set here)_" not in last_ephemeral(bot), "nothing was stored"
    assert not bot.slack.messages(RELEASES), "nothing was announced"


def test_value_readers() -> None:
    assert check_digest("Mon,Thu  9:30") == "mon,thu 09:30"
    assert check_digest("weekdays 08:45") == "weekdays 08:45"
    assert channel_ref("<#C123ABC|releases>") == "C123ABC"
    assert channel_ref("#Releases") == "#releases"
    assert user_refs(["<@U1AB|bob>, <@W2CD>", "@carol"]) == ["U1AB", "W2CD", "@carol"]
    with pytest.raises(CommandError):
        user_refs(["bob"])
    with pytest.raises(CommandError):
        channel_ref("not a channel")
