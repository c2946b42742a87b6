"""Guardrails: the policy on every change, ``/flag config``, ``/flag undo`` and the Undo
button of applied cards."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import answer
from bot.guardrails.channel_config import ConfigCommand
from bot.lifecycle.listeners import first_action, who_from_action
from bot.lifecycle.models import Who
from bot.lifecycle.undo import UndoService
from bot.slack import blocks
from bot.slack.router import CommandRouter
from bot.wiring import Services
from commands.errors import FlagopsError
from commands.intents import ReservedCommand

log = logging.getLogger("flagops.guardrails")


def register(app: AsyncApp, deps: Services, router: CommandRouter) -> None:
    """Wire config, undo and the Undo button; say in help whether a policy restricts changes
    (the policy itself is built in ``bot.wiring`` and given to the lifecycle there)."""
    channels = deps.channels
    router.help_lines.append(deps.guard.help_line())
    undo = UndoService(deps.changes)
    router.handle("config", ConfigCommand(channels, deps.changes).run)

    async def undo_verb(who: Who, command: ReservedCommand, _text: str) -> None:
        if command.args:
            await undo.undo_id(who, command.args[0])
        else:
            await undo.undo_last(who)

    router.handle("undo", undo_verb)

    async def run_undo(body: dict[str, Any]) -> None:
        who = who_from_action(body)
        try:
            await undo.undo_clicked(who, str(first_action(body).get("value")))
        except FlagopsError as error:
            await deps.changes.tell(who, answer(error))

    deps.inbox.handle("undo_click", run_undo)

    @app.action(blocks.UNDO)
    async def on_undo(ack: AsyncAck, body: dict[str, Any]) -> None:
        await deps.inbox.accept("undo_click", body, ack)
