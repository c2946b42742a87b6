"""Subscriptions, the entries received, and the webhook's settings, in the database (migration 0007)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.persistence.db import subscription_entries, subscription_settings, subscriptions

WEBHOOK_ID = "webhook_id"
WEBHOOK_SECRET = "webhook_secret"  # Fernet ciphertext, never the secret itself
POLL_AFTER = "poll_after"  # epoch ms: entries after this are polled next


@dataclass(frozen=True)
class Subscription:
    """One channel's filter: ``kind`` flag / tag / env / all, ``value`` its key ("" for all)."""

    id: str
    channel_id: str
    project: str
    kind: str
    value: str
    created_by: str

    def describe(self) -> str:
        """``flag new-checkout``, ``tag web``, ``environment production``, ``every flag`` (plain)."""
        what = {"flag": "flag ", "tag": "flags tagged ", "env": "changes in "}.get(self.kind)
        return f"{what}{self.value}" if what else "every flag"


class SubscriptionStore:
    """The three tables of subscriptions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(
        self, channel: str, project: str, kind: str, value: str, by: str, now: datetime
    ) -> Subscription | None:
        """Subscribe a channel; None when it already has this subscription."""
        sub_id = str(uuid.uuid4())
        row = {
            "id": sub_id,
            "channel_id": channel,
            "project": project,
            "kind": kind,
            "value": value,
            "created_by": by,
            "created_at": now,
        }
        try:
            async with self.engine.begin() as connection:
                await connection.execute(insert(subscriptions).values(**row))
        except IntegrityError:
            return None
        return Subscription(sub_id, channel, project, kind, value, by)

    async def remove(self, channel: str, project: str, kind: str, value: str) -> bool:
        """Unsubscribe; whether there was such a subscription."""
        c = subscriptions.c
        async with self.engine.begin() as connection:
            result = await connection.execute(
                delete(subscriptions).where(
                    c.channel_id == channel, c.project == project, c.kind == kind, c.value == value
                )
            )
        return bool(result.rowcount)

    async def remove_id(self, subscription_id: str) -> Subscription | None:
        """Remove one subscription by id (the Home tab's button); the one removed, or None."""
        found = [s for s in await self._select(subscriptions.c.id == subscription_id)]
        if not found:
            return None
        async with self.engine.begin() as connection:
            await connection.execute(delete(subscriptions).where(subscriptions.c.id == subscription_id))
        return found[0]

    async def of_channel(self, channel: str) -> list[Subscription]:
        return await self._select(subscriptions.c.channel_id == channel)

    async def of_project(self, project: str) -> list[Subscription]:
        return await self._select(subscriptions.c.project == project)

    async def every(self, limit: int = 500) -> list[Subscription]:
        return (await self._select(None))[:limit]

    async def count(self) -> int:
        async with self.engine.connect() as connection:
            return int(
                (await connection.execute(select(func.count()).select_from(subscriptions))).scalar_one()
            )

    async def _select(self, where: object) -> list[Subscription]:
        query = select(subscriptions).order_by(subscriptions.c.created_at, subscriptions.c.id)
        if where is not None:
            query = query.where(where)  # type: ignore[arg-type]
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [
            Subscription(r["id"], r["channel_id"], r["project"], r["kind"], r["value"], r["created_by"])
            for r in rows
        ]

    # --- entries received ---------------------------------------------------------------------

    async def claim_entry(
        self, entry_id: str, project: str | None, flag: str | None, date: int, now: datetime
    ) -> bool:
        """Record an entry as received; False when it was received before (a replay)."""
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    insert(subscription_entries).values(
                        entry_id=entry_id, project=project, flag_key=flag, entry_date=date, received_at=now
                    )
                )
        except IntegrityError:
            return False
        return True

    async def newer_received(self, entry_id: str, project: str | None, flag: str | None, date: int) -> bool:
        """Whether a later change of the same flag was received before this one (it came late)."""
        c = subscription_entries.c
        query = select(func.count()).where(
            c.project == project, c.flag_key == flag, c.entry_date > date, c.entry_id != entry_id
        )
        async with self.engine.connect() as connection:
            return bool((await connection.execute(query)).scalar_one())

    # --- settings ------------------------------------------------------------------------------

    async def setting(self, name: str) -> str | None:
        async with self.engine.connect() as connection:
            value = (
                await connection.execute(
                    select(subscription_settings.c.value).where(subscription_settings.c.name == name)
                )
            ).scalar_one_or_none()
        return None if value is None else str(value)

    async def set_settings(self, values: dict[str, str], *, remove: Sequence[str] = ()) -> None:
        """Write settings (and remove others) in one transaction."""
        names = [*values, *remove]
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(subscription_settings).where(subscription_settings.c.name.in_(names))
            )
            for name, value in values.items():
                await connection.execute(insert(subscription_settings).values(name=name, value=value))
