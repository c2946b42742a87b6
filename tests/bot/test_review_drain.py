"""Regression from an outside review of the truth issue (see the test name)."""

from __future__ import annotations

import asyncio
import time

from tests.bot.harness import run
from tests.bot.test_truth import fault


async def test_a_drain_does_not_wait_out_a_settle_timer_made_during_it(start_bot) -> None:
    bot = await start_bot(ld_timeout=2, flagops_settle_window=12, flagops_shutdown_grace=5)
    await run(bot, "/flag off new-checkout test")
    fault(bot, latency=0.5, error_every=1, error_status=500, methods=["PATCH"])
    assert (await bot.click("Apply")).status_code == 200
    await asyncio.sleep(0.05)
    t = time.monotonic()
    await bot.stack.runtime.close()
    took = time.monotonic() - t
    assert took < 5 + 1, f"drain took {took:.1f}s, beyond the 5 s grace"
