"""No mention or link is ever made from LaunchDarkly's text or typed text, in any field Slack renders.

Every text LaunchDarkly holds (flag, variation and rule names and descriptions, project and
environment names, member names) and every text a person types (names, descriptions, comments,
reminder texts, decline reasons, unknown words, a message a shortcut is run on) is planted with
Slack's markup: broadcast mentions, a user-group, a user and a channel mention, links. Then every
surface is driven through signed HTTP: show, list, change cards and their threads, undo, approval
cards and their reminders, the digest, reminders, help, refusals, modals, history, evaluation. No
planted marker may come back in any mrkdwn field of any call (``tests.bot.rendered``). Mentions the
bot means to make are built from ids (``<@U_ALICE>``) and are not among the markers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot.offline.fake_slack import Message
from bot.scheduling.scheduler import DigestChannel
from tests.bot.harness import BOB, RELEASES, Harness, click, run
from tests.bot.rendered import POISON, leaks, rendered
from tests.bot.test_approvals import approval_card, approval_settings, latest_view, start, submit
from tests.bot.test_message_actions import post, shortcut
from tests.bot.test_reminders import at, run_due, scheduler

StartBot = Callable[..., Awaitable[Harness]]


def poison_launchdarkly(bot: Harness) -> None:
    """Plant markup in every free text the sandbox's documents hold."""
    for project in bot.sandbox.projects.values():
        project.doc["name"] = f"shop {POISON}"
        for environment in project.environments.values():
            environment["name"] = f"env {POISON}"
        for flag in project.flags.values():
            flag["name"] = f"{flag['key']} {POISON}"
            flag["description"] = POISON
            for variation in flag["variations"]:
                variation["name"] = f"{variation.get('name') or 'v'} {POISON}"
                variation["description"] = POISON
            for environment in flag["environments"].values():
                for rule in environment.get("rules") or []:
                    rule["description"] = f"rule {POISON}"
    for account in bot.sandbox.accounts:
        account.member["firstName"] = POISON
        account.member["lastName"] = POISON


async def test_planted_markup_never_comes_back_as_a_mention_or_a_link(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    poison_launchdarkly(bot)
    quoted = POISON.replace('"', "")
    # Reading: a flag everywhere, in one environment, the list, help and refusals that echo words.
    for text in [
        "/flag show new-checkout",
        "/flag show pricing-page test",
        "/flag list",
        f"/flag list {quoted}",
        f"/flag help {quoted}",
        f"/flag {quoted}",
        f"/flag show {quoted}",
        f"/flag on new-checkout {quoted}",
        "/flag config",
        "/flag approvals",
        "/flag scheduled",
    ]:
        await run(bot, text)
    # Changes with typed text, applied, then undone.
    for text in [
        f'/flag off new-checkout test -m "{quoted}"',
        f'/flag rename pricing-page "{quoted}"',
        f'/flag describe banner-color "{quoted}"',
        f'/flag add variation banner-color purple named "{quoted}" description "{quoted}"',
        f'/flag rename rule pricing-page test 1 to "{quoted}"',
        f'/flag add rule pricing-page test named "{quoted}" if country in US serve v2',
    ]:
        await run(bot, text)
        await click(bot, "Apply")
    await run(bot, "/flag undo")
    await click(bot, "Apply")
    # History (LaunchDarkly's comments, member names, rule descriptions) and evaluation (typed
    # attribute values and keys, variation and rule names).
    for text in [
        "/flag history pricing-page",
        "/flag history new-checkout test",
        f'/flag eval pricing-page test user:sam note="{quoted}" organization:acme tier=3',
        f'/flag eval pricing-page test user:"{quoted}" country=DE plan=pro',
        "/flag eval new-checkout test user:alice",
    ]:
        await run(bot, text)
    # A reminder with typed text, and the list of reminders; then it comes due.
    await run(bot, f'/flag remind new-checkout in 1 hour "{quoted}"')
    await run(bot, "/flag reminders")
    await run_due(bot, datetime.now(UTC) + timedelta(hours=2))
    # An approval: requested with a comment, reminded, declined with a typed reason.
    approval_settings(bot, "production")["canReviewOwnRequest"] = True
    await run(bot, f'/flag on new-checkout production -m "{quoted}"')
    await click(bot, "Request approval")
    await run(bot, "/flag approvals")
    await run_due(bot, datetime.now(UTC) + timedelta(hours=5))
    await click(bot, "Decline", user=BOB, message=approval_card(bot))
    view = latest_view(bot, "approval_decline_reason")
    block = view["blocks"][-1]
    action = block["element"]["action_id"]
    await submit(bot, view, BOB, {block["block_id"]: {action: {"type": "plain_text_input", "value": POISON}}})
    # The digest of stale flags, whose names LaunchDarkly holds.
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    at(bot, now)
    await scheduler(bot).enqueue_digest(DigestChannel(RELEASES, "UTC"), now)
    await run_due(bot, now)
    # A message shortcut on a message that holds the markup (the modal, then its submission).
    message: Message = post(bot, f"please {POISON} /flag off new-checkout test")
    await shortcut(bot, message)

    seen = rendered(bot)
    assert len(seen) > 60, len(seen)
    assert any("<@U_ALICE>" in t for t in seen), "the bot's own mentions, built from ids, are made"
    found = leaks(bot)
    assert not found, "\n".join(f"{m}: {t}" for m, t in found)
    # The surfaces were really reached (a silent refusal would make the test pass vacuously).
    methods = {c.method for c in bot.slack.calls}
    assert {"chat.postMessage", "chat.update", "views.open"} <= methods, methods
    everything = "\n".join(seen)
    for reached in ("stale temporary flag", "declined", "Applied", "Reminder", "Undo", "History of", "gets"):
        assert reached.lower() in everything.lower(), reached
