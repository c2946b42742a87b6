"""Help and examples come from the registry the parser reads: every example parses, resolves
against the demo flags and applies with the engine; every kind has an example."""

from __future__ import annotations

import pytest

from commands import ChangeCommand, CommandError, examples, help_text, parse, resolve
from commands.demo import DEMO_ENVIRONMENTS, demo_flags
from commands.engine import apply
from commands.errors import EngineRefusal
from commands.help import topics
from commands.instructions import INSTRUCTION_MODELS
from commands.registry import VERB_INDEX, VERBS, Example
from commands.verbs import CHANGE_VERBS

FLAGS = demo_flags()
EXAMPLES = examples()
# Examples that show LaunchDarkly refusing, on purpose (the reason is in the example's description).
REFUSED = {"remove variation banner-color red": "in use"}


def test_every_kind_has_an_example() -> None:
    assert {e.kind for e in EXAMPLES if e.kind} == set(INSTRUCTION_MODELS)


def test_every_verb_has_an_example_and_a_grammar() -> None:
    for verb in VERBS:
        assert verb.examples, verb.name
    change_verbs = {v.name for v in VERBS if v.scope != "none"}
    assert change_verbs == set(CHANGE_VERBS)
    assert {k for v in VERBS for k in v.kinds} == set(INSTRUCTION_MODELS)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.text[:50])
def test_example_parses_resolves_and_applies(example: Example) -> None:
    cmd = parse(example.text)
    if example.kind is None:
        assert not isinstance(cmd, ChangeCommand)
        return
    assert isinstance(cmd, ChangeCommand)
    assert example.kind in cmd.kinds
    assert cmd.flag in FLAGS and (cmd.environment is None or cmd.environment in DEMO_ENVIRONMENTS)
    patch = resolve(cmd, FLAGS[cmd.flag], flags=FLAGS)
    if example.text in REFUSED:
        with pytest.raises(EngineRefusal, match=REFUSED[example.text]):
            apply(FLAGS[cmd.flag], patch, other_flags=FLAGS)
    else:
        apply(FLAGS[cmd.flag], patch, other_flags=FLAGS)


def test_errors_carry_the_usage_from_the_registry() -> None:
    for name in ("on", "add rule", "target", "delete"):
        with pytest.raises(CommandError) as info:
            parse(f"{name} new-checkout test ???? !!!!")
        assert info.value.usage == VERB_INDEX[name].syntax


def test_help_on_every_verb_shows_its_syntax_and_examples() -> None:
    for verb in VERBS:
        text = help_text(verb.name)
        assert verb.syntax in text
        assert all(e.text in text for e in verb.examples)
    assert help_text("add-rule") == help_text("add rule") == help_text("Add Rule")
    assert help_text("rollout") == help_text("serve")


def test_help_fits_a_screen_and_says_where_the_rest_is() -> None:
    overview = help_text()
    assert len(overview.splitlines()) <= 23, "25 lines with the policy line the bot puts above it"
    assert "`help all`" in overview and "`help <verb>`" in overview and "README" in overview
    for name in ("on", "off", "show", "target", "undo", "approvals"):
        assert f"`{VERB_INDEX[name].examples[0].text}`" in overview, name


def test_help_topics() -> None:
    overview = help_text("all")
    assert all(v.syntax in overview for v in VERBS)
    assert "updateRuleTrackEvents" in help_text("updateRuleTrackEvents")
    assert "segmentMatch" in help_text("clauses")
    assert "three meanings" in help_text("in")
    assert "`target <flag>" in help_text("targets")
    assert help_text("tragets").startswith("No help on `tragets`. Did you mean `help targets`")
    for topic in topics():
        assert not help_text(topic).startswith("No help"), topic
