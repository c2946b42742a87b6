"""Slash-command text → the right answer: help, show and list answer the requester alone;
changes go to the lifecycle (``bot.lifecycle.service``); the other verbs (``approvals``, ``remind``,
``config``, ``undo``...) go to the handler their feature registered with
:meth:`CommandRouter.handle`."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from bot.errors import answer
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.models import FeatureFlag
from bot.lifecycle import ramps
from bot.lifecycle.flags import FlagReader
from bot.lifecycle.models import VerbHandler, Who
from bot.lifecycle.service import ChangeService
from bot.slack import blocks
from bot.slack.messenger import Messenger
from commands.errors import CommandError, FlagopsError
from commands.help import help_text
from commands.intents import (
    ChangeCommand,
    Command,
    HelpCommand,
    ListCommand,
    RawCommand,
    ShowCommand,
)
from commands.natural import complete_rollout, partial_rollout, ramp_steps, rephrase
from commands.parse import parse
from commands.summary import environment_facts, every_environment_facts, flag_facts


class CommandRouter:
    """Parses a command and sends it where it belongs."""

    def __init__(self, changes: ChangeService, verbs: dict[str, VerbHandler]) -> None:
        self.changes = changes
        self.flags: FlagReader = changes.flags
        self.messenger: Messenger = changes.messenger
        self.settings = changes.settings
        self.ld = changes.ld
        # The registry the lifecycle was built with (``bot.wiring``): a superseded `undo` card is
        # made again through the same handlers.
        self.handlers = verbs
        self.help_lines: list[str] = []  # e.g. whether a policy restricts changes

    def handle(self, verb: str, handler: VerbHandler) -> None:
        """Send the reserved ``verb`` (as ``ReservedCommand.verb`` names it) to ``handler``."""
        self.handlers[verb] = handler

    async def _tell(self, who: Who, text: str, lines: list[str] | None = None) -> None:
        await self.changes.tell(who, text, lines or [])

    async def run_command(self, who: Who, text: str) -> None:
        """Handle the text of a slash command (after the ack)."""
        try:
            try:
                command = self.read(text)
            except CommandError:
                ramp = ramp_steps(text)  # `ramp <flag> <env> 5% 25% 100% every 30m`
                if ramp is not None:
                    await ramps.propose(self.changes, who, ramp, text)
                    return
                partial = partial_rollout(text)
                if partial is None:
                    raise
                command = await self._one_line_rollout(who, *partial)
            await self._dispatch(who, command, text)
        except FlagopsError as error:
            button = self._guess_button(error, text)
            if button is None:
                await self._tell(who, answer(error))
            else:
                message, body = blocks.render_notice(answer(error), buttons=[button])
                await self.messenger.ephemeral(who.reply, message, body)

    def _guess_button(self, error: FlagopsError, text: str) -> dict[str, Any] | None:
        """The **Propose /flag …** button of an answer that guessed (exactly one correction comes
        close), or None. The corrected command must read as a command; clicking it runs it as the
        clicker, through this same path, with every check."""
        if not isinstance(error, CommandError) or error.guess is None:
            return None
        corrected = corrected_text(text, *error.guess)
        if corrected is None:
            return None
        try:
            proposes = isinstance(self.read(corrected), ChangeCommand | RawCommand)
        except CommandError:
            if partial_rollout(corrected) is None:
                return None
            proposes = True
        return blocks.guess_button(
            self.settings.flagops_command, corrected, verb="Propose" if proposes else "Run"
        )

    async def _one_line_rollout(
        self, who: Who, key: str, env_name: str, percent: float, variation: str | None
    ) -> Command:
        """``rollout new-checkout prod 25%``: the whole rollout, completed from the flag (a boolean
        flag: the rest to the other value; else the rest stays with what is served now). The
        card then says how it was read.

        Raises:
            CommandError: it cannot be completed (say the whole rollout), or the flag or
                environment is unknown.
        """
        project = await self.changes.project_for(who)
        flag = await self.flags.flag(project, key)
        env = await self.flags.environment_key(project, env_name, flag)
        whole = complete_rollout(flag, env or env_name, percent, variation)
        if whole is None:
            raise CommandError(
                f"I cannot tell where the other {100 - percent:g}% go for `{key}` in `{env or env_name}`: "
                "say the whole rollout, e.g. `rollout banner-color test 25% blue 75% green`."
            )
        return parse(whole)

    @staticmethod
    def read(text: str) -> Command:
        """The command ``text`` is: as the grammar reads it, else as a natural phrasing of it
        (``turn off new-checkout in production``, ``new-checkout off``, ``kill new-checkout``).

        Raises:
            CommandError: neither; the grammar's own error (with its usage) is the answer.
        """
        try:
            return parse(text)
        except CommandError:
            phrased = rephrase(text)
            if phrased is None:
                raise
            try:
                return parse(phrased)
            except CommandError:
                pass
            raise

    async def _dispatch(self, who: Who, command: Command, text: str) -> None:
        if isinstance(command, HelpCommand):
            extra = "".join(line + "\n\n" for line in self.help_lines) if not command.topic else ""
            # Help is plain text with `<flag>` placeholders (and the topic as typed): escaped whole.
            await self.changes.tell_text(who, extra + blocks.escape(help_text(command.topic)))
        elif isinstance(command, ShowCommand):
            await self._show(who, command)
        elif isinstance(command, ListCommand):
            await self._list(who, command)
        elif isinstance(command, ChangeCommand):
            await self.changes.propose(who, command, text)
        elif isinstance(command, RawCommand):
            await self.changes.propose_raw(who, command, text)
        elif command.verb in self.handlers:
            await self.handlers[command.verb](who, command, text)
        else:
            await self._tell(who, f":construction: `{command.verb}` is not available yet.")

    async def _show(self, who: Who, command: ShowCommand) -> None:
        project = command.project or await self.changes.project_for(who)
        flag = await self.flags.flag(project, command.flag, fresh=True)
        env = await self.flags.environment_key(
            project, command.environment or await self.changes.environment_for(who), flag
        )
        key = str(flag.get("key") or command.flag)
        name = blocks.escape(flag.get("name") or key)
        title = f":triangular_flag_on_post: *{name}* (`{key}`)"
        # Without an environment: every environment's state at a glance, then the flag's facts.
        facts = (
            environment_facts(flag, env) + flag_facts(flag)
            if env
            else every_environment_facts(flag, await self._waiting(project, key, flag)) + flag_facts(flag)
        )
        footer = f"project {project} · version {flag.get('_version')}"
        if not env:
            footer += " · add an environment for its rules and targets"
        history = blocks.history_button(project, key, env)
        text, body = blocks.render_facts(title, facts, footer=footer, buttons=[history])
        await self.messenger.ephemeral(who.reply, text, body)

    async def _waiting(self, project: str, key: str, flag: dict[str, Any]) -> dict[str, str]:
        """Per environment: pending approval requests and scheduled changes, in words (read
        together; an environment LaunchDarkly did not answer for says so)."""
        envs = sorted(flag.get("environments") or {})

        async def one(env: str) -> str:
            try:
                requests, scheduled = await asyncio.gather(
                    self.ld.list_approval_requests(project, key, env),
                    self.ld.list_scheduled_changes(project, key, env),
                )
            except ld_errors.LaunchDarklyError:
                return "pending approvals and scheduled changes could not be read"
            pending = sum(1 for r in requests if r.status == "pending" and r.review_status != "declined")
            words = []
            if pending:
                words.append(f"{pending} approval request{'s' if pending != 1 else ''} pending")
            if scheduled:
                words.append(f"{len(scheduled)} scheduled change{'s' if len(scheduled) != 1 else ''}")
            return " · ".join(words)

        return dict(zip(envs, await asyncio.gather(*(one(env) for env in envs)), strict=True))

    async def _list(self, who: Who, command: ListCommand) -> None:
        project = command.project or await self.changes.project_for(who)
        # On or off in each environment (the first few), so the list says the state at a glance.
        envs = [e.key for e in await self.ld.all_environments(project)][:LIST_ENVIRONMENTS]
        page = await self.ld.list_flags(
            project, query=command.query, tag=command.tag, limit=40, env=envs or None
        )
        items = list(page.items)
        if not items:
            await self._tell(who, f"No flags in project `{project}` match.")
            return
        lines = [
            f"• `{f.key}` {blocks.escape(f.name or '')}"
            + (f" _{', '.join(f.tags)}_" if f.tags else "")
            + _states(f, envs)
            for f in items
        ]
        more = (page.total_count or len(items)) - len(items)
        if more > 0:
            lines.append(f"_…and {more} more: narrow with a query or `--tag`_")
        await self._tell(who, f"Flags in `{project}`:", lines)

    # --- propose ----------------------------------------------------------------------------


def corrected_text(text: str, typed: str, meant: str) -> str | None:
    """``text`` with each whole-word ``typed`` replaced by ``meant`` (``off new-chekout prod`` →
    ``off new-checkout prod``), or None when ``typed`` is not in it as a word, or nothing changes."""
    if not typed or not meant or typed == meant:
        return None
    word = re.compile(rf"(?<![A-Za-z0-9._\-]){re.escape(typed)}(?![A-Za-z0-9._\-])")
    line = " ".join(text.split())
    corrected = word.sub(lambda _: meant, line)
    return corrected if corrected != line else None


LIST_ENVIRONMENTS = 4  # environments whose on/off `list` shows (LaunchDarkly sends each flag's)


def _states(flag: FeatureFlag, envs: list[str]) -> str:
    """`· test ON · production OFF` for the environments LaunchDarkly sent."""
    parts = []
    for key in envs:
        env = flag.environment(key)
        if env is not None:
            parts.append(f"{blocks.escape(key)} {'ON' if env.on else 'OFF'}")
    return (" · " + " · ".join(parts)) if parts else ""
