"""Free text without quotes, backticked keys, a day before `at`, and partly redundant changes
(the pure command language; the bot's side is tests/bot/test_said_loosely.py)."""

from __future__ import annotations

import pytest

from commands import canonical, parse
from commands import intents as it
from commands.demo import demo_flags
from commands.errors import CommandError
from commands.intents import ChangeCommand, ReservedCommand
from commands.parse import account_verb_meant
from commands.redundant import drop_redundant
from commands.secrets import looks_like_secret


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
        ('off new-checkout test -m "rolled back" in 2 hours', "rolled back", ("in", "2 hours")),
        ('off new-checkout test -m "done" tomorrow at 9am', "done", ("at", "tomorrow at 9am")),
        ("off new-checkout test -m looked at logs", "looked at logs", None),
        ("off new-checkout test -m why -p demo in 2 hours", "why", ("in", "2 hours")),
        ("off new-checkout test -m <@U_BOB> asked", "<@U_BOB> asked", None),
        ("off new-checkout test -m <!channel> look", "<!channel> look", None),
        ("off new-checkout test -m <#C123|general> said so", "<#C123|general> said so", None),
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


@pytest.mark.parametrize(
    ("typed", "quoted"),
    [
        ("off new-checkout production -m will re-enable in 2 hours", '`-m "will re-enable" in 2 hours`'),
        ("off new-checkout production -m see INC-1 in 5m", '`-m "see INC-1" in 5m`'),
        ("off new-checkout production -m done tomorrow at 9am", '`-m "done" tomorrow at 9am`'),
        ("off new-checkout production -m meet at noon", '`-m "meet" at noon`'),
        ("rename banner-color Sale in 2 days", '`rename banner-color "Sale" in 2 days`'),
        ("describe banner-color Shown at checkout at 5pm", 'banner-color "Shown at checkout" at 5pm`'),
        ("rename rule pricing-page test 1 to Beta in 2 days", 'pricing-page test 1 to "Beta" in 2 days`'),
    ],
)
def test_a_schedule_right_after_unquoted_free_text_is_asked_not_guessed(typed: str, quoted: str) -> None:
    with pytest.raises(CommandError, match="Did you mean to schedule this") as raised:
        parse(typed)
    assert quoted in raised.value.message and "keeps it all as" in raised.value.message


def test_at_without_a_time_in_free_text_is_text_and_a_schedule_without_free_text_still_schedules() -> None:
    described = change("describe banner-color Shown to users at checkout")
    assert described.changes == (it.SetDescription(description="Shown to users at checkout"),)
    assert described.schedule is None
    assert change("describe banner-color Shown in 2 places").schedule is None
    off = change("off new-checkout production tomorrow at 9am")
    assert off.schedule is not None and (off.schedule.kind, off.schedule.text) == ("at", "tomorrow at 9am")
    quoted = change('rename banner-color "Sale" in 2 days')
    assert quoted.changes == (it.Rename(name="Sale"),) and quoted.schedule is not None
    assert change("rename banner-color Sale; on banner-color test in 2 hours").schedule is not None


def test_an_unquoted_comment_inside_unquoted_free_text_is_asked() -> None:
    with pytest.raises(CommandError, match="part of the new description") as raised:
        parse("describe banner-color Use -m for messages")
    assert '`describe banner-color "Use -m for messages"`' in raised.value.message
    assert '`describe banner-color "Use" -m for messages`' in raised.value.message
    commented = change('describe banner-color New text -m "QA asked"')
    assert commented.changes == (it.SetDescription(description="New text"),)
    assert commented.comment == "QA asked"


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


# --- what looks like a token; an account verb misspelt --------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "xoxb-1234-5678-abcdefghij",
        "xoxp-1234-SECRET",
        "xapp-1-A123-456-abcdef",
        "api-3f2a9c1e-7b4d-4e8a-9f10-2b3c4d5e6f70",
        "sdk-3f2a9c1e-7b4d-4e8a-9f10-2b3c4d5e6f70",
        "mob-3F2A9C1E-7B4D-4E8A-9F10-2B3C4D5E6F70",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "AKIAABCDEFGHIJKLMNOP",
        "0123456789abcdef0123456789abcdef",
        "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9",
        "target x test key=xoxb-999999-abcdef -> true",
    ],
)
def test_token_shapes_look_like_secrets(text: str) -> None:
    assert looks_like_secret(text)


@pytest.mark.parametrize(
    "text",
    [
        "off new-checkout production",
        "target new-checkout test 3f2a9c1e-7b4d-4e8a-9f10-2b3c4d5e6f70 -> true",
        "on api-rate-limit production",
        "on sdk-upgrade-banner test",
        "describe banner-color The api-v2 rollout for enterprise-customers-in-europe-west",
        "rename banner-color Enable-New-Checkout-Flow-For-Enterprise-Customers",
        "off new-checkout test -m rolled back: errors after deploy 2026-12-01T09:00:00Z",
        "target new-checkout test user:alice,bob,carol@example.com -> true",
        "link-patch my-flag-links-and-everything-else-here-1234 []",
    ],
)
def test_keys_and_text_do_not_look_like_secrets(text: str) -> None:
    assert not looks_like_secret(text)


@pytest.mark.parametrize("typed", ["link-acount", "linkaccount", "link_account", "unlink-acount", "login"])
def test_a_near_miss_of_an_account_verb_is_guessed_without_reading_what_follows(typed: str) -> None:
    with pytest.raises(CommandError, match="did you mean") as raised:
        parse(f'{typed} xoxp-1234-SECRET "unclosed')
    assert "SECRET" not in str(raised.value) and "unclosed" not in str(raised.value)
    assert raised.value.guess is not None and raised.value.guess[1] in ("link-account", "unlink-account")


def test_real_verbs_close_to_an_account_verb_are_not_near_misses() -> None:
    for word in ("link", "link-patch", "list", "unsubscribe"):
        assert account_verb_meant(word) is None


def test_an_unknown_command_is_clipped_when_quoted_back() -> None:
    with pytest.raises(CommandError) as raised:
        parse("x" * 2000)
    assert "x" * 61 not in raised.value.message and "…" in raised.value.message


def test_a_long_run_of_one_letter_is_not_a_secret() -> None:
    assert not looks_like_secret("history " + "a" * 300)
    assert not looks_like_secret("history " + "1" * 300)


def test_a_key_that_is_a_day_word_reads_back_before_a_schedule() -> None:
    command = change('maintainer b "TUESDAY" at 2026-01-05 09:00')
    assert change(canonical(command)) == command, "found by test_parse_properties"
