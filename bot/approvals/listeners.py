"""Approval card buttons, the decline modal, the account modal, and the verbs ``approvals``,
``link-account`` and ``unlink-account``. Buttons and review modals go through the inbox (written,
acked, then worked); Decline and Comment (they open a modal with the click's ``trigger_id``) and the
account modal (it holds a token) ack, then hand over in the listener."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.approvals.cards import COMMENT, DECLINE
from bot.approvals.service import (
    COMMENT_CALLBACK,
    DECLINE_CALLBACK,
    REASON_ACTION,
    REASON_BLOCK,
    decline_metadata,
)
from bot.identity.accounts import (
    CONNECT_ACTION,
    LINK_ACCOUNT_CALLBACK,
    TOKEN_ACTION,
    TOKEN_BLOCK,
)
from bot.identity.accounts import reply_from_metadata as account_reply
from bot.lifecycle.listeners import first_action, who_from_action
from bot.lifecycle.models import Who
from bot.slack.metadata import view_metadata
from bot.slack.router import CommandRouter
from bot.wiring import Services
from commands.intents import ReservedCommand
from commands.parse import EXTRA_IGNORED

APPROVAL_ACTIONS = re.compile(r"^approval_")


def pasted_text_ignored(command_name: str) -> str:
    """The answer to an account verb typed with more text (never shown back: likely a token)."""
    return (
        f":warning: Never paste a token in a channel or a command: use the form `{command_name} "
        "link-account` opens, which only you see. What you typed after the command was ignored and "
        "not stored; if it was a token, consider replacing it in LaunchDarkly."
    )


def view_value(body: dict[str, Any], block_id: str, action_id: str) -> str:
    """A text input's value from a view submission (empty when absent)."""
    values = (((body.get("view") or {}).get("state") or {}).get("values") or {}).get(block_id) or {}
    return str((values.get(action_id) or {}).get("value") or "")


def who_from_view(body: dict[str, Any], reply: Any) -> Who:
    """The submitter of a modal, answered where the modal's metadata says."""
    user = body.get("user") or {}
    return Who(
        user_id=str(user.get("id", "")),
        user_name=str(user.get("username") or user.get("name") or user.get("id", "")),
        reply=reply,
        trigger_id=body.get("trigger_id"),
    )


def register(app: AsyncApp, deps: Services, router: CommandRouter) -> None:
    """The approvals feature's listeners and verbs (its service is built in ``bot.wiring``)."""
    accounts = deps.accounts
    service = deps.approvals

    @app.action(CONNECT_ACTION)
    async def on_connect(ack: AsyncAck) -> None:
        # A link button: the browser opens LaunchDarkly; Slack still sends the click, acked only.
        await ack()

    async def run_approval_button(body: dict[str, Any]) -> None:
        action = first_action(body)
        who = who_from_action(body)
        await service.click(str(action.get("action_id")), str(action.get("value")), who, who.trigger_id)

    deps.inbox.handle("approval_click", run_approval_button)

    @app.action(APPROVAL_ACTIONS)
    async def on_approval_button(ack: AsyncAck, body: dict[str, Any]) -> None:
        if first_action(body).get("action_id") in (DECLINE, COMMENT):
            # These open a modal with the click's trigger_id (about 3 s): in the listener, not the inbox.
            await ack()
            deps.inbox.after_ack(body, lambda: run_approval_button(body))
            return
        await deps.inbox.accept("approval_click", body, ack)

    async def run_comment(body: dict[str, Any]) -> None:
        user_id = str((body.get("user") or {}).get("id", ""))
        card_id, reply = decline_metadata(view_metadata(body), user_id)
        await service.comment(
            card_id, who_from_view(body, reply), view_value(body, REASON_BLOCK, REASON_ACTION)
        )

    deps.inbox.handle("approval_comment", run_comment)

    @app.view(COMMENT_CALLBACK)
    async def on_comment(ack: AsyncAck, body: dict[str, Any]) -> None:
        await deps.inbox.accept("approval_comment", body, ack)

    async def run_decline_reason(body: dict[str, Any]) -> None:
        user_id = str((body.get("user") or {}).get("id", ""))
        card_id, reply = decline_metadata(view_metadata(body), user_id)
        reason = view_value(body, REASON_BLOCK, REASON_ACTION)
        await service.decline(card_id, who_from_view(body, reply), reason)

    deps.inbox.handle("approval_decline", run_decline_reason)

    @app.view(DECLINE_CALLBACK)
    async def on_decline_reason(ack: AsyncAck, body: dict[str, Any]) -> None:
        await deps.inbox.accept("approval_decline", body, ack)

    @app.view(LINK_ACCOUNT_CALLBACK)
    async def on_link_account(ack: AsyncAck, body: dict[str, Any]) -> None:
        # Close the modal at once; the check with LaunchDarkly and the answer follow ephemerally.
        # Not through the inbox: the submission holds a token, which is never written there.
        await ack()
        deps.inbox.after_ack(body, lambda: link_from_view(body))

    async def link_from_view(body: dict[str, Any]) -> None:
        user_id = str((body.get("user") or {}).get("id", ""))
        reply = account_reply(view_metadata(body), user_id)
        await accounts.link(user_id, view_value(body, TOKEN_BLOCK, TOKEN_ACTION), reply)

    async def link_account(who: Who, command: ReservedCommand, _text: str) -> None:
        await accounts.open_link_modal(
            who.reply, who.trigger_id, who.team_id
        )  # first: the trigger lives ~3 s
        if EXTRA_IGNORED in command.args:
            await deps.changes.tell(who, pasted_text_ignored(deps.settings.flagops_command))

    async def unlink_account(who: Who, command: ReservedCommand, _text: str) -> None:
        if EXTRA_IGNORED in command.args:
            await deps.changes.tell(who, pasted_text_ignored(deps.settings.flagops_command))
        await accounts.unlink(who.user_id, who.reply)

    async def approvals(who: Who, command: ReservedCommand, _text: str) -> None:
        await service.list_pending(who, command)

    router.handle("link-account", link_account)
    router.handle("unlink-account", unlink_account)
    router.handle("approvals", approvals)
