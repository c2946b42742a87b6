"""The store of changes: each pending or past change, and the compare-and-set moves between states.

A click, a replayed request, or a second bot instance on the same database may race to move the
same change. :meth:`Store.transition` is one conditional ``UPDATE ... WHERE id = ? AND state IN
(...)``: the database lets exactly one of them match, the others get ``None`` and must change
nothing. Each successful move writes its audit row in the same transaction.

Callers get :class:`Change` and :class:`AuditEntry` (frozen pydantic models), never ORM rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.clock import utcnow
from bot.persistence.db import audit, changes, create_engine


class State(StrEnum):
    """The states of a change. Members are plain strings, so ``"applied" == State.APPLIED``."""

    PROPOSED = "proposed"
    """The card is posted with Apply / Cancel; waiting for the requester. Expires at ``expires_at``."""
    APPLYING = "applying"
    """Someone won the compare-and-set on Apply; the request to LaunchDarkly is in flight. A
    change left here after a restart is found by :meth:`Store.stuck_applying`."""
    APPLIED = "applied"
    """LaunchDarkly accepted the change (200). Final."""
    FAILED = "failed"
    """LaunchDarkly refused the change (4xx, e.g. invalid, forbidden, conflicting) and the card
    says why. Final unless the card offers a way on (Apply anyway, which starts a new attempt)."""
    NEEDS_APPROVAL = "needs_approval"
    """The environment requires approval (known at preview, or a 405 at apply); the card offers
    Request approval. Expires like ``proposed``."""
    APPROVAL_REQUESTED = "approval_requested"
    """An approval request with the same instructions was created in LaunchDarkly
    (``approval_request_id``); its review happens there or in the channel."""
    CANCELLED = "cancelled"
    """The requester pressed Cancel. Final."""
    EXPIRED = "expired"
    """Nobody decided before ``expires_at``. Final."""
    OUTCOME_UNKNOWN = "outcome_unknown"
    """The request to LaunchDarkly timed out, failed with 5xx, or the bot stopped mid-apply: the
    change may or may not be in the flag. The bot re-reads the flag and says which; sending again
    is an explicit Send again click, never automatic."""
    SUPERSEDED = "superseded"
    """The flag changed between preview and Apply; a new change with a fresh preview replaced
    this one. Final."""


ALL_STATES = frozenset(State)
FINAL_STATES = frozenset({State.APPLIED, State.CANCELLED, State.EXPIRED, State.SUPERSEDED})

#: Every move the lifecycle makes, and no other: ``transition`` refuses a move not listed here, so
#: a bug cannot, say, take an applied change back to applying. From a state to the states it may go to.
MOVES: dict[State, frozenset[State]] = {
    State.PROPOSED: frozenset({State.APPLYING, State.CANCELLED, State.EXPIRED}),
    State.NEEDS_APPROVAL: frozenset({State.APPLYING, State.CANCELLED, State.EXPIRED}),
    State.APPLYING: frozenset(
        {
            State.APPLIED,  # LaunchDarkly accepted it
            State.FAILED,  # LaunchDarkly refused it
            State.PROPOSED,  # nothing was sent, or a conflict to confirm: the card offers Apply again
            State.NEEDS_APPROVAL,  # 405: the environment requires approval
            State.APPROVAL_REQUESTED,  # the approval request was created
            State.OUTCOME_UNKNOWN,  # the write may have landed
            State.SUPERSEDED,  # the flag moved: a fresh preview replaces this card
        }
    ),
    State.OUTCOME_UNKNOWN: frozenset(
        {
            State.APPLIED,  # the audit log (or the flag) shows it landed
            State.APPLYING,  # Send again
            State.CANCELLED,
            State.OUTCOME_UNKNOWN,  # the settle claim, and its decision, stay here
        }
    ),
    State.APPROVAL_REQUESTED: frozenset({State.APPLIED, State.FAILED}),
    State.APPLIED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
    State.EXPIRED: frozenset(),
    State.SUPERSEDED: frozenset(),
}
EXPIRING_STATES = frozenset({State.PROPOSED, State.NEEDS_APPROVAL})
"""States in which a change waits for a click and expires at ``expires_at``."""

# Columns a transition may set besides state (the rest are identity, bookkeeping or set once).
UPDATABLE_FIELDS = frozenset(
    {
        "card_ts",
        "thread_ts",
        "environment",
        "request_json",
        "preview_version",
        "env_version",
        "flag_before_json",
        "comment",
        "ignore_conflicts",
        "approval_request_id",
        "outcome_json",
        "expires_at",
        "lease_owner",
        "lease_expires_at",
        "sent_at",
        "settle_at",
    }
)


class Change(BaseModel):
    """One requested flag change, as stored (see :class:`State` for ``state``). The JSON columns
    read back through :attr:`flag_before` and :attr:`outcome` (the proposal through
    ``bot.lifecycle.models.proposal_of``), never by hand."""

    model_config = ConfigDict(frozen=True)

    @property
    def flag_before(self) -> dict[str, Any] | None:
        """The flag as the preview saw it, or None when not stored."""
        return _json_object(self.flag_before_json)

    @property
    def outcome(self) -> dict[str, Any] | None:
        """What the apply recorded (``flag_after``...), or None."""
        return _json_object(self.outcome_json)

    id: str
    state: str
    previous_state: str | None
    """The state before the last transition (None until the first)."""
    requester_id: str
    requester_name: str
    channel_id: str
    card_ts: str | None
    thread_ts: str | None
    project: str
    flag_key: str
    environment: str | None
    command_text: str
    request_json: str
    """The planned request as JSON, including the semantic-patch body."""
    preview_version: int
    """The flag's ``_version`` the preview was computed against."""
    env_version: int | None
    flag_before_json: str | None
    """The flag document at preview time (for undo)."""
    comment: str
    ignore_conflicts: bool
    approval_request_id: str | None
    outcome_json: str | None
    ld_status: int | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    version: int
    """Incremented by every write, for optimistic checks."""
    lease_owner: str | None = None
    """The instance holding the change in ``applying``."""
    lease_expires_at: datetime | None = None
    """Until when that instance may finish the apply undisturbed."""
    sent_at: datetime | None = None
    """When the write was last sent to LaunchDarkly."""
    settle_at: datetime | None = None
    """In ``outcome_unknown``: when the outcome is decided for good; None once it is."""


