"""The store of everything due: reminders, digests, checks after scheduled changes, snoozes.

Each row is one thing to do at ``due_at``::

    pending ──claimed by the scheduler──▶ running ──▶ sent     (done: posted, or nothing to say)
       │                                     └──────▶ failed   (an error; ``detail`` says which)
       └──Cancel──▶ cancelled

Every move is one conditional ``UPDATE ... WHERE id = ? AND state IN (...)`` (compare-and-set), so
of two schedulers, a restart and a click racing on one row, exactly one wins: a reminder is never
posted twice, and a restart loses nothing (the rows are in the database, not in memory). A
``dedupe_key`` (unique) makes "enqueue this once" idempotent: the digest of one channel on one
day, the n-th reminder of one approval request.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import utcnow
from bot.persistence.db import jobs

PENDING = "pending"
RUNNING = "running"
SENT = "sent"
FAILED = "failed"
CANCELLED = "cancelled"
JOB_STATES = frozenset({PENDING, RUNNING, SENT, FAILED, CANCELLED})

# The kinds of job (``bot.scheduling.reminders`` runs each).
APPROVAL_REMINDER = "approval_reminder"
DIGEST = "digest"
USER_REMINDER = "user_reminder"
SCHEDULED_CHECK = "scheduled_check"
SNOOZE = "snooze"

SCHEDULED_CHECK_DELAY = timedelta(minutes=1)
"""How long after a scheduled change's time the bot checks that the flag shows it."""


class Job(BaseModel):
    """One thing due at ``due_at`` (see the module docstring for ``state``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    state: str
    due_at: datetime
    target_json: str
    channel_id: str | None
    user_id: str | None
    dedupe_key: str | None
    detail: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def target(self) -> dict[str, Any]:
        """What the job is about (its kind says which keys), decoded."""
        value: dict[str, Any] = json.loads(self.target_json)
        return value

    @property
    def short_id(self) -> str:
        """The id as people type it (``/flag reminders cancel <id>``)."""
        return self.id


class JobStore:
    """Jobs in the bot's database, shared by every instance."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow) -> None:
        """Use ``engine`` (migrated); ``clock`` stamps ``created_at`` / ``updated_at``."""
        self.engine = engine
        self._clock = clock

    async def add(
        self,
        kind: str,
        due_at: datetime,
        target: dict[str, Any],
        *,
        channel_id: str | None = None,
        user_id: str | None = None,
        dedupe_key: str | None = None,
    ) -> Job | None:
        """Store a pending job.

        Args:
            kind: what to do (``bot.scheduling.jobs`` names the kinds).
            due_at: when (timezone-aware).
            target: what it is about (JSON-serialisable).
            channel_id: the channel it posts in, when it posts.
            user_id: the Slack user it belongs to (who may cancel it).
            dedupe_key: a key unique among all jobs: when a job with it exists, nothing is added.

        Returns:
            The job, or None when ``dedupe_key`` was already taken.
        """
        now = self._clock()
        row: dict[str, Any] = {
            "id": uuid.uuid4().hex[:12],
            "kind": kind,
            "state": PENDING,
            "due_at": due_at,
            "target_json": json.dumps(target, sort_keys=True),
            "channel_id": channel_id,
            "user_id": user_id,
            "dedupe_key": dedupe_key,
            "detail": None,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.engine.begin() as connection:
                await connection.execute(insert(jobs).values(row))
        except IntegrityError:
            if dedupe_key is None:
                raise
            return None
        return Job.model_validate({**row, "due_at": due_at.astimezone(UTC), "created_at": now})

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        return next(iter(await self._select(select(jobs).where(jobs.c.id == job_id))), None)

    async def transition(
        self, job_id: str, from_states: Collection[str], to_state: str, *, detail: str | None = None
    ) -> Job | None:
        """Move a job to ``to_state`` if, and only if, it is now in one of ``from_states``.

        Returns:
            The job after the move, or None when another caller moved it first (change nothing).

        Raises:
            ValueError: an unknown state.
        """
        for state in (*from_states, to_state):
            if state not in JOB_STATES:
                raise ValueError(f"unknown job state {state!r}; states are {sorted(JOB_STATES)}")
        values: dict[str, Any] = {"state": to_state, "updated_at": self._clock()}
        if detail is not None:
            values["detail"] = detail
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state.in_(list(from_states)))
            .values(values)
            .returning(*jobs.c)
        )
        async with self.engine.begin() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return Job.model_validate(dict(row)) if row is not None else None

    async def claim_next(self, now: datetime) -> Job | None:
        """Claim the oldest pending job due at ``now`` (pending → running), or None when none is due.

        One job at a time, so a scheduler stopped mid-run leaves at most the job it was running
        in ``running``; everything after it stays pending for the next run. The claim is a
        compare-and-set: when another scheduler claims the same row first, the next one is tried.
        """
        statement = (
            select(jobs)
            .where(jobs.c.state == PENDING, jobs.c.due_at <= now)
            .order_by(jobs.c.due_at, jobs.c.id)
            .limit(1)
        )
        while True:
            found = await self._select(statement)
            if not found:
                return None
            won = await self.transition(found[0].id, [PENDING], RUNNING)
            if won is not None:
                return won

    async def interrupted(self, before: datetime) -> list[Job]:
        """Jobs left ``running`` since before ``before`` (the scheduler stopped while running them)."""
        return await self._select(
            select(jobs).where(jobs.c.state == RUNNING, jobs.c.updated_at < before).order_by(jobs.c.id)
        )

    async def pending(
        self, kind: str, *, user_id: str | None = None, channel_id: str | None = None
    ) -> list[Job]:
        """Pending jobs of a kind (of one user / in one channel when given), soonest first."""
        statement = select(jobs).where(jobs.c.kind == kind, jobs.c.state == PENDING)
        if user_id is not None:
            statement = statement.where(jobs.c.user_id == user_id)
        if channel_id is not None:
            statement = statement.where(jobs.c.channel_id == channel_id)
        return await self._select(statement.order_by(jobs.c.due_at, jobs.c.id))

    async def all(self, kind: str | None = None) -> list[Job]:
        """Every job (of one kind), oldest first: for tests and the operator."""
        statement = select(jobs)
        if kind is not None:
            statement = statement.where(jobs.c.kind == kind)
        return await self._select(statement.order_by(jobs.c.created_at, jobs.c.id))

    async def _select(self, statement: Any) -> list[Job]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [Job.model_validate(dict(row)) for row in rows]
