"""Approvals, every fact true (issue 17's outside review): one thread message per event, the
listing counts what it filters, LaunchDarkly's words kept short and inert, lists with "+N more".
Driven as Slack does: signed HTTP in, the fake Slack and the sandbox over HTTP."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.approvals import service as approvals_service
from commands.instructions import TurnFlagOn
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, click, run
from tests.bot.test_approvals import approval_card, full, labels, requests_of, thread_texts

StartBot = Callable[..., Awaitable[Harness]]
APPROVALS_PATH = "/api/v2/projects/demo/flags/{flag}/environments/production/approval-requests"


def fault(bot: Harness, **update: Any) -> None:
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update=update)


def own_review_allowed(bot: Harness) -> None:
    """One service token is requester and reviewer in production."""
    settings = bot.sandbox.projects["demo"].environments["production"]["approvalSettings"]
    settings["canReviewOwnRequest"] = True


def production(bot: Harness, flag: str) -> dict[str, Any]:
    return dict(bot.sandbox.projects["demo"].flags[flag]["environments"]["production"])


async def test_approve_and_apply_whose_answer_is_lost_says_approved_and_applied_once(bot: Harness) -> None:
    own_review_allowed(bot)
    await run(bot, "/flag on new-checkout production")
    change_card = bot.card()
    await click(bot, "Request approval")
    (stored,) = requests_of(bot)
    apply_path = f"{APPROVALS_PATH.format(flag='new-checkout')}/{stored.doc['_id']}/apply"
    fault(bot, drop_every=1, methods=["POST"], paths=[apply_path], apply_before_fault=True)
    await click(bot, "Approve and apply", user=BOB, message=approval_card(bot))
    fault(bot, drop_every=0)
    assert production(bot, "new-checkout")["on"] is True, "LaunchDarkly applied it"
    texts = thread_texts(bot, change_card)
    assert len(texts) == 2, texts  # the approval card, then one reply for one click
    assert "Approved and applied by <@U_BOB>" in texts[1]
    assert "Applied by <@U_BOB> through the approval request" in full(
        bot.slack.message(RELEASES, change_card.ts)
    )


async def test_approve_and_apply_that_fails_in_launchdarkly_says_both_in_one_message(bot: Harness) -> None:
    own_review_allowed(bot)
    await run(bot, "/flag target new-checkout production user:zoe -> true")
    change_card = bot.card()
    await click(bot, "Request approval")
    # The variation is replaced in LaunchDarkly meanwhile: the request no longer applies.
    bot.sandbox.projects["demo"].flags["new-checkout"]["variations"][0]["_id"] = "a-new-variation"
    await click(bot, "Approve and apply", user=BOB, message=approval_card(bot))
    texts = thread_texts(bot, change_card)
    assert len(texts) == 2, texts
    assert "Approved by <@U_BOB>" in texts[1] and "apply failed" in texts[1], texts[1]
    assert "approved through" not in " ".join(texts), "not a second message saying approved"


async def test_approvals_for_a_flag_finds_its_request_behind_other_flags_requests(bot: Harness) -> None:
    ld = bot.stack.runtime.ld
    for i in range(22):
        await ld.create_approval_request(
            "demo", "banner-color", "production", description=f"On ({i})", instructions=[TurnFlagOn()]
        )
    await ld.create_approval_request(
        "demo", "new-checkout", "production", description="On (the one)", instructions=[TurnFlagOn()]
    )
    await run(bot, "/flag approvals new-checkout")
    text = full(bot.slack.ephemerals(ALICE)[-1])
    assert "1 waiting for review" in text, text
    assert "No pending" not in text and "more in LaunchDarkly" not in text
    assert "banner-color" not in text
    await run(bot, "/flag approvals")
    text = full(bot.slack.ephemerals(ALICE)[-1])
    assert "23 waiting for review" in text, text
    assert "+13 more" in text


async def test_the_listing_shortens_a_long_list_before_it_clips(bot: Harness) -> None:
    keys = ",".join(f"user-{i:03d}" for i in range(400))
    await run(bot, f"/flag target new-checkout production user:{keys} -> true --approval")
    await run(bot, "/flag approvals")
    text = full(bot.slack.ephemerals(ALICE)[-1])
    assert "user-009, +390 more" in text, text
    assert "Enabled (true)" in text, "the end of the change is kept"


async def test_the_approval_cards_notification_text_shortens_a_long_list(bot: Harness) -> None:
    keys = ",".join(f"user-{i:03d}" for i in range(400))
    await run(bot, f"/flag target new-checkout production user:{keys} -> true --approval")
    card = approval_card(bot)
    assert "+390 more" in card.text and "user-399" not in card.text, card.text


async def test_launchdarklys_words_are_short_and_inert(bot: Harness) -> None:
    own_review_allowed(bot)
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    (stored,) = requests_of(bot)
    # LaunchDarkly's answer carries markup, a link and a broadcast, and goes on and on.
    stored.doc["status"] = "<!channel> *on hold*, see https://evil.example/x " + "and more " * 60
    await click(bot, "Apply", user=BOB, message=approval_card(bot))
    said = bot.ephemeral_texts(BOB)[-1]
    assert "Not applied" in said and "still approved" in said, said
    assert "<!channel>" not in said and "evil.example" not in said, said
    outside = re.sub(r"`[^`]*`", "", said)
    assert "*on hold*" not in outside, "LaunchDarkly's markup is quoted in a code span, where it is inert"
    quoted = re.search(r"`([^`]*)`", said)
    assert quoted and len(quoted[1]) <= 220, said
    assert production(bot, "new-checkout")["on"] is False


async def test_an_approval_card_that_slack_refuses_is_not_said_to_be_in_the_thread(bot: Harness) -> None:
    await run(bot, "/flag on new-checkout production")
    change_card = bot.card()
    bot.slack.rate_limit("chat.postMessage", next=50, retry_after=0)
    await click(bot, "Request approval")
    bot.slack.clear_rate_limits()
    assert requests_of(bot), "the request exists in LaunchDarkly"
    parent = full(bot.slack.message(RELEASES, change_card.ts))
    assert "approval card is in the thread" not in parent, parent
    assert "Approval requested by <@U_ALICE>" in parent
    assert any("created in LaunchDarkly" in t for t in bot.ephemeral_texts(ALICE))


async def test_an_approval_whose_answer_is_lost_is_read_back(bot: Harness) -> None:
    own_review_allowed(bot)
    await run(bot, "/flag on new-checkout production")
    change_card = bot.card()
    await click(bot, "Request approval")
    (stored,) = requests_of(bot)
    reviews = f"{APPROVALS_PATH.format(flag='new-checkout')}/{stored.doc['_id']}/reviews"
    fault(bot, drop_every=1, methods=["POST"], paths=[reviews], apply_before_fault=True)
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    fault(bot, drop_every=0)
    assert stored.doc["reviewStatus"] == "approved"
    card = approval_card(bot)
    assert labels(card) == ["Apply"], full(card)
    assert not any("may or may not" in t for t in bot.ephemeral_texts(BOB)), bot.ephemeral_texts(BOB)
    assert any("<@U_BOB> approved" in t for t in thread_texts(bot, change_card))


async def test_the_approval_cards_lists_say_how_many_more_and_keep_the_outcome(start_bot: StartBot) -> None:
    teams = [f"team-{i:02d}" for i in range(40)]
    bot = await start_bot(flagops_approval_reviewers={"production": teams})
    own_review_allowed(bot)
    await run(bot, "/flag on new-checkout production --approval")
    (stored,) = requests_of(bot)
    ld = bot.stack.runtime.ld
    for i in range(30):
        await ld.review_approval_request(
            "demo",
            "new-checkout",
            "production",
            stored.doc["_id"],
            "comment",
            f"{i:02d} " + "x" * 190,
            token="sandbox-bob",
        )
    await click(bot, "Approve and apply", user=BOB, message=approval_card(bot))
    card = approval_card(bot)
    text = full(card)
    assert "team `team-09`, +30 more" in text and "team-39" not in text, text
    assert "Approved and applied by <@U_BOB>" in text, "the outcome is never clipped away"
    assert re.search(r"\+\d+ more reviews", text), text
    for block in card.blocks:
        for part in [block.get("text") or {}, *block.get("elements", [])]:
            if isinstance(part, dict) and part.get("type") == "mrkdwn":
                assert part["text"].count("<") == part["text"].count(">"), part["text"]


async def test_a_huge_flag_name_is_clipped_in_the_approval_cards_footer(bot: Harness) -> None:
    flag = bot.sandbox.projects["demo"].flags["new-checkout"]
    flag["name"] = "<!channel> " + "Checkout " * 600
    await run(bot, "/flag on new-checkout production --approval")
    card = approval_card(bot)
    footer = card.blocks[-1]["elements"][0]["text"]
    assert "|Open the request in LaunchDarkly>" in footer
    assert footer.count("<") == footer.count(">"), footer
    assert "project demo" in footer and len(footer) < 400, footer
    assert "<!channel>" not in full(card)


async def test_approvals_reads_a_bounded_number_of_pages_and_says_so(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(approvals_service, "LIST_PAGE", 5)  # pages of 5, at most 2 of them
    monkeypatch.setattr(approvals_service, "LIST_PAGES", 2)
    ld = bot.stack.runtime.ld
    for i in range(12):
        await ld.create_approval_request(
            "demo", "banner-color", "production", description=f"On ({i})", instructions=[TurnFlagOn()]
        )
    await ld.create_approval_request(
        "demo", "new-checkout", "test", description="On (the one)", instructions=[TurnFlagOn()]
    )
    await run(bot, "/flag approvals banner-color production")
    text = full(bot.slack.ephemerals(ALICE)[-1])
    assert "10 waiting for review" in text and "+2 more in LaunchDarkly, not read" in text, text
    await run(bot, "/flag approvals new-checkout")
    text = full(bot.slack.ephemerals(ALICE)[-1])
    assert "No pending" in text and "LaunchDarkly holds more than the 10 I read" in text, text
