"""Benchmarks (not tests): how fast the pure core is, and how fast the bot acks Slack.

    .venv/bin/python bench/run.py

Prints one line per measurement. Slack needs an ack within 3 s; the ack latency here is measured
end to end over loopback (signed request in, HTTP 200 out) while the bot goes on with the
preview after the ack.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from commands import describe, examples, parse, resolve
from commands.demo import demo_flags
from commands.engine import apply
from commands.errors import CommandError, EngineRefusal
from commands.intents import ChangeCommand


def bench_core(rounds: int = 20) -> None:
    flags = demo_flags()
    commands = [parse(e.text) for e in examples()]
    changes = [c for c in commands if isinstance(c, ChangeCommand) and c.flag in flags]
    start = time.perf_counter()
    for _ in range(rounds):
        for e in examples():
            parse(e.text)
    per_parse = (time.perf_counter() - start) / (rounds * len(examples()))
    start = time.perf_counter()
    applied = 0
    for _ in range(rounds):
        for command in changes:
            flag = flags[command.flag]
            try:
                patch = resolve(command, flag, flags=flags)
                describe(patch, flag)
                apply(flag, patch, other_flags=flags)
                applied += 1
            except (CommandError, EngineRefusal):
                continue  # e.g. an example that refers to a flag state the demo lacks
    per_change = (time.perf_counter() - start) / max(applied, 1)
    print(f"parse: {per_parse * 1e6:.0f} µs per command ({len(examples())} examples)")
    print(f"resolve + describe + engine apply: {per_change * 1e6:.0f} µs per change ({applied} runs)")


async def bench_ack(samples: int = 30) -> None:
    from tests.bot.harness import Harness

    bot = await Harness.start()
    try:
        latencies = []
        for _ in range(samples):
            request = bot.command_request("/flag off new-checkout test")
            start = time.perf_counter()
            response = await bot.send(request)
            latencies.append(time.perf_counter() - start)
            assert response.status_code == 200
            await bot.idle()
        latencies.sort()
        p50 = statistics.median(latencies)
        p95 = latencies[int(len(latencies) * 0.95) - 1]
        print(f"slash command ack: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms ({samples} commands)")
    finally:
        await bot.stop()


if __name__ == "__main__":
    bench_core()
    asyncio.run(bench_ack())
