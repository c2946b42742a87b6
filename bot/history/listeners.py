"""History in Slack: the verb ``history`` (also ``log``, ``recent``), the History button of ``show``,
the ⋯ menu of change cards (its Details option goes to the lifecycle), and Older. Each listener
writes the click to the inbox and acks; its worker checks what the click carries, then hands over
to ``bot.history.service``."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.history.cards import OLDER, HistoryRef
from bot.history.service import HistoryService
from bot.lifecycle.listeners import first_action, who_from_action
from bot.lifecycle.models import Who
from bot.scheduling.listeners import button_value
from bot.slack.blocks import DETAILS_PREFIX, HISTORY, HISTORY_MENU
from bot.slack.router import CommandRouter
from bot.wiring import Services
from commands.intents import ReservedCommand
from commands.keys import check_key


def register(app: AsyncApp, deps: Services, router: CommandRouter) -> None:
    """Register the verb ``history`` and the History buttons and menu."""
    service = HistoryService(deps.changes)

    async def history(who: Who, command: ReservedCommand, _text: str) -> None:
        assert command.flag is not None  # the parser requires it
        project = command.project or await deps.changes.project_for(who)
        # Typed keys: refused in words (InvalidKey), as every LaunchDarkly call refuses them.
        keys = ((project, "project key"), (command.flag, "flag key"), (command.environment, "key"))
        for value, what in keys:
            if value is not None:
                check_key(value, what)
        await service.show(who, HistoryRef(project=project, flag=command.flag, env=command.environment))

    router.handle("history", history)

    async def refuse(who: Who) -> None:
        await deps.changes.tell(
            who, ":no_entry: That button's value is not one flagops made: nothing was shown."
        )

    @app.action(re.compile(f"^({HISTORY}|{OLDER})$"))
    async def on_history_button(ack: AsyncAck, body: dict[str, Any]) -> None:
        await deps.inbox.accept("history_click", body, ack)

    @deps.inbox.handler("history_click")
    async def run_history_button(body: dict[str, Any]) -> None:
        action = first_action(body)
        who = who_from_action(body)
        ref = button_value(HistoryRef, action)
        if ref is None:
            await refuse(who)
            return
        await service.show(who, ref)

    @app.action(HISTORY_MENU)
    async def on_history_menu(ack: AsyncAck, body: dict[str, Any]) -> None:
        await deps.inbox.accept("history_menu", body, ack)

    @deps.inbox.handler("history_menu")
    async def run_history_menu(body: dict[str, Any]) -> None:
        action = first_action(body)
        who = who_from_action(body)
        option = action.get("selected_option")
        value = str(option.get("value") or "") if isinstance(option, dict) else ""
        if value.startswith(DETAILS_PREFIX):  # the menu's other option: the change's details
            await deps.changes.show_details(who, value.removeprefix(DETAILS_PREFIX))
            return
        await service.show_change(who, value)
