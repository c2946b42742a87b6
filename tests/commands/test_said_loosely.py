"""Free text without quotes, backticked keys, a day before `at`, and partly redundant changes
(the pure command language; the bot's side is tests/bot/test_said_loosely.py)."""

from __future__ import annotations

import pytest

from commands import canonical, parse
from commands import intents as it
from commands.demo import demo_flags
from commands.errors import CommandError
from commands.intents import ChangeCommand, ReservedCommand
from commands.redundant import drop_redundant


def change(text: str) -> ChangeCommand:
    command = parse(text)
    assert isinstance(command, ChangeCommand)
    return command


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("rename banner-color Bännér cölör 🎨", "Bännér cölör 🎨"),
        ('rename banner-color "Quoted  as typed"', "Quoted  as typed"),
        ("rename banner-color Bob's   flag, really", "Bob's flag, really"),
        ("rename banner-color &lt;!channel&gt; &amp; co", "<!channel> & co"),
        ("rename banner-color `code` name", "`code` name"),
    ],
)
def test_a_name_is_the_rest_of_the_line(typed: str, name: str) -> None:
    assert change(typed).changes == (it.Rename(name=name),)
    assert change(canonical(change(typed))) == change(typed), "the canonical form reads back"


def test_descriptions_and_rule_descriptions_are_the_rest_of_the_line() -> None:
    assert change("describe banner-color The colour of the banner 🎨").changes == (
        it.SetDescription(description="The colour of the banner 🎨"),
    )
    renamed = change("rename rule pricing-page test 1 to Beta testers, all of them")
    assert renamed.changes == (
        it.RenameRule(rule=it.RuleRef(position=1), description="Beta testers, all of them"),
    )


def test_free_text_with_a_control_character_is_refused() -> None:
    with pytest.raises(CommandError, match="control character"):
        parse("rename banner-color a\x00b")
    with pytest.raises(CommandError, match="control character"):
        parse("off new-checkout test -m a\x00b c")


@pytest.mark.parametrize(
    ("typed", "comment", "schedule"),
    [
        ("off new-checkout test -m rolled back: errors 🎉", "rolled back: errors 🎉", None),
        ("off new-checkout test -m rolled back in 2 hours", "rolled back", ("in", "2 hours")),
        ("off new-checkout test -m done tomorrow at 9am", "done", ("at", "tomorrow at 9am")),
        ('off new-checkout test -m "quoted" ', "quoted", None),
        ("off new-checkout test -m why not -p demo", "why not", None),
    ],
)
def test_a_comment_runs_to_the_next_option_or_schedule(
    typed: str, comment: str, schedule: tuple[str, str] | None
) -> None:
    command = change(typed)
    assert command.comment == comment
    assert (
        (command.schedule.kind, command.schedule.text) == schedule if command.schedule else schedule is None
    )


def test_a_comment_never_swallows_an_environment_silently() -> None:
    for typed in ("off new-checkout -m QA says so production", "off new-checkout -m QA production"):
        with pytest.raises(CommandError, match="say the environment before it"):
            parse(typed)
    assert change('off new-checkout -m "QA" production').environment == "production"


def test_a_day_before_at_is_part_of_the_time_and_backticks_are_not_part_of_keys() -> None:
    command = change("off `new-checkout` production tomorrow at 9am")
    assert command.flag == "new-checkout" and command.environment == "production"
    assert command.schedule is not None and command.schedule.text == "tomorrow at 9am"
    assert change("```off new-checkout test```").environment == "test"


@pytest.mark.parametrize(
    ("typed", "args"),
    [
        ("remind holiday-banner in 2 weeks remove this flag", ("in", "2 weeks", "remove this flag")),
        ("remind holiday-banner test in a day and 3 hours go 🎄", ("in", "a day and 3 hours", "go 🎄")),
        ('remind holiday-banner in 2 weeks "quoted"', ("in", "2 weeks", "quoted")),
        ("remind holiday-banner in 2 weeks", ("in", "2 weeks")),
    ],
)
def test_reminder_text_after_a_duration_needs_no_quotes(typed: str, args: tuple[str, ...]) -> None:
    command = parse(typed)
    assert isinstance(command, ReservedCommand) and command.args == args


def test_a_reminder_without_a_duration_is_still_refused() -> None:
    with pytest.raises(CommandError, match="not a duration"):
        parse("remind holiday-banner in soon please")


# --- partly redundant changes ---------------------------------------------------------------------

FLAGS = demo_flags()


@pytest.mark.parametrize(
    ("typed", "kept", "notes"),
    [
        ("target new-checkout test alice,carol -> true", "carol -> true", ["`alice` is already served true"]),
        ("untarget new-checkout test alice,zed", "alice", ["`zed` is not targeted"]),
        (
            "target new-checkout test device:ios-qa-1,ios-2 -> true",
            "device:ios-2 -> true",
            ["`device:ios-qa-1`"],
        ),
        ("add tags new-checkout web,mobile", "mobile", ["`web` is already on the flag"]),
        ("remove tags new-checkout web,nope", "web", ["`nope` is not on the flag"]),
    ],
)
def test_the_redundant_part_is_left_out_and_said(typed: str, kept: str, notes: list[str]) -> None:
    reduced, said = drop_redundant(change(typed), FLAGS["new-checkout"])
    assert reduced is not None and canonical(reduced).endswith(kept)
    assert len(said) == len(notes) and all(n in s for n, s in zip(notes, said, strict=True))


def test_clauses_values_and_rules_already_there() -> None:
    pricing = FLAGS["pricing-page"]  # test: rule 1 "Beta testers" serves v2 to segment beta-testers
    reduced, said = drop_redundant(
        change("add clause pricing-page test rule 1 if in segment beta-testers and country in US"), pricing
    )
    assert reduced is not None and canonical(reduced).endswith("if country in US")
    assert "already in rule 1" in said[0]
    reduced, said = drop_redundant(
        change("add values pricing-page test rule 1 clause 1 beta-testers,x"), pricing
    )
    assert reduced is not None and canonical(reduced).endswith(" x") and said
    reduced, said = drop_redundant(
        change("add rule pricing-page test if in segment beta-testers serve v2"), pricing
    )
    assert reduced is None and "rule 1" in said[0]
    for kept in (
        "add rule pricing-page test if in segment beta-testers serve v1",
        "add rule pricing-page test if in segment beta-testers serve v2 before rule 1",
    ):
        assert drop_redundant(change(kept), pricing) == (change(kept), [])


def test_a_command_mixing_kinds_is_left_whole() -> None:
    mixed = change("untarget new-checkout test alice; target new-checkout test alice -> true")
    assert drop_redundant(mixed, FLAGS["new-checkout"]) == (mixed, [])
    nothing = change("target new-checkout test alice,bob -> true")
    reduced, said = drop_redundant(nothing, FLAGS["new-checkout"])
    assert reduced is None and said == ["`alice`, `bob` are already served true"]
