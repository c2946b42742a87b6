"""``history`` and ``eval``: what the parser makes of them, and the usage a bad context gets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from commands import CommandError, ReservedCommand, parse
from commands.contexts import context_of, context_text, individual_contexts
from commands.registry import verb

EVAL_USAGE = verb("eval").usage


def context(text: str) -> dict[str, Any]:
    command = parse(text)
    assert isinstance(command, ReservedCommand) and command.verb == "eval"
    return context_of(command.args[0])


def test_history_with_and_without_an_environment() -> None:
    assert parse("history new-checkout") == ReservedCommand(verb="history", flag="new-checkout")
    assert parse("history new-checkout production") == ReservedCommand(
        verb="history", flag="new-checkout", environment="production"
    )
    assert parse("log new-checkout in test -p demo") == ReservedCommand(
        verb="history", flag="new-checkout", environment="test", project="demo"
    )
    assert parse("recent new-checkout").verb == "history"  # type: ignore[union-attr]
    for bad in ["history", "history new-checkout test extra", "history a/b"]:
        with pytest.raises(CommandError) as info:
            parse(bad)
        assert info.value.usage == verb("history").usage


def test_eval_reads_a_context_with_typed_attributes() -> None:
    command = parse("eval new-checkout test user:alice")
    assert command == ReservedCommand(
        verb="eval", flag="new-checkout", environment="test", args=('{"kind":"user","key":"alice"}',)
    )
    assert context(
        "evaluate pricing-page production user:jo country=DE plan=pro tier=3 beta=true score=1.5"
    ) == {
        "kind": "user",
        "key": "jo",
        "country": "DE",
        "plan": "pro",
        "tier": 3,
        "beta": True,
        "score": 1.5,
    }
    # No kind: a user. Quoted values keep text; lists; a quoted key.
    assert context('eval x test alice tier="3" groups=a,b,7 name="Ada Lovelace"') == {
        "kind": "user",
        "key": "alice",
        "tier": "3",
        "groups": ["a", "b", 7],
        "name": "Ada Lovelace",
    }
    assert context('eval x test user:"Ada L" city= "New York"') == {
        "kind": "user",
        "key": "Ada L",
        "city": "New York",
    }
    assert context("eval x test org:acme tier=3") == {"kind": "org", "key": "acme", "tier": 3}
    assert context("eval x test user:42") == {"kind": "user", "key": "42"}


def test_eval_reads_a_multi_context() -> None:
    body = context("eval pricing-page test user:sam email=sam@example.com organization:acme tier=3")
    assert body == {
        "kind": "multi",
        "user": {"key": "sam", "email": "sam@example.com"},
        "organization": {"key": "acme", "tier": 3},
    }
    contexts = individual_contexts(body)
    assert context_text(contexts) == "user sam (email=sam@example.com) + organization acme (tier=3)"
    # Slack's auto-link of an email is the email that was typed.
    assert (
        context("eval x test user:sam email=<mailto:sam@example.com|sam@example.com>")["email"]
        == "sam@example.com"
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("eval new-checkout test", "whose evaluation?"),
        ("eval new-checkout", "missing the environment"),
        ("eval new-checkout user:alice", "expected an environment key"),
        ("eval new-checkout test country=US", "start the context with its key"),
        ("eval new-checkout test user:", "missing the key of the user context"),
        ("eval new-checkout test user:alice country", 'got "country"'),
        ("eval new-checkout test user:alice user:bob", "two user contexts"),
        ("eval new-checkout test user:alice key=bob", "`key` is not an attribute you set"),
        ("eval new-checkout test user:alice kind=org", "`kind` is not an attribute you set"),
        ("eval new-checkout test user:alice a=1 a=2", "`a` given twice"),
        ("eval new-checkout test multi:x", '"multi" is not a context kind'),
        ("eval new-checkout test us/er:x", "is not a context kind"),
        ("eval new-checkout test user:a,b", "one key per context"),
        ("eval new-checkout test user:alice anonymous=maybe", "anonymous is true or false"),
        ("eval new-checkout test user:alice name= country=US", "missing a value for name"),
        ("eval new-checkout test <@U123>", "the mention <@U123>"),
        ('eval new-checkout test user:alice name="Ada', "unclosed quote"),
        ("eval new-checkout test user:alice -m note", "does not take --comment"),
    ],
)
def test_a_bad_context_gets_a_usage_message(text: str, says: str) -> None:
    with pytest.raises(CommandError) as info:
        parse(text)
    assert says in info.value.message
    if "unclosed" not in says:
        assert info.value.usage == EVAL_USAGE


def test_the_context_json_is_compact_and_round_trips() -> None:
    command = parse('eval x test user:a note="a, b c" other= "x; y"')
    assert isinstance(command, ReservedCommand)
    assert json.loads(command.args[0]) == {"kind": "user", "key": "a", "note": "a, b c", "other": "x; y"}
    assert ": " not in command.args[0] and ', "' not in command.args[0]  # compact separators
