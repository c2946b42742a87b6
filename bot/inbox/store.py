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

from sqlalchemy import and_, bindparam, delete, exists, func, insert, literal, or_, select, true, update
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

        On SQLite (one writer at a time: every ``INSERT`` waits its turn at the write gate),
        deliveries written at the same moment share one transaction (group commit): the first
        starts it, and every delivery that comes while it waits for the database goes into it,
        one ``INSERT`` of many rows (at most ``ADD_BATCH``). Each is still its own: ``keep``,
        when given, is asked after the ``INSERT`` and before the commit, and False takes that row
        out again (:class:`NotKept`; the listener already told the person it was not taken); a
        delivery whose key is already in the transaction (Slack's retry, at the same moment)
        waits for the next one, which sees whether the first was kept. On Postgres each delivery
        has a transaction (and a pooled connection) of its own: a row another process holds
        locked (Slack's retry of a delivery it is writing) holds up that delivery alone.

        Returns:
            The new row's id, or None when a row with this ``delivery_key`` exists already (Slack
            sent the same delivery again: it is one row).

        Raises:
            NotKept: ``keep`` said no.
            SQLAlchemyError, OSError: the transaction failed (on SQLite, every delivery in it).
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
        if self.engine.dialect.name != "sqlite":
            async with self.engine.begin() as connection:
                ids = await self._insert(connection, [values])
                if keep is not None and not keep():
                    raise NotKept(delivery_key)
            return ids.get(delivery_key)
        loop = asyncio.get_running_loop()
        item = _Adding(values, keep, loop.create_future())
        queue = self._adding.get(loop)
        if queue is None:
            queue = self._adding[loop] = _AddQueue()
        queue.waiting.append(item)
        if queue.writer is None:
            with urgent_writes():  # the ack's INSERT goes before queued writes (bot.persistence.db)
                queue.writer = asyncio.create_task(self._write_queued(queue), name="flagops-inbox-add")
        return await item.done

    async def _write_queued(self, queue: _AddQueue) -> None:
        """Write what is queued, a transaction at a time, until nothing is."""
        try:
            while queue.waiting:
                # A failure before the batch is taken (the transaction did not start) fails those
                # waiting now, not those that come meanwhile (they go in the next one).
                batch: list[_Adding] = []
                waited = list(queue.waiting)
                not_kept: list[_Adding] = []
                ids: dict[str, int] = {}
                try:
                    async with self.engine.begin() as connection:
                        # Taken once the connection is held: whatever queued meanwhile goes in too.
                        batch, queue.waiting = _next_batch(queue.waiting)
                        if batch:  # else every caller waiting is gone (cancelled)
                            ids = await self._insert(connection, [item.values for item in batch])
                            not_kept = [i for i in batch if i.keep is not None and not i.keep()]
                            dropped = [ids[key] for key in (i.key for i in not_kept) if key in ids]
                            if dropped:
                                await connection.execute(delete(inbox).where(inbox.c.id.in_(dropped)))
                except asyncio.CancelledError:
                    for item in (*batch, *queue.waiting):
                        item.done.cancel()
                    queue.waiting = []
                    raise
                except Exception as error:  # noqa: BLE001 - handed to each delivery's caller, as is
                    for item in batch or waited:
                        if not item.done.done():
                            item.done.set_exception(error)
                    if not batch:
                        queue.waiting = [item for item in queue.waiting if item not in waited]
                    continue
                for item in batch:
                    if item.done.done():
                        continue  # its caller is gone; the row is written, and the loop works it
                    if item in not_kept:
                        item.done.set_exception(NotKept(item.key))
                    else:
                        item.done.set_result(ids.get(item.key))
        finally:
            queue.writer = None

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
    writer: asyncio.Task[None] | None = None


def _next_batch(waiting: list[_Adding]) -> tuple[list[_Adding], list[_Adding]]:
    """The next transaction's deliveries (at most ``ADD_BATCH``, each key once), and the rest."""
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
