"""Per-channel settings (``/flag config``): project, default environment, timezone, approvals
channel, reviewers per environment, digest schedule.

Stored in the ``channel_settings`` table (migration 0003), one row per channel, each column None
when the channel keeps the default from the environment variables (``LD_PROJECT``,
``FLAGOPS_DEFAULT_ENVIRONMENT``, ``FLAGOPS_TIMEZONE``, ``FLAGOPS_APPROVALS_CHANNEL``,
``FLAGOPS_APPROVAL_REVIEWERS``, the digest's schedule). Every feature reads them through
:meth:`ChannelConfig.get`; ``ChangeService`` asks :meth:`ChannelConfig.project` and
:meth:`ChannelConfig.environment` when a command names no project or environment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import utcnow
from bot.config import Settings
from bot.launchdarkly import errors as ld_errors
from bot.lifecycle.models import Who
from bot.lifecycle.service import ChangeService
from bot.persistence.db import channel_settings
from bot.slack import blocks
from bot.slack.messenger import CannotPost
from commands.errors import CommandError
from commands.intents import ReservedCommand

#: ``/flag config <name>`` → column. Aliases are what people type.
SETTING_NAMES: dict[str, str] = {
    "project": "project",
    "env": "environment",
    "environment": "environment",
    "tz": "timezone",
    "timezone": "timezone",
    "approvals-channel": "approvals_channel",
    "approvals": "approvals_channel",
    "reviewers": "reviewers",
    "digest": "digest",
}
CLEAR_WORDS = frozenset({"reset", "default", "unset", "clear", "none"})
DIGEST = re.compile(
    r"^(?P<days>daily|weekdays|(?:mon|tue|wed|thu|fri|sat|sun)(?:,(?:mon|tue|wed|thu|fri|sat|sun))*)"
    r"\s+(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)$"
)
_USER_REF = re.compile(r"^<@([UW][A-Z0-9_]+)(?:\|[^>]*)?>$|^([UW][A-Z0-9_]{2,})$")
_CHANNEL_REF = re.compile(r"^<#([CG][A-Z0-9_]+)(?:\|[^>]*)?>$|^([CG][A-Z0-9_]{2,})$")
_CHANNEL_NAME = re.compile(r"^#?([a-z0-9][a-z0-9_-]{0,79})$")


@dataclass(frozen=True)
class ChannelSettings:
    """One channel's effective settings, and which of them the channel set itself."""

    channel_id: str
    project: str
    environment: str | None
    timezone: str
    approvals_channel: str | None
    reviewers: dict[str, list[str]]
    digest: str | None
    own: frozenset[str] = field(default_factory=frozenset)
    """The columns this channel set (the others are the environment variables' defaults)."""

    def reviewers_for(self, environment: str) -> list[str]:
        """The reviewers to ask for ``environment`` (``*`` is every environment)."""
        return list(self.reviewers.get(environment) or self.reviewers.get("*") or [])


