"""The parser: fixed points, options, several changes, the meanings of `in`, Slack markup, errors."""

from __future__ import annotations

import pytest

from commands import intents as it
from commands import parse
from commands.errors import CommandError
from commands.parse import parse_duration

T = it.VariationRef(text="true")


def change(text: str) -> it.ChangeCommand:
    cmd = parse(text)
    assert isinstance(cmd, it.ChangeCommand), cmd
    return cmd


def error(text: str) -> CommandError:
    with pytest.raises(CommandError) as info:
        parse(text)
    return info.value


# --- fixed points -------------------------------------------------------------------------------


def test_on_and_off() -> None:
    assert change("on new-checkout production") == it.ChangeCommand(
        flag="new-checkout", environment="production", changes=(it.TurnOn(),)
    )
    assert change("off new-checkout test").changes == (it.TurnOff(),)
    assert change("ON new-checkout test").changes == (it.TurnOn(),)  # caps lock under pressure


def test_show_list_help() -> None:
    assert parse("show new-checkout") == it.ShowCommand(flag="new-checkout")
    assert parse("show new-checkout production") == it.ShowCommand(
        flag="new-checkout", environment="production"
    )
    assert parse("show new-checkout in production") == it.ShowCommand(
        flag="new-checkout", environment="production"
    )
    assert parse("list") == it.ListCommand()
    assert parse("list checkout --tag web") == it.ListCommand(query="checkout", tag="web")
    assert parse("list new checkout -p other") == it.ListCommand(query="new checkout", project="other")
    assert parse("help") == it.HelpCommand()
    assert parse("help add rule") == it.HelpCommand(topic="add rule")


def test_environment_is_required_for_environment_changes_and_named_in_the_usage() -> None:
    err = error("serve new-checkout")
    assert "environment" in err.message
    assert err.usage is not None and err.usage.startswith("serve <flag> <env>")


def test_on_and_off_may_leave_the_environment_to_the_channel() -> None:
    cmd = change("on new-checkout")
    assert cmd.environment is None and cmd.environment_scoped
    assert change("off new-checkout -m why").environment is None


# --- options ------------------------------------------------------------------------------------


def test_options_anywhere() -> None:
    cmd = change(
        '-m "Launch day" on new-checkout --approval production --reviewers <@U0BOB|bob>, @carol -p demo'
    )
    assert cmd.comment == "Launch day"
    assert cmd.approval is True
    assert cmd.reviewers == ("<@U0BOB>", "@carol")
    assert cmd.project == "demo"
    assert cmd.environment == "production"


def test_env_option_replaces_the_positional_environment() -> None:
    assert change("on new-checkout --env test").environment == "test"
    assert change("on new-checkout -e=test").environment == "test"
    assert "unexpected" in error("on new-checkout test --env test").message


def test_reviewers_as_consecutive_mentions_and_emails() -> None:
    cmd = change("on new-checkout production --approval --reviewers <@U1> <@U2>,bob@example.com")
    assert cmd.reviewers == ("<@U1>", "<@U2>", "bob@example.com")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("on new-checkout test --frobnicate", "unknown option --frobnicate"),
        ("on new-checkout test -m", "needs a value"),
        ("on new-checkout test -m a -m b", "given twice"),
        ("on new-checkout test --tag x", "--tag is for `list`"),
        ("show new-checkout --approval", "does not take --approval"),
        ("on new-checkout test --reviewers", "at least one"),
    ],
)
def test_option_errors(text: str, message: str) -> None:
    assert message in error(text).message


# --- several changes ----------------------------------------------------------------------------


def test_several_changes_share_flag_and_environment() -> None:
    cmd = change("on new-checkout test; target user:alice -> true; off-variation false")
    assert cmd.changes == (
        it.TurnOn(),
        it.AddTargets(keys=("alice",), variation=T),
        it.SetOffVariation(variation=it.VariationRef(text="false")),
    )
    assert cmd.environment == "test"


