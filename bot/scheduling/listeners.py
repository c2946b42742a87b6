"""Reminders and scheduled changes in Slack: the verbs ``remind``, ``reminders``, ``scheduled``, and
the buttons of the digest (Archive, Snooze), of the reminder list (Cancel) and of the scheduled
change list (Delete). Each listener writes the click to the inbox and acks; its worker checks the
button's value, then hands over to ``bot.scheduling.verbs``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.lifecycle.listeners import first_action, who_from_action
from bot.lifecycle.models import Who
from bot.scheduling.reminders import DIGEST_ARCHIVE, DIGEST_SNOOZE
from bot.scheduling.verbs import REMINDER_CANCEL, SCHEDULED_DELETE, ReminderCommands
from bot.slack.router import CommandRouter
from bot.wiring import Services
from commands.keys import Key


class FlagRef(BaseModel):
    """A digest button's value: the flag it is about (keys checked: the value is request data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: Key
    flag: Key


class ScheduledRef(FlagRef):
    """A scheduled change's Delete button: the flag, environment and scheduled change id."""

    env: Key
    id: Key


RefT = TypeVar("RefT", bound=BaseModel)


def button_value(model: type[RefT], action: dict[str, Any]) -> RefT | None:
    """A button's JSON value read with ``model``; None when it is not one flagops made."""
    try:
        return model.model_validate_json(str(action.get("value") or ""))
    except ValidationError:
        return None


def register(app: AsyncApp, deps: Services, router: CommandRouter) -> None:
    """Register the verbs ``remind``, ``reminders``, ``scheduled`` and the buttons."""
    commands = ReminderCommands(deps.changes, deps.jobs, router)
    router.handle("remind", commands.remind)
    router.handle("reminders", commands.reminders)
    router.handle("scheduled", commands.scheduled)

    @app.action(REMINDER_CANCEL)
    async def on_reminder_cancel(ack: AsyncAck, body: dict[str, Any]) -> None:
        await deps.inbox.accept("reminder_cancel", body, ack)

    @deps.inbox.handler("reminder_cancel")
    async def run_reminder_cancel(body: dict[str, Any]) -> None:
        action = first_action(body)
        await commands.cancel(who_from_action(body), str(action.get("value")))

    async def refuse(who: Who) -> None:
        await commands.tell(who, ":no_entry: That button's value is not one flagops made: nothing was done.")

    @app.action(SCHEDULED_DELETE)
    async def on_scheduled_delete(ack: AsyncAck, body: dict[str, Any]) -> None:
        await deps.inbox.accept("scheduled_delete", body, ack)

    @deps.inbox.handler("scheduled_delete")
    async def run_scheduled_delete(body: dict[str, Any]) -> None:
        action = first_action(body)
        who = who_from_action(body)
        value = button_value(ScheduledRef, action)
        if value is None:
            await refuse(who)
            return
        await commands.delete(who, value.project, value.flag, value.env, value.id)

    @app.action(DIGEST_ARCHIVE)
    async def on_digest_archive(ack: AsyncAck, body: dict[str, Any]) -> None:
        await deps.inbox.accept("digest_archive", body, ack)

    @deps.inbox.handler("digest_archive")
    async def run_digest_archive(body: dict[str, Any]) -> None:
        action = first_action(body)
        who = who_from_action(body)
        value = button_value(FlagRef, action)
        if value is None:
            await refuse(who)
            return
        await commands.archive(who, value.model_dump())

    @app.action(DIGEST_SNOOZE)
    async def on_digest_snooze(ack: AsyncAck, body: dict[str, Any]) -> None:
        await deps.inbox.accept("digest_snooze", body, ack)

    @deps.inbox.handler("digest_snooze")
    async def run_digest_snooze(body: dict[str, Any]) -> None:
        action = first_action(body)
        who = who_from_action(body)
        value = button_value(FlagRef, action)
        if value is None:
            await refuse(who)
            return
        message = body.get("message") or {}
        await commands.snooze(who, value.model_dump(), message.get("thread_ts") or message.get("ts"))
