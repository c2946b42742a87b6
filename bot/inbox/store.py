"""The inbox table (migration 0008): one row per accepted Slack delivery, and the compare-and-set
moves that hand it to exactly one worker at a time.

A row is ``pending`` when written (before the ack), ``working`` while a worker holds it (its
``lease_owner`` and ``lease_expires_at``, renewed as it works), ``done`` at the end (its payload
emptied). Every move is one conditional ``UPDATE``: of any number of workers on any number of
processes sharing the database, one wins. A ``working`` row whose lease expired (its worker died)
may be taken again; ``attempts`` counts the takes.

Rows about one card (``card_key``, ``<channel>:<ts>``) are taken in the order they were written: a
row is not taken while an earlier row of its card is not done, nor (for a click on a card no row
recorded posting) while an earlier row of its channel has started posting and not yet recorded the
``ts`` of what it posted (that post may be the very card clicked).
"""

from __future__ import annotations

import asyncio
import functools
import json
import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from bot.clock import utcnow
from bot.persistence.db import UTCDateTime, inbox, urgent_writes

PENDING, WORKING, DONE = "pending", "working", "done"


class NotKept(Exception):
    """An ``INSERT`` rolled back before its commit: the delivery was given up meanwhile."""


@dataclass(frozen=True)
class InboxRow:
    """One delivery as stored."""

    id: int
    delivery_key: str
    handler: str
    body_json: str
    channel_id: str | None
    card_key: str | None
    state: str
    attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    posting_at: datetime | None
    card_ts: str | None
    outcome: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def body(self) -> dict[str, Any]:
        """The payload as Slack sent it (without its legacy ``token``); empty once done."""
        value = json.loads(self.body_json or "{}")
        return value if isinstance(value, dict) else {}


def _row(mapping: Any) -> InboxRow:
    return InboxRow(**{name: mapping[name] for name in InboxRow.__dataclass_fields__})


