"""The scheduler's machinery: the jobs table (compare-and-set, dedupe, restart), exactly one leader
(SQLite lease always, Postgres advisory lock when configured), the digest cron and the clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from bot.config import Settings
from bot.db import create_engine, metadata, migrate
from bot.jobs import CANCELLED, PENDING, RUNNING, SENT, SNOOZE, JobStore
from bot.scheduler import DigestChannel, PostgresAdvisoryLock, SqliteLease, digest_channels
from tests.bot.harness import Harness

StartBot = Callable[..., Awaitable[Harness]]
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


async def test_migration_creates_the_jobs_and_lease_tables(database_url: str) -> None:
    await migrate(database_url)
    await migrate(database_url)  # idempotent
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.run_sync(
                lambda sync: {
                    t: {c["name"] for c in inspect(sync).get_columns(t)} for t in ("jobs", "scheduler_lease")
                }
            )
    finally:
        await engine.dispose()
    assert found == {t: {c.name for c in metadata.tables[t].columns} for t in ("jobs", "scheduler_lease")}


async def test_a_job_is_claimed_once_deduplicated_and_cancellable(database_url: str) -> None:
    await migrate(database_url)
    engine = create_engine(database_url)
    jobs = JobStore(engine)
    try:
        job = await jobs.add(SNOOZE, NOW, {"flag": "x"}, channel_id="C1", dedupe_key="k")
        assert job is not None and job.state == PENDING
        assert await jobs.add(SNOOZE, NOW, {"flag": "x"}, dedupe_key="k") is None, "same key: not added"
        assert await jobs.claim_due(NOW - timedelta(seconds=1)) == [], "not due yet"
        (claimed,) = await jobs.claim_due(NOW)
        assert claimed.id == job.id and claimed.state == RUNNING
        assert await jobs.claim_due(NOW) == [], "a running job is not claimed again"
        assert await jobs.transition(job.id, [PENDING], CANCELLED) is None, "too late to cancel"
        assert (await jobs.transition(job.id, [RUNNING], SENT, detail="done")) is not None
        later = await jobs.add(SNOOZE, NOW, {"flag": "y"})
        assert later is not None
        assert (await jobs.transition(later.id, [PENDING], CANCELLED)) is not None
        assert await jobs.claim_due(NOW + timedelta(days=1)) == [], "a cancelled job never runs"
    finally:
        await engine.dispose()


async def test_sqlite_lease_keeps_a_second_scheduler_idle_until_the_first_goes(sqlite_url: str) -> None:
    await migrate(sqlite_url)
    engine = create_engine(sqlite_url)
    first, second = SqliteLease(engine, "first", ttl=60), SqliteLease(engine, "second", ttl=60)
    try:
        assert await first.acquire(NOW)
        assert not await second.acquire(NOW + timedelta(seconds=1))
        assert await first.acquire(NOW + timedelta(seconds=30)), "the holder renews"
        assert not await second.acquire(NOW + timedelta(seconds=80)), "renewed at +30 s: held to +90 s"
        # The first stops ticking (crash): once its lease runs out, the second takes over.
        assert await second.acquire(NOW + timedelta(seconds=91))
        assert not await first.acquire(NOW + timedelta(seconds=92))
        # A clean stop hands over at once.
        await second.release()
        assert await first.acquire(NOW + timedelta(seconds=93))
    finally:
        await engine.dispose()


async def test_postgres_advisory_lock_keeps_a_second_scheduler_idle(postgres_url: str) -> None:
    await migrate(postgres_url)
    engine_a, engine_b = create_engine(postgres_url), create_engine(postgres_url)
    key = 424242  # this test's own key: a running bot on the same server keeps its own
    first, second = PostgresAdvisoryLock(engine_a, key), PostgresAdvisoryLock(engine_b, key)
    try:
        assert await first.acquire(NOW)
        assert await first.acquire(NOW), "held: still the leader"
        assert not await second.acquire(NOW)
        await first.release()
        assert await second.acquire(NOW), "taken over once the first let go"
        # The leader's process dies: Postgres drops its session, and with it the lock.
        assert second._connection is not None
        await second._connection.invalidate()
        await second._connection.close()
        second._connection = None
        assert await first.acquire(NOW)
    finally:
        await first.release()
        await second.release()
        await engine_a.dispose()
        await engine_b.dispose()


async def test_two_bots_on_one_database_run_each_job_once(start_bot: StartBot, sqlite_url: str) -> None:
    one = await start_bot(database_url=sqlite_url)
    two = await start_bot(database_url=sqlite_url, sandbox=one.sandbox, slack=one.slack)
    scheduler_one, scheduler_two = one.stack.runtime.scheduler, two.stack.runtime.scheduler
    assert scheduler_one is not None and scheduler_two is not None
    jobs = scheduler_one.jobs
    await jobs.add(SNOOZE, NOW, {"flag": "holiday-banner"}, channel_id="C1")
    first = await scheduler_one.run_due(NOW)
    second = await scheduler_two.run_due(NOW)
    assert first.leader and [kind for _, kind, _ in first.ran] == [SNOOZE]
    assert not second.leader and second.ran == ()
    await scheduler_one.stop()  # the leader goes: the other takes over at its next tick
    assert (await scheduler_two.run_due(NOW + timedelta(seconds=1))).leader


def test_digest_channels_and_the_cron_in_the_channel_zone() -> None:
    assert digest_channels("C1=Europe/Berlin, C2") == [
        DigestChannel("C1", "Europe/Berlin"),
        DigestChannel("C2", "UTC"),
    ]
    with pytest.raises(ValueError, match="unknown time zone"):
        digest_channels("C1=Mars/Olympus")
    settings = Settings(
        _env_file=None,
        slack_bot_token="xoxb-1",
        slack_signing_secret="s",
        ld_api_token="api-1",
    )
    assert settings.flagops_digest_cron == "0 9 * * mon" and settings.flagops_stale_days == 7


async def test_the_digest_fires_monday_nine_in_the_channel_zone(bot: Harness) -> None:
    scheduler = bot.stack.runtime.scheduler
    assert scheduler is not None
    trigger = scheduler.digest_trigger(DigestChannel("C1", "America/New_York"))
    fire = trigger.get_next_fire_time(None, NOW)
    assert fire is not None
    assert fire.astimezone(UTC) == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # 09:00 EST
