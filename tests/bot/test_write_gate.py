"""SQLite's writers queue on the event loop (``bot.persistence.db.WriteGate``), not in SQLite's
sleeping busy handler: one ``engine.begin()`` at a time, the acks' INSERTs first, re-entrant for
the task that holds it, never wedged, and a cancel is never lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.persistence import db
from bot.persistence.db import SQLiteEngine, WriteGate, create_engine, urgent_writes


async def test_the_acks_writes_go_before_the_queued_ones() -> None:
    gate = WriteGate()
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.held():
            await release.wait()

    async def writer(name: str) -> None:
        async with gate.held():
            order.append(name)

    async def urgent(name: str) -> None:
        with urgent_writes():
            await writer(name)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(writer("b")), asyncio.create_task(writer("c"))]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(urgent("ack")))
    await asyncio.sleep(0.01)
    assert order == []  # all wait for the holder
    release.set()
    await asyncio.gather(first, *tasks)
    assert order == ["ack", "b", "c"]


async def test_a_cancel_that_arrives_as_the_gate_is_handed_on_is_not_lost() -> None:
    # Python 3.11's wait_for returned the result of a future done in the same instant as a cancel,
    # and the cancel was lost: the inbox loop outlived its stop. The waiter must see the cancel,
    # and pass the gate on.
    gate = WriteGate()
    release = asyncio.Event()
    entered: list[str] = []

    async def holder() -> None:
        async with gate.held():
            await release.wait()

    async def waiter(name: str) -> None:
        async with gate.held():
            entered.append(name)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    victim = asyncio.create_task(waiter("victim"))
    later = asyncio.create_task(waiter("later"))
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.sleep(0)  # the holder leaves and hands the gate to the victim...
    victim.cancel()  # ...which is cancelled in the same instant
    with pytest.raises(asyncio.CancelledError):
        await victim
    await asyncio.wait_for(later, 2.0)  # the gate was passed on
    await first
    assert entered == ["later"]


async def test_the_holder_may_begin_again_and_a_stuck_queue_goes_ahead_after_patience(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(db, "GATE_PATIENCE_SECONDS", 0.2)
    gate = WriteGate()
    seen: list[str] = []

    async def child() -> None:
        async with gate.held():
            seen.append("child")

    async with gate.held():
        async with gate.held():  # the same task: in at once
            seen.append("nested")
        # A task of its own that wants the gate, awaited while holding it: it goes ahead after
        # the patience instead of waiting for ever (SQLite's own lock still decides).
        await asyncio.wait_for(child(), 2.0)
    assert seen == ["nested", "child"]


async def test_many_writers_on_one_sqlite_file_all_commit(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    assert isinstance(engine, SQLiteEngine)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))

        async def write(n: int) -> None:
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
                await asyncio.sleep(0)  # another writer gets the loop while this one holds the lock

        await asyncio.wait_for(asyncio.gather(*(write(n) for n in range(200))), 30.0)
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar() == 200
            mode = (await connection.execute(text("PRAGMA synchronous"))).scalar()
        assert mode == 1  # NORMAL under WAL: no fsync per commit
    finally:
        await engine.dispose()
