"""Subscriptions: which channels hear of which flag changes, and telling them.

::

    POST /launchdarkly/webhook  ─ X-LD-Signature checked (else 401, nothing else) ─┐
    the scheduler, every FLAGOPS_SUBSCRIPTION_POLL_INTERVAL s (no webhook) ─────────┤
                                                                                   ▼
    receive(entry): claim its _id (a replay stops here) → the channels whose subscriptions match
        → GET /api/v2/auditlog/<id> for before → after when the payload has no versions
        → each channel: a card; the card's own channel of a flagops change: a reply in its thread

Slack-free: the messenger says it; ``bot.subscriptions.listeners`` acks and hands over.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from bot.config import Settings
from bot.errors import explain_error
from bot.guardrails.channel_config import ChannelConfig
from bot.history.cards import plain_title
from bot.history.service import FLAGOPS_COMMENT, entry_changes, entry_who, when_text
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.models import AuditEntry
from bot.lifecycle.models import Who
from bot.lifecycle.service import ChangeService
from bot.slack.blocks import escape
from bot.slack.messenger import SlackFailure
from bot.subscriptions.cards import ChangeNotice, render_list, render_notice, render_thread_note
from bot.subscriptions.store import POLL_AFTER, Subscription, SubscriptionStore
from bot.subscriptions.webhook import WebhookSecrets, signature_ok
from commands.errors import CommandError, FlagopsError
from commands.intents import ReservedCommand
from commands.keys import check_key

log = logging.getLogger("flagops.subscriptions")

USAGE = "subscribe [<flag> | tag:<tag> | env:<env> | all] [--project <key>]"
POLL_OVERLAP_MS = 60_000  # polled again, in case LaunchDarkly files an entry a little late
POLL_PAGES = 5
_PART = re.compile(r"^(?P<kind>[a-z-]+)/(?P<key>[^;]*)(?:;.*)?$", re.I)


@dataclass(frozen=True)
class Target:
    """What a subscription follows: ``kind`` flag / tag / env / all and its key."""

    kind: str
    value: str

    @classmethod
    def parse(cls, word: str | None) -> Target:
        """``new-checkout``, ``tag:web``, ``env:production``, ``all`` (or nothing).

        Raises:
            CommandError: not one of those, or not a LaunchDarkly key.
        """
        if word is None or word.lower() in ("all", "*", "everything"):
            return cls("all", "")
        kind, sep, value = word.partition(":")
        if sep:
            kinds = {"tag": "tag", "env": "env", "environment": "env", "flag": "flag"}
            if kind.lower() not in kinds:
                raise CommandError(f"`{kind}:` is not something to subscribe to", USAGE)
            check_key(value, "key")
            return cls(kinds[kind.lower()], value)
        check_key(word, "flag key")
        return cls("flag", word)


@dataclass(frozen=True)
class EntryScope:
    """Where an audit log entry's change happened, from its resources."""

    project: str | None
    flag: str | None
    environments: tuple[str, ...]  # ("*",): the flag itself

    @classmethod
    def of(cls, entry: AuditEntry) -> EntryScope:
        resources = [a.resource for a in entry.accesses if a.resource]
        target = (entry.model_extra or {}).get("target")
        if isinstance(target, dict):
            resources += [str(r) for r in target.get("resources") or [] if isinstance(r, str)]
        project = flag = None
        envs: list[str] = []
        for resource in resources:
            parts: dict[str, str] = {}
            for part in resource.split(":"):
                match = _PART.match(part)
                if match:
                    parts[match["kind"].lower()] = match["key"]
            if "flag" not in parts:
                continue
            project, flag = parts.get("proj", project), parts["flag"]
            env = parts.get("env", "*") or "*"
            if env not in envs:
                envs.append(env)
        concrete = tuple(e for e in envs if e != "*")
        return cls(project, flag, concrete or ("*",))


