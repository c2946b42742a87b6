"""Connect with LaunchDarkly (OAuth) and approvals between people, end to end: the Connect
button's URL followed to the sandbox's authorize page, the sign-in, the redirect back to the bot's
callback, then requests and reviews made as each person."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from bot.identity.oauth import state_hash
from bot.launchdarkly.sandbox.oauth import SandboxOAuth
from bot.persistence.db import linked_accounts, oauth_states
from bot.slack.messenger import ReplyTo, SlackFailure
from tests.bot.harness import ALICE, BOB, CAROL, Harness, click, run
from tests.bot.test_approvals import (
    approval_card,
    audit,
    env,
    labels,
    latest_view,
    member_id,
    requests_of,
    sandbox,
    submit,
    thread_texts,
)

StartBot = Callable[..., Awaitable[Harness]]


async def start(start_bot: StartBot, **settings: Any) -> Harness:
    return await start_bot(sandbox=sandbox(), oauth=True, **settings)


def connect_url(bot: Harness, user: str) -> str:
    """The URL of the latest Connect LaunchDarkly button ``user`` was shown."""
    for ephemeral in reversed(bot.slack.ephemerals(user)):
        for block in ephemeral.blocks:
            for element in block.get("elements") or []:
                if element.get("action_id") == "connect_launchdarkly":
                    return str(element["url"])
    raise AssertionError(f"{user} was shown no Connect button")


async def follow(url: str, sign_in_as: str | None) -> httpx.Response:
    """What a browser does with the Connect button: open it, sign in, follow the redirect back."""
    async with httpx.AsyncClient(follow_redirects=True, timeout=10) as browser:
        page = await browser.get(url)
        if sign_in_as is None:
            return page
        assert f"Sign in as {sign_in_as}" in page.text
        return await browser.get(url + "&" + httpx.QueryParams({"login_as": sign_in_as}).__str__())


async def connect(bot: Harness, user: str, email: str) -> httpx.Response:
    await run(bot, "/flag link-account", user=user)
    answer = await follow(connect_url(bot, user), email)
    await bot.idle()
    return answer


async def test_connect_follows_the_button_to_launchdarkly_and_back(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await run(bot, "/flag link-account", user=BOB)
    url = connect_url(bot, BOB)
    query = httpx.URL(url).params
    assert url.startswith(f"{bot.stack.sandbox_url}/trust/oauth/authorize?")
    assert query["response_type"] == "code" and query["scope"] == "writer"
    assert query["redirect_uri"] == f"{bot.stack.bot_url}/oauth/launchdarkly/callback"
    assert len(query["state"]) >= 40, "a long random state"
    assert not bot.slack.views(), "no token modal where OAuth is configured"

    page = await follow(url, "bob@example.com")
    await bot.idle()
    assert page.status_code == 200 and "connected" in page.text and "bob@example.com" in page.text
    assert any("Connected" in t and "bob@example.com" in t for t in bot.ephemeral_texts(BOB))
    acting = await bot.stack.runtime.services.accounts.acting(BOB)
    assert acting.oauth and acting.member_id == member_id(bot, "bob@example.com")
    assert acting.token is not None and acting.token.startswith("Bearer ")
    row = await _row(bot, BOB)
    assert row["token_kind"] == "oauth" and "ldo-" not in row["token_ciphertext"], "stored encrypted"

    # The code was exchanged with the client's credentials in the POST body (client_secret_post).
    (exchange,) = [r for r in bot.ld_requests() if r["path"] == "/trust/oauth/token"]
    assert exchange["method"] == "POST"


async def test_alice_requests_bob_approves_and_applies_each_as_themselves(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await connect(bot, ALICE, "alice@example.com")
    await connect(bot, BOB, "bob@example.com")
    alice, bob = member_id(bot, "alice@example.com"), member_id(bot, "bob@example.com")

    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    (stored,) = requests_of(bot)
    assert stored.doc["requestorId"] == alice, "requested as alice"
    card = approval_card(bot)
    assert labels(card) == ["Approve and apply", "Approve", "Decline", "Comment"]

    await click(bot, "Approve and apply", user=BOB, message=card)
    (review,) = audit(bot, "review:approve")
    assert review["memberId"] == bob, "reviewed as bob"
    (applied,) = audit(bot, "applyApprovalRequest")
    assert applied["memberId"] == bob and applied["requestorId"] == alice
    assert env(bot, "new-checkout", "production")["on"] is True
    assert labels(approval_card(bot)) == []


async def test_a_reviewer_without_a_connection_connects_and_the_click_goes_on(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await connect(bot, ALICE, "alice@example.com")
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    assert not audit(bot, "review:approve"), "nothing is reviewed as the bot"
    assert any("connect your LaunchDarkly account" in t for t in bot.ephemeral_texts(BOB))

    await follow(connect_url(bot, BOB), "bob@example.com")
    await bot.idle()
    (review,) = audit(bot, "review:approve")
    assert review["memberId"] == member_id(bot, "bob@example.com"), "the click resumed, as bob"
    assert labels(approval_card(bot)) == ["Apply"]


async def test_a_comment_goes_to_launchdarkly_as_the_reviewer(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await connect(bot, ALICE, "alice@example.com")
    await connect(bot, BOB, "bob@example.com")
    await run(bot, "/flag on new-checkout production")
    change_card = bot.card()
    await click(bot, "Request approval")
    await click(bot, "Comment", user=BOB, message=approval_card(bot))
    view = latest_view(bot, "approval_comment_text")
    text = "Why now? <!channel> is on call"
    await submit(bot, view, BOB, {"reason": {"reason": {"type": "plain_text_input", "value": text}}})
    (comment,) = audit(bot, "review:comment")
    assert comment["memberId"] == member_id(bot, "bob@example.com")
    (request,) = requests_of(bot)
    assert request.doc["allReviews"][-1]["comment"] == text, "the comment as typed goes to LaunchDarkly"
    said = [t for t in thread_texts(bot, change_card) if "commented" in t]
    assert said and "&lt;!channel&gt;" in said[0], "shown escaped in Slack"
    assert labels(approval_card(bot))[0] == "Approve and apply", "a comment is no verdict"


async def test_a_replayed_or_expired_state_is_refused(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await run(bot, "/flag link-account", user=BOB)
    url = connect_url(bot, BOB)
    async with httpx.AsyncClient(timeout=10) as browser:
        back = await browser.get(url + "&login_as=bob%40example.com")
        callback = back.headers["location"]
        first = await browser.get(callback)
        replay = await browser.get(callback)
    assert first.status_code == 200
    assert replay.status_code == 400 and "expired or was already used" in replay.text

    await run(bot, "/flag link-account", user=CAROL)
    stale = connect_url(bot, CAROL)
    state = httpx.URL(stale).params["state"]
    async with bot.store.engine.begin() as connection:
        await connection.execute(
            update(oauth_states)
            .where(oauth_states.c.state_hash == state_hash(state))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    late = await follow(stale, "carol@example.com")
    assert late.status_code == 400
    assert not (await bot.stack.runtime.services.accounts.acting(CAROL)).linked

    forged = await follow(f"{bot.stack.bot_url}/oauth/launchdarkly/callback?state=<script>&code=x", None)
    assert forged.status_code == 400 and "<script>" not in forged.text


async def test_a_revoked_connection_is_dropped_and_the_person_told(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await connect(bot, ALICE, "alice@example.com")
    await connect(bot, BOB, "bob@example.com")
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    bot.sandbox.oauth.revoke(member_id(bot, "bob@example.com"))
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    assert not audit(bot, "review:approve")
    assert any("no longer accepts" in t for t in bot.ephemeral_texts(BOB))
    assert any("connection ended" in m.text for m in bot.slack.messages(BOB)), "told in the DM"
    assert not (await bot.stack.runtime.services.accounts.acting(BOB)).linked


async def test_an_expiring_token_is_renewed_and_a_refused_renewal_ends_the_connection(
    start_bot: StartBot,
) -> None:
    bot = await start(start_bot)
    await connect(bot, BOB, "bob@example.com")
    accounts = bot.stack.runtime.services.accounts
    before = (await accounts.acting(BOB)).token
    bot.sandbox.oauth.expire_access()
    await _expire(bot, BOB)
    renewed = await accounts.acting(BOB)
    assert renewed.linked and renewed.token != before, "renewed with the refresh token"
    assert [r for r in bot.ld_requests() if r["path"] == "/trust/oauth/token"][-1]["status"] == 200

    bot.sandbox.oauth.refuse_refresh = True
    await _expire(bot, BOB)
    assert not (await accounts.acting(BOB)).linked
    await bot.idle()
    assert any("refused to renew" in m.text for m in bot.slack.messages(BOB))


async def test_no_token_ever_reaches_a_message_or_a_log_line(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start(start_bot)
    await connect(bot, ALICE, "alice@example.com")
    await connect(bot, BOB, "bob@example.com")
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Approve and apply", user=BOB, message=approval_card(bot))
    oauth: SandboxOAuth = bot.sandbox.oauth
    secrets_ = [*oauth.access, *oauth.refresh, *(c.secret for c in oauth.clients.values())]
    assert secrets_
    said = [repr(c.params) for c in bot.slack.calls] + [r.getMessage() for r in caplog.records]
    assert not [s for s in secrets_ if any(s in text for text in said)]


async def test_without_an_oauth_client_the_token_modal_stays(start_bot: StartBot) -> None:
    bot = await start_bot(sandbox=sandbox(), flagops_secret_key="k")
    await run(bot, "/flag link-account", user=BOB)
    assert any(v.get("callback_id") == "link_account" for v in bot.slack.views().values())
    with pytest.raises(AssertionError):
        connect_url(bot, BOB)


async def _row(bot: Harness, user: str) -> Any:
    async with bot.store.engine.connect() as connection:
        return (
            (await connection.execute(select(linked_accounts).where(linked_accounts.c.slack_user_id == user)))
            .mappings()
            .one()
        )


async def _expire(bot: Harness, user: str) -> None:
    async with bot.store.engine.begin() as connection:
        await connection.execute(
            update(linked_accounts)
            .where(linked_accounts.c.slack_user_id == user)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


# --- what an outside review found (each failed before its fix) ------------------------------------


async def test_a_forwarded_connect_link_does_not_link_someone_else(start_bot: StartBot) -> None:
    # Carol (a reader) sends her Connect link to bob, who signs in as himself: carol must not end
    # up acting as bob.
    bot = await start(start_bot)
    await connect(bot, ALICE, "alice@example.com")
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await run(bot, "/flag link-account", user=CAROL)
    page = await follow(connect_url(bot, CAROL), "bob@example.com")
    await bot.idle()
    assert page.status_code == 400 and "someone else" in page.text
    assert not (await bot.stack.runtime.services.accounts.acting(CAROL)).linked
    assert any("Not connected" in t for t in bot.ephemeral_texts(CAROL))
    # The same member linked twice is refused too (bob connected, then someone's link for bob).
    await connect(bot, BOB, "bob@example.com")
    accounts = bot.stack.runtime.services.accounts
    assert await accounts._not_the_same_person(CAROL, member_id(bot, "bob@example.com"), None)


async def test_slack_down_after_a_connect_still_connects_and_resumes(
    start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = await start(start_bot)
    await connect(bot, ALICE, "alice@example.com")
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    url = connect_url(bot, BOB)
    accounts = bot.stack.runtime.services.accounts

    async def down(*_args: Any, **_kwargs: Any) -> None:
        raise SlackFailure("chat.postEphemeral", "ratelimited")

    monkeypatch.setattr(accounts.messenger, "ephemeral", down)
    page = await follow(url, "bob@example.com")
    monkeypatch.undo()
    await bot.idle()
    assert page.status_code == 200, page.text
    (review,) = audit(bot, "review:approve")
    assert review["memberId"] == member_id(bot, "bob@example.com")


async def test_two_renewals_at_once_keep_the_connection(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await connect(bot, BOB, "bob@example.com")
    accounts = bot.stack.runtime.services.accounts
    assert accounts.oauth is not None
    await _expire(bot, BOB)
    real = accounts.oauth.refresh
    calls = 0

    async def slow_first(token: str) -> Any:
        nonlocal calls
        calls += 1
        tokens = await real(token)  # LaunchDarkly rotated the refresh token here
        if calls == 1:
            await asyncio.sleep(0.3)  # ...and the winner stores it late
        return tokens

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(accounts.oauth, "refresh", slow_first)
    first = asyncio.create_task(accounts.acting(BOB))
    await asyncio.sleep(0.05)
    second = await accounts.acting(BOB)
    monkeypatch.undo()
    assert (await first).linked and second.linked
    await bot.idle()
    assert not any("ended" in m.text for m in bot.slack.messages(BOB)), "nobody is told a lie"


async def test_unlink_during_a_renewal_stays_unlinked(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await connect(bot, BOB, "bob@example.com")
    accounts = bot.stack.runtime.services.accounts
    assert accounts.oauth is not None
    await _expire(bot, BOB)
    real, gate = accounts.oauth.refresh, asyncio.Event()

    async def slow(token: str) -> Any:
        tokens = await real(token)
        await gate.wait()
        return tokens

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(accounts.oauth, "refresh", slow)
    renewing = asyncio.create_task(accounts.acting(BOB))
    await asyncio.sleep(0.1)
    await accounts.unlink(BOB, ReplyTo("", BOB))  # what /flag unlink-account does
    gate.set()
    await renewing
    monkeypatch.undo()
    assert await accounts.store.get(BOB) is None, "unlink-account is not undone by a renewal"


async def test_a_wrong_client_secret_keeps_everyone_connected(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await connect(bot, BOB, "bob@example.com")
    accounts = bot.stack.runtime.services.accounts
    assert accounts.oauth is not None
    accounts.oauth._secret = SecretStr("rotated-or-mistyped")  # an operator's slip
    await _expire(bot, BOB)
    assert (await accounts.acting(BOB)).linked, "the bot's own client error ends no one's connection"
    await bot.idle()
    assert not bot.slack.messages(BOB)
