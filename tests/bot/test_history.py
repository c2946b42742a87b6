"""``/flag history``, the History button and menu, Older: LaunchDarkly's audit log in Slack, through
signed HTTP, the fake Slack and the sandbox. Changes are made both through the bot and straight
in LaunchDarkly (bob's token over HTTP, as another tool or the LaunchDarkly UI would)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx

from bot.history.cards import OLDER, HistoryPage, plain_title, render_history
from bot.offline.fake_slack import Ephemeral, Message
from bot.slack import blocks
from bot.slack.blocks import HISTORY, HISTORY_MENU, CardView
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, choose, click, run

SEMANTIC = {"Content-Type": "application/json; domain-model=launchdarkly.semanticpatch"}


def as_message(ephemeral: Ephemeral) -> Message:
    """An ephemeral answer as a message whose buttons can be clicked."""
    return Message(ephemeral.channel, "1700000000.000009", ephemeral.text, ephemeral.blocks, "U_FLAGOPS")


def everything(ephemeral: Ephemeral) -> str:
    return ephemeral.text + "\n" + "\n".join(json.dumps(b, ensure_ascii=False) for b in ephemeral.blocks)


async def outside_change(
    bot: Harness, env: str, kind: str, *, flag: str = "new-checkout", comment: str | None = None, **extra: Any
) -> None:
    """A change made straight in LaunchDarkly with bob's token (not through the bot). Async: the
    sandbox serves in the test's own event loop."""
    body: dict[str, Any] = {"environmentKey": env, "instructions": [{"kind": kind, **extra}]}
    if comment:
        body["comment"] = comment
    token = next(a.token for a in bot.sandbox.accounts if a.member["email"] == "bob@example.com")
    async with httpx.AsyncClient(base_url=bot.stack.sandbox_url) as http:
        answer = await http.patch(
            f"/api/v2/flags/demo/{flag}",
            json=body,
            headers={**SEMANTIC, "Authorization": token, "LD-API-Version": "20240415"},
        )
    assert answer.status_code == 200, answer.text
    await bot.idle()  # what the change set off (a webhook delivery) is done


def audit_requests(bot: Harness) -> list[dict[str, Any]]:
    return [r for r in bot.ld_requests() if r["path"].startswith("/api/v2/auditlog")]


async def test_history_shows_a_change_made_outside_the_bot_with_before_and_after(bot: Harness) -> None:
    await outside_change(bot, "test", "turnFlagOff", comment="rollback, checkout errors")
    patches = len(bot.ld_patches())
    await run(bot, "/flag history new-checkout test")
    (answer,) = bot.slack.ephemerals(ALICE)
    text = everything(answer)
    assert "History of *New checkout* (`new-checkout`) in *test*" in text
    assert "Bob Builder (bob@example.com)" in text or "bob@example.com" in text
    assert "*Targeting in test*: ON → *OFF*" in text
    assert "rollback, checkout errors" in text
    assert "through flagops" not in text, "made outside the bot: no card to link"
    listing, detail = audit_requests(bot)
    assert (
        listing["query"]["spec"] == "proj/demo:env/test:flag/new-checkout"
        and listing["query"]["limit"] == "5"
    )
    assert detail["path"].startswith("/api/v2/auditlog/")
    assert len(bot.ld_patches()) == patches, "history reads, never writes"


async def test_a_change_made_through_flagops_links_to_its_card(bot: Harness) -> None:
    await run(bot, '/flag off new-checkout test -m "incident 42"')
    await click(bot, "Apply")
    card = bot.card()
    await run(bot, "/flag history new-checkout test", user=BOB)
    text = everything(bot.slack.ephemerals(BOB)[-1])
    permalink = f"/archives/{RELEASES}/p{card.ts.replace('.', '')}"
    assert permalink in text and "|the card>" in text
    assert "through flagops for <@U_ALICE>" in text
    assert "“incident 42”" in text and "flagops change" not in text, "only the person's comment is shown"
    assert "*Targeting in test*: ON → *OFF*" in text


async def test_every_environment_pages_with_older(bot: Harness) -> None:
    bot.sandbox.projects["demo"].environments["production"]["approvalSettings"]["required"] = False
    steps = [("test", "Off"), ("production", "On"), ("test", "On"), ("production", "Off"), ("test", "Off")]
    for env, kind in [*steps, ("production", "On"), ("test", "On")]:
        await outside_change(bot, env, f"turnFlag{kind}")
    await run(bot, "/flag history new-checkout")
    first = bot.slack.ephemerals(ALICE)[-1]
    text = everything(first)
    assert "(every environment)" in text and text.count('"type": "divider"') == 5
    assert "Targeting in production" in text and "Targeting in test" in text, text
    assert [b["text"]["text"] for b in as_message(first).buttons] == ["Older"]
    listing = audit_requests(bot)[0]
    assert listing["query"]["spec"] == "proj/demo:env/*:flag/new-checkout"
    await click(bot, "Older", message=as_message(first))
    second = bot.slack.ephemerals(ALICE)[-1]
    assert everything(second).count('"type": "divider"') == 2, "seven changes: five, then two"
    assert ", before " in everything(second) and as_message(second).buttons == []
    older = [r for r in audit_requests(bot) if r["path"] == "/api/v2/auditlog"][-1]
    assert "before" in older["query"]


