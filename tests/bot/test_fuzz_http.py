"""Fuzzed Slack requests through signed HTTP: slash commands, button clicks with forged values,
modal submissions with forged metadata and state, message shortcuts on any message.

Every one is answered (HTTP 200, never a 5xx or a traceback), none ends in the "something went
wrong on flagops' side" apology, no planted mention or link comes back as markup in any field
Slack renders, no request leaves for anywhere but LaunchDarkly's API and Slack (forged
``response_url``s point at a recording server that must stay silent), and no LaunchDarkly path is
anything but a canonical ``/api/v2/`` one.

CI runs a few hundred of each; ``pytest -m fuzz`` runs the long suite (``FLAGOPS_FUZZ_COMMANDS``
commands, 10,000 by default, and as many interactions), with a budget of its own outside ``.ci/run``.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import pytest

from bot.approvals.cards import APPLY as APPROVAL_APPLY
from bot.approvals.cards import APPROVE, DECLINE, DECLINE_CALLBACK
from bot.history.cards import OLDER as HISTORY_OLDER
from bot.identity.accounts import LINK_ACCOUNT_CALLBACK
from bot.links.flag_links import FLAG_ACTION, LINK_MESSAGE_CALLBACK, LINK_MODAL_CALLBACK
from bot.links.message_actions import FIX_CALLBACK, FROM_MESSAGE_CALLBACK
from bot.offline.payloads import (
    block_actions_payload,
    message_shortcut_payload,
    signed_interaction,
    view_submission_payload,
)
from bot.scheduling.listeners import REMINDER_CANCEL, SCHEDULED_DELETE
from bot.scheduling.reminders import DIGEST_ARCHIVE, DIGEST_SNOOZE
from bot.slack import blocks
from tests.bot.harness import ALICE, BOB, RELEASES, Harness
from tests.bot.rendered import BROADCASTS, POISON, leaks
from tests.bot.test_hostile import attacker
from tests.bot.test_message_actions import post
from tests.fuzzing import KEYS, WORDS, command

CI_COMMANDS = 250
CI_INTERACTIONS = 300
LONG = int(os.environ.get("FLAGOPS_FUZZ_COMMANDS", "10000"))

# Markers of markup no input may produce. (A typed `--reviewers <@U…>` is a mention the bot makes
# on purpose, from the id, so user mentions are checked in test_escaping, not here.)
MARKERS = (*BROADCASTS, "<!subteam^SEVIL", "<#CEVIL", "<http://evil", "<mailto:evil")
APOLOGY = "something went wrong on flagops' side"

ACTION_IDS = [
    blocks.APPLY,
    blocks.APPLY_ANYWAY,
    blocks.CANCEL,
    blocks.REQUEST_APPROVAL,
    blocks.SEND_AGAIN,
    blocks.UNDO,
    APPROVE,
    DECLINE,
    APPROVAL_APPLY,
    REMINDER_CANCEL,
    SCHEDULED_DELETE,
    DIGEST_ARCHIVE,
    DIGEST_SNOOZE,
    FLAG_ACTION,
    blocks.HISTORY,
    blocks.HISTORY_MENU,
    HISTORY_OLDER,
    "change_no_such_button",
    "approval_no_such_button",
]
CALLBACKS = [DECLINE_CALLBACK, LINK_ACCOUNT_CALLBACK, FIX_CALLBACK, LINK_MODAL_CALLBACK, "no_such_view"]
SHORTCUTS = [FROM_MESSAGE_CALLBACK, LINK_MESSAGE_CALLBACK]


def forged_values(real: list[str]) -> list[str]:
    """Button values and metadata a forger would try, and the real ones the bot handed out."""
    shapes: list[Any] = [
        {},
        [],
        None,
        1,
        {"project": "demo", "flag": "new-checkout"},
        {"project": "x/../demo", "flag": "a#b"},
        {"project": "demo", "flag": POISON, "env": "test"},
        {"c": RELEASES, "u": ALICE, "r": "http://localhost:9/hook", "t": "1.1"},
        {"c": "C_OTHER", "u": BOB, "card": "x" * 40},
        {"id": "../../etc/passwd"},
    ]
    return [
        "",
        "not json",
        "{",
        POISON,
        "a" * 5000,
        "\x00",
        "../",
        "1" * 40,
        *[json.dumps(s) for s in shapes],
        *real,
        *[r[:-1] for r in real if r],
        *[r + "0" for r in real],
    ]


def texts(rng: random.Random) -> str:
    return rng.choice([command(rng), POISON, "", rng.choice(WORDS), " ".join(rng.choices(KEYS, k=3))])


async def _setup(bot: Harness) -> list[str]:
    """Real cards and approval cards to forge clicks on; the values they carry."""
    for text in [
        "/flag off new-checkout test",
        "/flag on new-checkout production",
        "/flag remind new-checkout in 2 hours check",
    ]:
        await bot.command(text, user=ALICE)
        await bot.idle()
    await bot.click("Request approval", user=ALICE)
    await bot.idle()
    values = [b.get("value", "") for m in bot.slack.all_messages() for b in m.buttons]
    return [v for v in values if v]


def _click(bot: Harness, rng: random.Random, values: list[str], url: str) -> dict[str, Any]:
    cards = [m for m in bot.slack.all_messages() if m.buttons] or bot.slack.all_messages()
    target = rng.choice(cards)
    action = rng.choice(ACTION_IDS)
    button = {"action_id": action, "block_id": "b", "type": "button", "value": rng.choice(values)}
    if rng.random() < 0.2:
        button = {"action_id": action, "block_id": "b", "type": "static_select", "selected_option": None}
    payload = block_actions_payload(
        user=bot.driver.user(rng.choice([ALICE, BOB])),
        channel_id=target.channel,
        message=target,
        button=button,
        response_url=url if rng.random() < 0.5 else bot.slack.new_response_url(target.channel, ALICE),
    )
    payload["actions"][0].update(button)
    return payload


def _submission(bot: Harness, rng: random.Random, values: list[str]) -> dict[str, Any]:
    views = list(bot.slack.views().values())
    view = dict(rng.choice(views)) if views and rng.random() < 0.5 else {"id": "V1", "type": "modal"}
    view["callback_id"] = rng.choice(CALLBACKS)
    view["private_metadata"] = rng.choice(values)
    block, action = rng.choice(["reason", "token", "text", "flag", "b"]), rng.choice(["reason", "token", "a"])
    state: dict[str, Any] = {"type": "plain_text_input", "value": texts(rng)}
    if rng.random() < 0.3:
        state = {"type": "external_select", "selected_option": {"value": rng.choice(values)}}
    return view_submission_payload(
        user=bot.driver.user(rng.choice([ALICE, BOB])), view=view, values={block: {action: state}}
    )


def _shortcut(bot: Harness, rng: random.Random, url: str) -> dict[str, Any]:
    message = post(bot, texts(rng))
    return message_shortcut_payload(
        user=bot.driver.user(ALICE),
        callback_id=rng.choice(SHORTCUTS),
        channel_id=RELEASES,
        message=message,
        response_url=url,
    )


def _answered(bot: Harness, status: int, what: str) -> None:
    assert status == 200 or 400 <= status < 500, (status, what[:300])


def _check(bot: Harness, hits: list[Any]) -> None:
    said = [e.text for e in bot.slack.ephemerals()] + [m.text for m in bot.slack.all_messages()]
    said += [str(r.payload.get("text")) for r in bot.slack.responses]
    unhandled = [t for t in said if APOLOGY in t]
    assert not unhandled, unhandled[:3]
    found = leaks(bot, MARKERS)
    assert not found, found[:3]
    assert hits == [], f"{len(hits)} requests reached a forged response_url"
    for request in bot.ld_requests():
        path = request["path"]
        assert path.startswith("/api/v2/") and "/../" not in path and "\x00" not in path, path


async def run_commands(bot: Harness, count: int, seed: int) -> None:
    rng = random.Random(seed)
    async with attacker() as (_url, hits):
        for _ in range(count):
            text = command(rng)
            answer = await bot.command(f"/flag {text}", user=ALICE)
            _answered(bot, answer.status_code, text)
            await bot.idle()
        _check(bot, hits)


async def run_interactions(bot: Harness, count: int, seed: int) -> None:
    rng = random.Random(seed)
    values = forged_values(await _setup(bot))
    secret = bot.stack.settings.slack_signing_secret.get_secret_value()
    async with attacker() as (url, hits):
        for _ in range(count):
            pick = rng.random()
            if pick < 0.6:
                payload = _click(bot, rng, values, url)
            elif pick < 0.85:
                payload = _submission(bot, rng, values)
            else:
                payload = _shortcut(bot, rng, url)
            answer = await bot.send(signed_interaction(secret, payload))
            _answered(bot, answer.status_code, json.dumps(payload)[:300])
            assert "Traceback" not in answer.text
            await bot.idle()
        _check(bot, hits)


async def test_fuzzed_commands_through_signed_http(bot: Harness) -> None:
    await run_commands(bot, CI_COMMANDS, seed=20261201)


async def test_fuzzed_clicks_submissions_and_shortcuts_through_signed_http(bot: Harness) -> None:
    await run_interactions(bot, CI_INTERACTIONS, seed=20261202)


@pytest.mark.fuzz
async def test_fuzzed_commands_long_run(bot: Harness) -> None:
    await run_commands(bot, LONG, seed=int(os.environ.get("FLAGOPS_FUZZ_SEED", random.randrange(2**32))))


@pytest.mark.fuzz
async def test_fuzzed_interactions_long_run(bot: Harness) -> None:
    await run_interactions(bot, LONG, seed=int(os.environ.get("FLAGOPS_FUZZ_SEED", random.randrange(2**32))))
