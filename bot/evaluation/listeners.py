"""Evaluation in Slack: the verb ``eval`` (also ``evaluate``). Its handler runs after the slash
command's ack and hands over to ``bot.evaluation.service``."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.evaluation.service import EvaluationService
from bot.lifecycle.models import Who
from bot.slack.router import CommandRouter
from bot.wiring import Services
from commands.intents import ReservedCommand


def register(app: AsyncApp, deps: Services, router: CommandRouter) -> None:
    """Register the verb ``eval``."""
    service = EvaluationService(deps.changes)

    async def evaluate(who: Who, command: ReservedCommand, _text: str) -> None:
        await service.evaluate(who, command)

    router.handle("eval", evaluate)
