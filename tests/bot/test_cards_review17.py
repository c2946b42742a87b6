"""Issue 17's review: the change cards' defects an outsider found, each driven as Slack does
(signed HTTP, the fake Slack, the sandbox over HTTP)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from bot.offline.fake_slack import Message
from tests.bot.harness import ALICE, BOB, CAROL, RELEASES, Harness, buttons, click, details, run

StartBot = Callable[..., Awaitable[Harness]]


def full(message: Any) -> str:
    return str(message.text) + " " + " ".join(json.dumps(b, ensure_ascii=False) for b in message.blocks)


def cards(bot: Harness) -> list[Message]:
    return [m for m in bot.slack.messages(RELEASES) if m.buttons]


async def expired_card(
    start_bot: StartBot, text: str = "/flag off new-checkout test"
) -> tuple[Harness, Message]:
    bot = await start_bot(flagops_confirm_ttl=1)
    await run(bot, text)
    old = bot.card()
    await asyncio.sleep(1.2)
    await bot.stack.runtime.changes.sweep()
    assert buttons(bot) == ["Propose again"]
    return bot, old


# --- 1: Propose again makes one new card, however many press -----------------------------------


async def test_two_people_pressing_propose_again_at_once_make_one_new_card(start_bot: StartBot) -> None:
    bot, old = await expired_card(start_bot)
    before = len(bot.slack.messages(RELEASES))
    alice = bot.click_request("Propose again", user=ALICE, message=old)
    bob = bot.click_request("Propose again", user=BOB, message=old)
    stale = bot.click_request("Propose again", user=CAROL, message=old)
    answers = await asyncio.gather(bot.send(alice), bot.send(bob))
    assert all(a.status_code == 200 for a in answers)
    await bot.idle()
    assert len(bot.slack.messages(RELEASES)) == before + 1, "exactly one new card"
    told = " ".join(bot.ephemeral_texts(ALICE) + bot.ephemeral_texts(BOB))
    assert "already proposed again by <@U_" in told or "is already proposing this again" in told, told
    # A stale third press, later: no third card, and it says who did.
    assert (await bot.send(stale)).status_code == 200
    await bot.idle()
    assert len(bot.slack.messages(RELEASES)) == before + 1
    assert "already proposed again by <@U_" in " ".join(bot.ephemeral_texts(CAROL))


# --- 2: the old card says "proposed again" only once the new card is there --------------------


async def test_a_refused_propose_again_leaves_the_old_card_and_its_button(start_bot: StartBot) -> None:
    bot, old = await expired_card(start_bot)
    shown_before = full(bot.slack.message(RELEASES, old.ts))
    bot.sandbox.projects["demo"].flags["new-checkout"]["environments"]["test"]["on"] = False
    await click(bot, "Propose again", user=BOB, message=old)  # nothing to change now
    after = bot.slack.message(RELEASES, old.ts)
    assert bot.card().ts == old.ts, "no new card"
    assert "proposed it again" not in full(after) and full(after) == shown_before
    assert [b["text"]["text"] for b in after.buttons] == ["Propose again"]
    assert any("nothing to change" in t.lower() for t in bot.ephemeral_texts(BOB)), bot.ephemeral_texts(BOB)
    # The refusal did not use the card up: once there is something to change, it proposes.
    bot.sandbox.projects["demo"].flags["new-checkout"]["environments"]["test"]["on"] = True
    await click(bot, "Propose again", user=BOB, message=after)
    assert bot.card().ts != old.ts and buttons(bot) == ["Apply", "Cancel"]
    assert "<@U_BOB> proposed it again" in full(bot.slack.message(RELEASES, old.ts))
    assert not bot.slack.message(RELEASES, old.ts).buttons


async def test_propose_again_on_a_deleted_flag_keeps_the_old_card(start_bot: StartBot) -> None:
    bot, old = await expired_card(start_bot)
    del bot.sandbox.projects["demo"].flags["new-checkout"]
    await click(bot, "Propose again", message=old)
    assert bot.card().ts == old.ts
    assert "proposed it again" not in full(bot.slack.message(RELEASES, old.ts))
    assert bot.slack.message(RELEASES, old.ts).buttons
    assert "Propose again refused" in await details(bot, old)


# --- 6: Details says how the change is (or was) sent, and the body as sent ---------------------


def sent_as(shown: str) -> str:
    return shown.split("*Sent as*:")[1].split("\n")[0]


async def test_details_of_a_scheduled_change_in_an_approval_environment_say_approval_request(
    bot: Harness,
) -> None:
    await run(bot, "/flag on new-checkout production in 2 hours")
    card = bot.card()
    await click(bot, "Request approval")
    (approval,) = bot.sandbox.approvals.values()
    line = sent_as(await details(bot, card))
    assert "approval request" in line and "scheduled change" not in line, line
    assert f"executionDate` {approval.doc['executionDate']}" in line, line
    assert "POST /api/v2/projects/demo/flags/new-checkout/environments/production/approval-requests" in line


async def test_details_of_json_and_merge_patches_show_the_body_sent(bot: Harness) -> None:
    patch = [{"op": "replace", "path": "/description", "value": "calm"}]
    await run(bot, f"/flag json-patch new-checkout {json.dumps(patch)}")
    shown = await details(bot)
    assert '"patch": [' in shown and '"comment": "flagops change' in shown, shown
    await click(bot, "Apply")
    assert set(bot.ld_patches()[-1]["body"]) == {"patch", "comment"}
    await run(bot, '/flag merge-patch new-checkout {"description": "calmer"}')
    shown = await details(bot)
    assert '"merge": {"description": "calmer"}' in shown and '"comment": "flagops change' in shown, shown
    await click(bot, "Apply")
    assert set(bot.ld_patches()[-1]["body"]) == {"merge", "comment"}


# --- 7: Details' "What happened" keeps LaunchDarkly's facts, escapes once, drops nothing newest --


async def test_details_history_keeps_the_ids_escapes_once_and_shows_the_newest(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    card = bot.card()
    said = "This conflicts with a pending scheduled change: <!here> Tom & Jerry " + "x" * 3000
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"error_every": 1, "error_status": 400, "error_message": said, "methods": ["PATCH"]}
    )
    await click(bot, "Apply", message=card)
    for _ in range(3):
        await click(bot, "Apply anyway", message=bot.slack.message(RELEASES, card.ts))
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"error_every": 0})
    await click(bot, "Apply anyway", message=bot.slack.message(RELEASES, card.ts))
    assert "Applied by <@U_ALICE>" in full(bot.slack.message(RELEASES, card.ts))
    shown = await details(bot, card)
    (answer,) = bot.slack.ephemerals(ALICE)[-1:]
    assert all(len(b["text"]["text"]) <= 3000 for b in answer.blocks if b["type"] == "section")
    assert "→ *applied*" in shown, "the newest move is never cut"
    assert shown.count("invalid_request · PATCH /api/v2/flags/demo/new-checkout · request id") == 4, shown
    assert "Tom &amp; Jerry" in shown and "&lt;!here&gt;" in shown
    assert "&amp;amp;" not in shown and "&amp;lt;" not in shown, "escaped once"


# --- 8: Details of a request with one very long line ------------------------------------------


async def test_details_split_a_long_json_line_and_close_every_fence(bot: Harness) -> None:
    value = "&lt;b&gt;" * 900  # as Slack sends `<b>` typed in a command
    await run(
        bot, f'/flag json-patch new-checkout [{{"op":"replace","path":"/description","value":"{value}"}}]'
    )
    assert buttons(bot) == ["Apply", "Cancel"], bot.ephemeral_texts(ALICE)
    await details(bot)
    (answer,) = bot.slack.ephemerals(ALICE)[-1:]
    code = [b["text"]["text"] for b in answer.blocks if b["type"] == "section" and "```" in b["text"]["text"]]
    assert len(code) >= 3, code
    for text in code:
        assert len(text) <= 3000 and text.count("```") == 2, text[-100:]
        assert text.startswith("```") and text.endswith("```"), "every fence closed"
    assert "".join(t[3:-3] for t in code).count("&lt;b&gt;") == 900, "the whole value, in parts"


# --- 9 and 10: LaunchDarkly's refusal in one plain sentence; the card says who pressed ---------


HOSTILE = "<!here> *bold* _it_ ~strike~ `code` https://evil.example/x?token=abc " + "y" * 3500


def outside_code(text: str) -> str:
    return "".join(text.split("`")[0::2])


async def test_a_refusal_quotes_launchdarkly_short_and_inert_and_says_the_next_step(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    card = bot.card()
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"error_every": 1, "error_status": 400, "error_message": HOSTILE, "methods": ["PATCH"]}
    )
    await click(bot, "Apply", message=card)
    (reply,) = bot.thread(card)
    status = bot.slack.message(RELEASES, card.ts).blocks
    said = [reply.blocks[0]["text"]["text"], *(b["text"]["text"] for b in status if b["type"] == "section")]
    said = [s for s in said if "Not applied" in s]
    assert len(said) == 2, said
    for text in said:
        assert text.startswith(":x: Not applied: LaunchDarkly refused the change (it said `")
        assert "Nothing changed." in text and "fix the command and run it again" in text, text
        assert len(text) < 600, len(text)
        plain = outside_code(text)
        for markup in ("*bold*", "_it_", "~strike~", "evil.example", "&lt;!here&gt;", "yyy"):
            assert markup not in plain, (markup, text)
    assert "(pressed by <@U_ALICE>)" in said[1], said[1]
    shown = await details(bot, card)
    assert "https://evil.example/x?token=abc" in shown and "y" * 1000 in shown, "Details has it"
    (answer,) = bot.slack.ephemerals(ALICE)[-1:]
    texts = [b["text"]["text"] for b in answer.blocks if b["type"] == "section"]
    whole = texts[texts.index("*LaunchDarkly's last answer, whole*") + 1 :]
    joined = "".join(t.strip("`") for t in whole).replace("LaunchDarkly", "")
    assert joined.count("y") == HOSTILE.count("y"), "the whole message"


async def test_failures_and_unknown_outcomes_say_who_pressed(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.5)
    await run(bot, "/flag off new-checkout test")
    card = bot.card()
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"rate_limit_every": 1, "retry_after": 0.1, "reset_after": 0.1, "methods": ["PATCH"]}
    )
    await click(bot, "Apply", message=card)
    status = full(bot.slack.message(RELEASES, card.ts))
    assert "press Apply again" in status and "(pressed by <@U_ALICE>)" in status, status
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"rate_limit_every": 0, "error_every": 1, "error_status": 503, "methods": ["PATCH"]}
    )
    await click(bot, "Apply", message=bot.slack.message(RELEASES, card.ts))
    status = full(bot.slack.message(RELEASES, card.ts))
    assert "Send again" in status and "(pressed by <@U_ALICE>)" in status, status
    first = full(bot.thread(card)[0])
    assert "Outcome unknown" in first


# --- 11: a huge flag name in the footer ---------------------------------------------------------


async def test_a_huge_flag_name_is_clipped_and_the_short_id_survives(bot: Harness) -> None:
    bot.sandbox.projects["demo"].flags["new-checkout"]["name"] = "Ünïcødé 🚀 <!channel> " * 250
    await run(bot, "/flag off new-checkout test")
    card = bot.card()
    change_id = card.buttons[0]["value"]
    footer = card.blocks[-1]["elements"][0]["text"]
    assert len(footer) <= 2000
    assert footer.endswith(f"project demo · change {change_id[:8]}"), footer[-200:]
    link = footer.split(" · project demo")[0]
    assert link.startswith("<") and link.endswith(" in LaunchDarkly>") and link.count(">") == 1, link
    assert "Ünïcødé" in link and "…" in link and len(link) < 400
