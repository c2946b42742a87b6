"""Flag links: the "Link message to flag" shortcut, its flag picker's options, its modal, and the
verbs ``link`` and ``link edit``. The shortcut acks, then opens its modal (its ``trigger_id`` lives
about 3 s); the options answer is the ack itself (as soon as the bounded search answers); a
submitted modal is checked in the listener (errors are the ack), then written to the inbox and
acked, and the link is made from there (``bot.links.flag_links``)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.approvals.listeners import view_value
from bot.lifecycle.models import Who
from bot.links.flag_links import (
    FLAG_ACTION,
    FLAG_BLOCK,
    LINK_MESSAGE_CALLBACK,
    LINK_MODAL_CALLBACK,
    TITLE_ACTION,
    TITLE_BLOCK,
    FlagLinkService,
)
from bot.links.flag_search import FlagSearch
from bot.links.shortcut_listeners import who_from_shortcut
from bot.slack.metadata import view_metadata
from bot.slack.router import CommandRouter
from bot.wiring import Services
from commands.intents import ReservedCommand


def selected_value(body: dict[str, Any], block_id: str, action_id: str) -> str:
    """A select's chosen value from a view submission (empty when nothing was chosen)."""
    values = (((body.get("view") or {}).get("state") or {}).get("values") or {}).get(block_id) or {}
    option = (values.get(action_id) or {}).get("selected_option") or {}
    return str(option.get("value") or "")


def register(app: AsyncApp, deps: Services, router: CommandRouter) -> None:
    """Wire the flag-links feature: the shortcut, the picker, the modal, and two verbs."""
    service = FlagLinkService(
        changes=deps.changes,
        accounts=deps.accounts,
        search=FlagSearch(deps.ld, timeout=deps.settings.flagops_flag_search_timeout),
    )

    @app.shortcut(LINK_MESSAGE_CALLBACK)
    async def on_link_message(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        deps.inbox.after_ack(body, lambda: open_modal(body))

    async def open_modal(body: dict[str, Any]) -> None:
        who = who_from_shortcut(body)
        await service.open_modal(who, body.get("message") or {}, who.reply.channel_id)

    @app.options(FLAG_ACTION)
    async def on_flag_options(ack: AsyncAck, body: dict[str, Any]) -> None:
        # The answer *is* the ack: the search is bounded (FLAGOPS_FLAG_SEARCH_TIMEOUT) to fit in 3 s.
        metadata = view_metadata(body)
        await ack(options=await service.options(metadata, str(body.get("value") or "")))

    @app.action(FLAG_ACTION)
    async def on_flag_chosen(ack: AsyncAck) -> None:
        # Choosing a flag in the modal is read at submission; the choice itself needs only its ack.
        await ack()

    @app.view(LINK_MODAL_CALLBACK)
    async def on_link_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        flag_key = selected_value(body, FLAG_BLOCK, FLAG_ACTION)
        if not flag_key:
            await ack(response_action="errors", errors={FLAG_BLOCK: "Pick a flag to link this message to."})
            return
        # Checked: the modal closes with the ack; the link is made from the inbox.
        await deps.inbox.accept("link_submitted", body, ack)

    @deps.inbox.handler("link_submitted")
    async def run_link_submitted(body: dict[str, Any]) -> None:
        flag_key = selected_value(body, FLAG_BLOCK, FLAG_ACTION)
        user = body.get("user") or {}
        await service.link_message(
            str(user.get("id", "")),
            str(user.get("username") or user.get("name") or user.get("id", "")),
            view_metadata(body),
            flag_key,
            view_value(body, TITLE_BLOCK, TITLE_ACTION),
        )

    async def link(who: Who, command: ReservedCommand, _text: str) -> None:
        await service.link_conversation(who, command)

    async def link_edit(who: Who, command: ReservedCommand, _text: str) -> None:
        await service.edit_link(who, command)

    router.handle("link", link)
    router.handle("link edit", link_edit)
