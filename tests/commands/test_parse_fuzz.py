"""Fuzzed commands through the whole pure core: parse, canonical text, resolve against the demo
flags, describe, the engine's apply, and the schedule's time. Every command ends in a command or
in one of the errors the bot answers plainly (CommandError, EngineRefusal); nothing else escapes.

CI runs a few thousand (hypothesis, with shrinking); ``pytest -m fuzz`` runs 100,000 random ones
(``FLAGOPS_FUZZ_PARSER_COMMANDS``), outside ``.ci/run``'s budget.
"""

from __future__ import annotations

import contextlib
import os
import random
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.scheduling.schedule_time import resolve_when
from commands import canonical, describe, parse, resolve
from commands.demo import demo_flags
from commands.engine import apply
from commands.errors import CommandError, EngineRefusal
from commands.intents import ChangeCommand
from tests.fuzzing import KEYS, VERBS, WORDS, command

FLAGS = demo_flags()
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def through_the_core(text: str) -> None:
    """Run ``text`` as far as the pure core goes; only the plainly answered errors may stop it."""
    try:
        cmd = parse(text)
    except CommandError as error:
        assert error.message.strip(), text
        return
    if not isinstance(cmd, ChangeCommand):
        return
    canonical(cmd)
    if cmd.schedule is not None:
        with contextlib.suppress(CommandError):
            resolve_when(cmd.schedule.kind, cmd.schedule.text, now=NOW, tz="Europe/Berlin")
    flag = FLAGS.get(cmd.flag) or FLAGS["new-checkout"]
    try:
        patch = resolve(cmd, flag, flags=FLAGS)
        describe(patch, flag, flags=FLAGS)
        apply(flag, patch, other_flags=FLAGS)
    except (CommandError, EngineRefusal) as error:
        assert error.message.strip(), text


_word = st.sampled_from(WORDS + KEYS) | st.text(max_size=8)
_commands = st.tuples(st.sampled_from(VERBS), st.sampled_from(KEYS), st.lists(_word, max_size=8)).map(
    lambda t: " ".join(p for p in (t[0], t[1], *t[2]) if p)
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_commands)
def test_fuzzed_commands_end_in_a_command_or_a_plain_error(text: str) -> None:
    through_the_core(text)


@pytest.mark.parametrize(
    "text",
    [
        "remind new-checkout in 999999 weeks",
        "off new-checkout test in 99999999999999999999 days",
        "off new-checkout test in 1e309 hours",
        "on new-checkout test at 0000-01-01",
        "off new-checkout test at 2026-02-30 09:00",
        "rename new-checkout " + "a" * 5000,
        "off a\x00b test",
        "serve banner-color test 999999% blue",
        "remove rule pricing-page test #99999999999999999999",
    ],
)
def test_the_crashes_fuzzing_once_found_are_plain_answers(text: str) -> None:
    through_the_core(text)


@pytest.mark.fuzz
def test_one_hundred_thousand_fuzzed_commands() -> None:
    count = int(os.environ.get("FLAGOPS_FUZZ_PARSER_COMMANDS", "100000"))
    seed = int(os.environ.get("FLAGOPS_FUZZ_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    for _ in range(count):
        text = command(rng)
        try:
            through_the_core(text)
        except AssertionError:
            raise
        except Exception as error:
            raise AssertionError(f"seed {seed}: {text!r} raised {error!r}") from error
