"""The slash command and the change card's buttons.

Both go through the durable inbox (``bot.inbox``): the listener writes the delivery and acks, and
a worker runs it. The account verbs (``link-account``, ``unlink-account``) do not: the first opens a
modal with the command's ``trigger_id`` (valid about 3 seconds), and the text after either is most
likely a pasted token, which is never written anywhere. Nor do a near miss of one (``link-acount
xoxp-…``, ``login …``: answered with the bare verb's guess) and any line holding what looks like a
token or key (``commands.secrets``: refused unread): they are answered from the listener, so a
pasted token never reaches the inbox's ``INSERT``.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.inbox.service import Inbox
from bot.lifecycle.models import Who
from bot.lifecycle.service import ChangeService
from bot.slack import blocks
from bot.slack.messenger import ReplyTo
from bot.slack.router import CommandRouter
from commands.parse import account_verb_meant
from commands.secrets import looks_like_secret

CHANGE_ACTIONS = re.compile(r"^change_")


def who_from_command(body: dict[str, Any]) -> Who:
    """The requester of a slash command, and where to answer them alone."""
    return Who(
        user_id=str(body.get("user_id", "")),
        user_name=str(body.get("user_name") or body.get("user_id", "")),
        reply=ReplyTo(
            channel_id=str(body.get("channel_id", "")),
            user_id=str(body.get("user_id", "")),
            response_url=body.get("response_url"),
        ),
        trigger_id=body.get("trigger_id"),
        team_id=str(body.get("team_id") or ""),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def who_from_action(body: dict[str, Any]) -> Who:
    """The clicker of a button, and where to answer them alone."""
    user = _dict(body.get("user"))
    channel_doc = _dict(body.get("channel"))
    container = _dict(body.get("container"))
    channel = channel_doc.get("id") or container.get("channel_id", "")
    message = _dict(body.get("message"))
    return Who(
        user_id=str(user.get("id", "")),
        user_name=str(user.get("username") or user.get("name") or user.get("id", "")),
        reply=ReplyTo(
            channel_id=str(channel),
            user_id=str(user.get("id", "")),
            response_url=body.get("response_url"),
            thread_ts=message.get("thread_ts"),
        ),
        trigger_id=body.get("trigger_id"),
        team_id=str(_dict(body.get("team")).get("id") or user.get("team_id") or ""),
    )


def stays_in_listener(text: str) -> bool:
    """Whether a slash command (or a guess's command) is run by its listener rather than written
    to the inbox: an account verb, what nearly spells or means one (a modal's ``trigger_id``; a
    pasted token after them), and anything holding what looks like a token."""
    words = text.split(None, 1)
    return (
        (bool(words) and account_verb_meant(words[0]) is not None)
        or looks_like_secret(text)
        or _names_account_verb(text)
    )


def _names_account_verb(text: str) -> bool:
    """Whether any word of ``text`` is (means, nearly spells) an account verb: the parser finds the
    verb after options too (``--project demo link-account <token>``), so every word is checked."""
    words = {word.strip("\"'“”‘’`;,") for word in text.split()}
    # A word much longer than the verbs cannot nearly spell one (a 5,000-character line stays quick).
    return any(account_verb_meant(word) is not None for word in words if len(word) <= 24)


def first_action(body: dict[str, Any]) -> dict[str, Any]:
    """The action a click payload carries (empty when it carries none)."""
    actions = body.get("actions")
    return actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}


def register(
    app: AsyncApp, router: CommandRouter, service: ChangeService, command: str, inbox: Inbox
) -> None:
    """Wire the slash command to ``router`` and the card buttons to ``service``, through ``inbox``."""

    async def run_command(body: dict[str, Any]) -> None:
        await router.run_command(who_from_command(body), str(body.get("text") or ""))

    inbox.handle("command", run_command)

    @app.command(command)
    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        if stays_in_listener(str(body.get("text") or "")):
            await ack()
            inbox.after_ack(body, lambda: run_command(body))
            return
        await inbox.accept("command", body, ack)

    async def run_guess(body: dict[str, Any]) -> None:
        # "Did you mean `new-checkout`?": the corrected command, run as whoever clicks, exactly as
        # if they had typed it (the parser and every check again; the value is only text).
        who = who_from_action(body)
        value = first_action(body).get("value")
        if not isinstance(value, str) or not value.strip() or len(value) > blocks.BUTTON_VALUE_LIMIT:
            await service.tell(who, ":grey_question: That button is not for me.")
            return
        await router.run_command(who, value)

    inbox.handle("guess", run_guess)

    @app.action(blocks.PROPOSE_GUESS)
    async def on_guess(ack: AsyncAck, body: dict[str, Any]) -> None:
        value = first_action(body).get("value")
        if isinstance(value, str) and stays_in_listener(value):
            await ack()
            inbox.after_ack(body, lambda: run_guess(body))
            return
        await inbox.accept("guess", body, ack)

    async def run_card_button(body: dict[str, Any]) -> None:
        action = first_action(body)
        await service.click(str(action.get("action_id")), str(action.get("value")), who_from_action(body))

    inbox.handle("change_click", run_card_button)

    @app.action(CHANGE_ACTIONS)
    async def on_card_button(ack: AsyncAck, body: dict[str, Any]) -> None:
        await inbox.accept("change_click", body, ack)