def test_later_changes_may_repeat_flag_and_environment_but_not_change_them() -> None:
    cmd = change("on new-checkout test; off-variation new-checkout test false")
    assert cmd.kinds == ("turnFlagOn", "updateOffVariation")
    assert (
        "one environment"
        in error("on new-checkout test; off-variation new-checkout production false").message
    )


def test_a_flag_level_change_then_an_environment_change() -> None:
    cmd = change("add tags new-checkout beta; on test")
    assert cmd.environment == "test"
    assert cmd.kinds == ("addTags", "turnFlagOn")


def test_non_changes_do_not_combine() -> None:
    assert "cannot be combined" in error("on new-checkout test; show new-checkout").message
    assert "cannot be combined" in error("show new-checkout; on new-checkout test").message


# --- the three meanings of `in`, and schedules --------------------------------------------------


def test_in_before_the_environment() -> None:
    assert change("off new-checkout in production").environment == "production"


def test_in_as_a_clause_operator() -> None:
    cmd = change("add rule pricing-page test if country in US,CA serve v2")
    rule = cmd.changes[0]
    assert isinstance(rule, it.AddRule)
    assert rule.clauses == (it.ClauseSpec(attribute="country", op="in", values=("US", "CA")),)
    assert cmd.schedule is None


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        ("in 2 hours", "2 hours"),
        ("in 90m", "90m"),
        ("in 1h30m", "1h30m"),
        ("in a day", "a day"),
        ("in 3 days and 2 hours", "3 days and 2 hours"),
    ],
)
def test_in_as_a_duration(suffix: str, text: str) -> None:
    cmd = change(f"off new-checkout production {suffix}")
    assert cmd.schedule == it.Schedule(kind="in", text=text)
    assert cmd.environment == "production"


def test_all_three_ins_in_one_command() -> None:
    cmd = change("add rule pricing-page in test if country in US,CA serve v2 in 2 hours")
    assert cmd.environment == "test"
    assert cmd.schedule == it.Schedule(kind="in", text="2 hours")
    rule = cmd.changes[0]
    assert isinstance(rule, it.AddRule) and rule.clauses[0].values == ("US", "CA")


def test_a_trailing_duration_is_always_the_schedule() -> None:
    # The documented rule: `in 2h` at the end is a schedule, even after a clause attribute.
    err = error("add clause pricing-page test rule 1 build in 2h")
    assert "operator" in err.message
    cmd = change('add clause pricing-page test rule 1 build in "2h"')
    clause = cmd.changes[0]
    assert isinstance(clause, it.AddClauses) and clause.clauses[0].values == ("2h",)
    assert cmd.schedule is None


def test_in_then_a_duration_is_not_an_environment() -> None:
    cmd = change("off new-checkout in 2 hours")  # the channel's default environment, in 2 hours
    assert cmd.environment is None and cmd.schedule == it.Schedule(kind="in", text="2 hours")
    err = error("serve new-checkout in 2 hours")
    assert "environment" in err.message


def test_at_starts_the_schedule() -> None:
    cmd = change("off holiday-banner production at 2026-01-05 09:00 -m 'after the holidays'")
    assert cmd.schedule == it.Schedule(kind="at", text="2026-01-05 09:00")
    assert cmd.comment == "after the holidays"
    assert "needs a time" in error("off holiday-banner production at").message
    assert "very end" in error("off holiday-banner production at 5pm; on test").message


def test_parse_duration() -> None:
    assert parse_duration("2 hours") == 7200
    assert parse_duration("1h30m") == 5400
    assert parse_duration("a week") == 604800
    with pytest.raises(CommandError):
        parse_duration("tomorrow")


# --- Slack's text -------------------------------------------------------------------------------


def test_smart_quotes_and_escaped_arrows() -> None:
    cmd = change("rename rule pricing-page test “Beta testers” to ‘Early access’")
    assert cmd.changes == (
        it.RenameRule(rule=it.RuleRef(description="Beta testers"), description="Early access"),
    )
    assert change("target new-checkout test alice -&gt; true") == change(
        "target new-checkout test alice -> true"
    )
    assert change("target new-checkout test alice→true") == change("target new-checkout test alice -> true")


