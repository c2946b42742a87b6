"""Flag links end to end: the "Link message to flag" shortcut (picker options answered by
LaunchDarkly's search, the modal submitted, the link in the sandbox with the message's permalink,
the reply in its thread), ``/flag link`` for a conversation, and ``/flag link edit`` by JSON patch."""

from __future__ import annotations

import time
from typing import Any

from bot.launchdarkly.sandbox.state import Faults
from bot.offline.fake_slack import Message
from bot.offline.payloads import block_suggestion_payload, message_shortcut_payload, signed_interaction
from tests.bot.harness import ALICE, RELEASES, Harness, run
from tests.bot.test_approvals import StartBot, audit, latest_view, link, member_id, start, submit
from tests.bot.test_message_actions import post

MODAL = "link_message_to_flag_submit"


async def shortcut(bot: Harness, message: Message, user: str = ALICE) -> None:
    payload = message_shortcut_payload(
        user=bot.driver.user(user),
        callback_id="link_message_to_flag",
        channel_id=RELEASES,
        message=message,
        response_url=bot.slack.new_response_url(RELEASES, user),
    )
    assert (await bot.send(signed_interaction(_secret(bot), payload))).status_code == 200
    await bot.idle()


async def options(bot: Harness, view: dict[str, Any], typed: str, user: str = ALICE) -> list[dict[str, Any]]:
    """What the flag picker shows for ``typed`` (the options request's answer, as Slack reads it)."""
    payload = block_suggestion_payload(
        user=bot.driver.user(user), view=view, block_id="flag", action_id="flag_link_flag", value=typed
    )
    response = await bot.send(signed_interaction(_secret(bot), payload))
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()["options"]
    return found


def picked(flag_key: str, title: str = "") -> dict[str, Any]:
    """The modal's state: ``flag_key`` picked, ``title`` typed."""
    option = {"text": {"type": "plain_text", "text": flag_key}, "value": flag_key}
    return {
        "flag": {"flag_link_flag": {"type": "external_select", "selected_option": option}},
        "title": {"title": {"type": "plain_text_input", "value": title or None}},
    }


def links(bot: Harness, flag: str = "new-checkout") -> list[dict[str, Any]]:
    return [s.doc for s in bot.sandbox.links.values() if (s.project, s.flag) == ("demo", flag)]


def _secret(bot: Harness) -> str:
    return bot.stack.settings.slack_signing_secret.get_secret_value()


