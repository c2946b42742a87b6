"""Natural phrasings of the everyday commands, read deterministically."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands import parse, registry
from commands.demo import demo_flags
from commands.errors import CommandError
from commands.natural import complete_ramp_step, complete_rollout, partial_rollout, ramp_steps, rephrase
from commands.parse import MEANT


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("turn off new-checkout in production", "off new-checkout production"),
        ("Turn OFF the new-checkout flag for test", "off new-checkout test"),
        ("switch new-checkout on in test", "on new-checkout test"),
        ("please turn new-checkout on in test!", "on new-checkout test"),
        ("new-checkout off", "off new-checkout"),
        ("new-checkout off production", "off new-checkout production"),
        ("new-checkout on in test", "on new-checkout test"),
        ("kill new-checkout", "off new-checkout"),
        ("kill switch new-checkout prod", "off new-checkout prod"),
        ("disable banner-color for test", "off banner-color test"),
        ("enable new-checkout in the production environment", "on new-checkout production"),
        ("off new-checkout in production", "off new-checkout production"),
        ("what is new-checkout", "show new-checkout"),
        ("what's new-checkout in prod?", "show new-checkout prod"),
        ("status new-checkout", "show new-checkout"),
        ("get new-checkout test", "show new-checkout test"),
        ("info new-checkout", "show new-checkout"),
    ],
)
def test_a_phrasing_becomes_the_canonical_command(typed: str, canonical: str) -> None:
    assert rephrase(typed) == canonical
    parse(canonical)  # and the grammar reads it


@pytest.mark.parametrize(
    "typed",
    [
        "turn off the",
        "turn off the flag",
        "rename new-checkout New name",
        "target new-checkout test alice",
        "kill",
        "on",
        "new-checkout",
        "what is the",
        "x" * 300,
        "",
    ],
)
def test_what_is_not_a_phrasing_is_left_to_the_grammar(typed: str) -> None:
    assert rephrase(typed) is None


@given(st.text(max_size=120))
def test_any_text_is_read_or_left_never_a_crash(text: str) -> None:
    phrased = rephrase(text)
    if phrased is not None:
        assert phrased.split()[0] in {"on", "off", "show"}


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("rollout new-checkout prod 25%", ("new-checkout", "prod", 25.0, None)),
        ("rollout new-checkout test 12.5% false", ("new-checkout", "test", 12.5, "false")),
        ("roll out new-checkout to 25% in production", ("new-checkout", "production", 25.0, None)),
        ("roll out banner-color to 10% of blue in test", ("banner-color", "test", 10.0, "blue")),
        ("rollout new-checkout test 0%", None),
        ("rollout new-checkout test 100%", None),
        ("rollout new-checkout test 99.9999%", None),
        ("rollout new-checkout test 33.333%", ("new-checkout", "test", 33.333, None)),
        ("rollout new-checkout test 25% true 75% false", None),
    ],
)
def test_one_percentage_rollouts_are_read(typed: str, read: object) -> None:
    assert partial_rollout(typed) == read


def test_a_one_percentage_rollout_is_completed_from_the_flag() -> None:
    flags = demo_flags()
    assert complete_rollout(flags["new-checkout"], "test", 25, None) == (
        "rollout new-checkout test 25% true 75% false"
    )
    assert (
        complete_rollout(flags["pricing-page"], "test", 10, "v2") == "rollout pricing-page test 10% #1 90% #2"
    )
    assert complete_rollout(flags["banner-color"], "test", 25, "red") is None, "a rollout serves now"
    assert complete_rollout(flags["pricing-page"], "test", 10, "v1") is None, "already all of it"
    assert complete_rollout(flags["pricing-page"], "test", 10, "nope") is None


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("search checkout", '"list"'),
        ("get new-checkout", '"show"'),
        ("toggle x", '"on" or "off"'),
        ("ramp x", '"rollout"'),
    ],
)
def test_an_unknown_verb_suggests_the_verb_people_mean(typed: str, meant: str) -> None:
    with pytest.raises(CommandError) as refused:
        parse(typed)
    assert f"did you mean {meant}?" in refused.value.message


def test_every_meant_verb_is_a_verb() -> None:
    verbs = {verb for meant in MEANT.values() for verb in meant.split("|")}
    assert verbs <= set(registry.VERB_INDEX)


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        (
            "ramp new-checkout prod 5% 25% 50% 100% every 30m",
            ("new-checkout", "prod", (5, 25, 50, 100), 1800, None),
        ),
        (
            "ramp new-checkout prod 5 25 50 100 every 30 minutes",
            ("new-checkout", "prod", (5, 25, 50, 100), 1800, None),
        ),
        (
            "ramp new-checkout in prod 5%, 25% then 100% every 1h",
            ("new-checkout", "prod", (5, 25, 100), 3600, None),
        ),
        (
            "ramp banner-color test 10% 50% 100% blue every 2 hours",
            ("banner-color", "test", (10, 50, 100), 7200, "blue"),
        ),
        (
            "ramp banner-color test 10% 100% every 1h30m of blue",
            ("banner-color", "test", (10, 100), 5400, "blue"),
        ),
        ("ramp new-checkout test 12.5% 100% every hour", ("new-checkout", "test", (12.5, 100), 3600, None)),
    ],
)
def test_a_ramp_line_is_read(typed: str, read: tuple[object, ...]) -> None:
    assert ramp_steps(typed) == read


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("ramp x test 50% 25% every 1h", "must go up"),
        ("ramp x test 50% 50% every 1h", "must go up"),
        ("ramp x test 5% 101% every 1h", "at most 100"),
        ("ramp x test 0% 100% every 1h", "above 0"),
        ("ramp x test 0.0001% every 1h", "thousandths"),
        ("ramp x test 5% every 4m", "at least 5 minutes"),
        ("ramp x test 5% every 2w", "at most 7 days"),
        ("ramp x test " + " ".join(str(n) for n in range(1, 12)) + " every 1h", "at most 10 steps"),
        ("ramp x test every 1h", "`every`"),
        ("ramp x test 5% 100%", "`every`"),
        ("ramp x test 5% blue every 1h red", "once"),
    ],
)
def test_a_ramp_that_cannot_be_says_why(typed: str, why: str) -> None:
    with pytest.raises(CommandError) as refused:
        ramp_steps(typed)
    assert why in refused.value.message


def test_not_a_ramp_is_left_to_the_rest() -> None:
    assert ramp_steps("ramp to 25%") is None and ramp_steps("rollout x test 25%") is None
    assert ramp_steps("ramp") is None


def test_a_ramp_step_is_a_rollout_or_at_100_the_variation_served_fully() -> None:
    flags = demo_flags()
    assert complete_ramp_step(flags["new-checkout"], "test", 5, None) == (
        "rollout new-checkout test 5% true 95% false"
    )
    assert complete_ramp_step(flags["new-checkout"], "test", 100, None) == "serve new-checkout test true"
    assert complete_ramp_step(flags["new-checkout"], "test", 100, "false") == "serve new-checkout test false"
    served = complete_ramp_step(flags["pricing-page"], "test", 100, "New pricing")
    assert served == "serve pricing-page test #1"
    assert complete_ramp_step(flags["pricing-page"], "test", 100, None) is None, "which variation?"
    assert complete_ramp_step(flags["pricing-page"], "test", 100, "nope") is None
    for line in ("serve new-checkout test true", "serve pricing-page test #1"):
        parse(line)


@given(st.text(max_size=300))
def test_any_text_is_a_ramp_or_not_or_a_plain_refusal(text: str) -> None:
    with contextlib.suppress(CommandError):  # a refusal is an answer; anything else is a bug
        ramp_steps("ramp " + text)
