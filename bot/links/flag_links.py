"""Flag links: a Slack message or conversation added to a flag's links in LaunchDarkly.

::

    message shortcut "Link message to flag" ──▶ modal (flag picker + optional title)
        picker options ◀── LaunchDarkly's flag search (bot.links.flag_search: bounded, cached)
        submit ──▶ chat.getPermalink ──▶ POST flag-links (deepLink = the permalink)
               ──▶ reply in the message's thread with the link
    /flag link <flag> [<title>]         ──▶ POST flag-links (deepLink = the channel) ──▶ note in the channel
    /flag link edit <flag> <link> [title <text>] [description <text>]
                                         ──▶ PATCH flag-links/.../<id> (a bare JSON patch array, seed 000/001)

LaunchDarkly calls go out as the Slack user's linked member when there is one (LaunchDarkly then
records who linked), else with the service token; with ``FLAGOPS_REQUIRE_LINKED_ACCOUNTS`` an
unlinked user is asked to link first. Every failure is told to the user alone, in plain words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.approvals.service import ApprovalService
from bot.errors import explain_error
from bot.identity.accounts import AccountService, Acting
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.models import FlagLink
from bot.lifecycle.models import Who
from bot.lifecycle.service import ChangeService
from bot.links.flag_search import FlagSearch
from bot.links.message_actions import strip_markup
from bot.slack import blocks
from bot.slack.messenger import CannotPost, ReplyTo, SlackFailure
from bot.slack.metadata import ModalMetadata
from commands.errors import CommandError
from commands.instructions import JsonPatch, PatchOperation
from commands.intents import ReservedCommand

log = logging.getLogger(__name__)

LINK_MESSAGE_CALLBACK = "link_message_to_flag"  # the message shortcut (manifest.yml)
LINK_MODAL_CALLBACK = "link_message_to_flag_submit"
FLAG_BLOCK = "flag"
FLAG_ACTION = "flag_link_flag"  # the external_select whose options LaunchDarkly's search fills
TITLE_BLOCK = "title"
TITLE_ACTION = "title"
TITLE_LIMIT = 150
ID_PREFIX_MIN = 6  # a link may be named by this many leading characters of its id, when unique
SUGGESTIONS = 5


@dataclass(frozen=True)
class MessageRef:
    """The message a shortcut ran on, and where to answer (kept in the modal's ``private_metadata``)."""

    channel_id: str
    message_ts: str
    thread_ts: str | None
    response_url: str | None
    default_title: str

    @property
    def reply_thread(self) -> str:
        """The thread the reply goes in: the message's own thread, or one started under it."""
        return self.thread_ts or self.message_ts

    def to_metadata(self) -> str:
        """As ``private_metadata`` (well under Slack's 3,000 characters: the title is clipped)."""
        return ModalMetadata(
            channel_id=self.channel_id,
            message_ts=self.message_ts,
            thread_ts=self.thread_ts,
            response_url=self.response_url,
            title=self.default_title,
        ).encode()

    @classmethod
    def from_metadata(cls, metadata: str) -> MessageRef:
        """Read :meth:`to_metadata` back; missing fields read as empty."""
        read = ModalMetadata.decode(metadata)
        return cls(
            channel_id=read.channel_id,
            message_ts=read.message_ts,
            thread_ts=read.thread_ts or None,
            response_url=read.response_url or None,
            default_title=read.title or "Slack message",
        )


def default_title(message_text: str) -> str:
    """A link's title when none is typed: the message's first line, as plain text."""
    first = next((line.strip() for line in strip_markup(message_text).splitlines() if line.strip()), "")
    return blocks.clip(first, 80) if first else "Slack message"


# --- Block Kit ------------------------------------------------------------------------------------


def link_modal(ref: MessageRef, excerpt: str) -> dict[str, Any]:
    """The "Link message to flag" modal: a flag picker fed by LaunchDarkly's search, and a title.

    Args:
        ref: the message (kept in ``private_metadata``).
        excerpt: the message's text, shown so the user sees what they link.

    Returns:
        The view.
    """
    quoted = "\n".join(f">{blocks.escape(line)}" for line in blocks.clip(excerpt, 300).splitlines()[:4])
    return blocks.modal(
        LINK_MODAL_CALLBACK,
        "Link message to flag",
        "Link",
        ref.to_metadata(),
        [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Add this message to a flag's links in LaunchDarkly:\n"
                    + (quoted or ">_(no text)_"),
                },
            },
            {
                "type": "input",
                "block_id": FLAG_BLOCK,
                "label": {"type": "plain_text", "text": "Flag"},
                "element": {
                    "type": "external_select",
                    "action_id": FLAG_ACTION,
                    "placeholder": {"type": "plain_text", "text": "Search flags by key or name"},
                    "min_query_length": 0,
                },
            },
            {
                "type": "input",
                "block_id": TITLE_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Title"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": TITLE_ACTION,
                    "max_length": TITLE_LIMIT,
                    "placeholder": {"type": "plain_text", "text": blocks.clip(ref.default_title, 150)},
                },
                "hint": {
                    "type": "plain_text",
                    "text": "Shown on the flag's links in LaunchDarkly. Empty: the message's first line.",
                },
            },
        ],
    )