def test_slack_autolinks_read_as_typed() -> None:
    cmd = change("maintainer new-checkout <mailto:bob@example.com|bob@example.com>")
    assert cmd.changes == (it.MaintainerMember(member="bob@example.com"),)
    cmd = change("add rule pricing-page test if email ends-with @<http://example.com|example.com> serve v2")
    rule = cmd.changes[0]
    assert isinstance(rule, it.AddRule) and rule.clauses[0].values == ("@example.com",)


def test_escaped_comparison_operators() -> None:
    cmd = change("add rule pricing-page test if age &gt;= 18 and score &lt; 3 serve v2")
    rule = cmd.changes[0]
    assert isinstance(rule, it.AddRule)
    assert [(c.op, c.values) for c in rule.clauses] == [("greaterThanOrEqual", (18,)), ("lessThan", (3,))]


@pytest.mark.parametrize(
    "text",
    [
        "<@U123> on",
        "on <#C1|general> test",
        "on new-checkout <!here>",
        "target new-checkout test device:<@U1> -> true",
        "target new-checkout test &lt;@U1&gt; -> true",
    ],
)
def test_mentions_where_keys_belong_are_command_errors(text: str) -> None:
    error(text)


def test_a_mentioned_person_is_a_user_key_the_bot_fills_in() -> None:
    cmd = change("target new-checkout test <@U1|bob>,alice -> true")
    assert cmd.changes == (it.AddTargets(keys=("<@U1>", "alice"), variation=T),)
    assert change("target new-checkout test true <@U1>").changes == (
        it.AddTargets(keys=("<@U1>",), variation=T),
    )


# --- values, references, clauses ----------------------------------------------------------------


def test_variation_by_value_name_and_position() -> None:
    for text, ref in [
        ("true", T),
        ('"true"', it.VariationRef(text="true", quoted=True)),
        ("Enabled", it.VariationRef(text="Enabled")),
        ('"New pricing"', it.VariationRef(text="New pricing", quoted=True)),
        ("#2", it.VariationRef(index=2)),
    ]:
        assert change(f"serve new-checkout test {text}").changes == (
            it.SetFallthrough(serve=it.ServeVariation(variation=ref)),
        )
    assert "count from #1" in error("serve new-checkout test #0").message


def test_rollout_weights() -> None:
    cmd = change("rollout banner-color test 10% blue 90% green by email kind organization")
    assert cmd.changes == (
        it.SetFallthrough(
            serve=it.Rollout(
                weights=(
                    it.Weight(variation=it.VariationRef(text="blue"), weight=10000),
                    it.Weight(variation=it.VariationRef(text="green"), weight=90000),
                ),
                bucket_by="email",
                context_kind="organization",
            )
        ),
    )
    three = change("rollout banner-color test 33.333% blue 33.333% green 33.334% red").changes[0]
    assert isinstance(three, it.SetFallthrough) and isinstance(three.serve, it.Rollout)
    assert [w.weight for w in three.serve.weights] == [33333, 33333, 33334]
    assert "exactly 100%" in error("rollout banner-color test 10% blue 80% green").message
    assert "twice" in error("rollout banner-color test 50% blue 50% blue").message


def test_rules_by_position_and_description() -> None:
    assert change("remove rule pricing-page test 2").changes == (it.RemoveRule(rule=it.RuleRef(position=2)),)
    assert change('remove rule pricing-page test "Beta testers"').changes == (
        it.RemoveRule(rule=it.RuleRef(description="Beta testers")),
    )
    assert change('remove rule pricing-page test rule "2"').changes == (
        it.RemoveRule(rule=it.RuleRef(description="2")),
    )
    assert "count from 1" in error("remove rule pricing-page test 0").message