class ChannelConfig:
    """Reads and writes ``channel_settings``; defaults come from :class:`Settings`."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def defaults(self, channel_id: str) -> ChannelSettings:
        """The settings of a channel that set nothing: the environment variables'."""
        # The approvals and digest settings belong to other features; read them when present.
        approvals = getattr(self.settings, "flagops_approvals_channel", None)
        reviewers = getattr(self.settings, "flagops_approval_reviewers", None) or {}
        digest = getattr(self.settings, "flagops_digest_cron", None)
        return ChannelSettings(
            channel_id=channel_id,
            project=self.settings.ld_project,
            environment=self.settings.flagops_default_environment or None,
            timezone=self.settings.flagops_timezone,
            approvals_channel=str(approvals) if approvals else None,
            reviewers={str(k): [str(v) for v in vs] for k, vs in dict(reviewers).items()},
            digest=str(digest) if digest else None,
        )

    async def get(self, channel_id: str) -> ChannelSettings:
        """A channel's effective settings (its own where set, else the defaults)."""
        async with self.engine.connect() as connection:
            result = await connection.execute(
                select(channel_settings).where(channel_settings.c.channel_id == channel_id)
            )
            row = result.mappings().first()
        base = self.defaults(channel_id)
        if row is None:
            return base
        own: set[str] = set()
        values: dict[str, Any] = {}
        for column in ("project", "environment", "timezone", "approvals_channel", "digest"):
            if row[column] is not None:
                values[column] = row[column]
                own.add(column)
        reviewers = dict(base.reviewers)
        if row["reviewers_json"]:
            own.add("reviewers")
            reviewers.update(json.loads(row["reviewers_json"]))
        return ChannelSettings(
            channel_id=channel_id,
            project=values.get("project", base.project),
            environment=values.get("environment", base.environment),
            timezone=values.get("timezone", base.timezone),
            approvals_channel=values.get("approvals_channel", base.approvals_channel),
            reviewers=reviewers,
            digest=values.get("digest", base.digest),
            own=frozenset(own),
        )

    async def with_digest(self) -> list[ChannelSettings]:
        """Every channel that set its own digest schedule (``off`` included)."""
        async with self.engine.connect() as connection:
            result = await connection.execute(
                select(channel_settings.c.channel_id).where(channel_settings.c.digest.is_not(None))
            )
            ids = [str(row[0]) for row in result]
        return [await self.get(channel_id) for channel_id in ids]

    async def project(self, channel_id: str) -> str:
        """The channel's project (``LD_PROJECT`` unless ``/flag config project`` set one)."""
        return (await self.get(channel_id)).project

    async def environment(self, channel_id: str) -> str | None:
        """The channel's default environment, or None."""
        return (await self.get(channel_id)).environment

    async def set(self, channel_id: str, user_id: str, **values: Any) -> ChannelSettings:
        """Set (or, with None, reset to the default) some of a channel's settings.

        Args:
            channel_id: the channel.
            user_id: who changed them (stored with the row).
            **values: columns of ``channel_settings`` (``project``, ``environment``, ``timezone``,
                ``approvals_channel``, ``digest``, ``reviewers_json``).

        Returns:
            The channel's settings afterwards.
        """
        row = {**values, "updated_by": user_id, "updated_at": utcnow()}
        async with self.engine.begin() as connection:
            changed = await connection.execute(
                update(channel_settings).where(channel_settings.c.channel_id == channel_id).values(row)
            )
            if changed.rowcount == 0:
                try:
                    async with connection.begin_nested():
                        await connection.execute(
                            channel_settings.insert().values(channel_id=channel_id, **row)
                        )
                except IntegrityError:
                    # Another instance inserted the row first: update it instead.
                    await connection.execute(
                        update(channel_settings)
                        .where(channel_settings.c.channel_id == channel_id)
                        .values(row)
                    )
        return await self.get(channel_id)

    async def reviewers_row(self, channel_id: str) -> dict[str, list[str]]:
        """The reviewers this channel set itself (without the defaults)."""
        async with self.engine.connect() as connection:
            result = await connection.execute(
                select(channel_settings.c.reviewers_json).where(channel_settings.c.channel_id == channel_id)
            )
            raw = result.scalar()
        loaded: dict[str, list[str]] = json.loads(raw) if raw else {}
        return loaded


# --- reading values as typed -----------------------------------------------------------------------


def check_timezone(text: str) -> str:
    """An IANA zone name (``Europe/Paris``), as ``zoneinfo`` knows it.

    Raises:
        CommandError: not a known zone.
    """
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise CommandError(
            f"`{text}` is not a time zone I know: use an IANA name like `Europe/Paris` or `America/New_York`."
        ) from None
    return text


