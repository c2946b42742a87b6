"""Hostile input at the front door: nothing is done, and nothing is sent, for unverified requests;
a verified payload's response_url is called only on Slack's hosts."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.offline.payloads import SignedRequest, sign
from bot.slack.app import _user_and_channel
from bot.slack.messenger import is_slack_response_url
from bot.slack.server import serve_in_loop, verified
from tests.bot.harness import ALICE, RELEASES, Harness


@contextlib.asynccontextmanager
async def attacker() -> AsyncIterator[tuple[str, list[Any]]]:
    """A server that records whatever reaches it (a forged response_url points here)."""
    hits: list[Any] = []

    async def record(request: Request) -> PlainTextResponse:
        hits.append(await request.body())
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/{path:path}", record, methods=["POST", "GET"])])
    async with serve_in_loop(app) as url:
        # "localhost", not the loopback address the console's fake Slack is allowed on.
        yield url.replace("127.0.0.1", "localhost"), hits


def command_body(bot: Harness, text: str, response_url: str) -> bytes:
    return urlencode(
        {
            "command": bot.stack.settings.flagops_command,
            "text": text,
            "user_id": ALICE,
            "user_name": "alice",
            "channel_id": RELEASES,
            "team_id": "T1",
            "trigger_id": "1.2.3",
            "response_url": response_url,
        }
    ).encode()


async def post(bot: Harness, body: bytes, headers: dict[str, str]) -> httpx.Response:
    raw = [(k.encode(), v.encode("utf-8")) for k, v in headers.items()]  # non-ASCII on purpose
    async with httpx.AsyncClient() as http:
        return await http.post(f"{bot.stack.bot_url}/slack/events", content=body, headers=raw)


def nothing_done(bot: Harness) -> None:
    assert not bot.ld_requests(), "nothing reaches LaunchDarkly"
    assert not bot.slack.all_messages() and not bot.slack.ephemerals(), "nothing reaches Slack"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "١٢٣٤", "X-Slack-Signature": "v0=00"},  # Arabic digits
        {"X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "1700000000"},
    ],
    ids=["word", "float", "unicode-digits", "no-timestamp", "no-signature"],
)
async def test_headers_that_cannot_be_checked_are_a_401_and_nothing_else(
    bot: Harness, headers: dict[str, str]
) -> None:
    async with attacker() as (url, hits):
        body = command_body(bot, "off new-checkout test", url)
        answer = await post(bot, body, {"Content-Type": "application/x-www-form-urlencoded", **headers})
        await bot.idle()
    assert answer.status_code == 401 and "Traceback" not in answer.text
    assert hits == []
    nothing_done(bot)


async def test_a_non_ascii_signature_is_a_401(bot: Harness) -> None:
    body = command_body(bot, "off new-checkout test", "https://hooks.slack.com/x")
    headers = sign(bot.stack.settings.slack_signing_secret.get_secret_value(), body)
    headers["X-Slack-Signature"] = "v0=é" + headers["X-Slack-Signature"][4:]
    answer = await post(bot, body, headers)
    await bot.idle()
    assert answer.status_code == 401
    nothing_done(bot)


async def test_an_invalid_payload_is_a_401_before_anything_parses_it(bot: Harness) -> None:
    body = b"payload=%7Bnot-json"
    answer = await post(bot, body, {"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=00"})
    assert answer.status_code == 401
    signed = SignedRequest(body, sign(bot.stack.settings.slack_signing_secret.get_secret_value(), body))
    answer = await bot.send(signed)
    await bot.idle()
    assert answer.status_code in (200, 400) and "Traceback" not in answer.text
    nothing_done(bot)


async def test_a_verified_error_never_answers_on_a_foreign_response_url(bot: Harness) -> None:
    # A correctly signed command whose response_url is not Slack's (a tampered payload, or a test
    # of the rule): the answer goes to the user through chat.postEphemeral, never to that URL.
    async with attacker() as (url, hits):
        body = command_body(bot, "off no-such-flag-anywhere test", url)
        answer = await bot.send(
            SignedRequest(body, sign(bot.stack.settings.slack_signing_secret.get_secret_value(), body))
        )
        await bot.idle()
    assert answer.status_code == 200
    assert hits == []
    assert bot.ephemeral_texts(ALICE), "the user is still told"


def test_the_verifier_never_raises() -> None:
    secret = "s"
    body = b"x=1"
    good = sign(secret, body)
    assert verified(secret, {k.lower(): v for k, v in good.items()}, body)
    for headers in (
        {},
        {"x-slack-request-timestamp": "abc", "x-slack-signature": "v0=1"},
        {"x-slack-request-timestamp": "99999999999999999999999", "x-slack-signature": "v0=1"},
        {"x-slack-request-timestamp": good["X-Slack-Request-Timestamp"], "x-slack-signature": "v0=\u0000"},
    ):
        assert verified(secret, headers, body) is False


def test_response_urls_only_on_slacks_hosts() -> None:
    assert is_slack_response_url("https://hooks.slack.com/commands/T1/1/abc")
    assert is_slack_response_url("https://hooks.slack-gov.com/commands/T1/1/abc")
    for url in (
        "http://hooks.slack.com/x",
        "https://hooks.slack.com.evil.example/x",
        "https://evil.example/?hooks.slack.com",
        "https://user@evil.example/x",
        "https://[::1/x",
        "",
        None,
    ):
        assert not is_slack_response_url(url), url
    assert is_slack_response_url("http://127.0.0.1:9/x", frozenset({"127.0.0.1"}))


def test_the_error_handler_reads_users_in_any_shape() -> None:
    assert _user_and_channel({"user": "U1", "channel": "C1"}) == ("U1", "C1")
    assert _user_and_channel({"user": {"id": "U1"}, "channel": {"id": "C1"}}) == ("U1", "C1")
    assert _user_and_channel({"user": 5, "channel": ["x"]}) == (None, None)
    assert json.dumps(_user_and_channel({}))


@pytest.mark.parametrize(
    "key",
    ["x/../demo", "demo?x=1", "demo#frag", "new-checkout/../banner-color", "a\x00b", "..", "-x", "é", ""],
)
async def test_keys_that_are_not_keys_never_reach_a_url(bot: Harness, key: str) -> None:
    from commands.keys import InvalidKey

    ld = bot.stack.runtime.ld
    for call in (
        lambda: ld.get_flag(key, "new-checkout"),
        lambda: ld.get_flag("demo", key),
        lambda: ld.all_environments(key),
        lambda: ld.get_member(key),
        lambda: ld.get_approval_request_by_id(key),
    ):
        with pytest.raises(InvalidKey, match="Nothing was sent"):
            await call()
    assert not bot.ld_requests()


async def test_a_project_with_dots_and_slashes_is_refused_by_command_and_by_config(bot: Harness) -> None:
    await bot.command("/flag off new-checkout test --project x/../demo")
    await bot.command("/flag config project x/../demo")
    await bot.idle()
    said = " ".join(bot.ephemeral_texts(ALICE))
    assert said.count("is not a LaunchDarkly") == 2, said
    assert all("/x/" not in r["path"] and ".." not in r["path"] for r in bot.ld_requests())
    assert not [r for r in bot.ld_requests() if r["method"] == "PATCH"]
    env = bot.sandbox.projects["demo"].flags["new-checkout"]["environments"]["test"]
    assert env["on"] is True


def test_the_flag_cache_is_bounded() -> None:
    from bot.lifecycle import flags

    cache: dict[Any, Any] = {}
    for n in range(flags.CACHE_ENTRIES * 3):
        flags._bounded_put(cache, ("demo", f"k{n}"), n)
    assert len(cache) == flags.CACHE_ENTRIES and ("demo", f"k{flags.CACHE_ENTRIES * 3 - 1}") in cache


BROADCASTS = ("<!channel", "<!here", "<!everyone", "<!subteam^S123")


async def test_no_broadcast_mention_leaves_the_bot_from_any_text(bot: Harness) -> None:
    # LaunchDarkly-supplied text (a flag's name, a variation's name) and typed text (a new name,
    # a comment) that hold Slack's broadcast syntax reach no field of any message as a mention.
    flag = bot.sandbox.projects["demo"].flags["new-checkout"]
    flag["name"] = "<!channel> checkout"
    flag["variations"][0]["name"] = "<!here|here>"
    await bot.command("/flag off new-checkout test")
    await bot.idle()
    await bot.click("Apply")
    await bot.idle()
    await bot.command('/flag rename new-checkout "<!subteam^S123|@sre>"')
    await bot.idle()
    await bot.command("/flag show new-checkout test")
    await bot.idle()
    sent = [str(call.params) for call in bot.slack.calls] + [
        str(e.text) + str(e.blocks) for e in bot.slack.ephemerals(ALICE)
    ]
    assert len(sent) > 3
    for text in sent:
        assert not any(b in text for b in BROADCASTS), text[:400]


@pytest.mark.parametrize(
    "value",
    ["not json", "{}", '{"project": "demo"}', '{"project": "demo", "flag": "<!channel>"}', "[1, 2]", ""],
)
@pytest.mark.parametrize("action_id", ["digest_snooze", "digest_archive", "scheduled_delete"])
async def test_forged_button_values_are_refused_plainly(bot: Harness, action_id: str, value: str) -> None:
    from bot.offline.payloads import signed_interaction

    payload = {
        "type": "block_actions",
        "user": {"id": ALICE, "username": "alice", "name": "alice", "team_id": "T1"},
        "team": {"id": "T1"},
        "channel": {"id": RELEASES},
        "container": {"type": "message", "channel_id": RELEASES, "message_ts": "1.1"},
        "message": {"ts": "1.1", "text": "digest"},
        "trigger_id": "1.2.3",
        "actions": [
            {"action_id": action_id, "block_id": "b", "type": "button", "value": value, "action_ts": "1"}
        ],
    }
    answer = await bot.send(
        signed_interaction(bot.stack.settings.slack_signing_secret.get_secret_value(), payload)
    )
    await bot.idle()
    assert answer.status_code == 200
    said = " ".join(bot.ephemeral_texts(ALICE))
    assert "not one flagops made" in said and "unhandled" not in said.lower()
    assert not bot.slack.messages(RELEASES), "nothing posted to the channel"
    assert not [r for r in bot.ld_requests() if r["method"] != "GET"]


def test_answers_with_only_what_the_bot_needs_are_read() -> None:
    # Enrichment fields may be missing from an answer (a sparse or newer API); the objects the
    # bot decides on still read, so a created request or a found member is never "not there".
    from bot.launchdarkly.models import ApprovalRequest, Member

    request = ApprovalRequest.model_validate({"_id": "abc123"})
    assert request.id == "abc123" and request.creation_date is None and request.status == "pending"
    member = Member.model_validate({"_id": "m1"})
    assert member.display_name == "m1"


async def test_no_mention_or_link_is_made_from_launchdarkly_or_typed_text(bot: Harness) -> None:
    flag = bot.sandbox.projects["demo"].flags["pricing-page"]
    flag["name"] = "<@U0BOSS> <#C0SEC> <http://evil.example|x>"
    flag["description"] = "<@U0BOSS2>"
    flag["variations"][0]["name"] = "<@U0VAR>"
    for env in flag["environments"].values():
        for rule in env.get("rules") or []:
            rule["description"] = "<@U0RULE>"
    for text in [
        "/flag show pricing-page test",
        "/flag list",
        "/flag show pricing-page",
        '/flag rename pricing-page "<@U0TYPED> <http://evil.example|y>"',
        "/flag off pricing-page test",
    ]:
        await bot.command(text)
        await bot.idle()
    await bot.click("Apply")
    await bot.idle()
    sent = [str(c.params) for c in bot.slack.calls] + [
        e.text + str(e.blocks) for e in bot.slack.ephemerals(ALICE)
    ]
    made = ("<@U0BOSS>", "<#C0SEC>", "<http://evil", "<@U0BOSS2>", "<@U0VAR>", "<@U0RULE>", "<@U0TYPED>")
    leaks = sorted({m for t in sent for m in made if m in t})
    assert not leaks, leaks


async def test_a_decline_whose_channel_is_gone_is_still_told_to_the_reviewer(bot: Harness) -> None:
    # The decline modal was opened in #releases; the bot was removed from it (now private) before
    # the reviewer submitted. LaunchDarkly declined it; that is told to the reviewer, not lost in an error.
    from tests.bot.test_approvals import approval_card, approval_settings, latest_view, submit

    approval_settings(bot, "production")["canReviewOwnRequest"] = True
    await bot.command("/flag on new-checkout production")
    await bot.idle()
    await bot.click("Request approval")
    await bot.idle()
    await bot.click("Decline", user="U_BOB", message=approval_card(bot))
    await bot.idle()
    view = latest_view(bot, "approval_decline_reason")
    block = view["blocks"][-1]
    bot.slack.make_private(RELEASES)
    await submit(
        bot,
        view,
        "U_BOB",
        {block["block_id"]: {block["element"]["action_id"]: {"type": "plain_text_input", "value": "no"}}},
    )
    said = [*bot.slack.messages("U_BOB"), *bot.slack.ephemerals("U_BOB")]
    texts = [m.text + str(m.blocks) for m in said]
    assert any("declined" in t and "could not post this" in t for t in texts), texts
    assert not any("went wrong" in t for t in texts)
    (stored,) = bot.sandbox.approvals.values()
    assert stored.doc["reviewStatus"] == "declined", "LaunchDarkly has it, and the person was told"


@pytest.mark.parametrize(
    "text",
    [
        "help " + "x" * 5000,  # a topic longer than a Block Kit section
        "reminders cancel <!subteam^SEVIL|@evil><#CEVIL|e>",
        "scheduled cancel <!subteam^SEVIL|@evil>",
    ],
)
async def test_long_fuzz_finds_are_answered_plainly(bot: Harness, text: str) -> None:
    # Found by the long fuzz run: a help topic too long for a section was an invalid_blocks error,
    # and ids typed after `cancel` came back unescaped.
    from tests.bot.rendered import leaks

    await bot.command(f"/flag {text}")
    await bot.idle()
    said = bot.ephemeral_texts(ALICE)
    assert said and not any("went wrong" in t for t in said), said
    assert not leaks(bot), leaks(bot)