class AuditEntry(BaseModel):
    """One transition of a change: who moved it, when, from and to which state."""

    model_config = ConfigDict(frozen=True)

    id: int
    change_id: str
    at: datetime
    actor_id: str
    from_state: str | None
    to_state: str
    ld_status: int | None
    detail: str | None


class Store:
    """Changes and their audit trail in one database, shared by every instance of the bot."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow) -> None:
        """Use ``engine`` (migrated: see :func:`bot.persistence.db.migrate`); ``clock`` stamps the rows."""
        self.engine = engine
        self._clock = clock

    @classmethod
    def from_url(cls, url: str, *, clock: Callable[[], datetime] = utcnow, **engine_kwargs: Any) -> Store:
        """Open a store on a database URL (does not migrate).

        Args:
            url: the database URL (normalised to an asyncio driver).
            clock: the source of timestamps.
            **engine_kwargs: passed to ``create_async_engine``.

        Returns:
            The store; ``await store.close()`` when done.
        """
        return cls(create_engine(url, **engine_kwargs), clock=clock)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def create_change(
        self,
        *,
        requester_id: str,
        requester_name: str,
        channel_id: str,
        project: str,
        flag_key: str,
        environment: str | None,
        command_text: str,
        request_json: str,
        preview_version: int,
        expires_at: datetime,
        env_version: int | None = None,
        flag_before_json: str | None = None,
        comment: str = "",
        ignore_conflicts: bool = False,
        card_ts: str | None = None,
        thread_ts: str | None = None,
        state: str = State.PROPOSED,
        change_id: str | None = None,
        detail: str | None = None,
    ) -> Change:
        """Store a new change (and its first audit row, from no state, by the requester).

        Args:
            requester_id: the Slack user who asked.
            requester_name: their display name at the time.
            channel_id: where the card is (to be) posted.
            project: the LaunchDarkly project key.
            flag_key: the flag key.
            environment: the environment key, or None for a flag-level change.
            command_text: the command as typed.
            request_json: the planned request as JSON (incl. the semantic-patch body).
            preview_version: the flag ``_version`` the preview was computed against.
            expires_at: when the change stops waiting for a click (timezone-aware).
            env_version: the environment's ``version`` at preview, when known.
            flag_before_json: the flag document at preview, for undo.
            comment: the requester's comment.
            ignore_conflicts: send with ``ignoreConflicts=true``.
            card_ts: the card's ts, if already posted.
            thread_ts: the ts of the thread replies go to (usually the card's).
            state: the initial state (``proposed``, or ``needs_approval``).
            change_id: the id to use (a new UUID by default).
            detail: a note for the audit row.

        Returns:
            The stored change, ``version`` 1.

        Raises:
            ValueError: ``state`` is not a :class:`State`.
        """
        _check_state(state)
        now = self._clock()
        row: dict[str, Any] = {
            "id": change_id or str(uuid.uuid4()),
            "state": str(state),
            "previous_state": None,
            "requester_id": requester_id,
            "requester_name": requester_name,
            "channel_id": channel_id,
            "card_ts": card_ts,
            "thread_ts": thread_ts,
            "project": project,
            "flag_key": flag_key,
            "environment": environment,
            "command_text": command_text,
            "request_json": request_json,
            "preview_version": preview_version,
            "env_version": env_version,
            "flag_before_json": flag_before_json,
            "comment": comment,
            "ignore_conflicts": ignore_conflicts,
            "approval_request_id": None,
            "outcome_json": None,
            "ld_status": None,
            "created_at": now,
            "updated_at": now,
            "expires_at": expires_at,
            "version": 1,
        }
        async with self.engine.begin() as connection:
            await connection.execute(insert(changes).values(row))
            await _audit(connection, row["id"], now, requester_id, None, row["state"], None, detail)
        return Change.model_validate(_normalise(row))

    async def get_change(self, change_id: str) -> Change | None:
        """The change with this id, or None."""
        async with self.engine.connect() as connection:
            result = await connection.execute(select(changes).where(changes.c.id == change_id))
            row = result.mappings().first()
        return Change.model_validate(dict(row)) if row is not None else None

    async def transition(
        self,
        change_id: str,
        from_states: Collection[str],
        to_state: str,
        actor_id: str,
        *,
        ld_status: int | None = None,
        detail: str | None = None,
        require: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Change | None:
        """Move a change to ``to_state`` if, and only if, it is now in one of ``from_states``.

        One conditional ``UPDATE ... WHERE id = ? AND state IN (...)`` decides (compare-and-set):
        of any number of concurrent callers, on any number of instances sharing the database, at
        most one wins. The winner's audit row is written in the same transaction.

        Args:
            change_id: the change.
            from_states: the states it may be moved from.
            to_state: the state to move it to.
            actor_id: who moves it (a Slack user id, or e.g. ``"system"`` for expiry).
            ld_status: LaunchDarkly's HTTP status, when the move follows a call; also stored on
                the change.
            detail: a note for the audit row.
            require: columns that must also hold these values for the move to happen (None:
                IS NULL), checked in the same conditional UPDATE.
            **fields: other columns to set in the same update (see ``UPDATABLE_FIELDS``).

        Returns:
            The change as it is after the move, or None when it was not in ``from_states`` (or
            does not exist): the caller lost the race and must change nothing.

        Raises:
            ValueError: an unknown state, a move not in ``MOVES``, or a field that a transition may
                not set.
        """
        for state in (*from_states, to_state):
            _check_state(state)
        for state in from_states:
            if State(to_state) not in MOVES[State(state)]:
                raise ValueError(f"a change never moves from {state} to {to_state} (see MOVES)")
        unknown = set(fields) - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"a transition cannot set {sorted(unknown)}")
        if not from_states:
            return None
        now = self._clock()
        values: dict[str, Any] = {
            **fields,
            # SET expressions read the row as it was, so this keeps the state being left.
            "previous_state": changes.c.state,
            "state": str(to_state),
            "updated_at": now,
            "version": changes.c.version + 1,
        }
        if ld_status is not None:
            values["ld_status"] = ld_status
        if str(to_state) != State.APPLYING.value:
            # A lease is held only while applying: one left on the row would let a later claim
            # without a lease of its own (Request approval) look abandoned to the sweep.
            values.setdefault("lease_owner", None)
            values.setdefault("lease_expires_at", None)
        return await self._update_if(
            change_id, from_states, require, values, actor_id, detail, ld_status=ld_status, moved=True
        )

    async def record(
        self,
        change_id: str,
        in_states: Collection[str],
        actor_id: str,
        *,
        detail: str,
        require: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Change | None:
        """Write ``fields`` (e.g. ``outcome_json``) on a change that stays in its state, with an
        audit row, if, and only if, it is now in one of ``in_states`` (and holds ``require``): a
        ramp's steps as each is created, and what Pause deleted (``bot.lifecycle.ramps``).

        Returns:
            The change after the write, or None when it was not in ``in_states``.

        Raises:
            ValueError: an unknown state, or a field a transition may not set.
        """
        for state in in_states:
            _check_state(state)
        unknown = set(fields) - UPDATABLE_FIELDS
        if unknown or not in_states:
            raise ValueError(f"a record cannot set {sorted(unknown)}")
        now = self._clock()
        values: dict[str, Any] = {**fields, "updated_at": now, "version": changes.c.version + 1}
        return await self._update_if(change_id, in_states, require, values, actor_id, detail)

    async def _update_if(
        self,
        change_id: str,
        states: Collection[str],
        require: Mapping[str, Any] | None,
        values: dict[str, Any],
        actor_id: str,
        detail: str | None,
        *,
        ld_status: int | None = None,
        moved: bool = False,
    ) -> Change | None:
        """One conditional ``UPDATE`` of a change in ``states`` (holding ``require``; None: IS NULL)
        and its audit row, in one transaction; the change after it, or None when the condition
        did not hold. ``moved``: the audit row says the state left (``previous_state``) and the new
        one; otherwise the change stayed in its state."""
        # The WHERE clause is the whole decision; RETURNING gives the winner the row (and the
        # state it left) without a second read (SQLite >= 3.35 and Postgres both support it).
        conditions = [changes.c.id == change_id, changes.c.state.in_([str(s) for s in states])]
        for name, value in (require or {}).items():
            column = changes.c[name]
            conditions.append(column.is_(None) if value is None else column == value)
        statement = update(changes).where(*conditions).values(values).returning(*changes.c)
        async with self.engine.begin() as connection:
            row = (await connection.execute(statement)).mappings().first()
            if row is None:
                return None
            left = row["previous_state"] if moved else row["state"]
            await _audit(
                connection, change_id, values["updated_at"], actor_id, left, row["state"], ld_status, detail
            )
        return Change.model_validate(dict(row))

    async def set_card(self, change_id: str, card_ts: str, *, thread_ts: str | None = None) -> Change | None:
        """Record where the change's card is (not a transition: no audit row).

        Args:
            change_id: the change.
            card_ts: the ``ts`` of the posted card.
            thread_ts: where thread replies go; defaults to the card itself.

        Returns:
            The updated change, or None when it does not exist.
        """
        statement = (
            update(changes)
            .where(changes.c.id == change_id)
            .values(
                card_ts=card_ts,
                thread_ts=thread_ts or card_ts,
                updated_at=self._clock(),
                version=changes.c.version + 1,
            )
            .returning(*changes.c)
        )
        async with self.engine.begin() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return Change.model_validate(dict(row)) if row is not None else None

    async def due_expiries(self, now: datetime | None = None) -> list[Change]:
        """Changes still waiting for a click (``EXPIRING_STATES``) whose ``expires_at`` has passed.

        Args:
            now: the instant to compare with (the store's clock by default).

        Returns:
            The changes, oldest expiry first. Expire each with :meth:`transition`, which settles
            the race with a click that arrives at the same moment.
        """
        cutoff = now or self._clock()
        statement = (
            select(changes)
            .where(changes.c.state.in_([str(s) for s in EXPIRING_STATES]), changes.c.expires_at <= cutoff)
            .order_by(changes.c.expires_at, changes.c.id)
        )
        return await self._select(statement)

    async def stuck_applying(
        self, older_than: timedelta | datetime, *, lease_expired_before: datetime | None = None
    ) -> list[Change]:
        """Changes left in ``applying`` longer than they should be (e.g. across a restart).

        A change with a lease is stuck only once its lease expired before ``lease_expired_before``
        (its owner is gone and the settle window has passed); one without a lease (written
        before leases existed) once it was last written before ``older_than``.

        Args:
            older_than: an age (``timedelta``: last written more than this long ago) or an
                instant (``datetime``: last written before it).
            lease_expired_before: the cutoff for leases (default: the same instant).

        Returns:
            The changes, oldest first.
        """
        cutoff = self._clock() - older_than if isinstance(older_than, timedelta) else older_than
        leases = lease_expired_before or cutoff
        statement = (
            select(changes)
            .where(
                changes.c.state == State.APPLYING.value,
                or_(
                    and_(changes.c.lease_expires_at.is_(None), changes.c.updated_at < cutoff),
                    changes.c.lease_expires_at < leases,
                ),
            )
            .order_by(changes.c.updated_at, changes.c.id)
        )
        return await self._select(statement)

    async def due_settles(self, now: datetime | None = None) -> list[Change]:
        """Changes in ``outcome_unknown`` whose settle time has come (decide them for good)."""
        cutoff = now or self._clock()
        statement = (
            select(changes)
            .where(
                changes.c.state == State.OUTCOME_UNKNOWN.value,
                changes.c.settle_at.is_not(None),
                changes.c.settle_at <= cutoff,
            )
            .order_by(changes.c.settle_at, changes.c.id)
        )
        return await self._select(statement)

    async def audit_for(self, change_id: str) -> list[AuditEntry]:
        """Every transition of a change, in the order they happened."""
        statement = select(audit).where(audit.c.change_id == change_id).order_by(audit.c.id)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [AuditEntry.model_validate(dict(row)) for row in rows]

    async def _select(self, statement: Any) -> list[Change]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [Change.model_validate(dict(row)) for row in rows]


def _json_object(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def _check_state(state: str) -> None:
    if state not in ALL_STATES:
        raise ValueError(f"unknown change state {state!r}; states are {sorted(ALL_STATES)}")


def _normalise(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: value.astimezone(UTC) if isinstance(value, datetime) else value for key, value in row.items()
    }


async def _audit(
    connection: AsyncConnection,
    change_id: str,
    at: datetime,
    actor_id: str,
    from_state: str | None,
    to_state: str,
    ld_status: int | None,
    detail: str | None,
) -> None:
    await connection.execute(
        insert(audit).values(
            change_id=change_id,
            at=at,
            actor_id=actor_id,
            from_state=from_state,
            to_state=to_state,
            ld_status=ld_status,
            detail=detail,
        )
    )
