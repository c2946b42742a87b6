"""Approvals in the channel, end to end: signed Slack requests in, the fake Slack and the sandbox
over HTTP. Each scenario asserts what LaunchDarkly holds (and who it says did it: the sandbox's
audit) and what Slack was sent."""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.approvals.cards import APPROVED, CARD_APPLIED, CARD_FAILED
from bot.launchdarkly.sandbox import SandboxState
from bot.launchdarkly.sandbox.state import Account
from bot.lifecycle.models import FAILED
from bot.offline.fake_slack import Message
from bot.offline.payloads import signed_interaction, view_submission_payload
from bot.persistence.db import approval_cards, changes
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, click, run

StartBot = Callable[..., Awaitable[Harness]]

SERVICE_TOKEN = "api-flagops-console"  # the console settings' LD_API_TOKEN: the bot's service token
SERVICE_MEMBER = "5f00000000000000000f1a90"
SECRET_KEY = "a long passphrase for the linked-token cipher"
APPROVALS = "C_APPROVALS"


def sandbox() -> SandboxState:
    """The demo account, where the bot's service token is a member of its own (not alice)."""
    state = SandboxState.demo(token="sandbox-alice")
    service = {
        "_id": SERVICE_MEMBER,
        "email": "flagops-bot@example.com",
        "firstName": "flagops",
        "role": "writer",
    }
    state.accounts.append(Account(member=service, token=SERVICE_TOKEN, writer=True))
    state.remember_initial()
    return state


async def start(start_bot: StartBot, **settings: Any) -> Harness:
    settings.setdefault("flagops_secret_key", SECRET_KEY)
    return await start_bot(sandbox=sandbox(), **settings)


def member_id(bot: Harness, email: str) -> str:
    return next(a.member_id for a in bot.sandbox.accounts if a.member["email"] == email)


def env(bot: Harness, key: str, environment: str) -> dict[str, Any]:
    return dict(bot.sandbox.projects["demo"].flags[key]["environments"][environment])


def approval_settings(bot: Harness, environment: str) -> dict[str, Any]:
    settings: dict[str, Any] = bot.sandbox.projects["demo"].environments[environment]["approvalSettings"]
    return settings


def full(message: Any) -> str:
    return str(message.text) + " " + " ".join(str(b) for b in message.blocks)


def thread_texts(bot: Harness, card: Any) -> list[str]:
    return [full(m) for m in bot.slack.thread(card.channel, card.ts)]


def labels(message: Any) -> list[str]:
    return [b["text"]["text"] for b in message.buttons]


def requests_of(bot: Harness) -> list[Any]:
    return list(bot.sandbox.approvals.values())


def audit(bot: Harness, kind: str) -> list[dict[str, Any]]:
    return [a for a in bot.sandbox.audit if a["kind"] == kind]


def approval_card(bot: Harness, channel: str = RELEASES) -> Any:
    """The latest approval card in ``channel`` (thread replies included)."""
    for message in reversed(bot.slack.all_messages()):
        if message.channel == channel and "Approval requested by" in full(message):
            return bot.slack.message(message.channel, message.ts)
    raise AssertionError("no approval card was posted")


def listing(bot: Harness, user: str) -> Any:
    """The latest `/flag approvals` answer ``user`` got, as a message whose buttons can be clicked."""
    answer = bot.slack.ephemerals(user)[-1]
    return Message(answer.channel, "1700000000.000009", answer.text, answer.blocks, "U_FLAGOPS")


def latest_view(bot: Harness, callback_id: str) -> dict[str, Any]:
    views = [v for v in bot.slack.views().values() if v.get("callback_id") == callback_id]
    assert views, f"no {callback_id} modal was opened"
    return views[-1]


async def submit(bot: Harness, view: dict[str, Any], user: str, values: dict[str, Any]) -> None:
    payload = view_submission_payload(user=bot.driver.user(user), view=view, values=values)
    secret = bot.stack.settings.slack_signing_secret.get_secret_value()
    response = await bot.send(signed_interaction(secret, payload))
    assert response.status_code == 200
    await bot.idle()


