"""Who an approval request notifies: configured reviewers per environment, then the command's
``--reviewers`` (Slack mentions mapped to LaunchDarkly members by email through ``users.info``).

A name that maps to no member is kept in :attr:`Reviewers.unmapped` so the card and the thread can
say who was *not* notified, instead of dropping them silently.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.config import Settings
from bot.launchdarkly.client import LaunchDarklyClient
from bot.launchdarkly.errors import LaunchDarklyError
from bot.slack import blocks
from bot.slack.messenger import Messenger, SlackFailure
from commands import parse
from commands.errors import CommandError
from commands.intents import ChangeCommand

log = logging.getLogger(__name__)

_MENTION = re.compile(r"^<@([A-Z0-9_]+)(?:\|[^>]*)?>$")
_MEMBER_ID = re.compile(r"^[0-9a-f]{24}$")


@dataclass
class Reviewers:
    """Who an approval request notifies, and who could not be found."""

    member_ids: list[str] = field(default_factory=list)
    team_keys: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def add_member(self, member_id: str, shown: str) -> None:
        """Notify a member (once), shown on the card as ``shown``."""
        if member_id not in self.member_ids:
            self.member_ids.append(member_id)
            self.shown.append(shown)


class ReviewerFinder:
    """Maps configured and named reviewers to LaunchDarkly members and teams."""

    def __init__(self, settings: Settings, ld: LaunchDarklyClient, slack: Messenger) -> None:
        self.settings = settings
        self.ld = ld
        self.slack = slack

    async def find(self, environment: str, named: Sequence[str]) -> Reviewers:
        """Reviewers to notify: configured ones for the environment, then the command's.

        Slack mentions are mapped to LaunchDarkly members by email (``users.info``); emails and
        member ids are taken as they are; a name that maps to no member is reported, not dropped.

        Args:
            environment: the request's environment (``FLAGOPS_APPROVAL_REVIEWERS`` is keyed by it).
            named: the command's ``--reviewers``.

        Returns:
            The members and teams to notify, how to show them, and who could not be mapped.

        A member lookup that fails (LaunchDarkly down, rate-limited) leaves that name unmapped, with
        the reason: the request itself is still made, to LaunchDarkly's default reviewers.
        """
        found = Reviewers()
        configured = [
            *self.settings.flagops_approval_reviewers.get("*", []),
            *self.settings.flagops_approval_reviewers.get(environment, []),
        ]
        for entry in configured:
            if "@" in entry:
                await self._add_email(found, entry, blocks.escape(entry))
            elif entry not in found.team_keys:
                found.team_keys.append(entry.removeprefix("team:"))
                found.shown.append(f"team `{entry.removeprefix('team:')}`")
        for name in named:
            mention = _MENTION.match(name)
            if mention:
                email = await self._slack_email(mention[1])
                if email is None:
                    found.unmapped.append(f"<@{mention[1]}> (no email in Slack)")
                else:
                    await self._add_email(found, email, f"<@{mention[1]}>")
            elif "@" in name and not name.startswith("@"):
                await self._add_email(found, name, blocks.escape(name))
            elif _MEMBER_ID.match(name):
                found.add_member(name, f"member `{name}`")
            else:
                found.unmapped.append(f"{blocks.escape(name)} (write a Slack mention or an email)")
        return found

    async def _add_email(self, found: Reviewers, email: str, shown: str) -> None:
        try:
            member = await self.ld.find_member_by_email(email)
        except LaunchDarklyError as error:
            log.info("member lookup for a reviewer failed: %s %s", type(error).__name__, error.status)
            found.unmapped.append(f"{shown} (LaunchDarkly's member list did not answer)")
            return
        if member is None:
            found.unmapped.append(shown)
        else:
            found.add_member(member.id, shown)

    async def _slack_email(self, user_id: str) -> str | None:
        try:
            user = await self.slack.user(user_id)
        except SlackFailure as error:
            log.info("users.info %s failed: %s", user_id, error.reason)
            return None
        profile = user.get("profile") or {}
        email = profile.get("email")
        return str(email) if email else None


def command_reviewers(command_text: str) -> tuple[str, ...]:
    """The ``--reviewers`` of a stored command (the text is parsed again: parsing is pure)."""
    try:
        command = parse(command_text)
    except CommandError:
        return ()
    return command.reviewers if isinstance(command, ChangeCommand) else ()
