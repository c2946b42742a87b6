"""Slash-command text → the right answer: help, show and list answer the requester alone;
changes go to the lifecycle (``bot.lifecycle.service``); the other verbs (``approvals``, ``remind``,
``config``, ``undo``...) go to the handler their feature registered with
:meth:`CommandRouter.handle`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
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
from commands.parse import ACCOUNT_VERBS, account_verb_meant, parse
from commands.secrets import looks_like_secret
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
        """Handle the text of a slash command (after the ack). A line holding what looks like a
        token (``commands.secrets``) is refused unread, unless it is an account verb's (which
        drops what follows it); its listener keeps it out of the inbox."""
        words = text.split(None, 1)
        if looks_like_secret(text) and not (words and account_verb_meant(words[0])):
            await self._tell(who, SECRET_REFUSED.format(command=self.settings.flagops_command))
            return
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
        typed, meant = error.guess
        # An account verb's guess is the bare verb: what followed it is most likely a token, never
        # carried in a button (its value comes back in the click, which is stored).
        corrected = meant if meant in ACCOUNT_VERBS else corrected_text(text, typed, meant)
        if corrected is None or looks_like_secret(corrected):
            return None
        first = corrected.split(None, 1)[0].lower()
        if first in ACCOUNT_VERBS:
            corrected = first
        try:
            proposes = isinstance(self.read(corrected), ChangeCommand | RawCommand)
        except CommandError:
            if partial_rollout(corrected) is None and not _is_ramp(corrected):
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


SECRET_REFUSED = (
    ":no_entry: That command holds what looks like a token or key (a Slack or LaunchDarkly token, an "
    "SDK key, a long random string), so I did not run it, show it or keep it anywhere. Never paste a "
    "token into a command: to act as yourself in LaunchDarkly, run `{command} link-account` on its "
    "own; its form asks for the token. If it is no secret (a full commit hash, say), shorten it."
)


def _is_ramp(text: str) -> bool:
    try:
        return ramp_steps(text) is not None
    except CommandError:
        return False


#: More occurrences of the guessed word than this: no button (each is read once to tell which).
MAX_GUESSED_OCCURRENCES = 12


def corrected_text(text: str, typed: str, meant: str) -> str | None:
    """``text`` with the whole-word ``typed`` that was guessed replaced by ``meant`` (``off
    new-chekout prod`` → ``off new-checkout prod``), or None when ``typed`` is not in it as a word,
    nothing changes, or which occurrence was guessed cannot be told.

    One occurrence is replaced; of several, those in the place the guess is about (the flag key,
    the environment, a segment, a variation: ``target new-checkout tset tset -> true`` corrects the
    environment, not the target `tset`), found by reading the command with each replaced; all of
    them when they are one reference said again (``delete a.b confirm a.b``).
    """
    if not typed or not meant or typed == meant:
        return None
    word = re.compile(rf"(?<![A-Za-z0-9._\-]){re.escape(typed)}(?![A-Za-z0-9._\-])")
    line = " ".join(text.split())
    found = list(word.finditer(line))
    if len(found) > MAX_GUESSED_OCCURRENCES:
        return None
    chosen = _guessed(line, found, typed, meant) if len(found) > 1 else found
    if not chosen:
        return None
    corrected = _replaced(line, chosen, meant)
    return corrected if corrected != line else None


def _replaced(line: str, spans: list[re.Match[str]], meant: str) -> str:
    for match in reversed(spans):
        line = line[: match.start()] + meant + line[match.end() :]
    return line


#: Where in a command (its fields as read) each kind of guess is about, in the order the bot checks.
_GUESS_PLACES: tuple[Callable[[tuple[Any, ...]], bool], ...] = (
    lambda path: path == ("flag",),
    lambda path: path == ("environment",),
    lambda path: "clauses" in path and "values" in path,
    lambda path: "variation" in path and path[-1] == "text",
)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    if isinstance(value, dict):
        return {p: v for key, item in value.items() for p, v in _leaves(item, (*path, key)).items()}
    if isinstance(value, list):
        return {p: v for n, item in enumerate(value) for p, v in _leaves(item, (*path, n)).items()}
    return {path: value}


def _guessed(line: str, found: list[re.Match[str]], typed: str, meant: str) -> list[re.Match[str]]:
    """Of several occurrences of ``typed``, those the guess is about (see :func:`corrected_text`)."""
    try:
        before = _leaves(CommandRouter.read(line).model_dump(mode="json"))
    except CommandError:
        # Not read yet: a verb (the first thing read), or a line only the bot completes.
        return found[:1]
    where = next((p for p in _GUESS_PLACES if any(p(k) and v == typed for k, v in before.items())), None)
    if where is None:
        return found[:1]

    def only_there(spans: list[re.Match[str]]) -> bool:
        try:
            after = _leaves(CommandRouter.read(_replaced(line, spans, meant)).model_dump(mode="json"))
        except CommandError:
            return False
        changed = [k for k in before.keys() | after.keys() if before.get(k) != after.get(k)]
        return bool(changed) and all(where(k) for k in changed)

    singles = [m for m in found if only_there([m])]
    if singles:
        return singles
    return found if only_there(found) else []


LIST_ENVIRONMENTS = 4  # environments whose on/off `list` shows (LaunchDarkly sends each flag's)


def _states(flag: FeatureFlag, envs: list[str]) -> str:
    """`· test ON · production OFF` for the environments LaunchDarkly sent."""
    parts = []
    for key in envs:
        env = flag.environment(key)
        if env is not None:
            parts.append(f"{blocks.escape(key)} {'ON' if env.on else 'OFF'}")
    return (" · " + " · ".join(parts)) if parts else ""
