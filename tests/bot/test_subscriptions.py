"""Channel subscriptions: ``/flag subscribe``, LaunchDarkly's signed webhook, notification cards,
polling where there is no webhook. Changes are made straight in LaunchDarkly (bob's token over
HTTP, as its UI or another tool would) and through the bot; the sandbox delivers each as
LaunchDarkly does, signed, over real HTTP to the bot's ``POST /launchdarkly/webhook``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.config import WEBHOOK_PATH
from bot.launchdarkly.sandbox.webhooks import payload_of, signature
from bot.offline.fake_slack import Message
from bot.scheduling.scheduler import FlagopsScheduler
from bot.subscriptions.webhook import signature_ok
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, click, run
from tests.bot.test_history import outside_change

StartBot = Callable[..., Awaitable[Harness]]
SEMANTIC = {"Content-Type": "application/json; domain-model=launchdarkly.semanticpatch"}
OPS = "C_OPS"


def everything(message: Message) -> str:
    return message.text + "\n" + "\n".join(json.dumps(b, ensure_ascii=False) for b in message.blocks)


def bell_cards(bot: Harness, channel: str = RELEASES) -> list[Message]:
    return [m for m in bot.slack.messages(channel) if any(":bell:" in json.dumps(b) for b in m.blocks)]


@pytest.fixture
async def hooked(start_bot: StartBot) -> Harness:
    """A bot with LaunchDarkly's webhook set up (the sandbox delivers to it)."""
    bot = await start_bot(webhooks=True)
    bot.slack.add_channel(OPS, "ops")
    return bot


async def test_a_change_made_in_launchdarkly_reaches_a_subscribed_channel_once(hooked: Harness) -> None:
    bot = hooked
    assert len(bot.sandbox.webhooks) == 1
    (hook,) = bot.sandbox.webhooks.values()
    assert hook["url"].endswith(WEBHOOK_PATH) and hook["sign"] and hook["on"]
    assert hook["statements"][0]["resources"] == ["proj/*:env/*:flag/*"]
    await run(bot, "/flag subscribe new-checkout")
    answer = bot.ephemeral_texts(ALICE)[-1]
    assert "now gets changes of" in answer
    await outside_change(bot, "test", "turnFlagOff", comment="rollback <!channel>")
    (card,) = bell_cards(bot)
    text = everything(card)
    assert "bob@example.com" in text
    assert "*Targeting in test*: ON → *OFF*" in text
    assert "rollback &lt;!channel&gt;" in text and "<!channel>" not in text
    assert "Open in LaunchDarkly" in text and "/projects/demo/flags/new-checkout?env=test" in text
    assert "History" in [b["text"]["text"] for b in card.buttons]
    # The payload had no versions: the bot read the entry for before → after.
    (entry,) = [e for e in bot.sandbox.ld_audit]
    assert any(r["path"] == f"/api/v2/auditlog/{entry['_id']}" for r in bot.ld_requests())
    # LaunchDarkly sends the same delivery again: ignored.
    body = payload_of(entry)
    async with httpx.AsyncClient() as http:
        again = await http.post(
            bot.stack.bot_url + WEBHOOK_PATH,
            content=body,
            headers={"X-LD-Signature": signature(hook["secret"], body)},
        )
    await bot.idle()
    assert again.status_code == 200
    assert len(bell_cards(bot)) == 1
    assert [d["status"] for d in bot.sandbox.deliveries] == [200]


async def test_the_history_button_of_a_notification_opens_the_flags_history(hooked: Harness) -> None:
    bot = hooked
    await run(bot, "/flag subscribe new-checkout")
    await outside_change(bot, "test", "turnFlagOff")
    await click(bot, "History", user=BOB, message=bell_cards(bot)[-1])
    assert "History of *New checkout*" in bot.slack.ephemerals(BOB)[-1].text + json.dumps(
        bot.slack.ephemerals(BOB)[-1].blocks
    )