class InboxStore:
    """The inbox table on the bot's database."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        self._adding: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AddQueue] = (
            weakref.WeakKeyDictionary()
        )

    async def add(
        self,
        handler: str,
        delivery_key: str,
        body: dict[str, Any],
        *,
        channel_id: str | None = None,
        card_key: str | None = None,
        keep: Callable[[], bool] | None = None,
    ) -> int | None:
        """Write an accepted delivery: one ``INSERT ... ON CONFLICT DO NOTHING``.

        Deliveries written at the same moment share one transaction (group commit): a writer
        takes every delivery waiting once it holds a connection, one ``INSERT`` of many rows (at
        most ``ADD_BATCH``, in the order they arrived); deliveries that come while it writes wait
        for the next writer. SQLite has one writer at a time (it has one anyway); Postgres up to
        ``POSTGRES_ADD_WRITERS``, so that one slow transaction holds up only its own batch. Each
        delivery is still its own: ``keep``, when given, is asked after the ``INSERT`` and
        before the commit, and False takes that row out again (:class:`NotKept`; the listener
        already told the person it was not taken); a delivery whose key is already in the batch
        (Slack's retry, at the same moment) waits for the next one, which sees whether the first
        was kept.

        On Postgres, a row of the batch that another process holds locked (Slack's retry of a
        delivery it is writing at this moment) would hold up the whole batch: the batch waits for
        a lock at most ``POSTGRES_BATCH_LOCK_WAIT``, then each of its deliveries is written in a
        transaction of its own, and only the one whose row is locked waits for it.

        Returns:
            The new row's id, or None when a row with this ``delivery_key`` exists already (Slack
            sent the same delivery again: it is one row).

        Raises:
            NotKept: ``keep`` said no.
            SQLAlchemyError, OSError: the transaction failed (every delivery in it).
        """
        now = self.clock()
        values = {
            "delivery_key": delivery_key,
            "handler": handler,
            "body_json": json.dumps(body, separators=(",", ":")),
            "channel_id": channel_id,
            "card_key": card_key,
            "state": PENDING,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        loop = asyncio.get_running_loop()
        item = _Adding(values, keep, loop.create_future())
        queue = self._adding.get(loop)
        if queue is None:
            queue = self._adding[loop] = _AddQueue()
        queue.waiting.append(item)
        most = 1 if self.engine.dialect.name == "sqlite" else POSTGRES_ADD_WRITERS
        if not queue.gathering and not queue.unstarted and len(queue.writers) < most:
            # No writer is about to take what waits (each is writing its batch): one more.
            with urgent_writes():  # the ack's INSERT goes before queued writes (bot.persistence.db)
                writer = asyncio.create_task(self._write_queued(queue), name="flagops-inbox-add")
            queue.writers.add(writer)
            queue.unstarted.add(writer)  # the deliveries queued before it runs are its to take
            writer.add_done_callback(functools.partial(_writer_done, queue))
        return await item.done

    async def _write_queued(self, queue: _AddQueue) -> None:
        """Write what is queued, a transaction at a time, until nothing is."""
        me = asyncio.current_task()
        # Both at once, not in a done callback: a delivery queued from now on must find this
        # writer counted as gathering (no await before it is) or gone (and start another), never
        # waiting for a writer that has finished.
        queue.unstarted.discard(me)
        try:
            await self._write_batches(queue)
        finally:
            queue.writers.discard(me)

    async def _write_batches(self, queue: _AddQueue) -> None:
        postgres = self.engine.dialect.name == "postgresql"
        gathering = False  # whether this writer is counted in queue.gathering
        try:
            while queue.waiting:
                queue.gathering += 1
                gathering = True
                batch: list[_Adding] = []
                waited = set(queue.waiting)
                try:
                    async with self.engine.begin() as connection:
                        # Taken once the connection is held: whatever queued meanwhile goes in too.
                        batch, queue.waiting = _next_batch(queue.waiting)
                        queue.gathering -= 1
                        gathering = False
                        # Empty: every caller waiting is gone (cancelled), or another writer took them.
                        answers = await self._write_batch(connection, batch, postgres) if batch else {}
                except asyncio.CancelledError:
                    # Stopping: this batch is not written; what waits is left to the other
                    # writers, or cancelled when none is left (_writer_done).
                    for item in batch:
                        item.done.cancel()
                    raise
                except Exception as error:  # noqa: BLE001 - handed to each delivery's caller, as is
                    if postgres and batch and _lock_wait(error):
                        # A row of the batch is locked by another process: each on its own.
                        for item in batch:
                            if not item.done.done():
                                alone = asyncio.create_task(self._add_alone(item), name="flagops-inbox-add")
                                queue.alone.add(alone)
                                alone.add_done_callback(queue.alone.discard)
                        continue
                    if gathering:
                        # It failed before taking (no connection): those that waited, and no other
                        # writer took since, fail; those that came meanwhile go in the next one.
                        queue.gathering -= 1
                        gathering = False
                        batch = [item for item in queue.waiting if item in waited]
                        queue.waiting = [item for item in queue.waiting if item not in waited]
                    for item in batch:
                        if not item.done.done():
                            item.done.set_exception(error)
                    continue
                _answer(answers)
        finally:
            if gathering:
                queue.gathering -= 1

    async def _write_batch(
        self, connection: AsyncConnection, batch: list[_Adding], postgres: bool
    ) -> dict[_Adding, int | NotKept | None]:
        """Insert the batch's rows and take out those not kept, in the caller's transaction; each
        delivery's answer (its row's id, None when its key was written already, or NotKept)."""
        if postgres and len(batch) > 1:
            await connection.execute(_BATCH_LOCK_TIMEOUT)
        ids = await self._insert(connection, [item.values for item in batch])
        answers: dict[_Adding, int | NotKept | None] = {}
        for item in batch:
            answers[item] = ids.get(item.key)
            if item.keep is not None and not item.keep():
                answers[item] = NotKept(item.key)
        dropped = [
            ids[i.key] for i, answer in answers.items() if isinstance(answer, NotKept) and i.key in ids
        ]
        if dropped:
            await connection.execute(delete(inbox).where(inbox.c.id.in_(dropped)))
        return answers

    async def _add_alone(self, item: _Adding) -> None:
        """Write one delivery in a transaction of its own (Postgres: its row may be locked by
        another process; only this delivery waits for it), and answer its caller."""
        try:
            async with self.engine.begin() as connection:
                # Alone: no lock wait set (its own row is the one that may have to wait).
                answers = await self._write_batch(connection, [item], postgres=True)
        except asyncio.CancelledError:
            item.done.cancel()
            raise
        except Exception as error:  # noqa: BLE001 - handed to the delivery's caller, as is
            if not item.done.done():
                item.done.set_exception(error)
            return
        _answer(answers)

    async def _insert(self, connection: AsyncConnection, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Insert the rows (keys unique among them); the ids of those new, by delivery key."""
        statement = _insert_many(self.engine.dialect.name)
        # Many rows: SQLAlchemy's "insertmanyvalues" sends them as one multi-row INSERT.
        result = await connection.execute(statement, rows if len(rows) > 1 else rows[0])
        return {str(key): int(found) for found, key in result}

    async def claim(
        self,
        owner: str,
        lease: timedelta,
        *,
        row_id: int | None = None,
        handlers: Collection[str] | None = None,
    ) -> InboxRow | None:
        """Take a row for ``owner`` until ``now + lease`` (compare-and-set).

        Args:
            owner: the worker taking it.
            lease: how long it holds the row before another worker may take it over.
            row_id: this row only (the listener working its own delivery); else the oldest row
                that may be taken: pending, or working with an expired lease, and not waiting for
                an earlier row of its card.
            handlers: only rows of these handlers (a worker of an older release, during a rolling
                deploy, leaves a row it cannot work to one that can).

        Returns:
            The row as taken (``attempts`` counts this take), or None: nothing to take (or another
            worker won it).
        """
        now = self.clock()
        params: dict[str, Any] = {"c_owner": owner, "c_expires": now + lease, "c_now": now}
        if row_id is not None:
            statement = _claim_row()
            params["c_row"] = row_id
        elif handlers is not None:
            statement = _claim_first(known_handlers=True)
            params["c_handlers"] = sorted(handlers)
        else:
            statement = _claim_first(known_handlers=False)
        async with self.engine.begin() as connection:
            found = (await connection.execute(statement, params)).mappings().first()
        return _row(found) if found is not None else None

    async def renew(self, owner: str, lease: timedelta, held: Mapping[int, int]) -> int:
        """Extend the leases of the rows ``owner`` is still working: ``held`` maps each row id to
        its take number (a row whose take ended, or that another take holds now, is left alone:
        its lease runs out). Returns how many leases were extended."""
        if not held:
            return 0
        now = self.clock()
        statement = (
            update(inbox)
            .where(
                inbox.c.state == WORKING,
                inbox.c.lease_owner == owner,
                or_(*(and_(inbox.c.id == row_id, inbox.c.attempts == take) for row_id, take in held.items())),
            )
            .values(lease_expires_at=now + lease)
        )
        async with self.engine.begin() as connection:
            result = await connection.execute(statement)
        return int(result.rowcount or 0)

    async def mark_posting(self, row_id: int, owner: str, attempt: int) -> bool:
        """Record, before a row's first post, that it is posting; False when the row is no longer
        held by this take (``owner``'s take number ``attempt``): another worker, or another take
        by the same process after its lease ran out, has it now, and this one must not post."""
        statement = (
            update(inbox)
            .where(_held(owner, attempt), inbox.c.id == row_id)
            .values(posting_at=func.coalesce(inbox.c.posting_at, literal(self.clock(), UTCDateTime())))
        )
        async with self.engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)

    async def record_post(self, row_id: int, channel: str, ts: str) -> None:
        """Record the ``ts`` of a row's first post; a row with no card yet gets it as its card."""
        statement = (
            update(inbox)
            .where(inbox.c.id == row_id, inbox.c.card_ts.is_(None))
            .values(
                card_ts=ts,
                card_key=func.coalesce(inbox.c.card_key, card_key(channel, ts)),
                updated_at=self.clock(),
            )
        )
        async with self.engine.begin() as connection:
            await connection.execute(statement)

    async def finish(self, row_id: int, owner: str, attempt: int, outcome: str) -> bool:
        """Mark the row done (its payload emptied) if this take (``owner``'s number ``attempt``)
        still holds it; False when another take has it now."""
        statement = (
            update(inbox)
            .where(_held(owner, attempt), inbox.c.id == row_id)
            .values(
                state=DONE,
                outcome=outcome,
                body_json="{}",
                lease_owner=None,
                lease_expires_at=None,
                updated_at=self.clock(),
            )
        )
        async with self.engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)

    async def get(self, row_id: int) -> InboxRow | None:
        """The row with this id, or None."""
        async with self.engine.connect() as connection:
            found = (await connection.execute(select(inbox).where(inbox.c.id == row_id))).mappings().first()
        return _row(found) if found is not None else None

    async def rows(self) -> list[InboxRow]:
        """Every row, oldest first (for tests and for looking into a stuck inbox)."""
        async with self.engine.connect() as connection:
            found = (await connection.execute(select(inbox).order_by(inbox.c.id))).mappings().all()
        return [_row(r) for r in found]

    async def waiting(self) -> int:
        """How many rows are not done."""
        statement = select(func.count()).select_from(inbox).where(inbox.c.state != DONE)
        async with self.engine.connect() as connection:
            return int((await connection.execute(statement)).scalar() or 0)

    async def purge(self, older_than: timedelta) -> int:
        """Delete done rows last written more than ``older_than`` ago (their delivery keys are
        kept that long, so a late retry of them is still recognised)."""
        cutoff = self.clock() - older_than
        statement = delete(inbox).where(inbox.c.state == DONE, inbox.c.updated_at < cutoff)
        async with self.engine.begin() as connection:
            result = await connection.execute(statement)
        return int(result.rowcount or 0)


