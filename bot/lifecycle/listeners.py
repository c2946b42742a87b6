"""The slash command and the change card's buttons."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.lifecycle.models import Who
from bot.lifecycle.service import ChangeService
from bot.slack.messenger import ReplyTo
from bot.slack.router import CommandRouter

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


def register(app: AsyncApp, router: CommandRouter, service: ChangeService, command: str) -> None:
    """Wire the slash command to ``router`` and the card buttons to ``service``."""

    @app.command(command)
    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await router.run_command(who_from_command(body), str(body.get("text") or ""))

    @app.action(CHANGE_ACTIONS)
    async def on_card_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await service.click(str(action.get("action_id")), str(action.get("value")), who_from_action(body))
