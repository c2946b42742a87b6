"""The database: SQLAlchemy 2 tables, the asyncio engine, and Alembic migrations applied at start.

SQLite (aiosqlite) by default, Postgres (asyncpg) by ``DATABASE_URL``. Every call goes through
the asyncio engine, so nothing blocks the event loop; Alembic (synchronous) runs inside
``AsyncConnection.run_sync``, which SQLAlchemy executes off the loop's blocking path.

The tables here describe the current schema for queries; the schema itself is created and changed
only by the revisions in ``bot/persistence/migrations/versions`` (a test checks the two agree).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import fcntl
import functools
import logging
import os
import sys
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InvalidatePoolError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import DateTime, TypeDecorator

from bot.config import ConfigError, normalise_database_url

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("flagops.db")

# How long SQLite waits for another connection's write lock before failing: concurrent
# compare-and-set updates queue up on it instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT_SECONDS = 30


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite has no timezone type and returns naive values; storing UTC everywhere keeps
    comparisons (``expires_at <= now``) right on both databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

changes = Table(
    "changes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("previous_state", String(32), nullable=True),
    Column("requester_id", String(64), nullable=False),
    Column("requester_name", String(255), nullable=False),
    Column("channel_id", String(64), nullable=False),
    Column("card_ts", String(32), nullable=True),
    Column("thread_ts", String(32), nullable=True),
    Column("project", String(255), nullable=False),
    Column("flag_key", String(255), nullable=False),
    Column("environment", String(255), nullable=True),
    Column("command_text", Text, nullable=False),
    Column("request_json", Text, nullable=False),
    Column("preview_version", Integer, nullable=False),
    Column("env_version", Integer, nullable=True),
    Column("flag_before_json", Text, nullable=True),
    Column("comment", Text, nullable=False),
    Column("ignore_conflicts", Boolean, nullable=False),
    Column("approval_request_id", String(255), nullable=True),
    Column("outcome_json", Text, nullable=True),
    Column("ld_status", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    # Who holds a change in ``applying`` and until when; when its write was sent; when an unknown
    # outcome is decided for good (migration 0005, see bot/lifecycle/outcome.py).
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("settle_at", UTCDateTime, nullable=True),
    Index("ix_changes_state_expires_at", "state", "expires_at"),
    Index("ix_changes_channel_card", "channel_id", "card_ts"),
)

# Per-channel settings (migration 0003; see bot/guardrails/channel_config.py): None = the default.
channel_settings = Table(
    "channel_settings",
    metadata,
    Column("channel_id", String(64), primary_key=True),
    Column("project", String(255), nullable=True),
    Column("environment", String(255), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("approvals_channel", String(255), nullable=True),
    Column("reviewers_json", Text, nullable=True),
    Column("digest", String(64), nullable=True),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("change_id", String(36), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_id", String(64), nullable=False),
    Column("from_state", String(32), nullable=True),
    Column("to_state", String(32), nullable=False),
    Column("ld_status", Integer, nullable=True),
    Column("detail", Text, nullable=True),
)

# --- scheduler: everything due, and the lease that keeps one scheduler running ---------

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("target_json", Text, nullable=False),
    Column("channel_id", String(64), nullable=True),
    Column("user_id", String(64), nullable=True),
    Column("dedupe_key", String(255), nullable=True, unique=True),
    Column("detail", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_jobs_state_due_at", "state", "due_at"),
    Index("ix_jobs_kind_user", "kind", "user_id"),
)

scheduler_lease = Table(
    "scheduler_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Linked LaunchDarkly accounts and approval cards (migration 0004; see bot/identity/accounts.py and
# bot/approvals/service.py).
linked_accounts = Table(
    "linked_accounts",
    metadata,
    Column("slack_user_id", String(64), primary_key=True),
    Column("member_id", String(64), nullable=False, index=True),
    Column("member_email", String(255), nullable=True),
    Column("token_ciphertext", Text, nullable=False),
    Column("linked_at", UTCDateTime, nullable=False),
    # Migration 0006: "personal" (a pasted token, sent bare) or "oauth" (sent as Bearer, refreshed).
    Column("token_kind", String(16), nullable=False, server_default="personal"),
    Column("refresh_ciphertext", Text, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
)

# Authorizations under way (migration 0006; see bot/identity/oauth.py): the SHA-256 of each state.
oauth_states = Table(
    "oauth_states",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("slack_user_id", String(64), nullable=False),
    Column("team_id", String(64), nullable=False),
    Column("reply_json", Text, nullable=False),
    Column("resume_json", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

approval_cards = Table(
    "approval_cards",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("request_id", String(64), nullable=False, unique=True, index=True),
    Column("change_id", String(36), nullable=True),
    Column("state", String(32), nullable=False),
    Column("project", String(255), nullable=False),
    Column("flag_key", String(255), nullable=False),
    Column("environment", String(255), nullable=False),
    Column("requester_id", String(64), nullable=True),
    Column("channel_id", String(64), nullable=False),
    Column("thread_ts", String(32), nullable=True),
    Column("cards_json", Text, nullable=False),
    Column("content_json", Text, nullable=False),
    Column("request_json", Text, nullable=True),
    Column("outcome", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
)

# Channel subscriptions and the webhook (migration 0007; see bot/subscriptions/).
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("channel_id", String(64), nullable=False, index=True),
    Column("project", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # flag | tag | env | all
    Column("value", String(255), nullable=False),  # the flag key, tag or environment ("" for all)
    Column("created_by", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_subscriptions_unique", "channel_id", "project", "kind", "value", unique=True),
)

# Each audit log entry received (by webhook or polling), so a replay is ignored; its flag and date
# tell an entry that arrived late.
subscription_entries = Table(
    "subscription_entries",
    metadata,
    Column("entry_id", String(64), primary_key=True),
    Column("project", String(255), nullable=True),
    Column("flag_key", String(255), nullable=True),
    Column("entry_date", BigInteger, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

# The webhook's settings: its id, its secret (Fernet-encrypted), the polling cursor.
subscription_settings = Table(
    "subscription_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# The durable inbox (migration 0008; see bot/inbox/): each accepted command or click, written
# before the ack, taken by a worker with a lease; ``card_key`` keeps one card's rows in order.
inbox = Table(
    "inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_key", String(255), nullable=False),
    Column("handler", String(64), nullable=False),
    Column("body_json", Text, nullable=False),
    Column("channel_id", String(64), nullable=True),
    Column("card_key", String(128), nullable=True),
    Column("state", String(16), nullable=False),  # pending | working | done
    Column("attempts", Integer, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("posting_at", UTCDateTime, nullable=True),
    Column("card_ts", String(32), nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_inbox_delivery_key", "delivery_key", unique=True),
    Index("ix_inbox_state_id", "state", "id"),
    Index("ix_inbox_card_key", "card_key"),
    Index("ix_inbox_channel_state", "channel_id", "state"),
)


# --- SQLite: one write transaction at a time, queued on the event loop ----------------------
#
# SQLite lets one connection write at a time. Without help, a second writer waits inside SQLite's
# busy handler, which sleeps and polls (1, 2, 5, 10 … 100 ms) in the driver's thread: under a burst
# of commands the acks' INSERTs and the workers' updates took turns by sleeping, so an ack could
# wait a second behind a lock held for a millisecond. The gate below queues writers on the event
# loop instead: each ``engine.begin()`` waits its turn (FIFO, the acks' INSERTs first) and starts
# the moment the one before commits. Reads (``engine.connect()``) do not wait: WAL lets them run
# beside the writer.


URGENT_WRITE: contextvars.ContextVar[bool] = contextvars.ContextVar("flagops_urgent_write", default=False)

# A writer that waited this long goes ahead without the gate (SQLite's own lock still holds), so
# the gate cannot wedge anything for good: a task that holds it and waits for a task of its own
# that wants it too would otherwise wait for ever. (No code does that: every begin() block holds
# database work only. If one did, its child would wait this long, then SQLite's busy timeout.)
GATE_PATIENCE_SECONDS = 10.0


@contextlib.contextmanager
def urgent_writes() -> Iterator[None]:
    """Writes begun inside this block go before the ones queued without it (the ack's INSERT)."""
    token = URGENT_WRITE.set(True)
    try:
        yield
    finally:
        URGENT_WRITE.reset(token)


class _LoopGate:
    """The gate's state on one event loop: who holds it, how deep, and who waits (urgent first)."""

    def __init__(self) -> None:
        self.owner: asyncio.Task[Any] | None = None
        self.depth = 0
        self.urgent: collections.deque[tuple[asyncio.Future[None], asyncio.Task[Any]]] = collections.deque()
        self.normal: collections.deque[tuple[asyncio.Future[None], asyncio.Task[Any]]] = collections.deque()

    def hand_on(self) -> None:
        self.owner, self.depth = None, 0
        for queue in (self.urgent, self.normal):
            while queue:
                waiter, task = queue.popleft()
                if not waiter.done():
                    self.owner, self.depth = task, 1
                    waiter.set_result(None)
                    return


class WriteGate:
    """One ``begin()`` at a time per event loop, re-entrant for the task that holds it."""

    def __init__(self) -> None:
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopGate] = (
            weakref.WeakKeyDictionary()
        )

    def _gate(self) -> _LoopGate:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = _LoopGate()
        return gate

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        gate = self._gate()
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - begin() is always awaited inside a task
            yield
            return
        if gate.owner is task:  # re-entered by its holder: already in
            gate.depth += 1
            try:
                yield
            finally:
                gate.depth -= 1
            return
        if gate.owner is None and not gate.urgent and not gate.normal:
            gate.owner, gate.depth = task, 1
        elif not await self._wait(gate, task):
            yield  # waited past patience: SQLite's own lock decides
            return
        try:
            yield
        finally:
            if gate.owner is task:
                gate.depth -= 1
                if gate.depth <= 0:
                    gate.hand_on()

    @staticmethod
    async def _wait(gate: _LoopGate, task: asyncio.Task[Any]) -> bool:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (gate.urgent if URGENT_WRITE.get() else gate.normal).append((waiter, task))
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancel that arrives
            # as the gate is handed on (the inbox loop then outlived its stop).
            async with asyncio.timeout(GATE_PATIENCE_SECONDS):
                await waiter
            return True
        except TimeoutError:
            waiter.cancel()  # (cancelled already, unless handed on in the same instant)
            if gate.owner is task:  # handed on in the same instant: it is ours after all
                return True
            log.warning("a SQLite write waited %.0f s for the write gate; going ahead", GATE_PATIENCE_SECONDS)
            return False
        except BaseException:
            waiter.cancel()
            if gate.owner is task:  # handed on as it was cancelled: pass it on
                gate.hand_on()
            raise