# The claim's statements are built once (building ``_ready``'s subqueries was a few per cent of
# the CPU of every command); each claim binds its own values (names apart from the columns').
_CLAIM_VALUES: dict[str, Any] = {
    "state": WORKING,
    "lease_owner": bindparam("c_owner"),
    "lease_expires_at": bindparam("c_expires", type_=UTCDateTime()),
    "attempts": inbox.c.attempts + 1,
    "updated_at": bindparam("c_now", type_=UTCDateTime()),
}


@functools.cache
def _insert_many(dialect: str) -> Any:
    """The ack's ``INSERT … ON CONFLICT DO NOTHING RETURNING id, delivery_key``, built once per
    dialect."""
    if dialect == "postgresql":
        statement: Any = postgresql.insert(inbox).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(inbox).on_conflict_do_nothing()
    else:  # pragma: no cover - flagops runs on SQLite and Postgres only
        statement = insert(inbox)
    return statement.returning(inbox.c.id, inbox.c.delivery_key)


ADD_BATCH = 100
"""Most deliveries written in one transaction (group commit, :meth:`InboxStore.add`)."""
POSTGRES_ADD_WRITERS = 4
"""Batches of deliveries being written at once on Postgres, each on a pooled connection."""
POSTGRES_BATCH_LOCK_WAIT = "200ms"
"""How long a batch waits for a row lock held by another transaction (Slack's retry being written
by another process) before its deliveries are written one by one."""
_BATCH_LOCK_TIMEOUT = text(f"SET LOCAL lock_timeout = '{POSTGRES_BATCH_LOCK_WAIT}'")
_LOCK_WAITS = frozenset({"55P03", "40P01"})  # lock_not_available, deadlock_detected


