"""Fuzzed slash commands through signed HTTP: every one is answered plainly, none is an unhandled
error, no broadcast mention leaves the bot, and no request goes outside LaunchDarkly's API.

A few hundred commands run in CI; ``FLAGOPS_FUZZ_COMMANDS=10000 pytest -m fuzz`` runs the long
suite (its own budget, outside ``.ci/run``'s).
"""

from __future__ import annotations

import os
import random

import pytest

from tests.bot.harness import ALICE, Harness

VERBS = [
    "on",
    "off",
    "kill",
    "show",
    "list",
    "target",
    "untarget",
    "rollout",
    "serve",
    "add rule",
    "remove rule",
    "rename",
    "describe",
    "add tags",
    "remove tags",
    "archive",
    "restore",
    "delete",
    "prereq",
    "undo",
    "remind",
    "scheduled",
    "approvals",
    "config",
    "config project",
    "link",
    "help",
    "raw",
    "history",
    "eval",
    "variation",
    "default",
    "maintainer",
    "",
]
KEYS = [
    "new-checkout",
    "banner-color",
    "pricing-page",
    "x/../demo",
    "demo?x=1",
    "a#b",
    "a\x00b",
    "..",
    "Ünïcødé",
    "<!channel>",
    "<@U123>",
    "<#C1|c>",
    "<http://evil.example|click>",
    "-x",
    "a" * 300,
    "🚀",
    "' OR 1=1 --",
    "%2e%2e",
    "new-checkout\n",
    "",
]
WORDS = [
    "test",
    "production",
    "prod",
    "--project",
    "x/../demo",
    "true",
    "false",
    "->",
    "—>",
    "user:alice",
    "25%",
    "999999%",
    "-5%",
    "in",
    "999999 weeks",
    "at",
    "friday",
    "25:99",
    "if",
    "country",
    "in",
    "US,CA",
    "serve",
    "v2",
    "{",
    "}",
    "[",
    '"',
    "'",
    "\\",
    "<!here>",
    "@channel",
    "confirm",
    "--comment",
    "0",
    "1e309",
    "NaN",
    "\u202e",
    "\t",
]
CI_COMMANDS = 250


def command(rng: random.Random) -> str:
    parts = [rng.choice(VERBS), rng.choice(KEYS)]
    parts += [rng.choice(WORDS + KEYS) for _ in range(rng.randint(0, 6))]
    return " ".join(p for p in parts if p)


async def run_fuzz(bot: Harness, count: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        text = command(rng)
        answer = await bot.command(f"/flag {text}", user=ALICE)
        assert answer.status_code == 200, text
        await bot.idle()
    said = [t for t in bot.ephemeral_texts(ALICE)] + [m.text for m in bot.slack.all_messages()]
    unhandled = [t for t in said if "something went wrong on flagops' side" in t]
    assert not unhandled, unhandled[:3]
    for call in bot.slack.calls:
        sent = str(call.params)
        assert "<!channel" not in sent and "<!here" not in sent and "<!everyone" not in sent, sent[:300]
    for request in bot.ld_requests():
        path = request["path"]
        assert path.startswith("/api/v2/") and "/../" not in path and "\x00" not in path, path


async def test_fuzzed_commands_through_signed_http(bot: Harness) -> None:
    await run_fuzz(bot, CI_COMMANDS, seed=20261201)


@pytest.mark.fuzz
async def test_fuzzed_commands_long_run(bot: Harness) -> None:
    await run_fuzz(bot, int(os.environ.get("FLAGOPS_FUZZ_COMMANDS", "10000")), seed=random.randrange(2**32))