class SQLiteEngine(AsyncEngine):
    """The asyncio engine for SQLite, whose ``begin()`` waits its turn at a :class:`WriteGate`."""

    def __init__(self, sync_engine: Engine) -> None:
        super().__init__(sync_engine)
        self.write_gate = WriteGate()

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.write_gate.held(), super().begin() as connection:
            yield connection


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create the asyncio engine for a database URL (normalised to an asyncio driver).

    Args:
        url: ``sqlite+aiosqlite:///...``, ``postgresql+asyncpg://...`` or a URL
            :func:`bot.config.normalise_database_url` turns into one.
        **kwargs: passed to ``create_async_engine``; and ``ping_after_idle`` (Postgres: seconds a
            pooled connection may sit unused before it is pinged on its next use; default
            ``POSTGRES_PING_AFTER_IDLE_SECONDS``, see :func:`ping_after_idle`).

    Returns:
        The engine; dispose of it with ``await engine.dispose()``.
    """
    idle = kwargs.pop("ping_after_idle", POSTGRES_PING_AFTER_IDLE_SECONDS)
    url = normalise_database_url(url)
    # An error's text never holds a statement's values: they are payloads (a response_url, what
    # was typed) that must not reach a log line.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_SECONDS)
        lite = SQLiteEngine(create_async_engine(url, connect_args=connect_args, **kwargs).sync_engine)
        event.listen(lite.sync_engine, "connect", _sqlite_pragmas)
        return lite
    engine = create_async_engine(url, **kwargs)
    ping_after_idle(engine, idle)
    return engine


#: A pooled Postgres connection unused for longer than this (seconds) is pinged before it is used
#: (longer than a burst's gaps between transactions, shorter than a restart).
POSTGRES_PING_AFTER_IDLE_SECONDS = 1.0


def idle_clock() -> float:
    """Seconds on a clock that keeps counting while the machine sleeps: Linux's ``CLOCK_BOOTTIME``,
    else ``CLOCK_MONOTONIC`` (on macOS it counts the sleep too; ``time.monotonic`` does not, there
    or on Linux, so a laptop's connections would look used a moment ago after a night asleep, and
    the first use would fail once); ``time.monotonic`` where neither exists."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    if clock is None and sys.platform == "darwin":
        clock = getattr(time, "CLOCK_MONOTONIC", None)
    return time.clock_gettime(clock) if clock is not None else time.monotonic()