async def test_the_show_card_and_the_change_card_open_the_history(bot: Harness) -> None:
    await outside_change(bot, "test", "turnFlagOff")
    await run(bot, "/flag show new-checkout test")
    shown = as_message(bot.slack.ephemerals(ALICE)[-1])
    (button,) = shown.buttons
    assert button["action_id"] == HISTORY and json.loads(button["value"])["env"] == "test"
    await click(bot, "History", message=shown)
    assert "*Targeting in test*: ON → *OFF*" in everything(bot.slack.ephemerals(ALICE)[-1])

    await run(bot, "/flag on new-checkout test")
    card = bot.card()
    menu = next(
        e for b in card.blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "overflow"
    )
    assert menu["action_id"] == HISTORY_MENU
    await choose(bot, card, menu, menu["options"][0]["value"], user=BOB)
    text = everything(bot.slack.ephemerals(BOB)[-1])
    assert "History of *New checkout*" in text and "in *test*" in text
    await click(bot, "Apply")
    applied = bot.card()
    assert any(
        e["type"] == "overflow" for b in applied.blocks if b["type"] == "actions" for e in b["elements"]
    )


async def test_forged_history_values_are_refused_and_nothing_is_read(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    card = bot.card()
    before = len(bot.ld_requests())
    forged = [
        {"project": "x/../demo", "flag": "new-checkout"},
        {"project": "demo", "flag": "a#b"},
        {"project": "demo", "flag": "new-checkout", "env": "../x"},
        {"project": "demo", "flag": "new-checkout", "before": -5},
        {"project": "demo", "flag": "new-checkout", "extra": 1},
    ]
    for value in [*[json.dumps(v) for v in forged], "not json", ""]:
        for action in (HISTORY, OLDER):
            fake = Message(card.channel, card.ts, "x", [_button(action, value)], "U_FLAGOPS")
            await click(bot, "History", message=fake)
            assert "not one flagops made" in bot.ephemeral_texts(ALICE)[-1]
    await choose(bot, card, {"action_id": HISTORY_MENU}, "no-such-change", user=ALICE)
    assert "don't know this change" in bot.ephemeral_texts(ALICE)[-1]
    assert len(bot.ld_requests()) == before


def _button(action_id: str, value: str) -> dict[str, Any]:
    element = {"type": "button", "action_id": action_id, "value": value}
    return {"type": "actions", "elements": [{**element, "text": {"type": "plain_text", "text": "History"}}]}


async def test_unknown_flags_environments_and_a_deleted_flag(bot: Harness) -> None:
    await run(bot, "/flag history new-chekout")
    assert "There is no flag `new-chekout`" in bot.ephemeral_texts(ALICE)[-1]
    assert "new-checkout" in bot.ephemeral_texts(ALICE)[-1]
    await run(bot, "/flag history new-checkout staging")
    assert "There is no environment `staging`" in bot.ephemeral_texts(ALICE)[-1]
    await run(bot, "/flag delete holiday-banner confirm holiday-banner")
    await click(bot, "Apply")
    await run(bot, "/flag history holiday-banner")
    text = everything(bot.slack.ephemerals(ALICE)[-1])
    assert "There is no flag `holiday-banner`" in text, "the page says the flag is gone"
    assert "*State*: live → *deleted*" in text and "through flagops for <@U_ALICE>" in text


async def test_an_unreadable_audit_log_or_entry_is_said_in_words(bot: Harness) -> None:
    await outside_change(bot, "test", "turnFlagOff")
    bot.sandbox.faults.paths = ["/api/v2/auditlog/"]
    bot.sandbox.faults.error_every = 1
    bot.sandbox.faults.error_status = 404
    await run(bot, "/flag history new-checkout test")
    text = everything(bot.slack.ephemerals(ALICE)[-1])
    assert "LaunchDarkly did not give this entry" in text and "bob@example.com" in text
    bot.sandbox.faults.paths = ["/api/v2/auditlog"]
    bot.sandbox.faults.error_status = 403
    await run(bot, "/flag history new-checkout test")
    assert "Could not read LaunchDarkly's audit log" in bot.ephemeral_texts(ALICE)[-1]
    assert "403" in bot.ephemeral_texts(ALICE)[-1]


def test_the_history_menu_is_on_flag_cards_in_every_state_and_not_on_project_cards() -> None:
    view = CardView("c1", ALICE, "demo", "new-checkout", "New checkout", "test", ["Turn on"], [], "on", "[]")
    for buttons in [(blocks.APPLY, blocks.CANCEL), ()]:
        _, body = blocks.render_card(dataclasses.replace(view, buttons=buttons))
        (actions,) = [b for b in body if b["type"] == "actions"]
        assert actions["elements"][-1] == blocks.history_menu("c1")
    _, body = blocks.render_card(dataclasses.replace(view, on_project=True, buttons=()))
    (actions,) = [b for b in body if b["type"] == "actions"]
    (menu,) = actions["elements"]
    assert [o["text"]["text"] for o in menu["options"]] == ["Details"], "a project has no flag history"


def test_plain_titles_and_the_page_without_entries() -> None:
    assert plain_title(
        "[Ann Lee](mailto:ann@x.io) turned on the flag [Checkout](/p/e/features/c) in `Prod`"
    ) == ("Ann Lee turned on the flag Checkout in `Prod`")
    page = HistoryPage(
        "new-checkout", "New checkout", "demo", None, [], before_text="Mon 01 Dec 09:00:00 UTC"
    )
    text, body = render_history(page)
    assert text == "History of new-checkout"
    assert "No older changes" in json.dumps(body) and "(every environment)" in json.dumps(body)


async def test_a_project_or_flag_that_is_not_a_key_is_refused_in_words(bot: Harness) -> None:
    for text in ["/flag history new-checkout --project x/../demo", f"/flag history {'a' * 300}"]:
        await run(bot, text)
        said = bot.ephemeral_texts(ALICE)[-1]
        assert "is not a LaunchDarkly" in said and "went wrong" not in said, said
    assert audit_requests(bot) == []
