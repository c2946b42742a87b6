"""Reminders end to end, with a controllable clock: each kind posts once at the right time and not
again, a restart keeps them, a reviewed approval gets none, the digest's content and buttons, the
user's reminder list with Cancel, unconfirmed cards expiring without a click."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot.offline.fake_slack import Ephemeral, Message
from bot.scheduling.jobs import APPROVAL_REMINDER, USER_REMINDER
from bot.scheduling.scheduler import DigestChannel, FlagopsScheduler, RunReport
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, run

StartBot = Callable[..., Awaitable[Harness]]
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def scheduler(bot: Harness) -> FlagopsScheduler:
    found = bot.stack.runtime.scheduler
    assert found is not None
    return found


def at(bot: Harness, moment: datetime) -> None:
    """Set the bot's clock (what `now` is when a command is read or a card is stamped)."""
    bot.stack.runtime.changes.clock = lambda: moment


async def run_due(bot: Harness, moment: datetime) -> RunReport:
    report = await scheduler(bot).run_due(moment)
    await bot.idle()
    return report


def everything(message: Message | Ephemeral) -> str:
    return message.text + " " + " ".join(str(b) for b in message.blocks)


def posts(bot: Harness) -> list[Message]:
    return bot.slack.messages(RELEASES)


def as_message(ephemeral: Ephemeral) -> Message:
    """An ephemeral answer as a message whose buttons can be clicked."""
    return Message(ephemeral.channel, "1700000000.000001", ephemeral.text, ephemeral.blocks, "U_FLAGOPS")


async def test_a_user_reminder_posts_once_at_its_time_with_the_flag_state(bot: Harness) -> None:
    at(bot, NOW)
    await run(bot, '/flag remind holiday-banner test in 2 hours "remove the holiday banner"')
    (confirmation,) = bot.ephemeral_texts(ALICE)
    assert "I'll remind" in confirmation and "Wed 25 Nov 2026 18:00 Europe/Berlin (17:00 UTC)" in confirmation
    assert not posts(bot), "nothing in the channel yet"

    assert (await run_due(bot, NOW + timedelta(hours=1, minutes=59))).ran == ()
    assert not posts(bot)
    report = await run_due(bot, NOW + timedelta(hours=2))
    assert [kind for _, kind, state in report.ran] == [USER_REMINDER]
    (post,) = posts(bot)
    text = everything(post)
    assert "Reminder from <@U_ALICE> about *holiday-banner* in *test*" in text
    assert "remove the holiday banner" in text and "Targeting" in text, "with the flag's current state"

    assert (await run_due(bot, NOW + timedelta(hours=3))).ran == ()
    assert len(posts(bot)) == 1, "posted once"