def check_digest(text: str) -> str:
    """A digest schedule: ``mon 09:00``, ``mon,thu 09:30``, ``weekdays 08:45``, ``daily 17:00``.

    Raises:
        CommandError: another shape.
    """
    normal = " ".join(text.lower().split())
    match = DIGEST.match(normal)
    if match is None:
        raise CommandError(
            f'`{text}` is not a digest schedule: give days and a time, like "mon 09:00", '
            '"mon,thu 09:30", "weekdays 08:45" or "daily 17:00" (the channel\'s time zone), or `off`.'
        )
    return f"{match['days']} {int(match['hour']):02d}:{match['minute']}"


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def last_digest_time(schedule: str, tz: str, now: datetime) -> datetime | None:
    """The latest time at or before ``now`` that a digest schedule (``mon 09:00``, ``weekdays
    08:45``, ``daily 17:00``, as :func:`check_digest` stores it) names, in zone ``tz``; None when
    the schedule names no day in the past week."""
    match = DIGEST.match(schedule)
    if match is None:
        return None
    days = match["days"]
    allowed = (
        set(range(7))
        if days == "daily"
        else set(range(5))
        if days == "weekdays"
        else {_DAYS.index(d) for d in days.split(",")}
    )
    local = now.astimezone(ZoneInfo(tz))
    for back in range(8):
        day = (local - timedelta(days=back)).date()
        at = datetime(
            day.year, day.month, day.day, int(match["hour"]), int(match["minute"]), tzinfo=local.tzinfo
        )
        if day.weekday() in allowed and at <= local:
            return at
    return None


def channel_ref(text: str) -> str:
    """A channel as Slack escapes it (``<#C123|name>``), an id, or ``#name``: the id, or ``#name``.

    Raises:
        CommandError: none of those.
    """
    if match := _CHANNEL_REF.match(text):
        return match[1] or match[2]
    if match := _CHANNEL_NAME.match(text.lower()):
        return f"#{match[1]}"
    raise CommandError(f"`{text}` is not a channel: write it as #channel-name.")


def user_refs(words: list[str]) -> list[str]:
    """Slack users as mentions (``<@U123|bob>``), ids, or ``@name``s: ids where Slack gave them.

    Raises:
        CommandError: a word that is none of those.
    """
    refs: list[str] = []
    for word in (w for text in words for w in re.split(r"[\s,]+", text) if w):
        if match := _USER_REF.match(word):
            refs.append(match[1] or match[2])
        elif re.fullmatch(r"@[\w.-]+", word):
            refs.append(word)
        else:
            raise CommandError(f"`{word}` is not a Slack user: mention them, like @bob.")
    return refs


def show_channel(ref: str | None) -> str:
    """A stored channel as mrkdwn."""
    if not ref:
        return "—"
    return ref if ref.startswith("#") else f"<#{ref}>"


def show_user(ref: str) -> str:
    """A stored user as mrkdwn."""
    return ref if ref.startswith("@") else f"<@{ref}>"


# --- /flag config -----------------------------------------------------------------------------------


