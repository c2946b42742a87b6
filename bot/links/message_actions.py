"""The message shortcut "Change flag from message": a message's text → a flagops command → the
same loop as the slash command, with the card in that message's thread.

The text may be a ``/flag ...`` line, a bare command (``off new-checkout production``), or one of
a few natural phrasings (see :data:`PHRASES`). Text that does not parse opens a modal pre-filled
with it and the parse error, so the user can fix it and submit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.errors import answer, error_text, explain_error
from bot.launchdarkly import errors as ld_errors
from bot.lifecycle.models import Who
from bot.lifecycle.service import ChangeService
from bot.slack import blocks
from bot.slack.messenger import ReplyTo
from bot.slack.metadata import ModalMetadata
from bot.slack.router import CommandRouter
from commands import parse
from commands.errors import CommandError, FlagopsError
from commands.intents import ChangeCommand

FROM_MESSAGE_CALLBACK = "flag_from_message"
FIX_CALLBACK = "flag_from_message_fix"
COMMAND_BLOCK = "command"
COMMAND_ACTION = "command"

_USER = re.compile(r"<@([A-Z0-9_]+)(?:\|([^>]+))?>")
_CHANNEL = re.compile(r"<#([A-Z0-9_]+)(?:\|([^>]+))?>")
_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")
_BARE = re.compile(r"<([^>]+)>")
_EMPHASIS = re.compile(r"(?<!\w)[*_~`]+|[*_~`]+(?!\w)")
_NAME = r"([\w.-]+)"


def strip_markup(text: str) -> str:
    """Slack mrkdwn as plain text: mentions kept as ``<@U…>`` (the parser reads them), links as
    their label, channels as ``#name``, emphasis and code marks dropped, entities decoded."""
    text = _USER.sub(lambda m: f"<@{m[1]}>", text)
    text = _CHANNEL.sub(lambda m: "#" + (m[2] or m[1]), text)
    text = _LINK.sub(lambda m: m[2], text)
    text = _BARE.sub(lambda m: m[0] if m[1].startswith("@") else m[1], text)
    text = _EMPHASIS.sub("", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


@dataclass(frozen=True)
class Rollout:
    """ "roll out <flag> <variation> to <pct>% in <env>": the rest goes to what the flag serves now."""

    flag: str
    environment: str
    percent: float
    variation: str


Phrase = tuple[re.Pattern[str], Callable[[re.Match[str]], "str | Rollout"]]

PHRASES: list[Phrase] = [
    (
        re.compile(
            rf"\b(?:turn|switch)\s+(on|off)\s+(?:the\s+)?{_NAME}(?:\s+flag)?\s+in\s+{_NAME}",
            re.I,
        ),
        lambda m: f"{m[1].lower()} {m[2]} {m[3]}",
    ),
    (
        re.compile(
            rf"\b(?:turn|switch)\s+(?:the\s+)?{_NAME}(?:\s+flag)?\s+(on|off)\s+in\s+{_NAME}",
            re.I,
        ),
        lambda m: f"{m[2].lower()} {m[1]} {m[3]}",
    ),
    (
        re.compile(rf"\b(enable|disable)\s+(?:the\s+)?{_NAME}(?:\s+flag)?\s+in\s+{_NAME}", re.I),
        lambda m: f"{'on' if m[1].lower() == 'enable' else 'off'} {m[2]} {m[3]}",
    ),
    (
        re.compile(rf"\broll\s*out\s+{_NAME}\s+{_NAME}\s+to\s+(\d+(?:\.\d+)?)\s*%\s+in\s+{_NAME}", re.I),
        lambda m: Rollout(m[1], m[4], float(m[3]), m[2]),
    ),
    (
        re.compile(
            rf"\bserve\s+{_NAME}\s+(?:to\s+everyone\s+)?(?:for|on)\s+{_NAME}\s+in\s+{_NAME}",
            re.I,
        ),
        lambda m: f"serve {m[2]} {m[3]} {m[1]}",
    ),
]


def command_from_text(text: str, command_name: str = "/flag") -> str | Rollout:
    """The command a message asks for: its ``/flag`` line, a phrase's command, or the text itself.

    Args:
        text: the message text, markup already stripped.
        command_name: the slash command's name.

    Returns:
        Command text (without the slash command), or a :class:`Rollout` the flag must complete.
    """
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.split(" ", 1)[0] == command_name:
            return stripped[len(command_name) :].strip()
    sentence = " ".join(text.split()).rstrip(".!?")
    for pattern, build in PHRASES:
        match = pattern.search(sentence)  # anywhere: "Could you turn off … in test?"
        if match:
            return build(match)
    return sentence


def fix_modal(text: str, error: str, reply: ReplyTo, thread_ts: str) -> dict[str, Any]:
    """The modal pre-filled with text that did not parse, and why."""
    return blocks.modal(
        FIX_CALLBACK,
        "Change a flag",
        "Preview",
        ModalMetadata(
            channel_id=reply.channel_id, response_url=reply.response_url, thread_ts=thread_ts
        ).encode(),
        [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": blocks.clip(
                        f":warning: I could not read this as a command: {blocks.escape(error)}", 2900
                    ),
                },
            },
            {
                "type": "input",
                "block_id": COMMAND_BLOCK,
                "label": {"type": "plain_text", "text": "Command (as after /flag)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": COMMAND_ACTION,
                    "multiline": True,
                    # Slack refuses an empty initial_value (invalid_blocks): an empty message
                    # (only an image, a file) opens the modal with nothing typed.
                    **({"initial_value": blocks.clip(text, 2900)} if text.strip() else {}),
                },
                "hint": {
                    "type": "plain_text",
                    "text": "e.g. off new-checkout production · /flag help for more",
                },
            },
        ],
    )


