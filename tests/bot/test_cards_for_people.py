"""Cards for people (issue 17): what matters first, every fact true, fewer messages. Each wrong
fact the issue found has a test here that would have caught it; each is driven as Slack does
(signed HTTP, the fake Slack, the sandbox over HTTP)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from bot.offline.fake_slack import Message
from commands.instructions import TurnFlagOn
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, buttons, card_text, click, details, run
from tests.bot.rendered import rendered

StartBot = Callable[..., Awaitable[Harness]]


def full(message: Any) -> str:
    return str(message.text) + " " + " ".join(json.dumps(b, ensure_ascii=False) for b in message.blocks)


def visible(value: Any) -> str:
    """The text a person sees in blocks (mrkdwn and plain text), not ids and values."""
    if isinstance(value, list):
        return " ".join(visible(v) for v in value)
    if isinstance(value, dict):
        own = value["text"] if value.get("type") in ("mrkdwn", "plain_text") else ""
        return " ".join([own, *(visible(v) for k, v in value.items() if isinstance(v, list | dict))])
    return ""


def thread(bot: Harness, card: Message | None = None) -> list[str]:
    return [full(m) for m in bot.thread(card)]


def environment(bot: Harness, flag: str, env: str) -> dict[str, Any]:
    return dict(bot.sandbox.projects["demo"].flags[flag]["environments"][env])


# --- every fact true -------------------------------------------------------------------------------


async def test_a_prerequisite_reads_the_same_on_the_card_and_in_the_thread(bot: Harness) -> None:
    await run(bot, "/flag add prereq banner-color test new-checkout Enabled")
    assert "must serve Enabled (true)" in card_text(bot)
    await click(bot, "Apply")
    (reply,) = thread(bot)
    assert "must serve Enabled (true)" in reply, reply
    assert "variation #" not in reply


async def test_a_rule_without_a_description_has_the_same_name_on_the_card_and_in_the_thread(
    bot: Harness,
) -> None:
    await run(bot, "/flag add rule new-checkout test if country in DE serve true")
    card = card_text(bot)
    await click(bot, "Apply")
    (reply,) = thread(bot)
    assert "*Rule 1 (user country in DE)*" in card and "*Rule 1 (user country in DE)*" in reply
    assert "(id " not in card + reply, "a rule id differs between the dry run and the write"


async def test_deleting_an_archived_flag_says_archived_to_deleted(bot: Harness) -> None:
    await run(bot, "/flag archive holiday-banner")
    await click(bot, "Apply")
    await run(bot, "/flag delete holiday-banner confirm holiday-banner")
    text = card_text(bot)
    assert "*State*: archived → *deleted*" in text, text
    assert "live" not in text


async def test_approval_asked_for_in_test_does_not_say_test_requires_it(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test --approval")
    sent = " ".join(rendered(bot))
    assert "requires approval" not in sent, "test does not require approval: alice asked for it"
    assert "Approval requested by <@U_ALICE>" in card_text(bot)


async def test_production_is_marked_and_its_approval_is_said_while_it_can_be_requested(bot: Harness) -> None:
    await run(bot, "/flag on new-checkout production")
    text = card_text(bot)
    assert "in *production* :rotating_light: _critical environment_" in text
    assert "*production* requires approval in LaunchDarkly" in text
    assert buttons(bot) == ["Request approval", "Cancel"]
    await run(bot, "/flag off new-checkout test")
    assert "critical" not in card_text(bot) and "requires approval" not in card_text(bot)


async def test_an_applied_approval_says_so_on_its_change_card_in_two_thread_messages(
    start_bot: StartBot,
) -> None:
    bot = await start_bot()
    settings = bot.sandbox.projects["demo"].environments["production"]["approvalSettings"]
    settings["canReviewOwnRequest"] = True  # one service token is requester and reviewer here
    await run(bot, "/flag on new-checkout production")
    change_card = bot.card()
    await click(bot, "Request approval")
    approval = bot.slack.thread(RELEASES, change_card.ts)[-1]
    await click(bot, "Approve and apply", user=BOB, message=approval)
    assert environment(bot, "new-checkout", "production")["on"] is True
    parent = full(bot.slack.message(RELEASES, change_card.ts))
    assert "Applied by <@U_BOB> through the approval request" in parent
    assert "Request approval" not in parent and "requires approval" not in parent
    messages = thread(bot, change_card)
    assert len(messages) == 2, messages  # the approval card, then one reply for one click
    assert "Approval requested by <@U_ALICE> through the flagops service token" in messages[0]
    assert "Approved and applied by <@U_BOB>" in messages[1]


async def test_an_approval_says_who_approved_on_the_change_card(start_bot: StartBot) -> None:
    bot = await start_bot()
    settings = bot.sandbox.projects["demo"].environments["production"]["approvalSettings"]
    settings["canReviewOwnRequest"] = True
    await run(bot, "/flag on new-checkout production")
    change_card = bot.card()
    await click(bot, "Request approval")
    await click(bot, "Approve", user=BOB, message=bot.slack.thread(RELEASES, change_card.ts)[-1])
    assert "Approved by <@U_BOB>" in full(bot.slack.message(RELEASES, change_card.ts))


async def test_approvals_answers_alone_and_a_declined_request_is_not_pending(bot: Harness) -> None:
    ld = bot.stack.runtime.ld
    kept = await ld.create_approval_request(
        "demo", "new-checkout", "production", description="On (kept)", instructions=[TurnFlagOn()]
    )
    declined = await ld.create_approval_request(
        "demo", "banner-color", "production", description="On (declined)", instructions=[TurnFlagOn()]
    )
    await ld.review_approval_request(
        "demo", "banner-color", "production", declined.id, "decline", "Not today", token="sandbox-bob"
    )
    assert kept.id
    await run(bot, "/flag approvals")
    assert not bot.slack.messages(RELEASES), "the list is not posted to the channel"
    (answer,) = bot.slack.ephemerals(ALICE)
    text = full(answer)
    assert "1 waiting for review, 1 decided" in text
    waiting, decided = text.split("Decided, not applied")
    assert "new-checkout" in waiting and "banner-color" not in waiting
    assert "banner-color" in decided and "Declined by bob@example.com" in decided and "Not today" in decided
    labels = [e["text"]["text"] for b in answer.blocks if b["type"] == "actions" for e in b["elements"]]
    assert labels == ["Approve and apply", "Approve", "Decline", "Comment"], "no buttons on the declined one"


# --- typed the way people type ---------------------------------------------------------------------


async def test_an_em_dash_arrow_is_an_arrow(bot: Harness) -> None:
    await run(bot, "/flag target new-checkout test user:zoe —> true")
    assert buttons(bot) == ["Apply", "Cancel"], bot.ephemeral_texts(ALICE)
    await run(bot, "/flag target new-checkout test user:yan –&gt; true")  # as Slack escapes `>`
    assert buttons(bot) == ["Apply", "Cancel"], bot.ephemeral_texts(ALICE)
    assert not any("end of the command" in t for t in bot.ephemeral_texts(ALICE))


async def test_help_fits_a_screen(bot: Harness) -> None:
    await run(bot, "/flag help")
    (answer,) = bot.slack.ephemerals(ALICE)
    lines = "\n".join(b["text"]["text"] for b in answer.blocks).strip().splitlines()
    assert len(lines) <= 25, len(lines)
    assert "`help all`" in "\n".join(lines)
    await run(bot, "/flag help all")
    assert "add rule" in full(bot.slack.ephemerals(ALICE)[-1]), "the whole reference is one topic away"


# --- what matters first, the rest behind Details ----------------------------------------------------


async def test_the_card_shows_no_json_nor_ids_and_details_shows_what_is_sent(bot: Harness) -> None:
    await run(bot, "/flag target new-checkout test user:zoe -> true")
    card = bot.card()
    text = card.text + visible(card.blocks)
    variation_id = bot.sandbox.projects["demo"].flags["new-checkout"]["variations"][0]["_id"]
    change_id = card.buttons[0]["value"]
    assert variation_id not in text and '"kind"' not in text and change_id not in text
    shown = await details(bot, user=BOB)  # anyone may look; only the one who asked sees it
    assert change_id in shown and variation_id in shown and "addTargets" in shown
    assert "PATCH /api/v2/flags/demo/new-checkout" in shown
    await click(bot, "Apply")
    sent = bot.ld_patches()[-1]["body"]
    assert sent["instructions"][0]["variationId"] == variation_id, "Details said what was sent"
    assert "Apply pressed" in await details(bot)


async def test_four_hundred_keys_show_the_first_ones_and_how_many_more(bot: Harness) -> None:
    keys = ",".join(f"user-{i:03d}" for i in range(400))
    await run(bot, f"/flag target new-checkout test user:{keys} -> true")
    card = bot.card()
    text = card_text(bot)
    assert "user-009, +390 more" in text, "the sentence"
    assert "user-009,+390 more" in text, "the echo of the command"
    assert "user-010" not in text and "user-399" not in text
    assert sum(len(s) for s in rendered(bot)) < 3000, "Apply is near the top"
    shown = await details(bot)
    assert '"+380 more"' in shown and "user-019" in shown and "user-020" not in shown
    await click(bot, "Apply", message=card)
    assert len(environment(bot, "new-checkout", "test")["targets"][0]["values"]) >= 400, "all were sent"
    (reply,) = thread(bot, card)
    assert "more" in reply and "user-399" not in reply


async def test_a_launchdarkly_refusal_is_one_plain_sentence_with_the_rest_in_details(bot: Harness) -> None:
    await bot.stack.runtime.ld.create_scheduled_change(
        "demo", "new-checkout", "test", execution_date=4102444800000, instructions=[TurnFlagOn()]
    )
    await run(bot, "/flag off new-checkout test")
    await click(bot, "Apply")
    (reply,) = thread(bot)
    said = reply + card_text(bot)
    assert "conflicts with a pending approval request or scheduled change" in said
    assert "*Apply anyway*" in said
    for debug in ("ignoreConflicts", "invalid_request", "PATCH /api", "request id"):
        assert debug not in said, debug
    shown = await details(bot)
    assert "LaunchDarkly 400" in shown and "PATCH /api/v2/flags/demo/new-checkout" in shown


async def test_an_expired_card_can_be_proposed_again(start_bot: StartBot) -> None:
    bot = await start_bot(flagops_confirm_ttl=1)
    await run(bot, "/flag off new-checkout test")
    old = bot.card()
    await asyncio.sleep(1.2)
    await bot.stack.runtime.changes.sweep()
    assert buttons(bot) == ["Propose again"]
    await click(bot, "Propose again", user=BOB)
    fresh = bot.card()
    assert fresh.ts != old.ts and buttons(bot) == ["Apply", "Cancel"]
    assert "<@U_BOB> wants to change *new-checkout* in *test*" in card_text(bot)
    assert "proposed it again" in full(bot.slack.message(RELEASES, old.ts))
    assert not bot.slack.message(RELEASES, old.ts).buttons
    await click(bot, "Apply", user=BOB)
    assert environment(bot, "new-checkout", "test")["on"] is False


async def test_an_expired_natural_phrasing_is_proposed_again_as_it_was_read(start_bot: StartBot) -> None:
    bot = await start_bot(flagops_confirm_ttl=1)
    await run(bot, "/flag turn off new-checkout in test")
    await asyncio.sleep(1.2)
    await bot.stack.runtime.changes.sweep()
    await click(bot, "Propose again")
    assert buttons(bot) == ["Apply", "Cancel"] and "Turn targeting OFF in test" in card_text(bot)


async def test_details_escape_what_people_typed(bot: Harness) -> None:
    await run(bot, '/flag off new-checkout test -m "<!channel> <@UEVIL> look"')
    shown = await details(bot)
    assert "<!channel>" not in shown and "<@UEVIL>" not in shown
    assert "&lt;!channel&gt;" in shown, "shown, as text"
