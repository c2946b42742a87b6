"""Linked LaunchDarkly accounts end to end: /flag link-account opens a modal, the pasted token is
checked, stored encrypted, used, and never shown in Slack or the logs; /flag unlink-account."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from bot.identity.accounts import fernet_for
from bot.persistence.db import linked_accounts
from tests.bot.harness import ALICE, BOB, Harness, click, run
from tests.bot.test_approvals import (
    SECRET_KEY,
    approval_card,
    audit,
    latest_view,
    link,
    member_id,
    sandbox,
    start,
    submit,
)

StartBot = Callable[..., Awaitable[Harness]]


def everything_slack_saw(bot: Harness) -> str:
    """Every Web API call's parameters and every response_url post, as one string."""
    calls = [json.dumps(c.params, default=str) for c in bot.slack.calls]
    posts = [json.dumps(r.payload, default=str) for r in bot.slack.responses]
    return "\n".join(calls + posts)


async def test_link_use_and_unlink_never_leaking_the_token(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start(start_bot)
    await run(bot, "/flag link-account", user=BOB)
    view = latest_view(bot, "link_account")
    assert view["blocks"][1]["type"] == "input", "the token is typed in a modal, never in a channel"
    await submit(
        bot, view, BOB, {"token": {"token": {"type": "plain_text_input", "value": "  sandbox-bob "}}}
    )
    confirmation = bot.ephemeral_texts(BOB)[-1]
    assert "Linked" in confirmation and "bob@example.com" in confirmation

    async with bot.store.engine.connect() as connection:
        row = (await connection.execute(select(linked_accounts))).mappings().one()
    assert row["slack_user_id"] == BOB and row["member_id"] == member_id(bot, "bob@example.com")
    assert "sandbox-bob" not in row["token_ciphertext"], "stored encrypted"
    assert fernet_for_key().decrypt(row["token_ciphertext"].encode()).decode() == "sandbox-bob"

    # The linked token is used: bob's approval is recorded as bob.
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    (review,) = audit(bot, "review:approve")
    assert review["memberId"] == member_id(bot, "bob@example.com")

    await run(bot, "/flag unlink-account", user=BOB)
    assert "Unlinked" in bot.ephemeral_texts(BOB)[-1]
    async with bot.store.engine.connect() as connection:
        assert (await connection.execute(select(linked_accounts))).first() is None
    await run(bot, "/flag unlink-account", user=BOB)
    assert "no linked" in bot.ephemeral_texts(BOB)[-1]

    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "sandbox-bob" not in everything_slack_saw(bot)
    assert "sandbox-bob" not in logs


def fernet_for_key() -> Fernet:
    return fernet_for(SecretStr(SECRET_KEY))


async def test_a_bad_token_is_refused_and_not_stored(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start(start_bot)
    await run(bot, "/flag link-account", user=ALICE)
    await submit(
        bot,
        latest_view(bot, "link_account"),
        ALICE,
        {"token": {"token": {"type": "plain_text_input", "value": "api-not-a-real-token-123"}}},
    )
    answer = bot.ephemeral_texts(ALICE)[-1]
    assert "did not accept that token" in answer and "Nothing was stored" in answer
    async with bot.store.engine.connect() as connection:
        assert (await connection.execute(select(linked_accounts))).first() is None
    assert "api-not-a-real-token-123" not in everything_slack_saw(bot)
    assert "api-not-a-real-token-123" not in "\n".join(r.getMessage() for r in caplog.records)


async def test_without_a_secret_key_no_modal_opens(start_bot: StartBot) -> None:
    bot = await start_bot(sandbox=sandbox())
    await run(bot, "/flag link-account", user=ALICE)
    assert "FLAGOPS_SECRET_KEY" in bot.ephemeral_texts(ALICE)[-1]
    assert not bot.slack.views()


async def test_relinking_replaces_the_token(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await link(bot, ALICE, "sandbox-alice")
    await link(bot, ALICE, "sandbox-bob")  # alice pastes another member's token: she now acts as bob
    async with bot.store.engine.connect() as connection:
        rows = (await connection.execute(select(linked_accounts))).mappings().all()
    assert [r["member_id"] for r in rows] == [member_id(bot, "bob@example.com")]


@pytest.mark.parametrize("extra", ["api-0123-pasted-secret", '"api-0123-pasted-secret'])
async def test_a_token_typed_after_link_account_is_never_shown_back(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture, extra: str
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start(start_bot)
    await run(bot, f"/flag link-account {extra}", user=ALICE)
    assert latest_view(bot, "link_account"), "the form opens all the same"
    answer = bot.ephemeral_texts(ALICE)[-1]
    assert "Never paste a token" in answer and "use the form" in answer
    assert "0123-pasted-secret" not in everything_slack_saw(bot)
    assert "0123-pasted-secret" not in "\n".join(r.getMessage() for r in caplog.records)
    async with bot.store.engine.connect() as connection:
        assert (await connection.execute(select(linked_accounts))).first() is None


async def test_unlink_account_with_extra_text_unlinks_without_showing_it(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await link(bot, BOB, "sandbox-bob")
    await run(bot, "/flag unlink-account sandbox-bob", user=BOB)
    told = bot.ephemeral_texts(BOB)[-2:]
    assert "Never paste a token" in told[0]
    async with bot.store.engine.connect() as connection:
        assert (await connection.execute(select(linked_accounts))).first() is None
    assert "sandbox-bob" not in "\n".join(bot.ephemeral_texts(BOB)[-2:])


@pytest.mark.parametrize("pasted", ["sandbox-\u200bbob", "sandbox-böb", "sandbox bob"])
async def test_a_token_with_an_invisible_or_non_ascii_character_is_explained(
    start_bot: StartBot, pasted: str
) -> None:
    bot = await start(start_bot)
    await run(bot, "/flag link-account", user=BOB)
    before = len(bot.ld_requests())
    await submit(
        bot,
        latest_view(bot, "link_account"),
        BOB,
        {"token": {"token": {"type": "plain_text_input", "value": pasted}}},
    )
    answer = bot.ephemeral_texts(BOB)[-1]
    assert "character a LaunchDarkly token never has" in answer and "Nothing was stored" in answer
    assert pasted not in everything_slack_saw(bot) and "bob" not in answer
    assert len(bot.ld_requests()) == before, "LaunchDarkly was not asked"
    async with bot.store.engine.connect() as connection:
        assert (await connection.execute(select(linked_accounts))).first() is None
