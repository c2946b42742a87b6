"""Subscriptions in Slack: ``subscribe``, ``subscriptions``, ``unsubscribe``, the Unsubscribe button,
and the Home tab (``app_home_opened``). The Unsubscribe click is written to the inbox and acked,
then checked and handed over to ``bot.subscriptions.service``; ``app_home_opened`` (an event Bolt
acks itself; publishing the tab again is harmless) is handled by its listener."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.lifecycle.listeners import first_action, who_from_action
from bot.lifecycle.models import Who
from bot.slack.router import CommandRouter
from bot.subscriptions.cards import UNSUBSCRIBE
from bot.subscriptions.home import HomeTab
from bot.wiring import Services
from commands.intents import ReservedCommand


class _SubscriptionRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str


def subscription_id(action: dict[str, Any]) -> str | None:
    """The subscription an Unsubscribe button names, or None when the value is not one flagops made."""
    try:
        ref = _SubscriptionRef.model_validate(json.loads(str(action.get("value") or "")))
    except (ValueError, ValidationError):
        return None
    return ref.id if 0 < len(ref.id) <= 36 else None


def register(app: AsyncApp, deps: Services, router: CommandRouter) -> None:
    """Register the verbs, the Unsubscribe button and the Home tab."""
    service = deps.subscriptions
    home = HomeTab(service, deps.jobs)

    async def subscribe(who: Who, command: ReservedCommand, _text: str) -> None:
        await service.subscribe(who, command)

    async def unsubscribe(who: Who, command: ReservedCommand, _text: str) -> None:
        await service.unsubscribe(who, command)

    async def subscriptions(who: Who, _command: ReservedCommand, _text: str) -> None:
        await service.list(who)

    router.handle("subscribe", subscribe)
    router.handle("unsubscribe", unsubscribe)
    router.handle("subscriptions", subscriptions)

    @app.action(UNSUBSCRIBE)
    async def on_unsubscribe(ack: AsyncAck, body: dict[str, Any]) -> None:
        await deps.inbox.accept("unsubscribe", body, ack)

    @deps.inbox.handler("unsubscribe")
    async def run_unsubscribe(body: dict[str, Any]) -> None:
        action = first_action(body)
        who = who_from_action(body)
        found = subscription_id(action)
        if found is None:
            await deps.changes.tell(
                who, ":no_entry: That button's value is not one flagops made: nothing changed."
            )
            return
        await service.remove(who, found)
        if _from_home(body):
            await home.publish(who.user_id)

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        # Bolt acks events itself, when this returns; Slack also sends this for the Messages tab.
        user = event.get("user")
        if event.get("tab", "home") == "home" and isinstance(user, str):
            deps.inbox.after_ack(body, lambda: home.publish(user))


def _from_home(body: dict[str, Any]) -> bool:
    view = body.get("view")
    return isinstance(view, dict) and view.get("type") == "home"