@pytest.mark.parametrize(
    "signature_header",
    [None, "", "0" * 64, "not-hex-é", "sha256=abc"],
    ids=["unsigned", "empty", "wrong", "non-ascii", "other-scheme"],
)
async def test_a_wrongly_signed_or_unsigned_webhook_is_refused_with_nothing_posted(
    hooked: Harness, signature_header: str | None
) -> None:
    bot = hooked
    await run(bot, "/flag subscribe all")
    before = len(bot.slack.calls)
    entry = {
        "_id": "5f0000000000000000forged",
        "date": 1767225600000,
        "kind": "flag",
        "name": "New checkout",
        "comment": "forged",
        "accesses": [{"action": "updateOn", "resource": "proj/demo:env/test:flag/new-checkout"}],
    }
    body = json.dumps(entry).encode()
    # A header that is not ASCII goes as Latin-1 bytes, as a raw HTTP client would send it.
    headers = {} if signature_header is None else {"X-LD-Signature": signature_header.encode("latin-1")}
    async with httpx.AsyncClient() as http:
        answer = await http.post(bot.stack.bot_url + WEBHOOK_PATH, content=body, headers=headers)
        signed_elsewhere = await http.post(
            bot.stack.bot_url + WEBHOOK_PATH,
            content=body,
            headers={"X-LD-Signature": signature("another-secret", body)},
        )
    await bot.idle()
    assert answer.status_code == 401 and signed_elsewhere.status_code == 401
    assert len(bot.slack.calls) == before, "nothing was sent to Slack"
    assert not [r for r in bot.ld_requests() if "forged" in r["path"]], "nothing was read either"
    # Nor was the id remembered: the genuine entry would still be told.
    from bot.persistence.db import subscription_entries

    async with bot.store.engine.connect() as connection:
        rows = (await connection.execute(subscription_entries.select())).all()
    assert rows == []


async def test_a_change_made_through_flagops_is_threaded_under_its_card_not_announced_again(
    hooked: Harness,
) -> None:
    bot = hooked
    await run(bot, "/flag subscribe new-checkout")
    await run(bot, "/flag subscribe new-checkout", channel=OPS)
    await run(bot, '/flag off new-checkout test -m "incident 42"')
    card = bot.card()
    await click(bot, "Apply")
    assert not bell_cards(bot), "no second announcement in the card's own channel"
    notes = [m for m in bot.thread(card) if "LaunchDarkly's audit log" in everything(m)]
    assert len(notes) == 1
    assert "*Targeting in test*: ON → *OFF*" in everything(notes[0])
    # Another subscribed channel hears of it, with a link to the card and who asked.
    (elsewhere,) = bell_cards(bot, OPS)
    text = everything(elsewhere)
    assert "through flagops for <@U_ALICE>" in text and "the card>" in text
    assert "incident 42" in text and "flagops change" not in text


async def test_filters_by_flag_tag_and_environment(hooked: Harness) -> None:
    bot = hooked
    by_tag, by_env, by_flag, every = "C_TAG", "C_ENV", "C_FLAG", "C_ALL"
    for channel in (by_tag, by_env, by_flag, every):
        bot.slack.add_channel(channel, channel.lower())
    tags = bot.sandbox.projects["demo"].flags["banner-color"].get("tags") or []
    assert (
        "marketing" in tags and "marketing" not in bot.sandbox.projects["demo"].flags["new-checkout"]["tags"]
    )
    # So that bob may change production straight away (no approval there in this test).
    bot.sandbox.projects["demo"].environments["production"]["approvalSettings"]["required"] = False
    await run(bot, "/flag subscribe tag:marketing", channel=by_tag)
    await run(bot, "/flag subscribe env:production", channel=by_env)
    await run(bot, "/flag subscribe new-checkout", channel=by_flag)
    await run(bot, "/flag subscribe", channel=every)
    await outside_change(bot, "test", "turnFlagOff")  # new-checkout in test
    await outside_change(bot, "test", "turnFlagOff", flag="banner-color")  # tagged, in test
    await outside_change(bot, "production", "turnFlagOff", flag="pricing-page")  # in production
    seen = {c: [everything(m) for m in bell_cards(bot, c)] for c in (by_tag, by_env, by_flag, every)}
    assert [("banner-color" in t) for t in seen[by_tag]] == [True]
    assert [("pricing-page" in t) for t in seen[by_env]] == [True]
    assert [("new-checkout" in t) for t in seen[by_flag]] == [True]
    assert len(seen[every]) == 3
    # Unsubscribing stops them.
    await run(bot, "/flag unsubscribe new-checkout", channel=by_flag)
    await outside_change(bot, "test", "turnFlagOn")
    assert len(bell_cards(bot, by_flag)) == 1
    assert len(bell_cards(bot, every)) == 4


