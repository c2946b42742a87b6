"""Postgres connections are pinged before use only after they sat idle (``ping_after_idle``): under
load no round trip is added to each transaction, and a connection the server dropped during a quiet
spell is replaced without anyone noticing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.persistence import db
from bot.persistence.db import create_engine


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    killer = create_engine(url)
    try:
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await killer.dispose()


def _count_pings(engine: AsyncEngine) -> list[Any]:
    dialect = engine.sync_engine.dialect
    pings: list[Any] = []
    ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


async def test_a_connection_dropped_while_idle_is_replaced_when_next_used(postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0, ping_after_idle=0.0)
    try:
        first = await _pid(engine)
        await _terminate(postgres_url, first)
        assert await _pid(engine) != first  # pinged, found dead, replaced: nothing failed
    finally:
        await engine.dispose()


async def test_a_connection_dropped_between_busy_uses_fails_once_and_the_pool_is_renewed(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0, ping_after_idle=3600.0)
    try:
        first = await _pid(engine)
        await _terminate(postgres_url, first)
        with pytest.raises(DBAPIError):  # used again at once: not pinged, and that use fails
            await _pid(engine)
        assert await _pid(engine) != first
    finally:
        await engine.dispose()


async def test_busy_connections_are_not_pinged_and_idle_ones_are(postgres_url: str) -> None:
    busy = create_engine(postgres_url, pool_size=1, max_overflow=0)  # the default: 10 s idle
    idle = create_engine(postgres_url, pool_size=1, max_overflow=0, ping_after_idle=0.0)
    try:
        busy_pings, idle_pings = _count_pings(busy), _count_pings(idle)
        for _ in range(20):
            await _pid(busy)
            await _pid(idle)
        assert busy_pings == [] and len(idle_pings) == 19  # every use but the new connection's first
    finally:
        await busy.dispose()
        await idle.dispose()


async def test_idle_time_counts_while_the_machine_sleeps(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A laptop asleep for a night: the pool's connections were used "a moment ago" by a clock that
    # stops during a suspend; the clock used keeps counting, and they are pinged on their next use.
    if hasattr(time, "CLOCK_BOOTTIME"):
        assert db.idle_clock() == pytest.approx(time.clock_gettime(time.CLOCK_BOOTTIME), abs=0.5)
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0, ping_after_idle=60.0)
    try:
        await _pid(engine)
        pings = _count_pings(engine)
        await _pid(engine)
        assert pings == []  # used a moment ago
        slept = db.idle_clock() + 8 * 3600
        monkeypatch.setattr(db, "idle_clock", lambda: slept)
        await _pid(engine)
        assert len(pings) == 1
    finally:
        await engine.dispose()