async def link(bot: Harness, user: str, token: str) -> None:
    """Link ``user``'s LaunchDarkly account the way a person does: the command, then the modal."""
    await run(bot, "/flag link-account", user=user)
    view = latest_view(bot, "link_account")
    await submit(bot, view, user, {"token": {"token": {"type": "plain_text_input", "value": token}}})
    assert any("Linked" in t for t in bot.ephemeral_texts(user)), bot.ephemeral_texts(user)


async def test_405_request_approve_apply_as_linked_members(start_bot: StartBot) -> None:
    bot = await start(start_bot, flagops_approvals_channel=APPROVALS)
    await link(bot, ALICE, "sandbox-alice")
    await link(bot, BOB, "sandbox-bob")
    alice, bob = member_id(bot, "alice@example.com"), member_id(bot, "bob@example.com")

    await run(bot, '/flag off new-checkout test --reviewers <@U_BOB> -m "kill switch"')
    change_card = bot.card()
    # An admin requires approvals in test after the preview: LaunchDarkly answers 405 at apply.
    approval_settings(bot, "test")["required"] = True
    await click(bot, "Apply")
    assert any("requires approval" in t for t in thread_texts(bot, change_card))
    await click(bot, "Request approval", message=bot.slack.message(RELEASES, change_card.ts))

    (stored,) = requests_of(bot)
    assert stored.doc["requestorId"] == alice, "requested as alice, with her linked token"
    assert stored.doc["notifyMemberIds"] == [bob], "bob is notified"
    assert stored.doc["instructions"] == [{"kind": "turnFlagOff"}]
    assert "turn" in stored.doc["description"].lower()
    card = approval_card(bot)
    assert card.thread_ts == change_card.ts, "the approval card is in the change's thread"
    assert labels(card) == ["Approve and apply", "Approve", "Decline", "Comment"]
    assert "<@U_BOB>" in full(card) and "Open the request in LaunchDarkly" in full(card)
    assert "Turn targeting OFF in test" in full(card)
    assert "Reviewers notified: <@U_BOB>" in full(card)
    assert len(thread_texts(bot, change_card)) == 2, "the 405, then the approval card: one message each"
    (copy,) = bot.slack.messages(APPROVALS)
    assert "Approval requested by" in full(copy), "a copy in the approvals channel"

    await click(bot, "Approve", user=BOB, message=card)
    (review,) = audit(bot, "review:approve")
    assert review["memberId"] == bob, "approved as bob"
    card = approval_card(bot)
    assert labels(card) == ["Apply"]
    assert "approved by <@U_BOB>" in full(card)
    assert labels(bot.slack.message(APPROVALS, copy.ts)) == ["Apply"], "every copy is updated"

    await click(bot, "Apply", user=BOB, message=card)
    assert env(bot, "new-checkout", "test")["on"] is False
    (applied,) = audit(bot, "applyApprovalRequest")
    assert applied["memberId"] == bob and applied["requestorId"] == alice
    texts = thread_texts(bot, change_card)
    assert "Approval requested by <@U_ALICE> as alice@example.com" in texts[1]
    assert any("<@U_BOB> approved as bob@example.com" in t for t in texts)
    assert any("Applied by <@U_BOB>" in t and "flag version" in t for t in texts)
    assert len(texts) == 4, "405, approval card, approved, applied: one message per event"
    assert labels(approval_card(bot)) == []
    parent = full(bot.slack.message(RELEASES, change_card.ts))
    assert "Applied by <@U_BOB> through the approval request" in parent


