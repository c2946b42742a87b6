"""The scheduler: APScheduler 3 (``AsyncIOScheduler``) driving the jobs table, exactly one at a time.

::

    every FLAGOPS_SCHEDULER_INTERVAL s ─▶ run_due(now)
        1. hold the leader lock, or do nothing (another scheduler runs)
        2. ChangeService.sweep(now): expire unconfirmed cards, settle changes stuck in applying
        3. enqueue the first reminder of each change waiting for approval (idempotent)
        4. claim the due jobs (pending → running, compare-and-set) and run each (→ sent / failed)
    per digest channel, cron FLAGOPS_DIGEST_CRON in the channel's zone ─▶ enqueue_digest(channel)

Everything due is a row (``bot.scheduling.jobs``), so a restart loses nothing and a row claimed by one
scheduler is never run by another. APScheduler only ticks: ``coalesce=True`` (a burst of missed
ticks runs once), ``misfire_grace_time=None`` (a late tick still runs), explicit job ids with
``replace_existing``. The current time comes from a clock callable: tests call ``run_due(now)``
with the time they want instead of sleeping.

Exactly one scheduler: on Postgres a session-level ``pg_try_advisory_lock`` held on a dedicated
connection (released by Postgres itself when the process dies); on SQLite a lease row renewed each
tick (another process takes over once the lease expires: ``LEASE_SECONDS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import delete, insert, or_, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.clock import utcnow
from bot.config import Settings, configure_logging
from bot.errors import explain_error
from bot.guardrails.channel_config import ChannelConfig, last_digest_time
from bot.lifecycle.service import ChangeService
from bot.persistence.db import scheduler_lease
from bot.scheduling.jobs import DIGEST, FAILED, RUNNING, SENT, Job, JobStore
from bot.scheduling.reminders import ReminderService
from bot.scheduling.schedule_time import zone
from bot.slack.messenger import SlackFailure
from commands.errors import FlagopsError

if TYPE_CHECKING:
    from bot.wiring import Services

log = logging.getLogger("flagops.scheduler")

LEASE_NAME = "scheduler"
LEASE_SECONDS = 60.0
ADVISORY_LOCK_KEY = 0x666C61676F7073  # "flagops": one key for every flagops scheduler on a database
INTERRUPTED_AFTER = timedelta(minutes=10)
MAX_JOBS_PER_RUN = 50  # a backlog is worked off over several runs, so each run stays short
STOP_GRACE_SECONDS = 30.0  # how long stop() waits for the job in flight before cancelling it
RUN_DUE_JOB_ID = "flagops-run-due"


class AuditPoller(Protocol):
    """The subscriptions (``bot.subscriptions.service``): read the audit log where no webhook runs."""

    async def poll(self, now: datetime) -> int: ...


class LeaderLock(Protocol):
    """Held by at most one scheduler sharing a database."""

    async def acquire(self, now: datetime) -> bool:
        """Take or keep the lock; True while this scheduler holds it."""
        ...

    async def release(self) -> None:
        """Let another scheduler take over at once."""
        ...


class SqliteLease:
    """A lease row with an expiry: the holder renews it each tick; anyone may take an expired one."""

    def __init__(self, engine: AsyncEngine, holder: str, *, ttl: float = LEASE_SECONDS) -> None:
        self.engine = engine
        self.holder = holder
        self.ttl = timedelta(seconds=ttl)

    async def acquire(self, now: datetime) -> bool:
        expires = now + self.ttl
        renew = (
            update(scheduler_lease)
            .where(
                scheduler_lease.c.name == LEASE_NAME,
                or_(scheduler_lease.c.holder == self.holder, scheduler_lease.c.expires_at <= now),
            )
            .values(holder=self.holder, expires_at=expires)
        )
        async with self.engine.begin() as connection:
            if (await connection.execute(renew)).rowcount:
                return True
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    insert(scheduler_lease).values(name=LEASE_NAME, holder=self.holder, expires_at=expires)
                )
        except IntegrityError:
            return False  # another scheduler holds a lease that has not expired
        return True

    async def release(self) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(scheduler_lease).where(
                    scheduler_lease.c.name == LEASE_NAME, scheduler_lease.c.holder == self.holder
                )
            )


class PostgresAdvisoryLock:
    """``pg_try_advisory_lock`` on a connection of its own, kept open while this scheduler leads.

    Postgres releases a session lock when its connection ends, so a crashed scheduler's lock goes
    with it and the next tick of another one takes over. The scheduler's jobs (the tick, the
    subscriptions' poll) ask at the same moment every minute: one at a time (an asyncpg connection
    runs one statement at a time; two at once failed both and dropped the lock).
    """

    release_wait = 2.0
    """Seconds :meth:`release` waits for an ``acquire`` in progress before letting go anyway."""

    def __init__(self, engine: AsyncEngine, key: int = ADVISORY_LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self._connection: AsyncConnection | None = None
        self._one_at_a_time = asyncio.Lock()

    async def acquire(self, now: datetime) -> bool:
        async with self._one_at_a_time:
            return await self._acquire()

    async def _acquire(self) -> bool:
        if self._connection is not None:
            try:
                await self._connection.execute(text("SELECT 1"))
                await self._connection.commit()
                return True
            except DBAPIError:
                log.warning("the scheduler lock's connection was lost; trying to take the lock again")
                await self._drop()
        connection = await self.engine.connect()
        try:
            held = (
                await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
            ).scalar()
            # Commit so the connection does not sit idle in a transaction; the lock is session-level.
            await connection.commit()
        except BaseException:
            # Failed or cancelled (a stopping scheduler) between taking the lock and keeping it:
            # end the session, which lets go of it (back in the pool, the session would keep it).
            await asyncio.shield(connection.invalidate())
            raise
        if held:
            self._connection = connection
            return True
        await connection.close()
        return False

    async def release(self) -> None:
        """Let go of the lock: after an ``acquire`` in progress, or, when that one is stuck (a
        connection that does not answer) past ``release_wait``, at once, by ending the lock's
        session: a stop must not wait on it."""
        try:
            async with asyncio.timeout(self.release_wait):
                await self._one_at_a_time.acquire()
        except TimeoutError:
            log.warning("the scheduler lock is busy; letting go of it by closing its connection")
            connection, self._connection = self._connection, None
            if connection is not None:
                await connection.invalidate()
            return
        try:
            await self._release()
        finally:
            self._one_at_a_time.release()

    async def _release(self) -> None:
        if self._connection is None:
            return
        try:
            await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            await self._connection.commit()
        finally:
            await self._drop()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


def leader_lock(engine: AsyncEngine, holder: str) -> LeaderLock:
    """The lock fitting the database: an advisory lock on Postgres, a lease row elsewhere."""
    if engine.dialect.name == "postgresql":
        return PostgresAdvisoryLock(engine)
    return SqliteLease(engine, holder)


DIGEST_LATE_LIMIT = timedelta(hours=12)  # a digest missed by longer than this waits for its next time


@dataclass(frozen=True)
class DigestChannel:
    """A channel that gets the stale-flags digest, and the zone its cron is read in."""

    channel_id: str
    tz: str


def digest_channels(spec: str) -> list[DigestChannel]:
    """``C0123=Europe/Berlin,C0456`` → the channels (UTC where no zone is given).

    Raises:
        ValueError: an unknown zone (so a typo fails at start, not on Monday morning).
    """
    channels: list[DigestChannel] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        channel, _, tz = item.partition("=")
        tz = tz.strip() or "UTC"
        if zone(tz).key != tz:
            raise ValueError(f"FLAGOPS_DIGEST_CHANNELS: unknown time zone {tz!r} for {channel}")
        channels.append(DigestChannel(channel.strip(), tz))
    return channels


@dataclass(frozen=True)
class RunReport:
    """What one ``run_due`` did."""

    leader: bool
    ran: tuple[tuple[str, str, str], ...] = ()
    """(job id, kind, final state) of each job run."""


class FlagopsScheduler:
    """The one scheduler of a deployment (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: Settings,
        changes: ChangeService,
        jobs: JobStore,
        lock: LeaderLock | None = None,
        clock: Callable[[], datetime] = utcnow,
        channel_config: ChannelConfig | None = None,
        subscriptions: AuditPoller | None = None,
    ) -> None:
        self.settings = settings
        self.subscriptions = subscriptions
        self.changes = changes
        self.jobs = jobs
        self.reminders = ReminderService(changes, jobs)
        self.holder = f"flagops-{uuid.uuid4().hex[:12]}"
        self.lock = lock or leader_lock(jobs.engine, self.holder)
        self.clock = clock
        self.channels = digest_channels(settings.flagops_digest_channels)
        self.channel_config = channel_config or ChannelConfig(jobs.engine, settings)
        self.aps: AsyncIOScheduler | None = None
        self._stopping = False
        self._in_flight: set[asyncio.Task[object]] = set()

    @classmethod
    def of(cls, services: Services) -> FlagopsScheduler:
        """The scheduler over the process's services (the same channel settings and jobs)."""
        return cls(
            settings=services.settings,
            changes=services.changes,
            jobs=services.jobs,
            channel_config=services.channels,
            subscriptions=services.subscriptions,
        )

    # --- running what is due ----------------------------------------------------------------

    async def run_due(self, now: datetime | None = None) -> RunReport:
        """Run everything due at ``now`` (the clock's time by default), if this scheduler leads.

        Returns:
            Whether it leads, and the jobs it ran.
        """
        now = now or self.clock()
        if self._stopping:
            return RunReport(leader=False)
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            return await self._run_due(now)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _run_due(self, now: datetime) -> RunReport:
        if not await self.lock.acquire(now):
            return RunReport(leader=False)
        await self.changes.sweep(now=now)
        await self.reminders.enqueue_approval_reminders()
        await self.enqueue_configured_digests(now)
        for left in await self.jobs.interrupted(now - INTERRUPTED_AFTER):
            # Never run twice: a job left running may have posted before the process stopped.
            await self.jobs.transition(left.id, [RUNNING], FAILED, detail="interrupted by a restart")
        ran: list[tuple[str, str, str]] = []
        # One at a time: the next job is claimed only once the previous one finished, so a stop
        # mid-run leaves the rest pending (not claimed and lost), and a stop waits for one job only.
        while len(ran) < MAX_JOBS_PER_RUN and not self._stopping:
            job = await self.jobs.claim_next(now)
            if job is None:
                break
            ran.append((job.id, job.kind, await self._run(job, now)))
        return RunReport(leader=True, ran=tuple(ran))

    async def _run(self, job: Job, now: datetime) -> str:
        handler = self.reminders.handlers.get(job.kind)
        if handler is None:
            await self.jobs.transition(job.id, [RUNNING], FAILED, detail=f"unknown kind {job.kind}")
            return FAILED
        finished = False
        try:
            detail = await handler(job, now)
            await self.jobs.transition(job.id, [RUNNING], SENT, detail=detail)
            finished = True
            return SENT
        except asyncio.CancelledError:
            # Stopped while running it (it may have posted): never run twice, so it fails here
            # rather than waiting to be found interrupted; the jobs after it are still pending.
            await self.jobs.transition(job.id, [RUNNING], FAILED, detail="interrupted by a stop")
            finished = True
            raise
        except (FlagopsError, SlackFailure) as error:
            reason = explain_error(error) if isinstance(error, FlagopsError) else error.reason
            log.warning("job %s (%s) failed: %s", job.id, job.kind, reason)
            await self.jobs.transition(job.id, [RUNNING], FAILED, detail=reason)
            finished = True
            return FAILED
        finally:
            if not finished:
                # An unexpected error (a bug): mark the job so it is not retried, then let it
                # propagate to APScheduler, which logs it with its traceback.
                await self.jobs.transition(job.id, [RUNNING], FAILED, detail="crashed; see the logs")

    async def enqueue_digest(
        self, channel: DigestChannel, due: datetime, *, project: str | None = None
    ) -> Job | None:
        """Queue a channel's digest for one occurrence of its schedule, once per channel and occurrence.

        Keyed on the occurrence, not on the day it is noticed: a run after midnight that still sees
        yesterday's 17:00 as the latest time finds it queued and adds nothing.

        Args:
            channel: the channel and its zone.
            due: the occurrence (the schedule's time this digest is for); the job is due then.
            project: the channel's project (default: its ``/flag config project``, else LD_PROJECT).

        Returns:
            The job, or None when that occurrence's digest was already queued (by this or another run).
        """
        if project is None:
            project = (await self.channel_config.get(channel.channel_id)).project
        return await self.jobs.add(
            DIGEST,
            due,
            {"channel": channel.channel_id, "project": project, "tz": channel.tz},
            channel_id=channel.channel_id,
            dedupe_key=f"digest:{channel.channel_id}:{due.astimezone(UTC).isoformat()}",
        )

    async def enqueue_configured_digests(self, now: datetime) -> None:
        """Queue the digests that channels scheduled with ``/flag config digest``, once each time.

        Checked at every run rather than by a cron job per channel, so a schedule set in Slack
        takes effect at once on whichever instance leads, and a digest missed while no scheduler
        ran is posted late (within 12 hours) rather than lost.
        """
        for channel in await self.channel_config.with_digest():
            if channel.digest is None or channel.digest == "off":
                continue
            due = last_digest_time(channel.digest, channel.timezone, now)
            if due is not None and now - due < DIGEST_LATE_LIMIT:
                await self.enqueue_digest(
                    DigestChannel(channel.channel_id, channel.timezone), due, project=channel.project
                )

    def digest_trigger(self, channel: DigestChannel) -> CronTrigger:
        """The digest's cron (``FLAGOPS_DIGEST_CRON``) in the channel's zone."""
        return CronTrigger.from_crontab(self.settings.flagops_digest_cron, timezone=zone(channel.tz))

    async def tick(self) -> None:
        """The interval job: run what is due now."""
        await self.run_due(self.clock())

    def digest_occurrence(self, channel: DigestChannel, now: datetime) -> datetime | None:
        """The latest time at or before ``now`` that the channel's digest cron names, within
        ``DIGEST_LATE_LIMIT`` (None when there is none: a later tick waits for the next time)."""
        trigger = self.digest_trigger(channel)
        latest: datetime | None = None
        fire = trigger.get_next_fire_time(None, now - DIGEST_LATE_LIMIT)
        while fire is not None and fire <= now:
            latest = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        return latest

    async def _digest_tick(self, channel_id: str) -> None:
        if self._stopping:
            return
        now = self.clock()
        for channel in self.channels:
            if channel.channel_id == channel_id and await self.lock.acquire(now):
                if "digest" in (await self.channel_config.get(channel_id)).own:
                    continue  # the channel's own /flag config digest schedule rules (or turns it off)
                due = self.digest_occurrence(channel, now)
                if due is not None:
                    await self.enqueue_digest(channel, due)
        await self.run_due(self.clock())

    async def poll_subscriptions(self, now: datetime | None = None) -> int:
        """Where there is no webhook, read LaunchDarkly's audit log for the subscribed channels
        (if this scheduler leads). Returns how many changes were told."""
        now = now or self.clock()
        if self.subscriptions is None or self._stopping or not await self.lock.acquire(now):
            return 0
        return await self.subscriptions.poll(now)

    async def _poll_tick(self) -> None:
        try:
            await self.poll_subscriptions(self.clock())
        except (FlagopsError, SlackFailure, DBAPIError) as error:
            log.warning("polling for subscriptions failed: %s", type(error).__name__)

    # --- life -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start ticking in the running event loop (``python -m bot`` and ``python -m bot clock``)."""
        aps = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )
        aps.add_job(
            self.tick,
            IntervalTrigger(seconds=self.settings.flagops_scheduler_interval, timezone=UTC),
            id=RUN_DUE_JOB_ID,
            replace_existing=True,
        )
        if self.subscriptions is not None:
            aps.add_job(
                self._poll_tick,
                IntervalTrigger(seconds=self.settings.flagops_subscription_poll_interval, timezone=UTC),
                id="flagops-subscriptions-poll",
                replace_existing=True,
            )
        for channel in self.channels:
            aps.add_job(
                self._digest_tick,
                self.digest_trigger(channel),
                args=[channel.channel_id],
                id=f"flagops-digest:{channel.channel_id}",
                replace_existing=True,
            )
        aps.start()
        self.aps = aps
        log.info(
            "scheduler started (%s): due jobs every %ss, digests for %s",
            self.holder,
            self.settings.flagops_scheduler_interval,
            ", ".join(c.channel_id for c in self.channels) or "no channel",
        )

    async def stop(self) -> None:
        """Stop ticking, let the run in flight finish its job, then release the lock, so another
        scheduler takes over at its next tick.

        The run in flight (if any) claims no further job; it gets ``STOP_GRACE_SECONDS`` to finish
        the one it holds, and is cancelled after that (the job is marked failed, never run twice).
        Only then is the lock released, and only then may the caller close the store.
        """
        self._stopping = True
        if self.aps is not None:
            self.aps.pause()  # no new tick; shut down only after the wait: that cancels the runs
        await asyncio.sleep(0)  # a tick submitted but not yet started starts, sees the stop, returns
        current = asyncio.current_task()
        in_flight = [task for task in self._in_flight if task is not current]
        if in_flight:
            _, late = await asyncio.wait(in_flight, timeout=STOP_GRACE_SECONDS)
            for task in late:
                task.cancel()
            # The runs' own errors were logged by APScheduler (or reach whoever awaited them).
            await asyncio.gather(*in_flight, return_exceptions=True)
        if self.aps is not None:
            self.aps.shutdown(wait=False)
            self.aps = None
        await self.lock.release()


