"""A failed non-essential read never breaks a flow after (or before) its side effect.

Names, emails and links only label what LaunchDarkly did: a member lookup that fails, a member
without an email, an approval-request answer with only the fields LaunchDarkly's spec requires
(or fewer) must not leave a card "Applying…", offer Request approval again, or say that nothing
was changed. Each case is driven through signed HTTP against the sandbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select

from bot.launchdarkly.sandbox.state import Faults
from bot.persistence.db import linked_accounts
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, click, run
from tests.bot.test_approvals import (
    approval_card,
    approval_settings,
    full,
    labels,
    latest_view,
    member_id,
    requests_of,
    start,
    submit,
    thread_texts,
)

StartBot = Callable[..., Awaitable[Harness]]

MEMBERS_DOWN = Faults(error_every=1, error_status=503, paths=["/api/v2/members"])


def said(bot: Harness, user: str = ALICE) -> str:
    return "\n".join(bot.ephemeral_texts(user))


async def test_request_approval_with_the_member_list_down_still_requests(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await run(bot, "/flag on new-checkout production --reviewers bob@example.com")
    bot.sandbox.faults = MEMBERS_DOWN
    await click(bot, "Request approval")
    (stored,) = requests_of(bot)
    assert stored.doc["notifyMemberIds"] == []
    card = approval_card(bot)
    assert labels(card) == ["Approve and apply", "Approve", "Decline", "Comment"]
    texts = " ".join(thread_texts(bot, bot.card()))
    assert "Approval requested by <@U_ALICE>" in texts
    assert "bob@example.com (LaunchDarkly's member list did not answer)" in texts, texts
    assert "Request approval" not in labels(bot.slack.message(RELEASES, bot.card().ts))
    assert "Nothing was changed" not in said(bot) and "went wrong" not in said(bot)


async def test_an_approval_answer_with_only_its_id_is_a_created_request(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    bot.sandbox.switches = bot.sandbox.switches.model_copy(
        update={
            "approval_answer_omits": [
                "creationDate",
                "_version",
                "requestorId",
                "description",
                "reviewStatus",
                "status",
                "allReviews",
                "notifyMemberIds",
                "instructions",
                "conflicts",
                "_links",
            ]
        }
    )
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    (stored,) = requests_of(bot)
    card = approval_card(bot)
    assert labels(card) == ["Approve and apply", "Approve", "Decline", "Comment"]
    assert stored.doc["_id"] in full(card) or "Open the request in LaunchDarkly" in full(card)
    change_card = bot.slack.message(RELEASES, bot.card().ts)
    assert "Approval requested by" in full(change_card) and labels(change_card) == []
    assert "Nothing was changed" not in said(bot) and "went wrong" not in said(bot)


async def test_members_without_email_still_label_an_approval(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    bot.sandbox.switches = bot.sandbox.switches.model_copy(update={"member_answer_omits": ["email"]})
    approval_settings(bot, "production")["canReviewOwnRequest"] = True
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    await click(bot, "Apply", user=BOB, message=approval_card(bot))
    assert bot.sandbox.projects["demo"].flags["new-checkout"]["environments"]["production"]["on"] is True
    assert any("Applied by <@U_BOB>" in t for t in thread_texts(bot, bot.card()))
    assert "went wrong" not in said(bot, BOB)


async def test_linking_when_the_member_lookup_fails_links_by_caller_identity(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await run(bot, "/flag link-account", user=BOB)
    bot.sandbox.faults = MEMBERS_DOWN
    await submit(
        bot,
        latest_view(bot, "link_account"),
        BOB,
        {"token": {"token": {"type": "plain_text_input", "value": "sandbox-bob"}}},
    )
    answer = bot.ephemeral_texts(BOB)[-1]
    bob = member_id(bot, "bob@example.com")
    assert "Linked" in answer and bob in answer, answer
    async with bot.store.engine.connect() as connection:
        (row,) = (await connection.execute(select(linked_accounts))).all()
    assert row.member_id == bob