def render_linked(
    headline: str, link: FlagLink, flag_key: str, flag_url: str | None
) -> tuple[str, blocks.Blocks]:
    """The note that a link was made: what was linked, its title, and how to edit it.

    Args:
        headline: mrkdwn, e.g. ``:link: <@U1> linked this message to *New checkout* (`new-checkout`)``.
        link: the link as LaunchDarkly answered.
        flag_key: the flag's key.
        flag_url: the flag's page in LaunchDarkly, when known.

    Returns:
        ``(text, blocks)``.
    """
    title = link.title or "(no title)"
    footer = [f"link `{link.id}`"]
    if flag_url:
        footer.insert(0, f"<{flag_url}|Open the flag in LaunchDarkly>")
    footer.append(f'edit: `/flag link edit {flag_key} {link.id} title "…"`')
    text = blocks.clip(f"{strip_markup(headline)}: {title}", 3000)
    body: blocks.Blocks = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": blocks.clip(f"{headline}\n*“{blocks.escape(title)}”*", blocks.SECTION_LIMIT),
            },
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": blocks.clip(" · ".join(footer), 2000)}]},
    ]
    return text, body


# --- resolving a link the user names ----------------------------------------------------------------


def find_link(links: list[FlagLink], name: str) -> tuple[FlagLink | None, list[FlagLink]]:
    """The link ``name`` designates: its id, its key, or a unique prefix of its id.

    Returns:
        ``(link, [])`` when found; ``(None, candidates)`` otherwise: the links an ambiguous prefix
        matches, else every link (for suggestions).
    """
    for link in links:
        if name in (link.id, link.key):
            return link, []
    if len(name) >= ID_PREFIX_MIN:
        matches = [link for link in links if link.id.startswith(name)]
        if len(matches) == 1:
            return matches[0], []
        if matches:
            return None, matches
    return None, links


def link_suggestions(flag_key: str, name: str, candidates: list[FlagLink]) -> str:
    """Why ``name`` names no link of the flag, and which links it has."""
    if not candidates:
        return f"`{flag_key}` has no links. `/flag link {flag_key}` links this conversation to it."
    shown = [
        f"`{c.id}`" + (f" (key `{c.key}`)" if c.key else "") + f" “{blocks.escape(c.title or c.deep_link)}”"
        for c in candidates[:SUGGESTIONS]
    ]
    more = f" and {len(candidates) - SUGGESTIONS} more" if len(candidates) > SUGGESTIONS else ""
    return f"`{flag_key}` has no link `{blocks.escape(name)}`. Its links: {', '.join(shown)}{more}."


def edit_patch(args: tuple[str, ...]) -> tuple[JsonPatch, dict[str, str]]:
    """The JSON patch of ``/flag link edit``'s ``args``: ``(<link>, field, text, field, text...)``.

    Returns:
        The patch (a ``replace`` per field, the last value of a repeated field winning) and the
        new values by field.

    Raises:
        CommandError: no field to change.
    """
    pairs = args[1:]
    values = {pairs[i]: pairs[i + 1] for i in range(0, len(pairs) - 1, 2)}
    if not values:
        raise CommandError(
            "Nothing to change: add `title <text>` and/or `description <text>`, e.g. "
            '`/flag link edit new-checkout <link-id> title "Launch thread"`.'
        )
    ops = [PatchOperation(op="replace", path=f"/{name}", value=text) for name, text in values.items()]
    return JsonPatch(ops), values


# --- the service --------------------------------------------------------------------------------------