async def test_subscriptions_lists_with_unsubscribe_and_refuses_unknown_things(hooked: Harness) -> None:
    bot = hooked
    await run(bot, "/flag subscribe new-checkout")
    await run(bot, "/flag subscribe new-checkout")
    assert "already follows" in bot.ephemeral_texts(ALICE)[-1]
    await run(bot, "/flag subscribe no-such-flag")
    await run(bot, "/flag subscribe env:staging")
    await run(bot, "/flag subscribe colour:blue")
    texts = bot.ephemeral_texts(ALICE)[-3:]
    assert "no-such-flag" in texts[0] and "staging" in texts[1] and "colour" in texts[2]
    await run(bot, "/flag subscriptions")
    listing = bot.slack.ephemerals(ALICE)[-1]
    assert "flag new-checkout" in json.dumps(listing.blocks)
    assert "webhook" in json.dumps(listing.blocks)
    message = Message(listing.channel, "1700000000.000009", listing.text, listing.blocks, "U_FLAGOPS")
    await click(bot, "Unsubscribe", message=message)
    assert "no longer follows" in bot.ephemeral_texts(ALICE)[-1]
    await run(bot, "/flag subscriptions")
    assert "no subscriptions" in bot.ephemeral_texts(ALICE)[-1]


async def test_entries_arriving_out_of_order_are_each_told_once_and_the_late_one_says_so(
    hooked: Harness,
) -> None:
    bot = hooked
    await run(bot, "/flag subscribe new-checkout")
    hook = next(iter(bot.sandbox.webhooks.values()))
    hook["on"] = False  # hold LaunchDarkly's deliveries, to send them in the wrong order
    await outside_change(bot, "test", "turnFlagOff")
    await outside_change(bot, "test", "turnFlagOn")
    first, second = bot.sandbox.ld_audit
    async with httpx.AsyncClient() as http:
        for entry in (second, first):
            body = payload_of(entry)
            answer = await http.post(
                bot.stack.bot_url + WEBHOOK_PATH,
                content=body,
                headers={"X-LD-Signature": signature(hook["secret"], body)},
            )
            assert answer.status_code == 200
    await bot.idle()
    newer, older = bell_cards(bot)
    assert "OFF → *ON*" in everything(newer) and "arrived after a later change" not in everything(newer)
    assert "ON → *OFF*" in everything(older) and "arrived after a later change" in everything(older)


async def test_without_a_public_url_subscriptions_poll_the_audit_log_and_say_so(bot: Harness) -> None:
    await run(bot, "/flag subscribe new-checkout")
    assert "every 60 s" in " ".join(bot.ephemeral_texts(ALICE)[-1:]) + json.dumps(
        bot.slack.ephemerals(ALICE)[-1].blocks
    )
    scheduler: FlagopsScheduler = bot.stack.runtime.scheduler
    now = datetime.now(UTC)
    assert await scheduler.poll_subscriptions(now) == 0, "the first look only sets where to start"
    await outside_change(bot, "test", "turnFlagOff")
    assert not bell_cards(bot), "no webhook: nothing is delivered"
    assert await scheduler.poll_subscriptions(now + timedelta(minutes=1)) == 1
    await bot.idle()
    assert len(bell_cards(bot)) == 1
    assert await scheduler.poll_subscriptions(now + timedelta(minutes=2)) == 0, "told once"
    assert len(bell_cards(bot)) == 1


def test_the_signature_is_checked_in_constant_time_and_never_raises() -> None:
    body = b'{"_id":"x","date":1}'
    good = signature("s3cret", body)
    assert signature_ok("s3cret", body, good) and signature_ok("s3cret", body, good.upper())
    for bad in (None, "", "é", good[:-1], signature("other", body)):
        assert not signature_ok("s3cret", body, bad)
    assert not signature_ok(None, body, good)


async def test_the_sandbox_manages_webhooks_with_an_admin_token_only(bot: Harness) -> None:
    alice = bot.stack.settings.ld_api_token.get_secret_value()
    body = {"url": "http://127.0.0.1:9/hook", "sign": True, "on": True, "secret": "x"}
    async with httpx.AsyncClient(base_url=bot.stack.sandbox_url) as http:
        assert (
            await http.post("/api/v2/webhooks", json=body, headers={"Authorization": alice})
        ).status_code == 403
        admin = {"Authorization": bot.sandbox.admin_token}
        created = (await http.post("/api/v2/webhooks", json=body, headers=admin)).json()
        hook_path = f"/api/v2/webhooks/{created['_id']}"
        assert (await http.get("/api/v2/webhooks", headers=admin)).json()["items"][0]["_id"] == created["_id"]
        patched = await http.patch(
            hook_path, json=[{"op": "replace", "path": "/on", "value": False}], headers=admin
        )
        assert patched.json()["on"] is False
        assert (await http.delete(hook_path, headers=admin)).status_code == 204
        assert (await http.get(hook_path, headers=admin)).status_code == 404
        far = {**body, "url": "http://example.com/hook"}
        await http.post("/api/v2/webhooks", json=far, headers=admin)
    await outside_change(bot, "test", "turnFlagOff")
    assert [d["status"] for d in bot.sandbox.deliveries] == ["refused: not a loopback address"]