def ping_after_idle(engine: AsyncEngine, idle: float) -> None:
    """Check a pooled connection before use only when it sat unused for ``idle`` seconds.

    SQLAlchemy's ``pool_pre_ping`` pings at *every* checkout: a round trip before each transaction
    (about ten per command, the ack's ``INSERT`` included). A connection dies when the server
    restarts, fails over, or a proxy drops it after a quiet spell; under load connections are
    used every few milliseconds, and are not pinged. A restart or a failover lasts longer than
    ``idle`` (1 s by default): the connections unused through it are pinged before their next
    use, and one whose ping fails is dropped with every connection older than it, and the pool
    hands out a new one (SQLAlchemy's own handling of a failed pre-ping). One cut within
    ``idle`` of its last use (a backend killed, a network cut) fails its transaction once, as a
    connection cut mid-transaction does under ``pool_pre_ping``: that delivery is answered "not
    taken, send it again", a step is told as an error, and the pool is renewed."""
    sync = engine.sync_engine
    dialect = sync.dialect

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = idle_clock()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or idle_clock() - since <= idle:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise InvalidatePoolError() from error  # the pool connects again (a few tries)
            raise

    event.listen(sync, "checkin", checked_in)
    event.listen(sync, "checkout", checked_out)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (card lookups) proceed while a transition holds the write lock.
    cursor.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL syncs at checkpoints instead of at every commit: a commit survives the
    # process being killed (it is in the WAL, handed to the OS), and only a power cut or an OS
    # crash can lose the last ones. The default FULL is an fsync per commit, i.e. per command.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.close()


