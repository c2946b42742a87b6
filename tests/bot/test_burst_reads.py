"""A burst of commands costs LaunchDarkly what each command needs, and no more (issue 23): the
environment list and the requester's member and roles are cached, and when the cache is cold (or
has just expired) the commands in flight share one read instead of making one each. Each command
still reads its flag fresh and asks for its dry run."""

from __future__ import annotations

import asyncio

from tests.bot.harness import Harness


async def test_a_burst_of_commands_reads_environments_and_roles_once(bot: Harness) -> None:
    # Every LaunchDarkly answer takes 50 ms, so the eight commands' reads overlap.
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"latency": 0.05})
    channels = [f"C_BURST{i}" for i in range(8)]
    requests = [bot.command_request("/flag off new-checkout test", channel=c) for c in channels]
    responses = await asyncio.gather(*(bot.send(r) for r in requests))
    assert [r.status_code for r in responses] == [200] * 8
    await bot.idle()
    assert all(len(bot.slack.messages(c)) == 1 for c in channels)  # a card each
    paths = [str(r["path"]) for r in bot.ld_requests()]
    flag_reads = [p for p in paths if p == "/api/v2/flags/demo/new-checkout"]
    assert len(flag_reads) == 16  # each command: its fresh read and its dry run
    # One read per reader of the environments (the lifecycle's; the role check's), not one per command.
    assert sum(p.endswith("/environments") for p in paths) <= 2
    assert sum(p == "/api/v2/members" for p in paths) == 1
