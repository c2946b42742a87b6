"""Scheduled flag changes end to end: ``at``/``in`` read in the user's Slack zone, the card says when,
Apply creates a LaunchDarkly scheduled change (no local timer), the thread says whether it ran;
``/flag scheduled`` lists them with Delete; conflicts and the past are handled."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.sandbox.approvals import run_due as sandbox_run_due
from bot.offline.fake_slack import Ephemeral, Message
from bot.scheduling.jobs import CANCELLED, SCHEDULED_CHECK
from bot.scheduling.scheduler import FlagopsScheduler
from tests.bot.harness import ALICE, RELEASES, Harness

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday
MONDAY_9_BERLIN = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # alice's zone is Europe/Berlin


def scheduler(bot: Harness) -> FlagopsScheduler:
    found = bot.stack.runtime.scheduler
    assert found is not None
    return found


def everything(message: Message | Ephemeral) -> str:
    return message.text + " " + " ".join(str(b) for b in message.blocks)


def on(bot: Harness, flag: str, env: str) -> bool:
    return bool(bot.sandbox.projects["demo"].flags[flag]["environments"][env]["on"])


async def run(bot: Harness, text: str) -> None:
    bot.stack.runtime.changes.clock = lambda: NOW
    assert (await bot.command(text)).status_code == 200
    await bot.idle()


async def click(bot: Harness, which: str, message: Message | None = None) -> None:
    assert (await bot.click(which, message=message)).status_code == 200
    await bot.idle()


async def test_a_change_at_monday_nine_is_scheduled_in_launchdarkly_and_checked(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test at Monday 09:00")
    card = everything(bot.card())
    assert "Scheduled for Mon 30 Nov 2026 09:00 Europe/Berlin (08:00 UTC)" in card
    assert [b["text"]["text"] for b in bot.card().buttons] == ["Apply", "Cancel"]

    await click(bot, "Apply")
    assert on(bot, "new-checkout", "test"), "not applied now: LaunchDarkly applies it at the time"
    assert not bot.ld_patches(), "no PATCH: a scheduled change instead"
    (stored,) = bot.sandbox.scheduled.values()
    assert stored.doc["executionDate"] == int(MONDAY_9_BERLIN.timestamp() * 1000)
    assert stored.doc["instructions"] == [{"kind": "turnFlagOff"}]
    assert (stored.project, stored.flag, stored.env) == ("demo", "new-checkout", "test")
    assert "flagops change" in (stored.comment or "")
    assert "Scheduled by <@U_ALICE>" in everything(bot.card()) and bot.card().buttons == []
    (reply,) = bot.thread()
    assert "Scheduled *new-checkout* in *test*" in reply.text

    # LaunchDarkly runs it at its time; a minute later the thread says the flag shows it.
    sandbox_run_due(bot.sandbox, stored.doc["executionDate"])
    assert not on(bot, "new-checkout", "test")
    await scheduler(bot).run_due(MONDAY_9_BERLIN + timedelta(seconds=30))
    await bot.idle()
    assert len(bot.thread()) == 1, "not before its time"
    await scheduler(bot).run_due(MONDAY_9_BERLIN + timedelta(minutes=1))
    await bot.idle()
    assert "ran: *new-checkout* in *test* now shows it" in bot.thread()[-1].text
    await scheduler(bot).run_due(MONDAY_9_BERLIN + timedelta(hours=1))
    await bot.idle()
    assert len(bot.thread()) == 2, "said once"


async def test_in_two_hours_and_a_change_that_did_not_run(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test in 2 hours")
    assert "Wed 25 Nov 2026 18:00 Europe/Berlin (17:00 UTC)" in everything(bot.card())
    await click(bot, "Apply")
    (stored,) = bot.sandbox.scheduled.values()
    due = NOW + timedelta(hours=2)
    assert stored.doc["executionDate"] == int(due.timestamp() * 1000)
    # Deleted in LaunchDarkly behind our back: the check says the flag does not show it.
    bot.sandbox.scheduled.clear()
    await scheduler(bot).run_due(due + timedelta(minutes=1))
    await bot.idle()
    assert "is *not* in *new-checkout*" in bot.thread()[-1].text


async def test_a_time_in_the_past_is_refused_and_nothing_is_posted(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test at 2020-01-01 09:00")
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "in the past" in answer and "Nothing was scheduled" in answer
    assert not bot.slack.messages(RELEASES) and not bot.sandbox.scheduled


async def test_a_flag_level_change_cannot_be_scheduled(bot: Harness) -> None:
    await run(bot, "/flag tag new-checkout add beta in 2 hours")
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "needs an environment" in answer
    assert not bot.slack.messages(RELEASES)


async def test_a_conflict_offers_apply_anyway(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test in 2 hours")
    await click(bot, "Apply")
    await run(bot, "/flag on new-checkout test in 3 hours")
    await click(bot, "Apply")
    assert "conflicts" in everything(bot.card())
    assert [b["text"]["text"] for b in bot.card().buttons] == ["Apply anyway", "Cancel"]
    assert len(bot.sandbox.scheduled) == 1
    await click(bot, "Apply anyway")
    assert len(bot.sandbox.scheduled) == 2
    (request,) = [r for r in bot.ld_requests() if r["method"] == "POST" and r["status"] == 201][-1:]
    assert str(request["query"].get("ignoreConflicts")).lower() == "true"


async def test_approval_required_environment_asks_for_approval_with_the_time(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout production in 2 hours")
    assert "Request approval" in [b["text"]["text"] for b in bot.card().buttons]
    await click(bot, "Request approval")
    (approval,) = bot.sandbox.approvals.values()
    assert approval.doc.get("executionDate") == int((NOW + timedelta(hours=2)).timestamp() * 1000)
    card = next(m for m in bot.slack.all_messages() if "Waiting for review" in everything(m))
    seconds = int((NOW + timedelta(hours=2)).timestamp())
    assert f"once applied, LaunchDarkly runs it at <!date^{seconds}^" in everything(card)


async def test_scheduled_lists_them_with_delete(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test at Monday 09:00")
    await click(bot, "Apply")
    await run(bot, "/flag scheduled new-checkout test")
    listing = bot.slack.ephemerals(ALICE)[-1]
    text = everything(listing)
    assert "Scheduled changes for *new-checkout* in *test* (1)" in text
    assert "Mon 30 Nov 2026 09:00 Europe/Berlin (08:00 UTC)" in text and "Turn" in text
    message = Message(listing.channel, "1700000000.000009", listing.text, listing.blocks, "U_FLAGOPS")
    assert [b["text"]["text"] for b in message.buttons] == ["Delete"]
    await click(bot, "Delete", message=message)
    assert not bot.sandbox.scheduled, "deleted in LaunchDarkly"
    assert "Deleted scheduled change" in bot.ephemeral_texts(ALICE)[-1]
    (check,) = await scheduler(bot).jobs.all(SCHEDULED_CHECK)
    assert check.state == CANCELLED, "no check of a deleted change"
    assert "deleted this scheduled change" in bot.thread(bot.slack.messages(RELEASES)[0])[-1].text
    await run(bot, "/flag scheduled new-checkout test")
    assert "No scheduled changes" in bot.ephemeral_texts(ALICE)[-1]


async def test_an_unknown_create_with_a_failed_list_is_outcome_unknown_not_a_duplicate(
    start_bot: Callable[..., Awaitable[Harness]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create's answer is lost and the follow-up list fails: the card says the outcome is
    unknown and points to ``/flag scheduled``; Send again looks before it creates."""
    bot = await start_bot(ld_timeout=0.5)
    await run(bot, "/flag off new-checkout test in 2 hours")
    # LaunchDarkly creates it but the answer is lost, and listing scheduled changes fails.
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"drop_every": 1, "methods": ["POST"], "apply_before_fault": True}
    )
    ld = bot.stack.runtime.ld

    async def list_fails(*args: object, **kwargs: object) -> list[object]:
        raise ld_errors.ServerError("LaunchDarkly is unavailable", status=503)

    monkeypatch.setattr(ld, "list_scheduled_changes", list_fails)
    await click(bot, "Apply")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"drop_every": 0})
    card = everything(bot.card())
    assert "Outcome unknown" in card and "could not list the flag's scheduled changes" in card
    assert "`/flag scheduled new-checkout test`" in card and "press Apply again" not in card
    assert [b["text"]["text"] for b in bot.card().buttons] == ["Send again", "Cancel"]
    assert "Outcome unknown" in bot.thread()[-1].text
    assert len(bot.sandbox.scheduled) == 1

    await click(bot, "Send again")  # still cannot list: nothing is sent blind
    assert len(bot.sandbox.scheduled) == 1
    assert "Nothing was sent" in everything(bot.card())

    monkeypatch.undo()
    await click(bot, "Send again")  # the list works again: the first attempt is found, not repeated
    assert len(bot.sandbox.scheduled) == 1, "never scheduled twice"
    (stored,) = bot.sandbox.scheduled.values()
    assert f"scheduled change `{stored.doc['_id']}`" in everything(bot.card())
    assert bot.card().buttons == []


