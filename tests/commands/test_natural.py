"""Natural phrasings of the everyday commands, read deterministically."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands import parse, registry
from commands.demo import demo_flags
from commands.errors import CommandError
from commands.natural import complete_rollout, partial_rollout, rephrase
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