async def test_a_reminder_survives_a_restart(start_bot: StartBot, sqlite_url: str) -> None:
    first = await start_bot(database_url=sqlite_url)
    at(first, NOW)
    await run(first, "/flag remind holiday-banner at 2026-11-26 10:00")
    assert "Thu 26 Nov 2026 10:00 Europe/Berlin (09:00 UTC)" in first.ephemeral_texts(ALICE)[0]
    await first.stop()

    second = await start_bot(database_url=sqlite_url)
    assert (await run_due(second, datetime(2026, 11, 26, 8, 59, tzinfo=UTC))).ran == ()
    await run_due(second, datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    (post,) = second.slack.messages(RELEASES)
    assert "Reminder from <@U_ALICE> about *holiday-banner*" in post.text
    await run_due(second, datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    assert len(second.slack.messages(RELEASES)) == 1


async def test_a_time_in_the_past_is_refused(bot: Harness) -> None:
    at(bot, NOW)
    await run(bot, "/flag remind holiday-banner at 2020-01-01 09:00")
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "in the past" in answer and "Nothing was scheduled" in answer
    assert await scheduler(bot).jobs.all(USER_REMINDER) == []


async def test_reminders_lists_yours_with_cancel(bot: Harness) -> None:
    at(bot, NOW)
    await run(bot, '/flag remind holiday-banner in 1 minute "first"')
    await run(bot, '/flag remind new-checkout production in 2 weeks "second"')
    await run(bot, '/flag remind pricing-page in 1 day "bob\'s"', user=BOB)
    await run(bot, "/flag reminders")
    listing = bot.slack.ephemerals(ALICE)[-1]
    text = everything(listing)
    assert "Your reminders (2)" in text and "first" in text and "second" in text and "bob's" not in text
    cancels = [b for b in as_message(listing).buttons if b["text"]["text"] == "Cancel"]
    assert len(cancels) == 2

    assert (await bot.click(1, user=BOB, message=as_message(listing))).status_code == 200
    await bot.idle()
    assert "only they can cancel it" in bot.ephemeral_texts(BOB)[-1]
    await bot.click(1, user=ALICE, message=as_message(listing))
    await bot.idle()
    assert "Cancelled reminder" in bot.ephemeral_texts(ALICE)[-1]

    await run_due(bot, NOW + timedelta(minutes=2))
    assert not posts(bot), "the cancelled reminder (the first, due in a minute) never posts"
    await run(bot, "/flag reminders")
    assert "Your reminders (1)" in bot.ephemeral_texts(ALICE)[-1]
    job_id = (await scheduler(bot).jobs.pending(USER_REMINDER, user_id=ALICE))[0].id
    await run(bot, f"/flag reminders cancel {job_id}")
    assert "Cancelled reminder" in bot.ephemeral_texts(ALICE)[-1]
    await run(bot, "/flag reminders")
    assert "no pending reminders" in bot.ephemeral_texts(ALICE)[-1]


async def test_an_unconfirmed_card_expires_on_time_without_a_click(bot: Harness) -> None:
    at(bot, NOW)
    await run(bot, "/flag off new-checkout test")
    assert [b["text"]["text"] for b in bot.card().buttons] == ["Apply", "Cancel"]
    await run_due(bot, NOW + timedelta(minutes=14))
    assert bot.card().buttons, "not yet"
    await run_due(bot, NOW + timedelta(minutes=15, seconds=1))
    assert "Expired" in everything(bot.card())
    assert [b["text"]["text"] for b in bot.card().buttons] == ["Propose again"], "nothing to apply"
    edits = bot.card().edits
    await run_due(bot, NOW + timedelta(minutes=30))
    assert bot.card().edits == edits, "expired once"


async def _request_approval(bot: Harness) -> None:
    await run(bot, "/flag on new-checkout production")
    await bot.click("Request approval")
    await bot.idle()
    assert bot.sandbox.approvals, "an approval request exists in LaunchDarkly"


def _reminders_in_thread(bot: Harness, card: Message) -> list[Message]:
    return [m for m in bot.slack.thread(RELEASES, card.ts) if "waiting for approval for" in m.text]


async def test_a_pending_approval_is_reminded_after_four_hours_then_daily(bot: Harness) -> None:
    await _request_approval(bot)
    card = next(m for m in posts(bot) if "wants to change" in m.text or "new-checkout" in m.text)
    now = datetime.now(UTC)
    await run_due(bot, now + timedelta(hours=3, minutes=59))
    assert _reminders_in_thread(bot, card) == []
    await run_due(bot, now + timedelta(hours=4, minutes=1))
    (reminder,) = _reminders_in_thread(bot, card)
    assert "new-checkout" in reminder.text and "production" in reminder.text and "Reviewers" in reminder.text
    await run_due(bot, now + timedelta(hours=5))
    assert len(_reminders_in_thread(bot, card)) == 1, "once, not at every tick"
    await run_due(bot, now + timedelta(days=1, hours=4, minutes=2))
    assert len(_reminders_in_thread(bot, card)) == 2, "then daily"


async def test_an_approval_reviewed_meanwhile_gets_no_reminder(bot: Harness) -> None:
    await _request_approval(bot)
    card = next(m for m in posts(bot) if "new-checkout" in m.text)
    (stored,) = bot.sandbox.approvals.values()
    ld = bot.stack.runtime.ld
    await ld.review_approval_request(
        stored.project, stored.flag, stored.env, stored.doc["_id"], "approve", token="sandbox-bob"
    )
    await run_due(bot, datetime.now(UTC) + timedelta(hours=5))
    assert _reminders_in_thread(bot, card) == []


def _digest(bot: Harness) -> Message:
    (digest,) = [m for m in posts(bot) if "stale temporary flag" in m.text]
    return digest


async def test_the_digest_lists_stale_temporary_flags_with_archive_and_snooze(bot: Harness) -> None:
    at(bot, NOW)
    channel = DigestChannel(RELEASES, "Europe/Berlin")
    assert await scheduler(bot).enqueue_digest(channel, NOW) is not None
    assert await scheduler(bot).enqueue_digest(channel, NOW) is None, "once per occurrence"
    await run_due(bot, NOW)
    digest = _digest(bot)
    text = everything(digest)
    # holiday-banner: temporary, launched everywhere, created in 2025. The others are permanent.
    assert "holiday-banner" in text and "new-checkout" not in text
    assert [b["text"]["text"] for b in digest.buttons] == ["Archive", "Snooze 30 days"]

    await bot.click("Archive", message=digest, user=BOB)
    await bot.idle()
    card = bot.card()
    assert "archive" in everything(card).lower() and "holiday-banner" in card.text
    assert [b["text"]["text"] for b in card.buttons] == ["Apply", "Cancel"], "the normal confirm card"
    assert bot.sandbox.projects["demo"].flags["holiday-banner"]["archived"] is False, "nothing archived yet"

    await bot.click("Snooze 30 days", message=digest, user=BOB)
    await bot.idle()
    (note,) = bot.slack.thread(RELEASES, digest.ts)
    assert "snoozed *holiday-banner*" in note.text and "25 Dec 2026" in note.text

    next_week = NOW + timedelta(days=7)
    await scheduler(bot).enqueue_digest(channel, next_week)
    await run_due(bot, next_week)
    assert len([m for m in posts(bot) if "stale temporary flag" in m.text]) == 1, "snoozed: no new digest"


async def test_restart_keeps_a_queued_digest(start_bot: StartBot, sqlite_url: str) -> None:
    first = await start_bot(database_url=sqlite_url)
    await scheduler(first).enqueue_digest(DigestChannel(RELEASES, "UTC"), NOW)
    await first.stop()
    second = await start_bot(database_url=sqlite_url)
    await run_due(second, NOW)
    assert [m for m in second.slack.messages(RELEASES) if "stale temporary flag" in m.text]


async def test_a_digest_scheduled_with_config_posts_once_at_its_time_in_the_channels_zone(
    bot: Harness,
) -> None:
    await run(bot, "/flag config tz Europe/Berlin")
    await run(bot, '/flag config digest "mon 09:00"')
    monday_0800_berlin = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    await run_due(bot, monday_0800_berlin)
    assert not [m for m in posts(bot) if "stale temporary flag" in m.text], "not before 09:00 Berlin"
    await run_due(bot, monday_0800_berlin + timedelta(hours=1, minutes=1))  # 09:01 in Berlin
    assert len([m for m in posts(bot) if "stale temporary flag" in m.text]) == 1
    await run_due(bot, monday_0800_berlin + timedelta(hours=3))
    await run_due(bot, monday_0800_berlin + timedelta(days=1))
    assert len([m for m in posts(bot) if "stale temporary flag" in m.text]) == 1, "once per schedule"

    await run(bot, "/flag config digest off")
    await run_due(bot, monday_0800_berlin + timedelta(days=7, hours=1, minutes=1))
    assert len([m for m in posts(bot) if "stale temporary flag" in m.text]) == 1, "off means off"


def _launchdarkly_down(bot: Harness, down: bool) -> None:
    """Every GET to LaunchDarkly answers 503 (after the client's retries) while ``down``."""
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"error_every": 1 if down else 0, "error_status": 503, "methods": ["GET"]}
    )