def alembic_config() -> Config:
    """The Alembic configuration, pointing at the migrations shipped in the package.

    Alembic is imported here, not at the top: a process that does not migrate (``python -m bot``
    migrates in a child process) never loads it (bench/README.md, RSS)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("bot.persistence").joinpath("migrations")))
    return config


# The key of the Postgres advisory lock that serializes migrations across processes: any fixed
# 64-bit number no other code on the database uses ("flagops" in ASCII).
MIGRATION_LOCK_KEY = 0x666C61676F7073


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    # env.py runs the migrations on this connection instead of opening its own.
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate(database: str | AsyncEngine, revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (all migrations by default). Idempotent.

    Safe to run from several processes at once (web instances and the clock starting together on
    a first deploy): on Postgres the upgrade runs inside a transaction that first takes a
    transaction-level advisory lock (``pg_advisory_xact_lock``), so a second process waits for the
    first to commit and then finds nothing to do; on SQLite an exclusive lock on a file beside the
    database does the same.

    Args:
        database: a database URL, or an engine to borrow a connection from.
        revision: the Alembic revision to upgrade to.
    """
    engine = create_engine(database) if isinstance(database, str) else database
    try:
        async with _sqlite_migration_lock(engine), engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                await connection.execute(lock, {"key": MIGRATION_LOCK_KEY})
            current, head = await connection.run_sync(_current_and_head)
            if revision != "head" or current != head:
                await connection.run_sync(_upgrade, revision)
    finally:
        if isinstance(database, str):
            await engine.dispose()


@contextlib.asynccontextmanager
async def _sqlite_migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """An exclusive ``flock`` on ``<database>.migrate-lock`` while SQLite migrates (no-op elsewhere)."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    fd = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # flock blocks: wait for it in a thread, never on the event loop.
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _current_and_head(connection: Connection) -> tuple[str | None, str | None]:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision(), _head()


@functools.cache
def _head() -> str | None:
    """The newest migration shipped in the package (read once: the files do not change)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def require_current_schema(database: str) -> None:
    """Check that the schema is at the newest migration (``FLAGOPS_MIGRATE_ON_START=false``).

    Raises:
        ConfigError: it is not (or the database cannot be read); the message says what to run.
    """
    engine = create_engine(database)
    try:
        async with engine.connect() as connection:
            current, head = await connection.run_sync(_current_and_head)
    except (OSError, SQLAlchemyError) as exc:
        raise ConfigError(
            f"The database could not be read to check its schema ({type(exc).__name__}). Check DATABASE_URL."
        ) from None
    finally:
        await engine.dispose()
    if current != head:
        raise ConfigError(
            f"The database schema is at {current or 'nothing'}, not at {head}, and "
            "FLAGOPS_MIGRATE_ON_START is false: run `python -m bot migrate` first (the Procfile's "
            "release step does), or unset FLAGOPS_MIGRATE_ON_START."
        )