# --- the App Home tab ---------------------------------------------------------------------------


async def open_home(bot: Harness, user: str) -> dict[str, Any]:
    from bot.offline.payloads import app_home_opened_payload, signed_event

    request = signed_event(
        bot.stack.settings.slack_signing_secret.get_secret_value(), app_home_opened_payload(user)
    )
    assert (await bot.send(request)).status_code == 200
    await bot.idle()
    home = bot.slack.home(user)
    assert home is not None and home["type"] == "home" and len(home["blocks"]) <= 100
    return home


async def click_home(bot: Harness, user: str, home: dict[str, Any], text: str, nth: int = 0) -> None:
    """Press a button of the Home tab: a click from a view, with no channel and no response_url."""
    from bot.offline.payloads import home_click_payload, signed_interaction

    found = [
        (block, element)
        for block in home["blocks"]
        for element in ([block["accessory"]] if "accessory" in block else block.get("elements", []))
        if isinstance(element, dict) and element.get("type") == "button" and element["text"]["text"] == text
    ]
    block, button = found[nth]
    payload = home_click_payload(
        user=bot.driver.user(user),
        view={**home, "id": f"VHOME{user}"},
        button=button,
        block_id=block.get("block_id"),
    )
    assert "channel" not in payload and "response_url" not in payload
    secret = bot.stack.settings.slack_signing_secret.get_secret_value()
    assert (await bot.send(signed_interaction(secret, payload))).status_code == 200
    await bot.idle()


def home_text(home: dict[str, Any]) -> str:
    return json.dumps(home["blocks"], ensure_ascii=False)


async def test_the_home_tab_renders_and_its_buttons_work_without_a_channel(hooked: Harness) -> None:
    bot = hooked
    await run(bot, "/flag subscribe new-checkout")
    await run(bot, "/flag off new-checkout test")
    await run(bot, '/flag remind new-checkout test in 2 hours "clean up"')
    home = await open_home(bot, ALICE)
    text = home_text(home)
    for part in ("Your open cards", "Approvals waiting for you", "Your reminders", "Your scheduled changes"):
        assert part in text
    assert "flag new-checkout" in text and "clean up" in text and "Changes arrive by LaunchDarkly" in text
    # Apply from Home: the same loop (one PATCH), the card in the channel updated, the answer in DM.
    patches = len(bot.ld_patches())
    await click_home(bot, ALICE, home, "Apply")
    assert len(bot.ld_patches()) == patches + 1
    assert bot.sandbox.projects["demo"].flags["new-checkout"]["environments"]["test"]["on"] is False
    assert any("Applied" in m.text for m in bot.thread(bot.slack.messages(RELEASES)[0]))
    # Cancel a reminder and unsubscribe, from Home.
    await click_home(bot, ALICE, home, "Cancel", nth=1)  # the reminder's (the first is the card's)
    await click_home(bot, ALICE, home, "Unsubscribe")
    assert "no longer follows" in json.dumps([m.text for m in bot.slack.messages(ALICE)])
    home = await open_home(bot, ALICE)
    text = home_text(home)
    assert "No cards waiting for you" in text and "No reminders" in text
    assert "No channel subscribes" in text
    # Bob sees his own (empty) Home; the workspace's subscriptions are shared.
    assert "No cards waiting for you" in home_text(await open_home(bot, BOB))


async def test_the_home_tab_summarises_what_does_not_fit(hooked: Harness) -> None:
    bot = hooked
    for n in range(40):
        channel = f"C_MANY{n:02d}"
        bot.slack.add_channel(channel, channel.lower())
        await run(bot, "/flag subscribe all", channel=channel)
    text = home_text(await open_home(bot, ALICE))
    assert "…and 25 more" in text


async def test_webhook_setup_needs_an_admin_token_and_says_so(bot: Harness) -> None:
    from pydantic import SecretStr

    from bot.subscriptions.webhook import SetupError, setup_webhook

    settings = bot.stack.settings.model_copy(
        update={"flagops_public_url": "http://127.0.0.1:9", "flagops_secret_key": SecretStr("k" * 40)}
    )
    store = bot.stack.runtime.services.subscriptions.store
    with pytest.raises(SetupError, match="LD_ADMIN_TOKEN"):
        await setup_webhook(settings, store, bot.stack.runtime.ld, None)
    writer = SecretStr(bot.stack.settings.ld_api_token.get_secret_value())
    with pytest.raises(SetupError, match="refused") as refused:
        await setup_webhook(settings, store, bot.stack.runtime.ld, writer)
    assert writer.get_secret_value() not in str(refused.value)
    assert not bot.sandbox.webhooks