class SubscriptionService:
    """Subscribe channels, and tell them of each change (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: SubscriptionStore,
        changes: ChangeService,
        channels: ChannelConfig,
        secrets: WebhookSecrets,
    ) -> None:
        self.settings = settings
        self.store = store
        self.changes = changes
        self.channels = channels
        self.secrets = secrets
        self.ld = changes.ld
        self.messenger = changes.messenger

    # --- the verbs ---------------------------------------------------------------------------

    async def subscribe(self, who: Who, command: ReservedCommand) -> None:
        """``/flag subscribe``: this channel follows a flag, a tag, an environment or everything."""
        target = Target.parse(command.args[0] if command.args else None)
        project = command.project or await self.changes.project_for(who)
        check_key(project, "project key")
        if target.kind == "flag":
            await self.changes.flags.flag(project, target.value, fresh=True)  # refused if unknown
        elif target.kind == "env":
            envs = [e.key for e in await self.ld.all_environments(project)]
            if target.value not in envs:
                raise CommandError(
                    f"There is no environment `{target.value}` in project `{project}` ({', '.join(envs)})."
                )
        channel = who.reply.channel_id
        if not channel:
            raise CommandError("Subscribe from a channel: its changes are posted there.")
        added = await self.store.add(
            channel, project, target.kind, target.value, who.user_id, self.changes.clock()
        )
        sub = Subscription("", channel, project, target.kind, target.value, who.user_id)
        what = sub.describe()
        if added is None:
            await self.changes.tell(
                who, f":information_source: This channel already follows {_q(what)} in {_q(project)}."
            )
            return
        await self.changes.tell(
            who,
            f":bell: This channel now gets changes of {_q(what)} (project {_q(project)}), "
            "wherever they are made.",
            [await self.delivery()],
        )

    async def unsubscribe(self, who: Who, command: ReservedCommand) -> None:
        """``/flag unsubscribe ...``: the same words as subscribe."""
        target = Target.parse(command.args[0] if command.args else None)
        project = command.project or await self.changes.project_for(who)
        sub = Subscription("", who.reply.channel_id, project, target.kind, target.value, who.user_id)
        if await self.store.remove(who.reply.channel_id, project, target.kind, target.value):
            await self.changes.tell(
                who, f":no_bell: This channel no longer follows {_q(sub.describe())} in {_q(project)}."
            )
        else:
            await self.changes.tell(
                who,
                f":grey_question: This channel does not follow {_q(sub.describe())} in {_q(project)}: "
                "see `/flag subscriptions`.",
            )

    async def list(self, who: Who) -> None:
        """``/flag subscriptions``: this channel's, each with Unsubscribe."""
        subs = await self.store.of_channel(who.reply.channel_id)
        text, body = render_list(subs, await self.delivery(), channel_id=who.reply.channel_id)
        await self.messenger.ephemeral(who.reply, text, body)

    async def remove(self, who: Who, subscription_id: str) -> Subscription | None:
        """The Unsubscribe button (a channel's list or the Home tab); works without a channel."""
        removed = await self.store.remove_id(subscription_id)
        if removed is None:
            await self.changes.tell(who, ":grey_question: That subscription is gone already.")
        else:
            await self.changes.tell(
                who,
                f":no_bell: <#{removed.channel_id}> no longer follows {_q(removed.describe())} "
                f"in {_q(removed.project)}.",
            )
        return removed

    async def webhook_on(self) -> bool:
        """Whether changes arrive by webhook (a public URL, and a webhook set up)."""
        return bool(self.settings.flagops_public_url) and await self.secrets.secret() is not None

    async def delivery(self) -> str:
        """How changes reach the channels, in words."""
        if await self.webhook_on():
            return "Changes arrive by LaunchDarkly's webhook, as they are made."
        why = (
            "FLAGOPS_PUBLIC_URL is not set"
            if not self.settings.flagops_public_url
            else "no webhook is set up (`python -m bot webhook-setup`)"
        )
        every = int(self.settings.flagops_subscription_poll_interval)
        return f"No webhook ({why}): I read LaunchDarkly's audit log every {every} s instead."

    # --- changes coming in -------------------------------------------------------------------

    async def receive_webhook(self, signature: str | None, body: bytes) -> int:
        """``POST /launchdarkly/webhook``: the HTTP status to answer.

        401 (and nothing else happens) unless the signature is the body's HMAC with the stored
        secret; 400 for a signed body that is not an audit log entry; else 200, after the entry
        was told (or found to be a replay).
        """
        if not signature_ok(await self.secrets.secret(), body, signature):
            return 401
        try:
            entry = AuditEntry.model_validate_json(body)
        except ValidationError:
            log.warning("a signed webhook body is not an audit log entry")
            return 400
        await self.receive(entry)
        return 200

    async def receive(self, entry: AuditEntry) -> bool:
        """Tell every matching channel of one entry, once. False: a replay, or nothing to tell."""
        scope = EntryScope.of(entry)
        if not await self.store.claim_entry(
            entry.id, scope.project, scope.flag, entry.date, self.changes.clock()
        ):
            log.info("audit log entry %s received again: ignored", entry.id)
            return False
        if scope.project is None or scope.flag is None:
            return False
        subs = await self.store.of_project(scope.project)
        if not subs:
            return False
        detail = entry if entry.previous_version or entry.current_version else await self._detail(entry)
        tags = _tags(detail) if any(s.kind == "tag" for s in subs) else set()
        if any(s.kind == "tag" for s in subs) and not tags and detail is None:
            tags = await self._flag_tags(scope.project, scope.flag)
        matched: dict[str, Subscription] = {}
        for sub in subs:
            if sub.channel_id not in matched and _matches(sub, scope, tags):
                matched[sub.channel_id] = sub
        if not matched:
            return False
        late = await self.store.newer_received(entry.id, scope.project, scope.flag, entry.date)
        for channel, sub in matched.items():
            try:
                await self._tell(channel, sub, entry, detail, scope, late)
            except (FlagopsError, SlackFailure) as error:
                log.warning("could not tell %s of entry %s: %s", channel, entry.id, type(error).__name__)
        return True

    async def _tell(
        self,
        channel: str,
        sub: Subscription,
        entry: AuditEntry,
        detail: AuditEntry | None,
        scope: EntryScope,
        late: bool,
    ) -> None:
        env = scope.environments[0] if len(scope.environments) == 1 and scope.environments[0] != "*" else None
        changes, versions = entry_changes(detail, env)
        flagops = FLAGOPS_COMMENT.match((entry.comment or "").strip())
        comment = flagops.group("comment") if flagops else entry.comment
        change = await self.changes.store.get_change(flagops.group("id")) if flagops else None
        tz = (await self.channels.get(channel)).timezone
        moment = datetime.fromtimestamp(entry.date / 1000, UTC)
        doc = (detail.current_version or detail.previous_version or {}) if detail else {}
        assert scope.project is not None and scope.flag is not None
        verb = (entry.model_extra or {}).get("titleVerb")
        notice = ChangeNotice(
            project=scope.project,
            flag_key=scope.flag,
            flag_name=str(doc.get("name") or entry.name or scope.flag),
            environments=scope.environments,
            who=entry_who(entry),
            what=str(verb)
            if isinstance(verb, str) and verb
            else plain_title(entry.title or entry.description or "changed the flag"),
            when=when_text(moment, tz, self.changes.clock()),
            changes=changes,
            versions=versions,
            comment=comment or None,
            flag_url=self._flag_url(scope.project, scope.flag, env),
            requester_id=change.requester_id if change else None,
            late=late,
            matched=sub.describe(),
        )
        if change is not None and change.channel_id == channel and change.card_ts:
            # Announced already, by its own card: LaunchDarkly's word goes in that card's thread.
            text, body = render_thread_note(notice)
            await self.messenger.post(channel, text, body, thread_ts=change.card_ts)
            return
        if change is not None and change.card_ts:
            try:
                url = await self.messenger.permalink(change.channel_id, change.card_ts)
                notice = dataclasses.replace(notice, card_url=url)
            except SlackFailure as error:
                log.info("no permalink for the card of change %s: %s", change.id, error.reason)
        text, body = render_notice(notice)
        await self.messenger.post(channel, text, body)

    def _flag_url(self, project: str, flag: str, env: str | None) -> str:
        url = f"{self.settings.ld_base_url}/projects/{project}/flags/{flag}"
        return f"{url}?env={env}" if env else url

    async def _detail(self, entry: AuditEntry) -> AuditEntry | None:
        try:
            return await self.ld.get_audit_entry(entry.id)
        except ld_errors.LaunchDarklyError as error:
            log.info("audit log entry %s could not be read: %s", entry.id, explain_error(error))
            return None

    async def _flag_tags(self, project: str, flag: str) -> set[str]:
        try:
            return set((await self.ld.get_flag(project, flag)).tags or [])
        except ld_errors.LaunchDarklyError:
            return set()

    # --- polling, where there is no webhook ----------------------------------------------------

    async def poll(self, now: datetime) -> int:
        """Read the audit log since the last look and tell what is new, oldest first.

        Does nothing while the webhook is on or nothing is subscribed. The first look only sets
        where to start: subscribing never replays the past.

        Returns:
            How many entries were told.
        """
        if await self.webhook_on() or not await self.store.count():
            return 0
        now_ms = int(now.timestamp() * 1000)
        after = await self.store.setting(POLL_AFTER)
        if after is None:
            await self.store.set_settings({POLL_AFTER: str(now_ms)})
            return 0
        since = int(after) - POLL_OVERLAP_MS
        found: dict[str, AuditEntry] = {}
        before: int | None = None
        try:
            for _ in range(POLL_PAGES):
                page = await self.ld.list_audit_log(
                    "proj/*:env/*:flag/*", after=since, before=before, limit=20
                )
                for item in page.items:
                    found.setdefault(item.id, item)
                if not page.has_next or not page.items:
                    break
                before = min(e.date for e in page.items)
        except ld_errors.LaunchDarklyError as error:
            log.warning("polling the audit log failed: %s", explain_error(error))
            return 0
        told = 0
        for entry in sorted(found.values(), key=lambda e: e.date):
            told += int(await self.receive(entry))
        newest = max([int(after), *(e.date for e in found.values())])
        await self.store.set_settings({POLL_AFTER: str(newest)})
        return told

    @property
    def poll_every(self) -> timedelta:
        return timedelta(seconds=self.settings.flagops_subscription_poll_interval)


def _tags(detail: AuditEntry | None) -> set[str]:
    if detail is None:
        return set()
    tags: set[str] = set()
    for doc in (detail.previous_version, detail.current_version):
        if doc:
            tags |= {str(t) for t in doc.get("tags") or []}
    return tags


def _matches(sub: Subscription, scope: EntryScope, tags: Iterable[str]) -> bool:
    if sub.project != scope.project:
        return False
    if sub.kind == "all":
        return True
    if sub.kind == "flag":
        return sub.value == scope.flag
    if sub.kind == "tag":
        return sub.value in set(tags)
    # env: a change in that environment, or to the flag itself (it shows in every environment).
    return sub.value in scope.environments or scope.environments == ("*",)


def _q(text: str) -> str:
    return f"*{escape(text)}*"