def _lock_wait(error: Exception) -> bool:
    """Whether a Postgres statement failed for waiting on a lock (lock_timeout, or a deadlock)."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) in _LOCK_WAITS


@dataclass(eq=False)
class _Adding:
    """A delivery waiting for its ``INSERT``: its row, its ``keep``, and what the writer answers."""

    values: dict[str, Any]
    keep: Callable[[], bool] | None
    done: asyncio.Future[int | None]

    @property
    def key(self) -> str:
        return str(self.values["delivery_key"])


@dataclass(eq=False)
class _AddQueue:
    """Deliveries waiting for their ``INSERT`` on one event loop, and the task writing them."""

    waiting: list[_Adding] = field(default_factory=list)
    writers: set[asyncio.Task[None]] = field(default_factory=set)
    gathering: int = 0
    """Writers waiting for a connection, about to take what waits (none: a new one may start)."""
    unstarted: set[asyncio.Task[None]] = field(default_factory=set)
    """Writers started that have not run yet: they will take what waits."""
    alone: set[asyncio.Task[None]] = field(default_factory=set)
    """Deliveries being written one by one (their batch waited on a row lock)."""


def _answer(answers: dict[_Adding, int | NotKept | None]) -> None:
    """Tell each delivery of a committed batch its answer (its id, None, or NotKept)."""
    for item, answer in answers.items():
        if item.done.done():
            continue  # its caller is gone; the row is written, and the loop works it
        if isinstance(answer, NotKept):
            item.done.set_exception(answer)
        else:
            item.done.set_result(answer)


def _writer_done(queue: _AddQueue, writer: asyncio.Task[None]) -> None:
    """A writer ended; cancelled (stopping), and no writer left: what waits is cancelled (none
    would take it)."""
    queue.writers.discard(writer)
    queue.unstarted.discard(writer)
    if writer.cancelled() and not queue.writers:
        for item in queue.waiting:
            item.done.cancel()
        queue.waiting = []


def _next_batch(waiting: list[_Adding]) -> tuple[list[_Adding], list[_Adding]]:
    """The next transaction's deliveries (at most ``ADD_BATCH``, each key once, in the order they
    arrived: the rows' ids give the order in which a card's rows are worked), and the rest."""
    batch: list[_Adding] = []
    rest: list[_Adding] = []
    keys: set[str] = set()
    for item in waiting:
        if item.done.done():
            continue  # its caller is gone (cancelled): nothing to write
        if item.key in keys or len(batch) >= ADD_BATCH:
            rest.append(item)
        else:
            keys.add(item.key)
            batch.append(item)
    return batch, rest


@functools.cache
def _claim_row() -> Any:
    """Take one given row (``c_row``) if it is pending and ready."""
    target = and_(inbox.c.id == bindparam("c_row"), inbox.c.state == PENDING, _ready(inbox))
    return update(inbox).where(target).values(_CLAIM_VALUES).returning(*inbox.c)


@functools.cache
def _claim_first(*, known_handlers: bool) -> Any:
    """Take the oldest row that may be taken (of the handlers ``c_handlers``, when asked)."""
    now = bindparam("c_now", type_=UTCDateTime())
    candidate = inbox.alias("candidate")
    known = candidate.c.handler.in_(bindparam("c_handlers", expanding=True)) if known_handlers else true()
    first = (
        select(candidate.c.id)
        .where(_takeable(candidate, now), _ready(candidate), known)
        .order_by(candidate.c.id)
        .limit(1)
        .scalar_subquery()
    )
    target = and_(inbox.c.id == first, _takeable(inbox, now))
    return update(inbox).where(target).values(_CLAIM_VALUES).returning(*inbox.c)


def card_key(channel: str, ts: str) -> str:
    """The key of the card ``ts`` in ``channel``."""
    return f"{channel}:{ts}"[:128]


def _held(owner: str, attempt: int) -> ColumnElement[bool]:
    """The row is still held by one take: the owner *and* its take number (a process that took
    its own row again, after its lease ran out, holds it by the newer take only)."""
    return and_(inbox.c.state == WORKING, inbox.c.lease_owner == owner, inbox.c.attempts == attempt)


def _takeable(row: Any, now: Any) -> ColumnElement[bool]:
    """Pending, or working under a lease that expired (its worker is gone)."""
    return or_(row.c.state == PENDING, and_(row.c.state == WORKING, row.c.lease_expires_at < now))


def _ready(row: Any) -> ColumnElement[bool]:
    """No earlier row of the same card is unfinished; for a row about a card not known to be up
    already, no earlier row of its channel is between starting a post and recording it (that post
    may be the very card clicked). A card is known to be up when a row recorded posting it: a
    click on it waits for nothing a post elsewhere in its channel does."""
    earlier = inbox.alias("earlier")
    poster = inbox.alias("poster")
    known = exists(
        select(poster.c.id)
        .where(
            poster.c.card_ts.is_not(None),
            or_(poster.c.card_key == row.c.card_key, _posted_key(poster) == row.c.card_key),
        )
        .correlate_except(poster)
    )
    blocking = select(earlier.c.id).where(
        earlier.c.id < row.c.id,
        earlier.c.state != DONE,
        row.c.card_key.is_not(None),
        or_(
            earlier.c.card_key == row.c.card_key,
            _posted_key(earlier) == row.c.card_key,  # a click row's own post (Propose again, Undo)
            and_(
                earlier.c.channel_id == row.c.channel_id,
                earlier.c.posting_at.is_not(None),
                earlier.c.card_ts.is_(None),
                ~known,
            ),
        ),
    )
    return ~exists(blocking)


def _posted_key(row: Any) -> ColumnElement[str]:
    """The card a row posted (``<channel>:<ts>``; NULL before it recorded a ``ts``): a click row
    keeps the card it was clicked on as its ``card_key``, and may post another card."""
    posted: ColumnElement[str] = row.c.channel_id + literal(":") + row.c.card_ts
    return posted