async def test_without_linked_accounts_the_service_token_acts_and_comments_name_the_users(
    start_bot: StartBot,
) -> None:
    bot = await start(start_bot)
    # With one service token the bot is requester and reviewer: this environment allows that.
    approval_settings(bot, "production")["canReviewOwnRequest"] = True
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    (stored,) = requests_of(bot)
    assert stored.doc["requestorId"] == SERVICE_MEMBER
    assert "@alice" in (stored.comment or ""), stored.comment

    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    await click(bot, "Apply", user=BOB, message=approval_card(bot))
    assert env(bot, "new-checkout", "production")["on"] is True
    (review,) = stored.doc["allReviews"]
    assert review["memberId"] == SERVICE_MEMBER and "@bob" in review["comment"]
    (applied,) = audit(bot, "applyApprovalRequest")
    assert applied["memberId"] == SERVICE_MEMBER and "@bob" in applied["comment"]
    assert any("through the flagops service token" in t for t in thread_texts(bot, bot.card()))


async def test_requester_approving_their_own_request_gets_launchdarklys_refusal(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await link(bot, ALICE, "sandbox-alice")
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Approve", user=ALICE, message=approval_card(bot))
    refusal = bot.ephemeral_texts(ALICE)[-1]
    assert "You cannot review your own approval request in this environment" in refusal
    assert "link-account" not in refusal, "alice is linked: linking would not help"
    assert not audit(bot, "review:approve")
    assert labels(approval_card(bot)) == ["Approve and apply", "Approve", "Decline", "Comment"]

    # Carol is linked but a reader: LaunchDarkly's 403 is shown in its words.
    await link(bot, "U_CAROL", "sandbox-carol")
    await click(bot, "Approve", user="U_CAROL", message=approval_card(bot))
    assert "LaunchDarkly said" in bot.ephemeral_texts("U_CAROL")[-1]
    assert env(bot, "new-checkout", "production")["on"] is False


async def test_self_review_through_the_service_token_hints_at_linking(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    refusal = bot.ephemeral_texts(BOB)[-1]
    assert "You cannot review your own approval request" in refusal
    assert "/flag link-account" in refusal


async def test_decline_with_a_reason(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await link(bot, BOB, "sandbox-bob")
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Decline", user=BOB, message=approval_card(bot))
    view = latest_view(bot, "approval_decline_reason")
    assert not audit(bot, "review:decline"), "nothing is sent before the reason"
    await submit(
        bot, view, BOB, {"reason": {"reason": {"type": "plain_text_input", "value": "Not on a Friday"}}}
    )
    (stored,) = requests_of(bot)
    assert stored.doc["reviewStatus"] == "declined"
    assert stored.doc["allReviews"][0]["comment"] == "Not on a Friday"
    assert stored.doc["allReviews"][0]["memberId"] == member_id(bot, "bob@example.com")
    card = approval_card(bot)
    assert labels(card) == [] and "Declined" in full(card) and "Not on a Friday" in full(card)
    assert any("<@U_BOB> declined" in t and "Not on a Friday" in t for t in thread_texts(bot, bot.card()))
    assert env(bot, "new-checkout", "production")["on"] is False


async def test_two_apply_clicks_apply_once(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await link(bot, BOB, "sandbox-bob")
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    card = approval_card(bot)
    clicks = [bot.click_request("Apply", user=u, message=card) for u in (BOB, ALICE, BOB, ALICE)]
    responses = await asyncio.gather(*(bot.send(c) for c in clicks))
    assert all(r.status_code == 200 for r in responses)
    await bot.idle()
    assert len(audit(bot, "applyApprovalRequest")) == 1
    applies = [r for r in bot.ld_requests() if r["method"] == "POST" and r["path"].endswith("/apply")]
    writes = [(r["status"], r["path"][-40:]) for r in bot.ld_requests() if r["method"] != "GET"]
    assert len(applies) == 1, writes
    assert env(bot, "new-checkout", "production")["on"] is True
    told = bot.ephemeral_texts(BOB) + bot.ephemeral_texts(ALICE)
    assert sum("already" in t for t in told) == 3, told


async def test_a_read_taken_before_another_click_applied_never_offers_apply_again(
    start_bot: StartBot,
) -> None:
    # The race behind a flake: click B read the request ("approved") just before click A applied
    # it; B's stale read, synced after A finished, moved the card back to approved and B sent a
    # second apply. The stale read is forced here in that order, through the real service.
    bot = await start(start_bot)
    stale = await _approved_then_read(bot)
    as_alice_saw_it = copy.deepcopy(approval_card(bot))
    await click(bot, "Apply", user=BOB, message=approval_card(bot))
    service = bot.stack.runtime.changes.approvals
    (card,) = [c for c in [await service.cards.get(i) for i in await _card_ids(bot)] if c]
    assert card.state == "applied"
    synced = await service._sync(card, stale)
    assert synced.state == "applied", "a stale read does not move an applied card back"
    await click(bot, "Apply", user=ALICE, message=as_alice_saw_it)
    applies = [r for r in bot.ld_requests() if r["method"] == "POST" and r["path"].endswith("/apply")]
    assert len(applies) == 1
    assert "already applied" in bot.ephemeral_texts(ALICE)[-1]


async def test_a_read_synced_while_another_click_applies_never_moves_the_card_back(
    start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same race one step later: B's sync read the card ("approved") just before A's click
    # finished applying it, then wrote its stale read. The card's state read by B is forced stale
    # here (the only stand-in: what the database said a moment earlier); the move is the real one.
    bot = await start(start_bot)
    stale = await _approved_then_read(bot)
    service = bot.stack.runtime.changes.approvals
    (before,) = [c for c in [await service.cards.get(i) for i in await _card_ids(bot)] if c]
    assert before.state == "approved"
    await click(bot, "Apply", user=BOB, message=approval_card(bot))
    real_get = service.cards.get
    reads = iter([before])

    async def first_read_stale(card_id: str) -> Any:
        return next(reads, None) or await real_get(card_id)

    monkeypatch.setattr(service.cards, "get", first_read_stale)
    synced = await service._sync(before, stale)
    monkeypatch.undo()
    (after,) = [c for c in [await service.cards.get(i) for i in await _card_ids(bot)] if c]
    assert after.state == "applied" and synced.state == "applied", "never back to approved"


async def _approved_then_read(bot: Harness) -> Any:
    """An approved request for alice's production change, and LaunchDarkly's answer read now."""
    approval_settings(bot, "production")["canReviewOwnRequest"] = True
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    (stored,) = requests_of(bot)
    ld = bot.stack.runtime.ld
    return await ld.get_approval_request("demo", "new-checkout", "production", stored.doc["_id"])


async def _card_ids(bot: Harness) -> list[str]:
    from sqlalchemy import text

    async with bot.store.engine.connect() as connection:
        return [row[0] for row in await connection.execute(text("SELECT id FROM approval_cards"))]


async def test_a_request_approved_in_launchdarkly_shows_approved_on_the_next_click(
    start_bot: StartBot,
) -> None:
    bot = await start(start_bot)
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    (stored,) = requests_of(bot)
    # Bob approves in LaunchDarkly's UI, not in Slack.
    await bot.stack.runtime.ld.review_approval_request(
        "demo", "new-checkout", "production", stored.doc["_id"], "approve", token="sandbox-bob"
    )
    await click(bot, "Approve", user=ALICE, message=approval_card(bot))
    assert "already approved" in bot.ephemeral_texts(ALICE)[-1]
    card = approval_card(bot)
    assert labels(card) == ["Apply"] and "approved by bob@example.com" in full(card)
    await click(bot, "Apply", user=BOB, message=card)
    assert env(bot, "new-checkout", "production")["on"] is True


async def test_approval_flag_asks_at_once_and_names_unmapped_reviewers(start_bot: StartBot) -> None:
    bot = await start(
        start_bot, flagops_approval_reviewers={"production": ["carol@example.com", "release-managers"]}
    )
    bot.slack.add_user("U_DAVE", "dave")  # no email in Slack
    bot.slack.add_user("U_ERIN", "erin", email="erin@example.com")  # not a LaunchDarkly member
    await run(
        bot,
        '/flag on new-checkout production --approval --reviewers <@U_BOB>,<@U_DAVE>,<@U_ERIN> -m "Launch"',
    )
    (stored,) = requests_of(bot)
    carol, bob = member_id(bot, "carol@example.com"), member_id(bot, "bob@example.com")
    assert stored.doc["notifyMemberIds"] == [carol, bob]
    assert stored.doc["notifyTeamKeys"] == ["release-managers"]
    card = approval_card(bot)
    assert "<@U_DAVE>" in full(card) and "<@U_ERIN>" in full(card) and "Not notified" in full(card)
    assert labels(bot.card()) == [], "the change card waits for the approval card"
    assert "Launch" in full(card)


async def test_approvals_lists_pending_requests_made_outside_slack(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await link(bot, ALICE, "sandbox-alice")
    from commands.instructions import TurnFlagOn

    await bot.stack.runtime.ld.create_approval_request(
        "demo",
        "new-checkout",
        "production",
        description="Turn it on (asked in LaunchDarkly)",
        instructions=[TurnFlagOn()],
        token="sandbox-bob",
    )
    posted = len(bot.slack.all_messages())
    await run(bot, "/flag approvals new-checkout production")
    assert len(bot.slack.all_messages()) == posted, "the list is an answer to alice alone"
    card = listing(bot, ALICE)
    assert "1 waiting for review" in full(card)
    assert "bob@example.com" in full(card)
    assert labels(card) == ["Approve and apply", "Approve", "Decline", "Comment"]
    assert "asks to turn targeting ON in production" in full(card)
    await click(bot, "Approve", user=ALICE, message=card)
    assert any("<@U_ALICE> approved" in t for t in bot.ephemeral_texts(ALICE)), "told alone"
    await run(bot, "/flag approvals new-checkout production")
    decided = listing(bot, ALICE)
    assert "0 waiting for review, 1 decided" in full(decided) and labels(decided) == ["Apply"]
    await click(bot, "Apply", user=ALICE, message=decided)
    assert env(bot, "new-checkout", "production")["on"] is True
    assert len(bot.slack.all_messages()) == posted, "nothing was posted in the channel"

    await run(bot, "/flag approvals")
    assert "No pending approval requests" in bot.ephemeral_texts(ALICE)[-1]


async def test_required_linked_accounts_ask_to_link_first(start_bot: StartBot) -> None:
    bot = await start(start_bot, flagops_require_linked_accounts=True)
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    assert "/flag link-account" in bot.ephemeral_texts(ALICE)[-1]
    assert not requests_of(bot)
    assert labels(bot.card()) == ["Request approval", "Cancel"], "the card still offers the request"


async def test_the_channels_reviewers_and_approvals_channel_are_used(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    bot.slack.add_channel(APPROVALS, "flag-approvals")
    await run(bot, "/flag config reviewers production <@U_BOB|bob>")
    await run(bot, "/flag config approvals-channel <#C_APPROVALS|flag-approvals>")
    await run(bot, "/flag on new-checkout production --approval")
    (stored,) = requests_of(bot)
    assert stored.doc["notifyMemberIds"] == [member_id(bot, "bob@example.com")]
    assert approval_card(bot, APPROVALS) is not None, "the card is in the channel's approvals channel"


# --- the policy on approval cards, and cards that cannot all be redrawn ----------------------------


def write_policy(path: Path, text: str) -> None:
    """Write the policy and move its mtime on, so a rewrite within one clock tick is seen."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


async def stored_card_states(bot: Harness) -> list[str]:
    async with bot.store.engine.connect() as connection:
        rows = (await connection.execute(select(approval_cards.c.state))).all()
    return [str(row[0]) for row in rows]


async def approved_request(bot: Harness) -> None:
    """alice's `on new-checkout production` asked for and approved by bob (linked)."""
    await link(bot, BOB, "sandbox-bob")
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    assert labels(approval_card(bot)) == ["Apply"]


async def test_apply_on_an_approval_card_follows_the_policys_apply_rule(
    start_bot: StartBot, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    write_policy(policy, '[projects.demo.environments.production]\napply = { users = ["U_CAROL"] }\n')
    bot = await start(start_bot, flagops_policy=str(policy))
    await approved_request(bot)
    await click(bot, "Apply", user=ALICE, message=approval_card(bot))
    refusal = bot.ephemeral_texts(ALICE)[-1]
    assert "projects.demo.environments.production.apply" in refusal and "Nothing was changed" in refusal
    assert env(bot, "new-checkout", "production")["on"] is False
    assert not audit(bot, "applyApprovalRequest")
    assert labels(approval_card(bot)) == ["Apply"] and await stored_card_states(bot) == [APPROVED]
    # The person the rule names may apply it.
    await link(bot, "U_CAROL", "sandbox-bob")
    await click(bot, "Apply", user="U_CAROL", message=approval_card(bot))
    assert env(bot, "new-checkout", "production")["on"] is True


async def test_an_environment_made_read_only_after_the_request_refuses_apply(
    start_bot: StartBot, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    write_policy(policy, '[projects.demo.environments.production]\napply = { users = ["U_BOB"] }\n')
    bot = await start(start_bot, flagops_policy=str(policy))
    await approved_request(bot)
    write_policy(policy, "[projects.demo.environments.production]\nread_only = true\n")
    await click(bot, "Apply", user=BOB, message=approval_card(bot))
    refusal = bot.ephemeral_texts(BOB)[-1]
    assert "read-only" in refusal and "projects.demo.environments.production.read_only" in refusal
    assert env(bot, "new-checkout", "production")["on"] is False
    assert not audit(bot, "applyApprovalRequest")


async def test_request_approval_in_an_environment_made_read_only_is_refused(
    start_bot: StartBot, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    write_policy(policy, "[default]\n")
    bot = await start(start_bot, flagops_policy=str(policy))
    await run(bot, "/flag on new-checkout production")
    write_policy(policy, "[projects.demo.environments.production]\nread_only = true\n")
    await click(bot, "Request approval")
    refusal = bot.ephemeral_texts(ALICE)[-1]
    assert "read-only" in refusal and "Nothing was changed" in refusal
    assert not requests_of(bot), "no approval request was made in LaunchDarkly"
    assert labels(bot.card()) == ["Request approval", "Cancel"]


async def test_a_copy_that_cannot_be_updated_does_not_stop_apply(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    bot.slack.add_channel(APPROVALS, "flag-approvals")
    await run(bot, "/flag config approvals-channel <#C_APPROVALS|flag-approvals>")
    await approved_request(bot)
    bot.slack.make_private(APPROVALS)  # the bot was removed from the approvals channel
    await click(bot, "Apply", user=BOB, message=approval_card(bot))
    assert env(bot, "new-checkout", "production")["on"] is True
    assert await stored_card_states(bot) == [CARD_APPLIED]
    card = approval_card(bot)
    assert labels(card) == [] and "Applied" in full(card), "the copy in the thread is up to date"
    assert not any("went wrong" in t for t in bot.ephemeral_texts(BOB)), bot.ephemeral_texts(BOB)


async def test_an_unexpected_error_after_the_claim_settles_the_card(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await approved_request(bot)
    ld = bot.stack.runtime.ld
    real_apply = ld.apply_approval_request

    async def applied_then_broken(*args: Any, **kwargs: Any) -> Any:
        await real_apply(*args, **kwargs)
        raise RuntimeError("a bug after LaunchDarkly applied")

    ld.apply_approval_request = applied_then_broken  # type: ignore[method-assign]
    await click(bot, "Apply", user=BOB, message=approval_card(bot))
    assert "went wrong" in bot.ephemeral_texts(BOB)[-1]
    assert env(bot, "new-checkout", "production")["on"] is True
    assert await stored_card_states(bot) == [CARD_APPLIED], "the card shows what LaunchDarkly holds"
    assert labels(approval_card(bot)) == []

    # Before LaunchDarkly applied: the card is approved again, and Apply works once the bug is gone.
    await run(bot, "/flag off holiday-banner production")
    await click(bot, "Request approval")
    await click(bot, "Approve", user=BOB, message=approval_card(bot))

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug before LaunchDarkly was asked")

    ld.apply_approval_request = broken  # type: ignore[method-assign]
    await click(bot, "Apply", user=BOB, message=approval_card(bot))
    assert env(bot, "holiday-banner", "production")["on"] is True, "nothing was applied"
    assert labels(approval_card(bot)) == ["Apply"]
    ld.apply_approval_request = real_apply  # type: ignore[method-assign]
    await click(bot, "Apply", user=BOB, message=approval_card(bot))
    assert env(bot, "holiday-banner", "production")["on"] is False


# --- declined and deleted requests close their change card ---------------------------------------


async def test_a_declined_request_closes_its_change_and_gets_no_reminder(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await link(bot, BOB, "sandbox-bob")
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    reminders = bot.stack.runtime.scheduler.reminders  # type: ignore[union-attr]
    assert await reminders.enqueue_approval_reminders() == 1
    inserts = 0
    real_add = reminders.jobs.add

    async def counting_add(*args: Any, **kwargs: Any) -> Any:
        nonlocal inserts
        inserts += 1
        return await real_add(*args, **kwargs)

    reminders.jobs.add = counting_add  # type: ignore[method-assign]
    assert await reminders.enqueue_approval_reminders() == 0
    assert inserts == 0, "a change that has its reminder is not inserted again every tick"

    await click(bot, "Decline", user=BOB, message=approval_card(bot))
    view = latest_view(bot, "approval_decline_reason")
    await submit(bot, view, BOB, {"reason": {"reason": {"type": "plain_text_input", "value": "Not today"}}})
    card = bot.card()
    assert "declined by <@U_BOB>" in full(card) and "Not today" in full(card)
    assert labels(card) == []
    async with bot.store.engine.connect() as connection:
        ((change_id, state),) = (await connection.execute(select(changes.c.id, changes.c.state))).all()
    assert state == FAILED
    last = (await bot.store.audit_for(change_id))[-1]
    assert last.detail == "declined by <@U_BOB>: Not today" and last.actor_id == BOB
    assert await reminders.enqueue_approval_reminders() == 0 and inserts == 0


async def test_a_request_declined_in_launchdarkly_closes_the_change_on_the_next_click(
    start_bot: StartBot,
) -> None:
    bot = await start(start_bot)
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    (stored,) = requests_of(bot)
    await bot.stack.runtime.ld.review_approval_request(
        "demo", "new-checkout", "production", stored.doc["_id"], "decline", "No", token="sandbox-bob"
    )
    await click(bot, "Approve", user=ALICE, message=approval_card(bot))
    assert "already declined" in bot.ephemeral_texts(ALICE)[-1]
    card = bot.card()
    assert "declined by bob@example.com" in full(card) and "No" in full(card) and labels(card) == []


async def test_a_request_deleted_in_launchdarkly_closes_the_card_and_the_change(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    (stored,) = requests_of(bot)
    await bot.stack.runtime.ld.delete_approval_request(
        "demo", "new-checkout", "production", stored.doc["_id"], token="sandbox-alice"
    )
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    assert "deleted in LaunchDarkly" in bot.ephemeral_texts(BOB)[-1]
    assert labels(approval_card(bot)) == [] and "deleted in LaunchDarkly" in full(approval_card(bot))
    assert "deleted in LaunchDarkly" in full(bot.card()) and labels(bot.card()) == []
    assert await stored_card_states(bot) == [CARD_FAILED]


async def test_approvals_lists_the_channels_project(start_bot: StartBot) -> None:
    from commands.instructions import TurnFlagOn
    from tests.bot.test_config_command import second_project

    bot = await start(start_bot)
    second_project(bot)
    await run(bot, "/flag config project shop", user=BOB)
    await bot.stack.runtime.ld.create_approval_request(
        "shop",
        "new-checkout",
        "production",
        description="Turn it on in shop",
        instructions=[TurnFlagOn()],
        token="sandbox-bob",
    )
    await run(bot, "/flag approvals")
    card = listing(bot, ALICE)
    assert "1 waiting for review" in full(card)
    assert "project `shop`" in full(card)
