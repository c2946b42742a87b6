"""The scheduler's machinery: the jobs table (compare-and-set, dedupe, restart), exactly one leader
(SQLite lease always, Postgres advisory lock when configured), the digest cron and the clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.config import Settings
from bot.persistence.db import create_engine, metadata, migrate
from bot.scheduling.jobs import (
    CANCELLED,
    DIGEST,
    FAILED,
    PENDING,
    RUNNING,
    SENT,
    SNOOZE,
    USER_REMINDER,
    Job,
    JobStore,
)
from bot.scheduling.scheduler import DigestChannel, PostgresAdvisoryLock, SqliteLease, digest_channels
from tests.bot.harness import RELEASES, Harness

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
        assert await jobs.claim_next(NOW - timedelta(seconds=1)) is None, "not due yet"
        claimed = await jobs.claim_next(NOW)
        assert claimed is not None and claimed.id == job.id and claimed.state == RUNNING
        assert await jobs.claim_next(NOW) is None, "a running job is not claimed again"
        assert await jobs.transition(job.id, [PENDING], CANCELLED) is None, "too late to cancel"
        assert (await jobs.transition(job.id, [RUNNING], SENT, detail="done")) is not None
        later = await jobs.add(SNOOZE, NOW, {"flag": "y"})
        assert later is not None
        assert (await jobs.transition(later.id, [PENDING], CANCELLED)) is not None
        assert await jobs.claim_next(NOW + timedelta(days=1)) is None, "a cancelled job never runs"
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


async def test_postgres_advisory_lock_asked_by_two_jobs_at_once_stays_held(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await migrate(postgres_url)
    engine = create_engine(postgres_url)
    lock = PostgresAdvisoryLock(engine, 434343)
    try:
        assert await lock.acquire(NOW)
        held = lock._connection
        with caplog.at_level(logging.WARNING, logger="flagops.scheduler"):
            # The tick and the subscriptions' poll, every minute at the same moment.
            assert await asyncio.gather(lock.acquire(NOW), lock.acquire(NOW)) == [True, True]
        assert lock._connection is held and not caplog.records
    finally:
        await lock.release()
        await engine.dispose()


async def test_postgres_advisory_lock_is_let_go_at_stop_even_while_an_acquire_is_stuck(
    postgres_url: str,
) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # and never answers

    silent = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    engine = create_engine(f"postgresql+asyncpg://flagops@127.0.0.1:{port}/none")
    lock = PostgresAdvisoryLock(engine, 454545)
    lock.release_wait = 0.2
    stuck = asyncio.create_task(lock.acquire(NOW))
    try:
        await asyncio.sleep(0.1)
        await asyncio.wait_for(lock.release(), 2.0)  # a stop does not wait on the stuck connect
    finally:
        stuck.cancel()
        await asyncio.gather(stuck, return_exceptions=True)
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()
        await engine.dispose()


async def test_postgres_advisory_lock_taken_by_an_acquire_cancelled_midway_is_let_go(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await migrate(postgres_url)
    engine_a, engine_b = create_engine(postgres_url), create_engine(postgres_url)
    key = 464646
    first, rival = PostgresAdvisoryLock(engine_a, key), PostgresAdvisoryLock(engine_b, key)
    commit = AsyncConnection.commit

    async def slow_commit(connection: AsyncConnection) -> None:
        await asyncio.sleep(0.5)  # the lock is taken; its commit is slow
        await commit(connection)

    try:
        monkeypatch.setattr(AsyncConnection, "commit", slow_commit)
        taking = asyncio.create_task(first.acquire(NOW))
        await asyncio.sleep(0.2)
        taking.cancel()  # a stopping scheduler cancels its late runs
        await asyncio.gather(taking, return_exceptions=True)
        monkeypatch.undo()
        assert first._connection is None
        assert await rival.acquire(NOW), "the cancelled acquire's session (and its lock) is gone"
    finally:
        await rival.release()
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


async def test_a_stop_mid_run_loses_only_the_job_it_was_running(bot: Harness) -> None:
    """Jobs are claimed one at a time: a stop while the first runs leaves the others pending."""
    bot.stack.runtime.changes.clock = lambda: NOW
    for i in range(3):
        assert (await bot.command(f'/flag remind holiday-banner test in 1 minute "r{i}"')).status_code == 200
        await bot.idle()
    scheduler = bot.stack.runtime.scheduler
    assert scheduler is not None
    real = scheduler.reminders.handlers[USER_REMINDER]

    async def stopped(job: Job, moment: datetime) -> str:
        raise asyncio.CancelledError()  # the process is stopped (a deploy) while posting the first

    scheduler.reminders.handlers[USER_REMINDER] = stopped
    with pytest.raises(asyncio.CancelledError):
        await scheduler.run_due(NOW + timedelta(minutes=1))
    scheduler.reminders.handlers[USER_REMINDER] = real
    states = sorted((j.state, j.detail or "") for j in await scheduler.jobs.all(USER_REMINDER))
    assert states == [(FAILED, "interrupted by a stop"), (PENDING, ""), (PENDING, "")]

    report = await scheduler.run_due(NOW + timedelta(minutes=15))
    await bot.idle()
    assert [state for _, _, state in report.ran] == [SENT, SENT]
    posted = [m.text for m in bot.slack.messages(RELEASES)]
    assert len(posted) == 2 and all("Reminder from <@U_ALICE>" in text for text in posted)


async def test_stop_waits_for_the_job_in_flight_and_claims_no_more(bot: Harness) -> None:
    """stop() lets the running job finish (before the lock goes and the store closes), and the
    run claims nothing after it."""
    scheduler = bot.stack.runtime.scheduler
    assert scheduler is not None
    jobs_store = scheduler.jobs
    for flag in ("a", "b"):
        await jobs_store.add(SNOOZE, NOW, {"flag": flag})
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(job: Job, moment: datetime) -> str:
        started.set()
        await release.wait()
        return "finished"

    scheduler.reminders.handlers[SNOOZE] = slow
    running = asyncio.create_task(scheduler.run_due(NOW))
    await started.wait()
    stopping = asyncio.create_task(scheduler.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done(), "stop waits for the job in flight"
    release.set()
    await stopping
    report = await running
    assert [state for _, _, state in report.ran] == [SENT], "no job claimed after the stop"
    assert sorted(j.state for j in await jobs_store.all(SNOOZE)) == [PENDING, SENT]
    assert (await scheduler.run_due(NOW)).ran == (), "a stopped scheduler runs nothing"


async def test_a_configured_digest_after_noon_posts_once_a_day(bot: Harness) -> None:
    """Keyed on the occurrence: a run after midnight still sees yesterday's 17:00 and adds nothing."""
    for text in ("/flag config tz Europe/Berlin", '/flag config digest "daily 17:00"'):
        assert (await bot.command(text)).status_code == 200
        await bot.idle()
    scheduler = bot.stack.runtime.scheduler
    assert scheduler is not None
    five_pm_berlin = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    for moment in (
        five_pm_berlin + timedelta(minutes=1),
        five_pm_berlin + timedelta(hours=7, minutes=5),  # 00:06 in Berlin, the next day
        five_pm_berlin + timedelta(hours=11),
        five_pm_berlin + timedelta(days=1, minutes=1),  # 17:01 the next day
    ):
        await scheduler.run_due(moment)
        await bot.idle()
    digests = await scheduler.jobs.all(DIGEST)
    assert [j.due_at for j in digests] == [five_pm_berlin, five_pm_berlin + timedelta(days=1)]
    assert len([m for m in bot.slack.messages(RELEASES) if "stale temporary flag" in m.text]) == 2


def _fixed(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


async def test_the_env_cron_digest_is_queued_once_per_occurrence(start_bot: StartBot) -> None:
    bot = await start_bot(flagops_digest_channels=f"{RELEASES}=Europe/Berlin")
    scheduler = bot.stack.runtime.scheduler
    assert scheduler is not None
    monday_nine_berlin = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    channel = DigestChannel(RELEASES, "Europe/Berlin")
    assert scheduler.digest_occurrence(channel, monday_nine_berlin - timedelta(seconds=1)) is None
    for moment in (
        monday_nine_berlin + timedelta(seconds=1),  # the cron's tick
        monday_nine_berlin + timedelta(minutes=5),  # a second instance's tick, or a late one
        monday_nine_berlin + timedelta(hours=11),
    ):
        scheduler.clock = _fixed(moment)
        await scheduler._digest_tick(RELEASES)
    scheduler.clock = lambda: monday_nine_berlin + timedelta(days=7, seconds=1)
    await scheduler._digest_tick(RELEASES)
    digests = await scheduler.jobs.all(DIGEST)
    assert [j.due_at for j in digests] == [monday_nine_berlin, monday_nine_berlin + timedelta(days=7)]
