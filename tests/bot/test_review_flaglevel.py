"""Regression from an outside review of the truth issue (see the test name)."""

from __future__ import annotations

import asyncio

from tests.bot.harness import card_text, click, run
from tests.bot.test_truth import fault


async def test_a_flag_level_change_sent_with_an_environment_is_found_in_the_audit_log(start_bot) -> None:
    bot = await start_bot(ld_timeout=0.5)
    await run(bot, '/flag raw new-checkout test [{"kind":"addTags","values":["reviewtag"]}]')
    fault(bot, drop_every=1, methods=["PATCH"], apply_before_fault=True)
    await click(bot, "Apply")
    fault(bot, drop_every=0)
    await asyncio.sleep(2.0)
    await bot.idle()
    tags = bot.sandbox.projects["demo"].flags["new-checkout"].get("tags")
    assert "reviewtag" in tags
    assert "Not applied" not in card_text(bot), "landed, but the bot says Not applied"