def test_clauses_with_every_operator_alias_and_not() -> None:
    cmd = change(
        "add rule pricing-page test if user.email not ends-with @example.com and organization.tier >= 2 "
        "and version semver< 2.0.0 and plan != free and not in segment beta and name matches ^a "
        "and created after 1735689600000 and score lessThan 2.5 and beta in true serve v2"
    )
    rule = cmd.changes[0]
    assert isinstance(rule, it.AddRule)
    assert rule.clauses == (
        it.ClauseSpec(
            attribute="email", op="endsWith", values=("@example.com",), negate=True, context_kind="user"
        ),
        it.ClauseSpec(attribute="tier", op="greaterThanOrEqual", values=(2,), context_kind="organization"),
        it.ClauseSpec(attribute="version", op="semVerLessThan", values=("2.0.0",)),
        it.ClauseSpec(attribute="plan", op="in", values=("free",), negate=True),
        it.ClauseSpec(attribute="segmentMatch", op="segmentMatch", values=("beta",), negate=True),
        it.ClauseSpec(attribute="name", op="matches", values=("^a",)),
        it.ClauseSpec(attribute="created", op="after", values=(1735689600000,)),
        it.ClauseSpec(attribute="score", op="lessThan", values=(2.5,)),
        it.ClauseSpec(attribute="beta", op="in", values=(True,)),
    )


def test_operators_are_case_sensitive() -> None:
    err = error("add rule pricing-page test if country IN US serve v2")
    assert 'unknown operator "IN", did you mean "in"?' in err.message
    assert err.usage is not None and err.usage.startswith("add rule")


def test_before_is_an_operator_inside_a_clause_and_a_section_after_it() -> None:
    cmd = change("add rule pricing-page test if created before 2025-01-01 serve v1 before rule 1")
    rule = cmd.changes[0]
    assert isinstance(rule, it.AddRule)
    assert rule.clauses[0].op == "before" and rule.before == it.RuleRef(position=1)


def test_typed_and_quoted_values() -> None:
    cmd = change('add values pricing-page test rule 2 clause country 02134,"7",7,-1.5,1e3,true,"true"')
    values = cmd.changes[0]
    assert isinstance(values, it.AddClauseValues)
    assert values.values == ("02134", "7", 7, -1.5, 1000.0, True, "true")


def test_target_keys_by_kind() -> None:
    cmd = change('target new-checkout test alice user:bob,carol device:d1 d2 "urn:x" -> Enabled')
    assert cmd.changes == (
        it.AddTargets(
            context_kind="user", keys=("alice", "bob", "carol"), variation=it.VariationRef(text="Enabled")
        ),
        it.AddTargets(
            context_kind="device", keys=("d1", "d2", "urn:x"), variation=it.VariationRef(text="Enabled")
        ),
    )


def test_delete_is_strict() -> None:
    assert change("delete holiday-banner confirm holiday-banner").changes == (it.Delete(),)
    for text in [
        "delete holiday-banner",
        "delete holiday-banner confirm",
        "delete holiday-banner confirm new-checkout",
    ]:
        assert "cannot be undone" in error(text).message


# --- verbs --------------------------------------------------------------------------------------


def test_unknown_verbs_suggest() -> None:
    assert 'did you mean "target"' in error("targte new-checkout test a -> true").message
    assert "add rule" in error("add new-checkout").message  # `add` what?
    assert error("").message.startswith("empty command")
    assert error("   ").message.startswith("empty command")


def test_hyphenated_verb_phrases() -> None:
    assert change("add-rule pricing-page test serve v2") == change("add rule pricing-page test serve v2")
    assert change("clear-user-targets new-checkout test true").kinds == ("clearUserTargets",)


