"""The "Change flag from message" shortcut end to end: a message in the channel, the signed
shortcut payload, the card in that message's thread, and the fix-it modal for text that does not
parse."""

from __future__ import annotations

from typing import Any

from bot.offline.fake_slack import Message
from bot.offline.payloads import message_shortcut_payload, signed_interaction
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, click, run
from tests.bot.test_approvals import env, latest_view, submit
from tests.bot.test_config_command import second_project


def post(bot: Harness, text: str, user: str = "U_BOB") -> Message:
    """A person's message in #releases (as if typed in Slack)."""
    with bot.slack._lock:
        ts = bot.slack._next_ts()
        message = Message(RELEASES, ts, text, [], user)
        bot.slack._state.messages.setdefault(RELEASES, []).append(message)
    return message


async def shortcut(bot: Harness, message: Message, user: str = ALICE) -> None:
    payload = message_shortcut_payload(
        user=bot.driver.user(user),
        callback_id="flag_from_message",
        channel_id=RELEASES,
        message=message,
        response_url=bot.slack.new_response_url(RELEASES, user),
    )
    secret = bot.stack.settings.slack_signing_secret.get_secret_value()
    assert (await bot.send(signed_interaction(secret, payload))).status_code == 200
    await bot.idle()


def card_in_thread(bot: Harness, message: Message) -> Any:
    (card,) = [m for m in bot.slack.thread(RELEASES, message.ts) if m.buttons]
    return card


async def test_a_flag_command_in_a_message_runs_the_loop_in_its_thread(bot: Harness) -> None:
    message = post(bot, "Incident! <@U_ALICE> please run\n`/flag off new-checkout test`")
    await shortcut(bot, message)
    card = card_in_thread(bot, message)
    assert [b["text"]["text"] for b in card.buttons] == ["Apply", "Cancel"]
    await click(bot, "Apply", message=card)
    assert env(bot, "new-checkout", "test")["on"] is False


async def test_a_natural_phrasing(bot: Harness) -> None:
    message = post(bot, "roll out banner-color blue to 25% in test")
    await shortcut(bot, message)
    card = card_in_thread(bot, message)
    await click(bot, "Apply", message=card)
    rollout = env(bot, "banner-color", "test")["fallthrough"]["rollout"]["variations"]
    assert {v["weight"] for v in rollout} == {25000, 75000}

    message = post(bot, "Could you *turn off* new-checkout in test?")
    await shortcut(bot, message)
    await click(bot, "Apply", message=card_in_thread(bot, message))
    assert env(bot, "new-checkout", "test")["on"] is False


async def test_text_that_does_not_parse_opens_a_prefilled_modal(bot: Harness) -> None:
    message = post(bot, "make new-checkout pop in test")
    await shortcut(bot, message)
    view = latest_view(bot, "flag_from_message_fix")
    prefilled = view["blocks"][1]["element"]["initial_value"]
    assert prefilled == "make new-checkout pop in test"
    assert "could not read" in view["blocks"][0]["text"]["text"]
    assert not bot.slack.thread(RELEASES, message.ts)
    await submit(
        bot,
        view,
        ALICE,
        {"command": {"command": {"type": "plain_text_input", "value": "off new-checkout test"}}},
    )
    await click(bot, "Apply", message=card_in_thread(bot, message))
    assert env(bot, "new-checkout", "test")["on"] is False


async def test_a_rollout_phrase_for_an_unknown_flag_answers_without_waiting_for_a_modal(bot: Harness) -> None:
    message = post(bot, "roll out no-such-flag blue to 25% in test")
    # LaunchDarkly is slow: the modal decision must not wait for it (a trigger lives ~3 s).
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"latency": 1.6})
    await shortcut(bot, message)
    assert not bot.slack.calls_to("views.open"), "nothing to fix in a form: the phrase was understood"
    told = bot.ephemeral_texts(ALICE)[-1]
    assert "no-such-flag" in told and "rollout no-such-flag test 25% blue 75%" in told
    assert not bot.slack.thread(RELEASES, message.ts)


async def test_text_that_does_not_parse_opens_the_modal_before_any_launchdarkly_call(bot: Harness) -> None:
    message = post(bot, "make new-checkout pop in test")
    before = len(bot.ld_requests())
    await shortcut(bot, message)
    assert len(bot.slack.calls_to("views.open")) == 1
    assert len(bot.ld_requests()) == before, "the form opens from the parse alone"


async def test_a_rollout_phrase_uses_the_channels_project(bot: Harness) -> None:
    second_project(bot)
    # Only the channel's project has the flag: reading it from LD_PROJECT would not find it.
    del bot.sandbox.projects["demo"].flags["banner-color"]
    await run(bot, "/flag config project shop", user=BOB)
    message = post(bot, "roll out banner-color blue to 25% in test")
    await shortcut(bot, message)
    await click(bot, "Apply", message=card_in_thread(bot, message))
    shop = bot.sandbox.projects["shop"].flags["banner-color"]["environments"]["test"]
    assert {v["weight"] for v in shop["fallthrough"]["rollout"]["variations"]} == {25000, 75000}


async def test_a_message_with_no_text_opens_an_empty_modal(bot: Harness) -> None:
    message = post(bot, "")
    await shortcut(bot, message)
    view = latest_view(bot, "flag_from_message_fix")
    assert "initial_value" not in view["blocks"][1]["element"], "Slack refuses an empty initial_value"
    assert not any("unhandled" in t.lower() or "went wrong" in t.lower() for t in bot.ephemeral_texts(ALICE))
