"""The message shortcut "Change flag from message" and its fix-the-text modal.

The shortcut acks, then hands over in the listener (it may open the fix modal with its
``trigger_id``, valid about 3 s); the modal's text is parsed in the listener (an error is the ack),
then the submission is written to the inbox and acked, and the command runs from there."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.approvals.listeners import view_value, who_from_view
from bot.lifecycle.models import Who
from bot.links.message_actions import (
    COMMAND_ACTION,
    COMMAND_BLOCK,
    FIX_CALLBACK,
    FROM_MESSAGE_CALLBACK,
    MessageActions,
    fix_metadata,
)
from bot.slack.messenger import ReplyTo
from bot.slack.metadata import view_metadata
from bot.slack.router import CommandRouter
from bot.wiring import Services
from commands import parse
from commands.errors import CommandError
from commands.secrets import looks_like_secret

SECRET_IN_TEXT = "This looks like it holds a token or key: take it out (never paste a token into a command)."


def who_from_shortcut(body: dict[str, Any]) -> Who:
    """Who ran a message shortcut, answered in the message's channel (and thread)."""
    user = body.get("user") or {}
    channel = str((body.get("channel") or {}).get("id", ""))
    message = body.get("message") or {}
    return Who(
        user_id=str(user.get("id", "")),
        user_name=str(user.get("username") or user.get("name") or user.get("id", "")),
        reply=ReplyTo(channel, str(user.get("id", "")), body.get("response_url"), message.get("thread_ts")),
        trigger_id=body.get("trigger_id"),
    )


def register(app: AsyncApp, deps: Services, router: CommandRouter) -> None:
    """Wire the message shortcut and its modal."""
    actions = MessageActions(router, deps.changes)

    @app.shortcut(FROM_MESSAGE_CALLBACK)
    async def on_flag_from_message(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        deps.inbox.after_ack(body, lambda: from_message(body))

    async def from_message(body: dict[str, Any]) -> None:
        message = body.get("message") or {}
        thread = str(message.get("thread_ts") or message.get("ts") or body.get("message_ts") or "")
        await actions.from_message(who_from_shortcut(body), str(message.get("text") or ""), thread)

    @app.view(FIX_CALLBACK)
    async def on_fixed_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        text = view_value(body, COMMAND_BLOCK, COMMAND_ACTION).strip()
        if looks_like_secret(text):  # never written to the inbox (bot.lifecycle.listeners)
            await ack(response_action="errors", errors={COMMAND_BLOCK: SECRET_IN_TEXT})
            return
        try:
            parse(text)  # pure: the modal stays open with the error until the text parses
        except CommandError as error:
            await ack(response_action="errors", errors={COMMAND_BLOCK: error.message[:150]})
            return
        # Parsed: the modal closes with the ack; the command runs from the inbox.
        await deps.inbox.accept("fixed_command", body, ack)

    @deps.inbox.handler("fixed_command")
    async def run_fixed_command(body: dict[str, Any]) -> None:
        text = view_value(body, COMMAND_BLOCK, COMMAND_ACTION).strip()
        user_id = str((body.get("user") or {}).get("id", ""))
        reply, thread = fix_metadata(view_metadata(body), user_id)
        await actions.run(who_from_view(body, reply), text, thread)
