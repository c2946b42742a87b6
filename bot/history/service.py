"""A flag's history from LaunchDarkly's audit log, one page at a time (see ``bot.history``).

::

    GET /api/v2/auditlog?spec=proj/<p>:env/<e or *>:flag/<key>&limit=5[&before=<ms>]
        → the page's entries (list entries carry no versions)
    GET /api/v2/auditlog/<id> for each, at once
        → previousVersion / currentVersion → before → after (commands.summary)
    a comment "flagops change <id> …" → the change's card in Slack (chat.getPermalink)

Slack-free: ``bot.history.listeners`` acks and hands over. The answer goes to the person who asked
alone. An entry whose details LaunchDarkly does not give is still listed, without its before →
after; a card that cannot be linked is named by its change id.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from bot.errors import explain_error
from bot.history.cards import PAGE_SIZE, EntryView, HistoryPage, HistoryRef, plain_title, render_history
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.models import AuditEntry
from bot.lifecycle.models import Who
from bot.lifecycle.outcome import audit_spec
from bot.lifecycle.service import ChangeService
from bot.scheduling.schedule_time import describe_moment, user_timezone, zone
from bot.slack.messenger import SlackFailure
from commands.errors import CommandError
from commands.summary import FactChange, diff_facts, diff_facts_everywhere

log = logging.getLogger(__name__)

#: The comment flagops writes on every change (``ChangeService.comment``).
FLAGOPS_COMMENT = re.compile(
    r"flagops change (?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) via Slack by "
    r"@\S+?(?::\s?(?P<comment>.*))?$",
    re.S,
)


class HistoryService:
    """Pages of a flag's history, told to the person who asked."""

    def __init__(self, changes: ChangeService) -> None:
        self.changes = changes
        self.ld = changes.ld
        self.store = changes.store
        self.messenger = changes.messenger

    async def show(self, who: Who, ref: HistoryRef) -> None:
        """Tell ``who`` one page of the flag's history (entries before ``ref.before``, if set).

        Raises:
            CommandError: no such flag (and nothing in the audit log) or environment.
        """
        name, notes = await self._flag(ref)
        spec = audit_spec(ref.project, ref.flag, ref.env)
        try:
            page = await self.ld.list_audit_log(spec, before=ref.before, limit=PAGE_SIZE)
        except ld_errors.LaunchDarklyError as error:
            reason = explain_error(error)
            await self.changes.tell(who, f":warning: Could not read LaunchDarkly's audit log: {reason}")
            return
        if name is None and not page.items and ref.before is None:
            raise CommandError(notes[0])
        tz = await user_timezone(self.messenger, who.user_id)
        entries = list(page.items)
        details = await asyncio.gather(*(self._details(e) for e in entries))
        views = await asyncio.gather(
            *(self._view(e, d, ref.env, tz) for e, d in zip(entries, details, strict=True))
        )
        older = None
        if page.has_next and entries:
            older = ref.model_copy(update={"before": min(e.date for e in entries)})
        before_text = describe_moment(_moment(ref.before), tz) if ref.before else None
        text, body = render_history(
            HistoryPage(
                flag_key=ref.flag,
                flag_name=name or ref.flag,
                project=ref.project,
                environment=ref.env,
                entries=views,
                older=older,
                before_text=before_text,
                notes=notes if name is None else (),
            )
        )
        await self.messenger.ephemeral(who.reply, text, body)

    async def show_change(self, who: Who, change_id: str) -> None:
        """The history of a change card's flag, in the card's environment (its ⋯ menu)."""
        change = await self.store.get_change(change_id) if change_id else None
        if change is None:
            await self.changes.tell(who, ":grey_question: I don't know this change any more.")
            return
        try:
            ref = HistoryRef(project=change.project, flag=change.flag_key, env=change.environment)
        except ValidationError:
            await self.changes.tell(who, ":grey_question: This card is not about one flag: no history.")
            return
        await self.show(who, ref)

    async def _flag(self, ref: HistoryRef) -> tuple[str | None, list[str]]:
        """The flag's name (None when it no longer exists, with why as a note)."""
        try:
            flag = await self.changes.flags.flag(ref.project, ref.flag, fresh=True)
        except CommandError as error:
            # A deleted flag has a history too: its audit log still says who deleted it.
            return None, [error.message]
        await self.changes.flags.check_environment(ref.project, ref.env, flag)
        return str(flag.get("name") or ref.flag), []

    async def _details(self, entry: AuditEntry) -> AuditEntry | None:
        try:
            return await self.ld.get_audit_entry(entry.id)
        except ld_errors.LaunchDarklyError as error:
            log.info("audit log entry %s could not be read: %s", entry.id, error)
            return None

    async def _view(
        self, entry: AuditEntry, detail: AuditEntry | None, env: str | None, tz: str
    ) -> EntryView:
        flagops = FLAGOPS_COMMENT.match((entry.comment or "").strip())
        comment = entry.comment
        requester = card_url = change_id = None
        if flagops is not None:
            change_id = flagops.group("id")
            comment = flagops.group("comment")
            requester, card_url = await self._card(change_id)
        changes, versions = entry_changes(detail, env)
        verb = (entry.model_extra or {}).get("titleVerb")
        return EntryView(
            when=when_text(_moment(entry.date), tz, self.changes.clock()),
            who=entry_who(entry),
            # LaunchDarkly's verb ("turned on the flag") when it gives one: who and which flag are
            # said already; else its title or description, without Markdown links.
            what=str(verb)
            if isinstance(verb, str) and verb
            else plain_title(entry.title or entry.description or entry.name or "changed the flag"),
            changes=changes,
            comment=comment or None,
            versions=versions,
            card_url=card_url,
            requester_id=requester,
            flagops_change=change_id,
        )

    async def _card(self, change_id: str) -> tuple[str | None, str | None]:
        """Who asked for a flagops change, and its card's permanent address (when still known)."""
        change = await self.store.get_change(change_id)
        if change is None or not change.card_ts:
            return None, None
        try:
            return change.requester_id, await self.messenger.permalink(change.channel_id, change.card_ts)
        except SlackFailure as error:
            log.info("no permalink for the card of change %s: %s", change_id, error.reason)
            return change.requester_id, None


