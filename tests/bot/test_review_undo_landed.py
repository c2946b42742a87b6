"""Regression from an outside review of the truth issue (see the test name)."""

from __future__ import annotations

import asyncio

from tests.bot.harness import card_text, click, run
from tests.bot.test_truth import fault, someone_else_targets, targeted


async def test_undo_after_a_late_landing_keeps_someone_elses_target(start_bot) -> None:
    bot = await start_bot(ld_timeout=0.3, flagops_settle_window=2.0)
    await run(bot, "/flag target new-checkout test user:late-user -> true")
    fault(bot, hang=1.0, hang_every=1, methods=["PATCH"], apply_before_fault=False)
    assert (await bot.click("Apply")).status_code == 200
    await asyncio.sleep(0.8)
    fault(bot, hang=0.0, hang_every=0)
    await asyncio.sleep(0.6)  # our write has landed by now; the card waits for the settle time
    await someone_else_targets(bot, "bobs-user")  # Bob, in LaunchDarkly's UI
    await bot.idle()
    assert "Applied" in card_text(bot)
    assert {"late-user", "bobs-user"} <= targeted(bot)
    await click(bot, "Undo")
    card = bot.card()
    # apply the undo wherever its card is
    last = bot.thread()[-1] if bot.thread() else card
    await bot.click("Apply", message=last if last.buttons else card)
    await bot.idle()
    assert "bobs-user" in targeted(bot), "undo took away Bob's target"