async def test_link_a_message_to_a_flag(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await link(bot, ALICE, "sandbox-alice")
    message = post(bot, "Launch plan for the *new checkout*: <https://docs.example.com/plan|the plan>")
    await shortcut(bot, message)
    view = latest_view(bot, MODAL)
    assert not bot.sandbox.links, "the modal opens before anything is linked"
    assert "Launch plan for the new checkout" in str(view["blocks"][0])

    shown = await options(bot, view, "check")
    option = {"text": {"type": "plain_text", "text": "New checkout (new-checkout)"}, "value": "new-checkout"}
    assert option in shown
    assert all("check" in o["text"]["text"].lower() for o in shown)
    searches = [r for r in bot.ld_requests() if r["path"] == "/api/v2/flags/demo"]
    assert searches[-1]["query"]["filter"] == "query:check"

    await submit(bot, view, ALICE, picked("new-checkout", "Launch thread"))
    (created,) = links(bot)
    workspace = f"https://{bot.slack.team_id.lower()}.slack.com"
    permalink = f"{workspace}/archives/{RELEASES}/p{message.ts.replace('.', '')}"
    assert created["_deepLink"] == permalink
    assert created["title"] == "Launch thread"
    assert created["_timestamp"]["milliseconds"] == int(float(message.ts) * 1000), "dated at the message"
    (record,) = audit(bot, "createFlagLink")
    assert record["memberId"] == member_id(bot, "alice@example.com"), "linked as alice's member"

    (reply,) = bot.slack.thread(RELEASES, message.ts)
    assert "<@U_ALICE> linked this message to *New checkout* (`new-checkout`)" in str(reply.blocks)
    assert "Launch thread" in reply.text and created["_id"] in str(reply.blocks)


async def test_an_empty_title_takes_the_messages_first_line(bot: Harness) -> None:
    message = post(bot, "Rollout of <#C123|payments> starts Monday\nsecond line")
    await shortcut(bot, message)
    view = latest_view(bot, MODAL)
    await submit(bot, view, ALICE, picked("banner-color"))
    (created,) = links(bot, "banner-color")
    assert created["title"] == "Rollout of #payments starts Monday"


async def test_submitting_without_a_flag_keeps_the_modal_open(bot: Harness) -> None:
    await shortcut(bot, post(bot, "a message"))
    view = latest_view(bot, MODAL)
    payload = {
        "type": "view_submission",
        "user": {"id": ALICE, "username": "alice"},
        "view": {**view, "state": {"values": {"flag": {"flag_link_flag": {"selected_option": None}}}}},
    }
    response = await bot.send(signed_interaction(_secret(bot), payload))
    errors = {"flag": "Pick a flag to link this message to."}
    assert response.json() == {"response_action": "errors", "errors": errors}
    assert not bot.sandbox.links


async def test_a_slow_search_answers_in_time_from_the_cache(start_bot: StartBot) -> None:
    # The timeout leaves LaunchDarkly time to answer the first search on a busy machine; the slow
    # searches after it take far longer than the timeout.
    bot = await start_bot(flagops_flag_search_timeout=0.8)
    await shortcut(bot, post(bot, "a message"))
    view = latest_view(bot, MODAL)
    everything = await options(bot, view, "")
    assert {o["value"] for o in everything} >= {"new-checkout", "banner-color"}

    bot.sandbox.faults = Faults(latency=2.0)
    started = time.monotonic()
    narrowed = await options(bot, view, "banner")
    assert time.monotonic() - started < 1.9, "answered before LaunchDarkly did"
    expected = sorted(o["value"] for o in everything if "banner" in o["text"]["text"].lower())
    assert "banner-color" in expected
    assert sorted(o["value"] for o in narrowed) == expected, "the empty search's flags, filtered here"
    started = time.monotonic()
    assert await options(bot, view, "zzz") == [], "nothing known: an empty menu, not a timeout"
    assert time.monotonic() - started < 1.9

    await bot.idle()  # the slow searches finish in the background and fill the cache
    bot.sandbox.faults = Faults()
    before = len(bot.ld_requests())
    assert sorted(o["value"] for o in await options(bot, view, "banner")) == expected
    assert len(bot.ld_requests()) == before, "answered from the cache"


async def test_link_this_conversation_then_edit_the_link(bot: Harness) -> None:
    await run(bot, '/flag link new-checkout "Launch thread"')
    (created,) = links(bot)
    assert created["_deepLink"] == f"https://{bot.slack.team_id.lower()}.slack.com/archives/{RELEASES}"
    assert created["title"] == "Launch thread"
    note = bot.slack.messages(RELEASES)[-1]
    assert "linked this conversation to *New checkout*" in str(note.blocks)

    link_id = created["_id"]
    await run(bot, f'/flag link edit new-checkout {link_id} title "Launch" description "Go/no-go in here"')
    (stored,) = links(bot)
    assert (stored["title"], stored["description"]) == ("Launch", "Go/no-go in here")
    (patch,) = [r for r in bot.ld_patches() if "/flag-links/" in r["path"]]
    assert patch["path"].endswith(f"/flags/new-checkout/{link_id}")
    assert patch["body"] == [
        {"op": "replace", "path": "/title", "value": "Launch"},
        {"op": "replace", "path": "/description", "value": "Go/no-go in here"},
    ], "a bare JSON patch array (seed 000/001)"
    answer = bot.ephemeral_texts(ALICE)[-1]
    assert "updated" in answer and "“Launch thread” → “Launch”" in answer

    await run(bot, f'/flag link edit new-checkout {link_id[:8]} title "Launch day"')
    assert links(bot)[0]["title"] == "Launch day", "a unique prefix of the id names the link"


async def test_editing_an_unknown_link_names_the_flags_links(bot: Harness) -> None:
    await run(bot, '/flag link new-checkout "Launch thread"')
    (created,) = links(bot)
    await run(bot, '/flag link edit new-checkout launch-threa title "Launch"')
    answer = bot.ephemeral_texts(ALICE)[-1]
    assert "has no link `launch-threa`" in answer and created["_id"] in answer and "Launch thread" in answer
    assert not [r for r in bot.ld_patches() if "/flag-links/" in r["path"]], "nothing was sent"

    await run(bot, '/flag link edit banner-color whatever title "x"')
    assert "`banner-color` has no links" in bot.ephemeral_texts(ALICE)[-1]
    await run(bot, "/flag link edit new-checkout whatever")
    assert "Nothing to change" in bot.ephemeral_texts(ALICE)[-1]


async def test_linking_an_unknown_flag_links_nothing(bot: Harness) -> None:
    await run(bot, "/flag link new-chekout")
    answer = bot.ephemeral_texts(ALICE)[-1]
    assert "no flag `new-chekout`" in answer and "new-checkout" in answer and "Nothing was linked" in answer
    assert not bot.sandbox.links


async def test_required_linked_accounts_ask_to_link_before_linking(start_bot: StartBot) -> None:
    bot = await start(start_bot, flagops_require_linked_accounts=True)
    await run(bot, "/flag link new-checkout")
    assert "/flag link-account" in bot.ephemeral_texts(ALICE)[-1]
    assert not bot.sandbox.links