def entry_changes(detail: AuditEntry | None, env: str | None) -> tuple[list[FactChange], str | None]:
    """Before → after of an entry, or why there is none."""
    if detail is None:
        return [], "LaunchDarkly did not give this entry's details"
    before, after = detail.previous_version, detail.current_version
    if before is None and after is None:
        return [], "no versions of the flag recorded with this entry"
    if before is None:
        return [FactChange("Flag", None, "created")], None
    if after is None:
        return [FactChange("State", "live", "deleted")], None
    changes = diff_facts(before, after, env) if env else diff_facts_everywhere(before, after)
    return changes, None if changes else "no difference in what the flag serves or shows"


def entry_who(entry: AuditEntry) -> str:
    """``Ann Lee (ann@example.com)``, ``token “deploy bot”`` or ``app “Terraform”``."""
    member: dict[str, Any] = entry.member or {}
    name = " ".join(str(member[p]) for p in ("firstName", "lastName") if member.get(p))
    email = member.get("email")
    token: dict[str, Any] = entry.token or {}
    app = entry.model_extra.get("app") if entry.model_extra else None
    who = f"{name} ({email})" if name and email else str(name or email or "")
    if token.get("name"):
        who = f"{who} with token “{token['name']}”" if who else f"token “{token['name']}”"
    if not who and isinstance(app, dict) and app.get("name"):
        who = f"app “{app['name']}”"
    return who or "someone"


def when_text(moment: datetime, tz: str, now: datetime) -> str:
    """``Thu 03 Dec 14:17:05 Europe/Berlin (13:17:05 UTC)``: to the second (several changes a
    minute are told apart), the year only when it is not this one."""
    local = moment.astimezone(zone(tz))
    shown = local.strftime("%a %d %b" + (" %Y" if local.year != now.year else "") + " %H:%M:%S")
    if tz in ("UTC", "Etc/UTC"):
        return f"{shown} UTC"
    return f"{shown} {tz} ({moment.astimezone(UTC).strftime('%H:%M:%S')} UTC)"


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
