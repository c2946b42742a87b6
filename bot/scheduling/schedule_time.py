"""When a command says ``at <time>`` or ``in <duration>``: a moment in UTC, read in the user's time zone.

``at`` is read with dateparser, preferring the future (``at Monday 09:00`` is next Monday), in the
time zone Slack's ``users.info`` gives for the user; ``in`` is a duration from now (``in 2 hours``,
``in 1 minute``). A moment that is not after now is refused: nothing is scheduled in the past.
The current time is passed in, so tests move the clock instead of sleeping.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.slack.messenger import Messenger, SlackFailure
from commands.errors import CommandError
from commands.parse import parse_duration

log = logging.getLogger(__name__)

DEFAULT_TZ = "UTC"


@dataclass(frozen=True)
class When:
    """A moment a command asked for, and how to say it to the person who asked."""

    at: datetime
    """The moment, timezone-aware, in UTC."""
    tz: str
    """The IANA zone it was read in (the user's)."""

    @property
    def epoch_ms(self) -> int:
        """The moment in epoch milliseconds (LaunchDarkly's ``executionDate``)."""
        return int(self.at.timestamp() * 1000)

    def describe(self) -> str:
        """``Mon 30 Nov 2026 09:00 Europe/Berlin (08:00 UTC)``; the date in UTC when it differs."""
        return describe_moment(self.at, self.tz)


#: The furthest a change may be scheduled (far beyond any release plan; datetime overflows later).
MAX_AHEAD = timedelta(days=3660)


def describe_moment(moment: datetime, tz: str) -> str:
    """A moment in ``tz`` and in UTC, for people: ``Mon 30 Nov 2026 09:00 Europe/Berlin (08:00 UTC)``."""
    local = moment.astimezone(zone(tz))
    utc = moment.astimezone(UTC)
    text = local.strftime("%a %d %b %Y %H:%M") + f" {tz}"
    if tz in ("UTC", "Etc/UTC"):
        return text
    same_day = utc.date() == local.date()
    return text + f" ({utc.strftime('%H:%M' if same_day else '%a %d %b %H:%M')} UTC)"


def zone(name: str) -> ZoneInfo:
    """The zone named ``name``, or UTC when the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TZ)


_TIME_OF_DAY = re.compile(r"\b\d{1,2}:\d{2}\b|\b\d{1,2}\s*(?:am|pm)\b|\bnoon\b|\bmidnight\b", re.I)
_RELATIVE = re.compile(r"\b(?:seconds?|minutes?|mins?|hours?|hrs?)\b|\bin\s+\d", re.I)
_WEEKDAY = re.compile(r"\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\b", re.I)
_NEXT = re.compile(r"\bnext\b", re.I)


def resolve_when(kind: str, text: str, *, now: datetime, tz: str) -> When:
    """Read ``at <time>`` or ``in <duration>`` as a moment after ``now``.

    Args:
        kind: ``at`` or ``in``.
        text: the time or duration as typed (``Monday 09:00``, ``2026-12-01 09:00``, ``2 hours``).
        now: the current time (timezone-aware).
        tz: the IANA zone to read a time of day in (the user's).

    Returns:
        The moment.

    Raises:
        CommandError: the text is not a time or duration, or the moment is not in the future.
    """
    if kind == "in":
        seconds = parse_duration(text)
        if seconds <= 0:
            raise CommandError(f"`in {text}` is not in the future: give a positive duration.")
        if seconds > MAX_AHEAD.total_seconds():
            raise CommandError(
                f"`in {text}` is too far ahead: a change can be scheduled at most {MAX_AHEAD.days} days out."
            )
        return When(now.astimezone(UTC) + timedelta(seconds=seconds), tz)
    if kind != "at":
        raise CommandError(f"`{kind}` is not a schedule: use `at <time>` or `in <duration>`.")
    if not _TIME_OF_DAY.search(text) and not _RELATIVE.search(text):
        # dateparser reads "friday" as midnight and "5" as the 5th of a month: too easy to get
        # wrong for a production change, so the time of day must be said.
        raise CommandError(
            f"`at {text}` has no time of day. Say it too, e.g. `at {text.strip()} 09:00` "
            "(your Slack time zone), or use `in <duration>`."
        )
    # Imported on the first `at <time>` only: its language data is ~12 MB that a process which
    # never reads a time need not hold (bench/README.md, RSS).
    import dateparser

    local_now = now.astimezone(zone(tz)).replace(tzinfo=None)
    parsed = dateparser.parse(
        text,
        settings={
            "PREFER_DATES_FROM": "future",
            "TIMEZONE": tz,
            "RETURN_AS_TIMEZONE_AWARE": True,
            "RELATIVE_BASE": local_now,
        },
    )
    if parsed is None:
        raise CommandError(
            f"I can't read `{text}` as a time. Try `at 2026-12-01 09:00`, `at Monday 09:00`, "
            "`at 5pm tomorrow`, or `in 2 hours`."
        )
    moment = parsed.astimezone(UTC)
    earlier = moment - timedelta(days=7)
    if _WEEKDAY.search(text) and not _NEXT.search(text) and earlier > now:
        # "at Monday 09:00" typed on a Monday at 08:00 means today, not in a week (dateparser,
        # preferring the future, skips today's weekday).
        moment = earlier
    if moment <= now:
        raise CommandError(
            f"`at {text}` is {describe_moment(moment, tz)}, which is in the past. "
            "Nothing was scheduled: give a time in the future."
        )
    return When(moment, tz)


async def user_timezone(slack: Messenger, user_id: str) -> str:
    """The user's IANA time zone from Slack's ``users.info`` (UTC when Slack does not say).

    Slack may refuse (a missing ``users:read`` scope, an unknown user): times are then read in UTC,
    and every answer says which zone it used, so nobody is misled.
    """
    try:
        user = await slack.user(user_id)
    except SlackFailure as error:
        log.warning("users.info for %s failed (%s); reading times in UTC", user_id, error.reason)
        return DEFAULT_TZ
    tz = user.get("tz")
    return str(tz) if isinstance(tz, str) and tz else DEFAULT_TZ
