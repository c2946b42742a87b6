"""The core loop end to end: signed Slack requests in, the fake Slack and the sandbox over HTTP.

Each scenario asserts what LaunchDarkly holds afterwards and what Slack was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.launchdarkly.sandbox import SandboxState
from bot.lifecycle.models import Who
from bot.persistence.db import changes as changes_table
from bot.slack.blocks import SEND_AGAIN
from bot.slack.messenger import ReplyTo
from commands.demo import demo_flag
from commands.instructions import AddTags, SemanticPatch, TurnFlagOn
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, buttons, card_text, click, run

StartBot = Callable[..., Awaitable[Harness]]


def flag(bot: Harness, key: str) -> dict[str, Any]:
    """The flag as the sandbox holds it now."""
    return bot.sandbox.projects["demo"].flags[key]


def env(bot: Harness, key: str, environment: str) -> dict[str, Any]:
    environments: dict[str, Any] = flag(bot, key)["environments"]
    return dict(environments[environment])


def texts(bot: Harness) -> list[str]:
    """Every text under the latest card: its thread replies."""
    return [m.text + " " + " ".join(str(b) for b in m.blocks) for m in bot.thread()]


async def test_off_is_previewed_applied_and_reported_in_the_thread(bot: Harness) -> None:
    assert env(bot, "new-checkout", "test")["on"] is True
    await run(bot, "/flag off new-checkout test")
    assert "Targeting in test" in card_text(bot) and buttons(bot) == ["Apply", "Cancel"]
    assert env(bot, "new-checkout", "test")["on"] is True, "the preview is a dry run"
    assert len(bot.ld_patches(dry_runs=True)) == 1 and not bot.ld_patches()

    await click(bot, "Apply")
    assert env(bot, "new-checkout", "test")["on"] is False
    (patch,) = bot.ld_patches()
    assert patch["body"]["instructions"] == [{"kind": "turnFlagOff"}]
    assert patch["body"]["environmentKey"] == "test"
    assert "flagops change " in patch["body"]["comment"] and "via Slack by @" in patch["body"]["comment"]
    assert buttons(bot) == ["Undo"], "Apply and Cancel go; Undo stays"
    assert "Applied by" in card_text(bot)
    (reply,) = bot.thread()
    assert "version 1 → 2" in reply.text


@pytest.mark.parametrize(
    ("command", "flag_key", "environment", "check"),
    [
        (
            "/flag rollout banner-color production 10% blue 90% green",
            "banner-color",
            "production",
            lambda e: (
                e["fallthrough"]["rollout"]["variations"]
                == [{"variation": 0, "weight": 10000}, {"variation": 1, "weight": 90000}]
            ),
        ),
        (
            '/flag add rule pricing-page test if country in US,CA serve v2 -m "launch NA"',
            "pricing-page",
            "test",
            lambda e: (
                e["rules"][-1]["clauses"][0]["values"] == ["US", "CA"] and e["rules"][-1]["variation"] == 0
            ),
        ),
        (
            "/flag target new-checkout test user:carol -> true",
            "new-checkout",
            "test",
            lambda e: "carol" in e["targets"][0]["values"],
        ),
    ],
    ids=["rollout", "rule", "target"],
)
async def test_rollouts_rules_and_targets_go_through_the_same_loop(
    start_bot: StartBot,
    command: str,
    flag_key: str,
    environment: str,
    check: Callable[[dict[str, Any]], bool],
) -> None:
    bot = await start_bot()
    if environment == "production":
        # production needs approval in the demo project; this test is about the loop itself.
        bot.sandbox.projects["demo"].environments["production"]["approvalSettings"]["required"] = False
    await run(bot, command)
    assert "Apply" in buttons(bot), card_text(bot)
    await click(bot, "Apply")
    assert check(env(bot, flag_key, environment)), env(bot, flag_key, environment)
    assert "Applied" in bot.thread()[0].text


async def test_usage_error_goes_to_the_requester_only(bot: Harness) -> None:
    await run(bot, "/flag on")
    assert not bot.slack.messages(RELEASES)
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "Usage" in str(bot.slack.ephemerals(ALICE)[0].blocks) or "usage" in answer.lower()
    assert not bot.ld_requests()


async def test_unknown_flag_gets_suggestions(bot: Harness) -> None:
    await run(bot, "/flag on new-chekout test")
    assert not bot.slack.messages(RELEASES)
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "no flag `new-chekout`" in answer and "new-checkout" in answer
    assert not bot.ld_patches(dry_runs=True)


async def test_unknown_environment_names_the_real_ones(bot: Harness) -> None:
    await run(bot, "/flag on new-checkout qqq")
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "no environment `qqq`" in answer and "production" in answer


async def test_conflict_then_apply_anyway(bot: Harness) -> None:
    # Bob has a scheduled change pending on the same flag's on/off in test.
    scheduled = await bot.stack.runtime.ld.create_scheduled_change(
        "demo", "new-checkout", "test", execution_date=4102444800000, instructions=[TurnFlagOn()]
    )
    assert scheduled.id
    await run(bot, "/flag off new-checkout test")
    await click(bot, "Apply")
    assert env(bot, "new-checkout", "test")["on"] is True, "the conflict stopped it"
    assert buttons(bot) == ["Apply anyway", "Cancel"]
    assert any("conflict" in t.lower() or "pending" in t.lower() for t in texts(bot))

    await click(bot, "Apply anyway")
    assert env(bot, "new-checkout", "test")["on"] is False
    sent = [p for p in bot.ld_patches() if p["query"].get("ignoreConflicts") == "true"]
    assert len(sent) == 1
    assert "Applied" in card_text(bot)


async def test_approval_known_in_advance_offers_request_approval(bot: Harness) -> None:
    await run(bot, "/flag on new-checkout production")
    assert buttons(bot) == ["Request approval", "Cancel"]
    assert "requires approval" in card_text(bot)
    await click(bot, "Request approval")
    assert env(bot, "new-checkout", "production")["on"] is False, "nothing applied without approval"
    assert not bot.ld_patches()
    assert any("Approval requested" in t for t in texts(bot))
    assert "Approval requested" in card_text(bot)
    posted = [
        r for r in bot.ld_requests() if r["method"] == "POST" and r["path"].endswith("/approval-requests")
    ]
    assert len(posted) == 1
    assert posted[0]["body"]["instructions"] == [{"kind": "turnFlagOn"}]


async def test_405_at_apply_turns_into_request_approval(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    assert buttons(bot) == ["Apply", "Cancel"]
    # An admin requires approvals in test after the preview: LaunchDarkly answers 405 at apply.
    bot.sandbox.projects["demo"].environments["test"]["approvalSettings"]["required"] = True
    await click(bot, "Apply")
    assert env(bot, "new-checkout", "test")["on"] is True
    assert buttons(bot) == ["Request approval", "Cancel"]
    assert any("requires approval" in t for t in texts(bot))
    await click(bot, "Request approval")
    assert any("Approval requested" in t for t in texts(bot))


async def test_flag_changed_between_preview_and_apply_asks_again(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    first = bot.card()
    # Someone changes the flag in LaunchDarkly meanwhile.
    await bot.stack.runtime.ld.patch_flag_semantic(
        "demo", "new-checkout", SemanticPatch(instructions=[AddTags(values=["hotfix"])])
    )
    await click(bot, "Apply")
    assert env(bot, "new-checkout", "test")["on"] is True, "not applied against a moved flag"
    updated = bot.slack.message(RELEASES, first.ts)
    assert updated is not None and "changed since this preview" in updated.text + str(updated.blocks)
    (new_card,) = bot.thread(first)
    assert [b["text"]["text"] for b in new_card.buttons] == ["Apply", "Cancel"]
    await bot.click("Apply", message=new_card)
    await bot.idle()
    assert env(bot, "new-checkout", "test")["on"] is False
    assert "hotfix" in flag(bot, "new-checkout")["tags"]


async def test_only_the_requester_may_apply(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    await click(bot, "Apply", user=BOB)
    assert env(bot, "new-checkout", "test")["on"] is True
    assert any("Only <@U_ALICE>" in t for t in bot.ephemeral_texts(BOB))
    assert buttons(bot) == ["Apply", "Cancel"]


async def test_cancel_and_a_click_after_it(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    late_apply = bot.click_request("Apply")  # the card as someone's client still shows it
    await click(bot, "Cancel")
    assert "Cancelled by" in card_text(bot) and buttons(bot) == []
    await bot.send(late_apply)
    await bot.idle()
    assert env(bot, "new-checkout", "test")["on"] is True
    assert any("was cancelled" in t for t in bot.ephemeral_texts(ALICE))
    assert not bot.ld_patches()


async def test_expiry(start_bot: StartBot) -> None:
    bot = await start_bot(flagops_confirm_ttl=1)
    await run(bot, "/flag off new-checkout test")
    card = bot.card()
    await asyncio.sleep(1.2)
    await bot.click("Apply", message=card)
    await bot.idle()
    assert env(bot, "new-checkout", "test")["on"] is True
    assert any("expired" in t for t in bot.ephemeral_texts(ALICE))
    assert "Expired" in card_text(bot)


async def test_unconfirmed_cards_expire_without_a_click(start_bot: StartBot) -> None:
    bot = await start_bot(flagops_confirm_ttl=1)
    await run(bot, "/flag off new-checkout test")
    await asyncio.sleep(1.2)
    await bot.stack.runtime.changes.sweep()
    assert "Expired" in card_text(bot)
    assert buttons(bot) == ["Propose again"], "nothing to apply; the same command can be proposed again"


async def test_private_channel_tells_the_requester_how_to_invite(bot: Harness) -> None:
    bot.slack.make_private(RELEASES)
    await run(bot, "/flag off new-checkout test")
    assert not bot.slack.messages(RELEASES)
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "/invite @flagops" in answer
    assert not bot.ld_patches()


async def test_twenty_concurrent_clicks_apply_once(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    requests = [bot.click_request("Apply") for _ in range(20)]
    responses = await asyncio.gather(*(bot.send(r) for r in requests))
    assert all(r.status_code == 200 for r in responses)
    await bot.idle()
    assert len(bot.ld_patches()) == 1
    assert env(bot, "new-checkout", "test")["on"] is False
    assert sum("already" in t for t in bot.ephemeral_texts(ALICE)) == 19


async def test_a_replayed_click_applies_once(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    await click(bot, "Apply")
    response = await bot.replay_last()
    assert response.status_code == 200
    await bot.idle()
    assert len(bot.ld_patches()) == 1


async def test_bad_or_stale_signatures_change_nothing(bot: Harness) -> None:
    for response in (
        await bot.command_badly_signed("/flag off new-checkout test"),
        await bot.command_stale("/flag off new-checkout test"),
    ):
        assert response.status_code == 401
    await bot.idle()
    assert not bot.ld_requests()
    assert not bot.slack.all_messages() and not bot.slack.ephemerals()


async def test_two_instances_on_postgres_apply_once(start_bot: StartBot, postgres_url: str) -> None:
    first = await start_bot(database_url=postgres_url)
    second = await start_bot(database_url=postgres_url, sandbox=first.sandbox, slack=first.slack)
    await run(first, "/flag off new-checkout test")
    requests = [first.click_request("Apply") for _ in range(5)]
    await asyncio.gather(*(first.send(r) for r in requests), *(second.send(r) for r in requests))
    await first.idle()
    await second.idle()
    assert len(first.ld_patches()) == 1


async def test_outcome_unknown_after_a_5xx_then_send_again(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.5)
    await run(bot, "/flag off new-checkout test")
    # The PATCH is answered 503: it may or may not have been applied (here: it was not).
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"error_every": 1, "error_status": 503, "methods": ["PATCH"]}
    )
    await click(bot, "Apply")  # idle() waits through the settle window's second look
    assert env(bot, "new-checkout", "test")["on"] is True
    first, last = texts(bot)[0], texts(bot)[-1]
    assert "Outcome unknown" in first and "I look again at" in first and "nothing is resent" in first
    assert "Not applied" in last and "audit log shows no change from this card" in last
    assert "Not applied" in card_text(bot)
    assert buttons(bot) == ["Send again", "Cancel"]
    assert len(bot.ld_patches()) == 1, "never resent automatically"

    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"error_every": 0})
    await click(bot, "Send again")
    assert env(bot, "new-checkout", "test")["on"] is False
    assert len(bot.ld_patches()) == 2
    assert "Applied" in card_text(bot)


async def test_timeout_but_the_change_is_in_the_flag(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.5)
    await run(bot, "/flag off new-checkout test")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"hang": 2.0, "hang_every": 1, "methods": ["PATCH"], "apply_before_fault": True}
    )
    await click(bot, "Apply")
    assert env(bot, "new-checkout", "test")["on"] is False
    assert "Applied" in card_text(bot), card_text(bot)
    assert len(bot.ld_patches()) == 1


def test_demo_flag_is_what_the_scenarios_expect() -> None:
    checkout = demo_flag("new-checkout")
    assert checkout is not None
    assert checkout["environments"]["test"]["on"] is True
    assert checkout["environments"]["production"]["on"] is False
    assert isinstance(SandboxState.demo(), SandboxState)


async def _change_id(bot: Harness) -> str:
    (change,) = await bot.stack.runtime.store._select(select(changes_table))
    return change.id


async def test_a_late_landing_write_is_never_applied_twice(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.3)
    await run(bot, "/flag off new-checkout test")
    # The PATCH times out at the bot, and LaunchDarkly applies it a moment later.
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"hang": 0.8, "hang_every": 1, "methods": ["PATCH"], "apply_before_fault": False}
    )
    response = await bot.click("Apply")
    assert response.status_code == 200
    await asyncio.sleep(0.6)  # the PATCH has timed out; the first look finds nothing yet
    assert "Outcome unknown" in card_text(bot) and buttons(bot) == []
    # A Send again that arrives now (a replayed click, another instance's stale card) is refused.
    change_id = await _change_id(bot)
    who = Who(ALICE, "alice", ReplyTo(RELEASES, ALICE))
    await bot.stack.runtime.changes.click(SEND_AGAIN, change_id, who)
    assert any("may still apply the first attempt" in t for t in bot.ephemeral_texts())
    await bot.idle()
    assert env(bot, "new-checkout", "test")["on"] is False, "it landed after all"
    # The second look, after the settle window, finds the write in LaunchDarkly's audit log.
    assert "Applied" in card_text(bot) and "audit log shows this change" in card_text(bot)
    assert len(bot.ld_patches()) == 1


async def test_send_again_after_someone_else_changed_the_flag_asks_again(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.3)
    await run(bot, "/flag off new-checkout test")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"error_every": 1, "error_status": 502, "methods": ["PATCH"]}
    )
    await click(bot, "Apply")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"error_every": 0})
    await bot.stack.runtime.ld.patch_flag_semantic(
        "demo", "new-checkout", SemanticPatch(instructions=[AddTags(values=["hotfix"])])
    )
    card = bot.card()
    await click(bot, "Send again")
    assert env(bot, "new-checkout", "test")["on"] is True
    updated = bot.slack.message(RELEASES, card.ts)
    assert updated is not None and "changed since this preview" in str(updated.blocks)
    assert len(bot.thread(card)) >= 1


async def test_a_reader_token_is_explained_and_changes_nothing(start_bot: StartBot) -> None:
    bot = await start_bot(sandbox=SandboxState.demo(token="sandbox-alice"), ld_api_token="sandbox-carol")
    await run(bot, "/flag off new-checkout test")
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "lacks the right" in answer and "403" in answer
    assert "sandbox-carol" not in answer
    assert env(bot, "new-checkout", "test")["on"] is True
    assert not bot.slack.messages(RELEASES)


async def test_an_unknown_token_is_explained_without_echoing_it(start_bot: StartBot) -> None:
    bot = await start_bot(sandbox=SandboxState.demo(token="sandbox-alice"), ld_api_token="api-revoked-123")
    await run(bot, "/flag show new-checkout test")
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "401" in answer and "LD_API_TOKEN" in answer
    assert all("api-revoked-123" not in str(call.params) for call in bot.slack.calls)


@pytest.mark.parametrize("dry_run", ["preview", "405"])
@pytest.mark.parametrize("message", ["action", "generic"])
async def test_undocumented_approval_behaviour_both_ways(
    start_bot: StartBot, dry_run: str, message: str
) -> None:
    """Whether LaunchDarkly previews or refuses a dry run in an approval environment, and however
    it words the 405, the card previews the change and the 405 at apply becomes Request approval."""
    bot = await start_bot()
    bot.sandbox.switches = bot.sandbox.switches.model_copy(
        update={"dry_run_in_approval_env": dry_run, "approval_405_message": message}
    )
    await run(bot, "/flag rollout banner-color production 10% blue 90% green")
    assert "10% Blue (blue), 90% Green (green)" in card_text(bot), card_text(bot)
    assert buttons(bot) == ["Request approval", "Cancel"]

    # And at apply: an environment the bot believed free of approvals answers 405.
    await run(bot, "/flag off new-checkout test")
    bot.sandbox.projects["demo"].environments["test"]["approvalSettings"]["required"] = True
    await click(bot, "Apply")
    assert buttons(bot) == ["Request approval", "Cancel"]
    assert any("requires approval" in t for t in texts(bot))
    assert env(bot, "new-checkout", "test")["on"] is True