class FlagLinkService:
    """The message shortcut, its modal and options, and ``/flag link`` / ``/flag link edit``."""

    def __init__(
        self,
        *,
        changes: ChangeService,
        accounts: AccountService,
        search: FlagSearch,
    ) -> None:
        self.changes = changes
        self.settings = changes.settings
        self.ld = changes.ld
        self.messenger = changes.messenger
        self.accounts = accounts
        self.search = search
        self._team_url: str | None = None

    async def project_of(self, channel_id: str) -> str:
        """The channel's project (``/flag config project``), else ``LD_PROJECT``."""
        if self.changes.channel_defaults is not None:
            return await self.changes.channel_defaults.project(channel_id)
        return self.settings.ld_project

    async def tell(self, reply: ReplyTo, text: str) -> None:
        """Answer one person."""
        message, body = blocks.render_notice(text)
        await self.messenger.ephemeral(reply, message, body)

    # --- the message shortcut -------------------------------------------------------------------

    async def open_modal(self, who: Who, message: dict[str, Any], channel_id: str) -> None:
        """Open the modal (first thing after the ack: a ``trigger_id`` lives about 3 seconds)."""
        if not who.trigger_id:
            await self.tell(who.reply, ":warning: Slack sent no trigger to open the form; try again.")
            return
        text = str(message.get("text") or "")
        ref = MessageRef(
            channel_id=channel_id,
            message_ts=str(message.get("ts") or ""),
            thread_ts=message.get("thread_ts") or None,
            response_url=who.reply.response_url,
            default_title=default_title(text),
        )
        await self.messenger.open_view(who.trigger_id, link_modal(ref, strip_markup(text)))

    async def options(self, metadata: str, query: str) -> list[dict[str, Any]]:
        """The flag picker's options for what the user typed (bounded: see ``bot.links.flag_search``)."""
        ref = MessageRef.from_metadata(metadata)
        project = await self.project_of(ref.channel_id)
        return [choice.option() for choice in await self.search.choices(project, query)]

    async def link_message(
        self, user_id: str, user_name: str, metadata: str, flag_key: str, title: str
    ) -> None:
        """Create the link from the submitted modal and reply in the message's thread.

        Args:
            user_id, user_name: who submitted.
            metadata: the modal's ``private_metadata`` (:class:`MessageRef`).
            flag_key: the picked flag.
            title: the typed title (empty: the message's first line).
        """
        ref = MessageRef.from_metadata(metadata)
        reply = ReplyTo(ref.channel_id, user_id, ref.response_url)
        acting = await self.accounts.require(user_id, reply, "link a message to a flag")
        if acting is None:
            return
        project = await self.project_of(ref.channel_id)
        try:
            flag = await self.changes.flags.flag(project, flag_key)
        except (CommandError, ld_errors.LaunchDarklyError) as error:
            await self.tell(reply, f":warning: {explain_error(error)} Nothing was linked.")
            return
        try:
            permalink = await self.messenger.permalink(ref.channel_id, ref.message_ts)
        except SlackFailure as error:
            reason = error.reason
            await self.tell(
                reply, f":warning: Slack gave no link to that message ({reason}). Nothing was linked."
            )
            return
        link = await self._create(
            reply,
            acting,
            project,
            flag_key,
            deep_link=permalink,
            title=title.strip() or ref.default_title,
            description=f"Slack message linked by @{user_name} with flagops",
            timestamp_ms=_ts_ms(ref.message_ts),
        )
        if link is None:
            return
        name = blocks.escape(str(flag.get("name") or flag_key))
        headline = f":link: <@{user_id}> linked this message to *{name}* (`{flag_key}`)"
        text, body = render_linked(headline, link, flag_key, self.changes.flags.flag_url(flag, None))
        try:
            await self.messenger.post(ref.channel_id, text, body, thread_ts=ref.reply_thread)
        except CannotPost as error:
            await self.tell(
                reply,
                f":link: Linked (link `{link.id}`), but I could not reply in the thread: {error.message}",
            )

    # --- /flag link, /flag link edit --------------------------------------------------------------

    async def link_conversation(self, who: Who, command: ReservedCommand) -> None:
        """``/flag link <flag> [<title>]``: link this channel to the flag, and say so in the channel."""
        assert command.flag is not None  # the parser requires it
        acting = await self.accounts.require(who.user_id, who.reply, "link a conversation to a flag")
        if acting is None:
            return
        project = command.project or await self.project_of(who.reply.channel_id)
        try:
            flag = await self.changes.flags.flag(project, command.flag)
        except (CommandError, ld_errors.LaunchDarklyError) as error:
            await self.tell(who.reply, f":warning: {explain_error(error)} Nothing was linked.")
            return
        try:
            deep_link = await self._channel_url(who.reply.channel_id)
        except SlackFailure as error:
            reason = error.reason
            await self.tell(
                who.reply,
                f":warning: Slack did not say this workspace's address ({reason}). Nothing was linked.",
            )
            return
        link = await self._create(
            who.reply,
            acting,
            project,
            command.flag,
            deep_link=deep_link,
            title=(command.args[0] if command.args else "Slack conversation")[:TITLE_LIMIT],
            description=f"Slack conversation linked by @{who.user_name} with flagops",
            timestamp_ms=None,
        )
        if link is None:
            return
        name = blocks.escape(str(flag.get("name") or command.flag))
        headline = f":link: <@{who.user_id}> linked this conversation to *{name}* (`{command.flag}`)"
        text, body = render_linked(headline, link, command.flag, self.changes.flags.flag_url(flag, None))
        try:
            await self.messenger.post(who.reply.channel_id, text, body)
        except CannotPost:
            # The link exists: the user hears it alone rather than not at all.
            await self.messenger.ephemeral(who.reply, text, body)

    async def edit_link(self, who: Who, command: ReservedCommand) -> None:
        """``/flag link edit <flag> <link> [title <text>] [description <text>]`` by JSON patch."""
        assert command.flag is not None and command.args  # the parser requires both
        flag_key, name = command.flag, command.args[0]
        try:
            patch, values = edit_patch(command.args)
        except CommandError as error:
            await self.tell(who.reply, f":warning: {error.message}")
            return
        acting = await self.accounts.require(who.user_id, who.reply, "edit a flag link")
        if acting is None:
            return
        project = command.project or await self.project_of(who.reply.channel_id)
        try:
            links = await self.ld.list_flag_links(project, flag_key, token=acting.token)
        except ld_errors.NotFound:
            await self.tell(who.reply, f":warning: There is no flag `{flag_key}` in project `{project}`.")
            return
        except ld_errors.LaunchDarklyError as error:
            await self.tell(
                who.reply, f":warning: {ApprovalService.refusal(error, acting)} Nothing was changed."
            )
            return
        link, candidates = find_link(links, name)
        if link is None:
            await self.tell(who.reply, f":grey_question: {link_suggestions(flag_key, name, candidates)}")
            return
        try:
            updated = await self.ld.patch_flag_link(project, flag_key, link.id, patch, token=acting.token)
        except ld_errors.NotFound:
            # Deleted since it was listed: say so with the links the flag has now.
            remaining = [other for other in links if other.id != link.id]
            await self.tell(who.reply, f":grey_question: {link_suggestions(flag_key, name, remaining)}")
            return
        except ld_errors.LaunchDarklyError as error:
            await self.tell(
                who.reply, f":warning: {ApprovalService.refusal(error, acting)} Nothing was changed."
            )
            return
        lines = [
            f"{field.capitalize()}: {_quoted(getattr(link, field))} → {_quoted(getattr(updated, field))}"
            for field in values
        ]
        await self.tell(
            who.reply, f":pencil2: Link `{link.id}` on `{flag_key}` updated.\n" + "\n".join(lines)
        )

    # --- helpers --------------------------------------------------------------------------------

    async def _create(
        self,
        reply: ReplyTo,
        acting: Acting,
        project: str,
        flag_key: str,
        *,
        deep_link: str,
        title: str,
        description: str,
        timestamp_ms: int | None,
    ) -> FlagLink | None:
        """Create the link; None after telling the user why LaunchDarkly refused."""
        try:
            link = await self.ld.create_flag_link(
                project,
                flag_key,
                deep_link=deep_link,
                title=title,
                description=description,
                timestamp_ms=timestamp_ms,
                token=acting.token,
            )
        except ld_errors.LaunchDarklyError as error:
            await self.tell(reply, f":warning: {ApprovalService.refusal(error, acting)} Nothing was linked.")
            return None
        log.info("flag link %s created on %s/%s by %s", link.id, project, flag_key, reply.user_id)
        return link

    async def _channel_url(self, channel_id: str) -> str:
        """The channel's address: the workspace's URL (``auth.test``, asked once) + ``archives/<id>``."""
        if self._team_url is None:
            self._team_url = await self.messenger.workspace_url()
        return f"{self._team_url}archives/{channel_id}"


def _quoted(text: str | None) -> str:
    return f"“{blocks.escape(text)}”" if text else "_(none)_"


def _ts_ms(ts: str) -> int | None:
    """A Slack ``ts`` (seconds.micro) as epoch milliseconds: when the linked message was posted."""
    try:
        return int(float(ts) * 1000)
    except ValueError:
        return None
