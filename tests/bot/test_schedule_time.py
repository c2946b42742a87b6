"""Reading `at <time>` and `in <duration>`: unsurprising for a production change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.scheduling.schedule_time import resolve_when
from commands.errors import CommandError

MONDAY_0800_BERLIN = datetime(2026, 3, 30, 6, 0, tzinfo=UTC)  # CEST: UTC+2


def test_todays_weekday_with_a_time_still_ahead_is_today() -> None:
    when = resolve_when("at", "Monday 09:00", now=MONDAY_0800_BERLIN, tz="Europe/Berlin")
    assert when.at == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


def test_todays_weekday_with_a_time_gone_is_next_week() -> None:
    later = MONDAY_0800_BERLIN.replace(hour=8)  # 10:00 in Berlin
    when = resolve_when("at", "Monday 09:00", now=later, tz="Europe/Berlin")
    assert when.at == datetime(2026, 4, 6, 7, 0, tzinfo=UTC)
    nxt = resolve_when("at", "next Monday 09:00", now=MONDAY_0800_BERLIN, tz="Europe/Berlin")
    assert nxt.at == datetime(2026, 4, 6, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["friday", "5", "2030", "next week", "tomorrow"])
def test_a_time_without_a_time_of_day_is_refused(text: str) -> None:
    with pytest.raises(CommandError, match="no time of day"):
        resolve_when("at", text, now=MONDAY_0800_BERLIN, tz="Europe/Berlin")


@pytest.mark.parametrize("text", ["friday 9am", "tomorrow 17:00", "2026-12-01 09:00", "noon"])
def test_times_with_a_time_of_day_are_read(text: str) -> None:
    when = resolve_when("at", text, now=MONDAY_0800_BERLIN, tz="Europe/Berlin")
    assert when.at > MONDAY_0800_BERLIN


def test_the_past_is_refused() -> None:
    with pytest.raises(CommandError, match="in the past"):
        resolve_when("at", "2026-03-01 09:00", now=MONDAY_0800_BERLIN, tz="Europe/Berlin")


@pytest.mark.parametrize("text", ["999999 weeks", "99999999999 days"])
def test_a_duration_too_far_ahead_is_refused_not_an_overflow(text: str) -> None:
    with pytest.raises(CommandError, match=r"too far ahead|is not a duration"):
        resolve_when("in", text, now=datetime(2026, 12, 1, tzinfo=UTC), tz="UTC")