def fix_metadata(metadata: str, user_id: str) -> tuple[ReplyTo, str | None]:
    """The reply target and the thread a fix modal carried."""
    read = ModalMetadata.decode(metadata)
    return ReplyTo(read.channel_id, user_id, read.response_url or None), read.thread_ts or None


class MessageActions:
    """Runs a message's command through the router and the change lifecycle."""

    def __init__(self, router: CommandRouter, changes: ChangeService) -> None:
        self.router = router
        self.changes = changes

    async def from_message(self, who: Who, message_text: str, thread_ts: str) -> None:
        """Handle the shortcut (after the ack): run the command, or open the fix modal.

        Whether the modal opens is decided by the pure parse alone, before any LaunchDarkly or
        database call: Slack's ``trigger_id`` lives about 3 seconds.
        """
        text = strip_markup(message_text)
        wanted = command_from_text(text, self.changes.settings.flagops_command)
        if isinstance(wanted, str):
            try:
                parse(wanted)
            except CommandError as error:
                if who.trigger_id:
                    view = fix_modal(wanted, error_text(error), who.reply, thread_ts)
                    await self.changes.messenger.open_view(who.trigger_id, view)
                else:
                    await self.changes.tell(who, f":warning: {error_text(error)}")
                return
            await self.run(who, wanted, thread_ts)
            return
        # A rollout phrase reads its flag (what the rest of the traffic keeps): its trigger may
        # have expired by then, so what goes wrong is answered here, like any later failure.
        try:
            command_text = await self._complete(who, wanted)
        except CommandError as error:
            await self.changes.tell(
                who,
                f":warning: {error_text(error)} (from “{blocks.escape(blocks.clip(text, 200))}”; "
                f"type it as `{self.changes.settings.flagops_command} rollout {wanted.flag} "
                f"{wanted.environment} {wanted.percent:g}% {wanted.variation} "
                f"{100 - wanted.percent:g}% <other variation>`)",
            )
            return
        await self.run(who, command_text, thread_ts)

    async def _complete(self, who: Who, rollout: Rollout) -> str:
        """A rollout phrase as a full rollout: the rest of the traffic keeps what it is served now.

        Raises:
            CommandError: the flag could not be read (unknown flag, LaunchDarkly refused or is down).
        """
        project = await self.changes.project_for(who)  # the channel's project (`/flag config`)
        try:
            flag = await self.changes.flags.flag(project, rollout.flag)
        except ld_errors.LaunchDarklyError as error:
            raise CommandError(explain_error(error)) from error
        names = [_variation_name(v) for v in flag.get("variations") or []]
        env = (flag.get("environments") or {}).get(rollout.environment) or {}
        current = (env.get("fallthrough") or {}).get("variation")
        rest = names[current] if isinstance(current, int) and current < len(names) else None
        if rest is None or rest == rollout.variation:
            rest = next((n for n in names if n != rollout.variation), None)
        if rest is None or rollout.percent >= 100:
            return f"serve {rollout.flag} {rollout.environment} {rollout.variation}"
        pct = f"{rollout.percent:g}"
        other = f"{100 - rollout.percent:g}"
        return f"rollout {rollout.flag} {rollout.environment} {pct}% {rollout.variation} {other}% {rest}"

    async def run(self, who: Who, command_text: str, thread_ts: str | None) -> None:
        """Run a command for ``who``; a change's card goes in ``thread_ts``'s thread."""
        try:
            command = parse(command_text)
            if not isinstance(command, ChangeCommand):
                await self.router.run_command(who, command_text)
                return
            await self.changes.propose(who, command, command_text, thread_ts=thread_ts)
        except FlagopsError as error:
            await self.changes.tell(who, answer(error))


def _variation_name(variation: dict[str, Any]) -> str:
    value = variation.get("value")
    if isinstance(value, str) and value and " " not in value:
        return value
    return str(variation.get("name") or json.dumps(value))