async def test_undo_of_a_scheduled_change_that_has_not_run_offers_deleting_it(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test in 2 hours")
    await click(bot, "Apply")
    (stored,) = bot.sandbox.scheduled.values()
    scheduled_id = stored.doc["_id"]
    cards = len(bot.slack.messages(RELEASES))
    await run(bot, "/flag undo")
    answer = bot.ephemeral_texts(ALICE)[-1]
    assert "has not run yet" in answer and "Wed 25 Nov 2026 17:00 UTC" in answer
    assert f"`/flag scheduled cancel {scheduled_id}`" in answer and "already back" not in answer
    assert len(bot.slack.messages(RELEASES)) == cards, "no undo card"
    await run(bot, f"/flag scheduled cancel {scheduled_id}")
    assert not bot.sandbox.scheduled, "the offered command deletes it"


async def test_undo_of_a_scheduled_change_that_ran_proposes_the_inverse(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test in 2 hours")
    await click(bot, "Apply")
    (stored,) = bot.sandbox.scheduled.values()
    sandbox_run_due(bot.sandbox, stored.doc["executionDate"])
    assert not on(bot, "new-checkout", "test")
    later = NOW + timedelta(hours=3)
    bot.stack.runtime.changes.clock = lambda: later
    assert (await bot.command("/flag undo")).status_code == 200
    await bot.idle()
    assert "Undoes change" in everything(bot.card())
    await click(bot, "Apply")
    assert on(bot, "new-checkout", "test")