async def test_a_user_reminder_is_posted_even_when_launchdarkly_is_down(bot: Harness) -> None:
    at(bot, NOW)
    await run(bot, '/flag remind holiday-banner test in 1 minute "cleanup"')
    _launchdarkly_down(bot, True)
    report = await run_due(bot, NOW + timedelta(minutes=1))
    _launchdarkly_down(bot, False)
    assert [state for _, _, state in report.ran] == ["sent"]
    (post,) = posts(bot)
    text = everything(post)
    assert "Reminder from <@U_ALICE> about *holiday-banner* in *test*" in text and "cleanup" in text
    assert "couldn't read the flag's current state: LaunchDarkly had an internal error (503)" in text
    assert "api-" not in text and "Traceback" not in text
    await run_due(bot, NOW + timedelta(minutes=30))
    assert len(posts(bot)) == 1, "posted once"


async def test_an_approval_reminder_is_retried_after_a_launchdarkly_outage(bot: Harness) -> None:
    await _request_approval(bot)
    card = next(m for m in posts(bot) if "new-checkout" in m.text)
    now = datetime.now(UTC)
    _launchdarkly_down(bot, True)
    await run_due(bot, now + timedelta(hours=4, minutes=1))
    _launchdarkly_down(bot, False)
    assert _reminders_in_thread(bot, card) == [], "nothing to say while LaunchDarkly cannot be read"
    pending = await scheduler(bot).jobs.pending(APPROVAL_REMINDER)
    assert [j.due_at for j in pending] == [now + timedelta(hours=4, minutes=16)], "retried in 15 minutes"
    await run_due(bot, now + timedelta(hours=4, minutes=16))
    (reminder,) = _reminders_in_thread(bot, card)
    assert "waiting for approval" in reminder.text
    await run_due(bot, now + timedelta(days=1, hours=4, minutes=17))
    assert len(_reminders_in_thread(bot, card)) == 2, "the daily chain goes on"