async def clock_forever(settings: Settings) -> None:
    """Run the scheduler alone until cancelled: migrate, open the clients, tick.

    A second clock (or a web process with ``FLAGOPS_SCHEDULER=on``) on the same database stays
    idle behind the leader lock and takes over when this one stops.
    """
    # Imported here: these build the whole bot, which the scheduler module itself does not need.
    from bot.persistence.db import migrate
    from bot.persistence.store import Store
    from bot.slack.client import make_slack_client
    from bot.slack.messenger import Messenger
    from bot.wiring import build_services, open_ld

    if settings.flagops_migrate_on_start:
        await migrate(settings.database_url)
    store = Store.from_url(settings.database_url)
    messenger = Messenger.of(make_slack_client(settings), settings)
    services = build_services(settings, store=store, ld=open_ld(settings), messenger=messenger)
    scheduler = FlagopsScheduler.of(services)
    scheduler.start()
    try:
        await asyncio.Event().wait()
    finally:
        await scheduler.stop()
        await services.changes.drain()
        await services.ld.aclose()
        await store.close()


def run_clock(settings: Settings) -> int:
    """``python -m bot clock``: the scheduler as a process of its own; 0 after Ctrl-C or SIGTERM.

    Args:
        settings: the bot's settings.

    Returns:
        The exit status.
    """
    configure_logging()

    async def main() -> None:
        task = asyncio.ensure_future(clock_forever(settings))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    log.info("scheduler stopped")
    return 0
