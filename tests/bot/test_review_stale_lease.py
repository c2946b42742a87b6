"""Regression from an outside review of the truth issue (see the test name)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update

from bot.persistence.db import changes as changes_table
from tests.bot.harness import buttons, click, run
from tests.bot.test_truth import fault, only_change


async def test_a_request_approval_long_after_a_405_is_not_taken_over_by_the_sweep(start_bot) -> None:
    bot = await start_bot(ld_timeout=5)
    await run(bot, "/flag off new-checkout test")
    bot.sandbox.projects["demo"].environments["test"]["approvalSettings"]["required"] = True
    await click(bot, "Apply")
    assert buttons(bot) == ["Request approval", "Cancel"]
    change = await only_change(bot)
    # A lease lives only while applying: the 405 ended it, so a Request approval pressed minutes
    # later (the card waits a whole confirm window) is not mistaken for an abandoned apply.
    assert change.lease_owner is None and change.lease_expires_at is None
    store = bot.stack.runtime.store
    async with store.engine.begin() as conn:  # as if Apply was pressed 10 minutes ago
        await conn.execute(
            update(changes_table)
            .where(changes_table.c.id == change.id)
            .values(updated_at=change.updated_at - timedelta(minutes=10))
        )
    fault(bot, hang=1.5, hang_every=1, methods=["POST"], paths=["/api/v2/projects"], apply_before_fault=True)
    assert (await bot.click("Request approval")).status_code == 200
    await asyncio.sleep(0.6)
    svc = bot.stack.runtime.changes
    await svc.sweep()  # the scheduler's ordinary tick, at the real time
    await bot.idle()
    fault(bot, hang=0.0, hang_every=0)
    final = await store.get_change(change.id)
    assert final is not None and final.state != "failed", "in-flight Request approval taken over by the sweep"
    assert len(bot.sandbox.approvals) == 1