def test_reserved_verbs() -> None:
    assert parse("approvals") == it.ReservedCommand(verb="approvals")
    assert parse("approvals new-checkout production") == it.ReservedCommand(
        verb="approvals", flag="new-checkout", environment="production"
    )
    assert parse('remind holiday-banner in 2 weeks "remove the holiday banner"') == it.ReservedCommand(
        verb="remind", flag="holiday-banner", args=("in", "2 weeks", "remove the holiday banner")
    )
    assert parse("remind holiday-banner production at jan 5 9am") == it.ReservedCommand(
        verb="remind", flag="holiday-banner", environment="production", args=("at", "jan 5 9am")
    )
    assert parse("reminders cancel r1") == it.ReservedCommand(verb="reminders", args=("cancel", "r1"))
    assert parse("scheduled cancel s1") == it.ReservedCommand(verb="scheduled", args=("cancel", "s1"))
    assert parse('link new-checkout "Launch thread"') == it.ReservedCommand(
        verb="link", flag="new-checkout", args=("Launch thread",)
    )
    assert parse('link edit new-checkout l1 title "Launch"') == it.ReservedCommand(
        verb="link edit", flag="new-checkout", args=("l1", "title", "Launch")
    )
    assert parse("link-account") == it.ReservedCommand(verb="link-account")
    assert parse("config project demo") == it.ReservedCommand(verb="config", args=("project", "demo"))
    assert parse("undo") == it.ReservedCommand(verb="undo")
    assert parse("undo c42") == it.ReservedCommand(verb="undo", args=("c42",))
    assert "not a duration" in error("remind holiday-banner in soon").message


@pytest.mark.parametrize(
    "text",
    [
        "link-account api-0123-secret",
        'link-account "api-0123-secret',  # an unclosed quote: the lexer would quote it back
        "link-account api-0123-secret; off new-checkout test",
        "link-account --token api-0123-secret",
        "--project demo link-account api-0123-secret",
        "unlink-account api-0123-secret",
    ],
)
def test_account_verbs_drop_what_follows_unread(text: str) -> None:
    command = parse(text)
    assert isinstance(command, it.ReservedCommand) and command.args == ("extra-ignored",)
    assert command.verb == ("unlink-account" if "unlink" in text else "link-account")
    assert "0123-secret" not in repr(command)


# --- raw escape hatches -------------------------------------------------------------------------


def test_raw_semantic_instructions() -> None:
    cmd = parse('raw new-checkout test [{"kind": "turnFlagOn"}] -m "raw"')
    assert cmd == it.RawCommand(
        flag="new-checkout",
        environment="test",
        shape="semantic",
        body={"environmentKey": "test", "comment": "raw", "instructions": [{"kind": "turnFlagOn"}]},
    )
    assert "environmentKey is required" in error('raw new-checkout [{"kind": "turnFlagOn"}]').message
    assert (
        "variationId: is required"
        in error('raw new-checkout test [{"kind": "addTargets", "values": ["a"]}]').message
    )
    assert "invalid JSON" in error("raw new-checkout test [{kind: 1}]").message


def test_raw_patches() -> None:
    op = '[{"op": "replace", "path": "/description", "value": "New"}]'
    assert parse(f"json-patch new-checkout {op} -m why") == it.RawCommand(
        flag="new-checkout",
        shape="json-patch",
        body={"patch": [{"op": "replace", "path": "/description", "value": "New"}], "comment": "why"},
    )
    assert parse('merge-patch new-checkout {"description": "New"}') == it.RawCommand(
        flag="new-checkout", shape="merge-patch", body={"description": "New"}
    )
    link = parse(f"link-patch new-checkout l1 {op}")
    assert isinstance(link, it.RawCommand) and link.link_id == "l1" and link.shape == "link-patch"
    project = parse('project-patch [{"op": "add", "path": "/tags/-", "value": "x"}] -p demo')
    assert isinstance(project, it.RawCommand) and project.project == "demo" and project.flag is None
    assert "needs a value" in error('json-patch new-checkout [{"op": "add", "path": "/x"}]').message


def test_json_nesting_is_bounded() -> None:
    assert "nested" in error("raw new-checkout test " + "[" * 5000).message