class ConfigCommand:
    """``/flag config``: shows the channel's settings (to the asker) or sets one (announced).

    Args:
        channels: the settings store.
        service: the change lifecycle (its LaunchDarkly client validates projects and
            environments; its messenger answers and announces).
    """

    def __init__(self, channels: ChannelConfig, service: ChangeService) -> None:
        self.channels = channels
        self.service = service

    async def run(self, who: Who, command: ReservedCommand, text: str) -> None:
        """Handle ``config`` with its arguments (after the ack).

        Raises:
            CommandError: an unknown setting or a bad value; says what to type.
            LaunchDarklyError: LaunchDarkly could not be asked about a project or environment.
        """
        if not command.args:
            await self.show(who)
            return
        name = command.args[0].lower()
        column = SETTING_NAMES.get(name)
        if column is None:
            raise CommandError(
                f"There is no setting `{name}`. Settings: project, env, tz, approvals-channel, "
                "reviewers, digest (e.g. `/flag config env production`)."
            )
        words = [w for arg in command.args[1:] for w in arg.split()]
        if not words:
            await self.show(who)
            return
        channel = who.reply.channel_id
        current = await self.channels.get(channel)
        clear = len(words) == 1 and words[0].lower() in CLEAR_WORDS
        if column == "reviewers":
            values = await self._reviewers(current, words)
            said = _reviewers_text(json.loads(values["reviewers_json"] or "{}"), words[0])
        elif clear:
            values, said = {column: None}, "the default"
        else:
            value = await self._value(column, " ".join(words), current)
            values, said = {column: value}, _shown(column, value)
        updated = await self.channels.set(channel, who.user_id, **values)
        label = _LABELS[column]
        if clear and column != "reviewers":
            said = f"the default ({_shown(column, getattr(updated, column))})"
        notice = f":gear: <@{who.user_id}> set this channel's *{label}* to {said}."
        message, body = blocks.render_notice(notice)
        try:
            await self.service.messenger.post(channel, message, body)
        except CannotPost:
            await self.service.tell(who, notice)

    async def show(self, who: Who) -> None:
        """The channel's settings, each marked as its own or the default, to the asker alone."""
        current = await self.channels.get(who.reply.channel_id)
        lines = []
        for column, label in _LABELS.items():
            if column == "reviewers":
                value = _reviewers_text(current.reviewers, None)
            else:
                value = _shown(column, getattr(current, column))
            source = "set here" if column in current.own else "default"
            lines.append(f"• *{label}*: {value} _({source})_")
        command = self.service.settings.flagops_command
        lines.append(
            f"_Change one with `{command} config <setting> <value>` (e.g. `{command} config env production`, "
            f'`{command} config digest "mon 09:00"`); `reset` returns it to the default._'
        )
        await self.service.tell(who, ":gear: *Settings of this channel*", lines)

    async def _value(self, column: str, value: str, current: ChannelSettings) -> str:
        if column == "project":
            await self._environments(value)
            return value
        if column == "environment":
            envs = await self._environments(current.project)
            if value not in envs:
                raise CommandError(
                    f"There is no environment `{value}` in project `{current.project}` ({', '.join(envs)})."
                )
            return value
        if column == "timezone":
            return check_timezone(value)
        if column == "approvals_channel":
            return channel_ref(value)
        if value.lower() == "off":
            return "off"
        return check_digest(value)

    async def _reviewers(self, current: ChannelSettings, words: list[str]) -> dict[str, str | None]:
        env, people = words[0], words[1:]
        if env != "*":
            envs = await self._environments(current.project)
            if env not in envs:
                raise CommandError(
                    f"Give the environment first, e.g. `config reviewers production @bob`: there is no "
                    f"environment `{env}` in project `{current.project}` ({', '.join(envs)})."
                )
        own = await self.channels.reviewers_row(current.channel_id)
        if not people:
            raise CommandError(
                f"Name the reviewers for {env} (e.g. `config reviewers {env} @bob @carol`), "
                f"or `config reviewers {env} reset`."
            )
        if len(people) == 1 and people[0].lower() in CLEAR_WORDS:
            own.pop(env, None)
        else:
            own[env] = user_refs(people)
        return {"reviewers_json": json.dumps(own) if own else None}

    async def _environments(self, project: str) -> list[str]:
        try:
            return [e.key for e in await self.service.ld.all_environments(project)]
        except ld_errors.NotFound:
            raise CommandError(
                f"There is no project `{project}` in LaunchDarkly (or the bot's token cannot see it)."
            ) from None


_LABELS = {
    "project": "project",
    "environment": "env",
    "timezone": "tz",
    "approvals_channel": "approvals-channel",
    "reviewers": "reviewers",
    "digest": "digest",
}


def _shown(column: str, value: str | None) -> str:
    if value is None:
        return "—"
    if column == "approvals_channel":
        return show_channel(value)
    return f"`{value}`"


def _reviewers_text(reviewers: dict[str, list[str]], env: str | None) -> str:
    if env is not None:
        people = reviewers.get(env)
        return f"{', '.join(show_user(p) for p in people)} for `{env}`" if people else f"nobody for `{env}`"
    if not reviewers:
        return "—"
    return "; ".join(f"`{e}`: {', '.join(show_user(p) for p in ps)}" for e, ps in sorted(reviewers.items()))
