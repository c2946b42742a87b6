"""Regression tests from an outside review of the core loop: each once left a change applied
twice, stuck on "Applying…", or told the user something untrue."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from commands.instructions import SemanticPatch, TurnFlagOn
from tests.bot.harness import ALICE, RELEASES, Harness, buttons, card_text

StartBot = Callable[..., Awaitable[Harness]]


def env(bot: Harness, key: str, environment: str) -> dict[str, Any]:
    return dict(bot.sandbox.projects["demo"].flags[key]["environments"][environment])


async def change_state(bot: Harness) -> str:
    block_id = next(b["block_id"] for b in bot.card().blocks if b.get("type") == "actions")
    change = await bot.store.get_change(block_id.split(":", 1)[1])
    assert change is not None
    return change.state


async def test_a_replayed_apply_after_a_conflict_does_not_ignore_the_conflict(bot: Harness) -> None:
    await bot.stack.runtime.ld.create_scheduled_change(
        "demo", "new-checkout", "test", execution_date=4102444800000, instructions=[TurnFlagOn()]
    )
    await bot.command("/flag off new-checkout test")
    await bot.idle()
    apply_click = bot.click_request("Apply")
    await bot.send(apply_click)
    await bot.idle()
    assert buttons(bot) == ["Apply anyway", "Cancel"]
    await bot.send(apply_click)  # a double click or a Slack retry of the plain Apply
    await bot.idle()
    assert env(bot, "new-checkout", "test")["on"] is True, "only Apply anyway may override"
    assert all(p["query"].get("ignoreConflicts") != "true" for p in bot.ld_patches())


async def test_a_flag_deleted_after_the_preview_fails_plainly(bot: Harness) -> None:
    await bot.command("/flag off banner-color test")
    await bot.idle()
    await bot.stack.runtime.ld.patch_flag_semantic(
        "demo", "banner-color", SemanticPatch.model_validate({"instructions": [{"kind": "deleteFlag"}]})
    )
    await bot.click("Apply")
    await bot.idle()
    assert "Applying" not in card_text(bot)
    assert "no flag `banner-color`" in card_text(bot)
    assert any("no flag" in m.text for m in bot.thread())


async def test_a_delete_whose_outcome_is_unknown_is_confirmed_by_the_404(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.3)
    await bot.command("/flag delete holiday-banner confirm holiday-banner")
    await bot.idle()
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"hang": 0.8, "hang_every": 1, "methods": ["PATCH"], "apply_before_fault": True}
    )
    await bot.click("Apply")
    await bot.idle()
    assert "holiday-banner" not in bot.sandbox.projects["demo"].flags
    assert "Applied" in card_text(bot), card_text(bot)
    assert "Applying" not in card_text(bot)


async def test_the_sweep_leaves_an_apply_in_flight_alone(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=10)
    await bot.command("/flag add rule pricing-page test if country in US,CA serve v2")
    await bot.idle()
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"hang": 1.0, "hang_every": 1, "methods": ["PATCH"], "apply_before_fault": False}
    )
    await bot.click("Apply")
    await asyncio.sleep(0.3)  # the PATCH is in flight
    changes = bot.stack.runtime.changes
    await changes.sweep(now=changes.clock() + timedelta(minutes=3))
    await bot.idle()
    assert len(bot.ld_patches()) == 1
    assert len(env(bot, "pricing-page", "test")["rules"]) == 4
    assert "Applied" in card_text(bot) and "Outcome unknown" not in card_text(bot)


async def test_a_card_that_cannot_be_updated_does_not_stop_the_apply(bot: Harness) -> None:
    await bot.command("/flag off new-checkout test")
    await bot.idle()
    bot.slack.rate_limit("chat.update", next=3)  # more 429s than the client retries
    await bot.click("Apply")
    await bot.idle()
    assert env(bot, "new-checkout", "test")["on"] is False
    assert any("Applied" in m.text for m in bot.thread()), "the thread still tells the outcome"


async def test_a_raw_card_superseded_gets_a_fresh_preview(bot: Harness) -> None:
    await bot.command('/flag raw new-checkout test [{"kind": "turnFlagOff"}]')
    await bot.idle()
    first = bot.card()
    await bot.stack.runtime.ld.patch_flag_semantic(
        "demo",
        "new-checkout",
        SemanticPatch.model_validate({"instructions": [{"kind": "addTags", "values": ["x"]}]}),
    )
    await bot.click("Apply", message=first)
    await bot.idle()
    (fresh,) = bot.thread(first)
    assert [b["text"]["text"] for b in fresh.buttons] == ["Apply", "Cancel"]


async def test_after_a_405_the_card_waits_a_whole_window_again(start_bot: StartBot) -> None:
    bot = await start_bot(flagops_confirm_ttl=2)
    await bot.command("/flag off new-checkout test")
    await bot.idle()
    await asyncio.sleep(1.2)
    bot.sandbox.projects["demo"].environments["test"]["approvalSettings"]["required"] = True
    await bot.click("Apply")
    await bot.idle()
    await asyncio.sleep(1.0)  # past the first window, inside the new one
    await bot.stack.runtime.changes.sweep()
    assert buttons(bot) == ["Request approval", "Cancel"], card_text(bot)
    assert "Expired" not in card_text(bot)


async def test_expiry_wording_for_short_windows(start_bot: StartBot) -> None:
    bot = await start_bot(flagops_confirm_ttl=1)
    await bot.command("/flag off new-checkout test")
    await bot.idle()
    await asyncio.sleep(1.2)
    await bot.stack.runtime.changes.sweep()
    assert "within 1 second" in card_text(bot)
    assert bot.slack.messages(RELEASES) and not bot.ephemeral_texts(ALICE)
