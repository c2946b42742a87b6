"""The store: changes, compare-and-set transitions with their audit rows, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import inspect

from bot.persistence.db import metadata, migrate
from bot.persistence.store import ALL_STATES, Change, State, Store

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def new_change(store: Store, **overrides: Any) -> Change:
    values: dict[str, Any] = {
        "requester_id": "U_ALICE",
        "requester_name": "alice",
        "channel_id": "C_RELEASES",
        "project": "demo",
        "flag_key": "new-checkout",
        "environment": "test",
        "command_text": "on new-checkout test",
        "request_json": '{"environmentKey": "test", "instructions": [{"kind": "turnFlagOn"}]}',
        "preview_version": 7,
        "expires_at": NOW + timedelta(minutes=15),
    }
    values.update(overrides)
    return await store.create_change(**values)


async def test_create_and_get(store: Store) -> None:
    created = await new_change(store, comment="ship it", flag_before_json='{"_version": 7}')
    assert created.state == State.PROPOSED and created.version == 1
    fetched = await store.get_change(created.id)
    assert fetched == created
    assert fetched.expires_at == NOW + timedelta(minutes=15)
    assert fetched.expires_at.tzinfo is not None
    assert await store.get_change("no-such-change") is None
    [entry] = await store.audit_for(created.id)
    assert (entry.from_state, entry.to_state, entry.actor_id) == (None, "proposed", "U_ALICE")


async def test_transition_moves_sets_fields_and_audits(store: Store) -> None:
    change = await new_change(store)
    applying = await store.transition(change.id, [State.PROPOSED], State.APPLYING, "U_ALICE", detail="Apply")
    assert applying is not None
    assert (applying.state, applying.previous_state, applying.version) == ("applying", "proposed", 2)
    applied = await store.transition(
        change.id,
        ["applying", "outcome_unknown"],
        "applied",
        "U_ALICE",
        ld_status=200,
        outcome_json='{"v": 8}',
    )
    assert applied is not None
    assert (applied.state, applied.ld_status, applied.outcome_json, applied.version) == (
        "applied",
        200,
        '{"v": 8}',
        3,
    )
    trail = await store.audit_for(change.id)
    assert [(e.from_state, e.to_state, e.ld_status, e.detail) for e in trail] == [
        (None, "proposed", None, None),
        ("proposed", "applying", None, "Apply"),
        ("applying", "applied", 200, None),
    ]


async def test_the_loser_changes_nothing(store: Store) -> None:
    change = await new_change(store)
    assert await store.transition(change.id, ["proposed"], "cancelled", "U_ALICE") is not None
    assert await store.transition(change.id, ["proposed"], "applying", "U_BOB", card_ts="1.2") is None
    after = await store.get_change(change.id)
    assert after is not None and after.state == "cancelled" and after.card_ts is None and after.version == 2
    assert len(await store.audit_for(change.id)) == 2
    assert await store.transition("missing", ["proposed"], "applying", "U_ALICE") is None


async def test_transition_refuses_unknown_states_and_fields(store: Store) -> None:
    change = await new_change(store)
    with pytest.raises(ValueError, match="unknown change state"):
        await store.transition(change.id, ["proposed"], "done", "U_ALICE")
    with pytest.raises(ValueError, match="cannot set"):
        await store.transition(change.id, ["proposed"], "applying", "U_ALICE", requester_id="U_EVE")
    with pytest.raises(ValueError, match="cannot set"):
        await store.transition(change.id, ["proposed"], "applying", "U_ALICE", version=99)


async def test_set_card(store: Store) -> None:
    change = await new_change(store)
    carded = await store.set_card(change.id, "1700000000.000100")
    assert carded is not None
    assert (carded.card_ts, carded.thread_ts, carded.state) == (
        "1700000000.000100",
        "1700000000.000100",
        "proposed",
    )
    assert await store.set_card("missing", "1.1") is None


async def test_due_expiries(store: Store) -> None:
    due = await new_change(store, expires_at=NOW - timedelta(seconds=1))
    waiting_approval = await new_change(store, expires_at=NOW, state="needs_approval")
    later = await new_change(store, expires_at=NOW + timedelta(minutes=1))
    applied = await new_change(store, expires_at=NOW - timedelta(minutes=1))
    await store.transition(applied.id, ["proposed"], "applying", "U_ALICE")
    ids = [c.id for c in await store.due_expiries(NOW)]
    assert ids == [due.id, waiting_approval.id]
    assert later.id not in ids


async def test_stuck_applying(database_url: str) -> None:
    clock = [NOW]
    await migrate(database_url)
    store = Store.from_url(database_url, clock=lambda: clock[0])
    try:
        old = await new_change(store)
        await store.transition(old.id, ["proposed"], "applying", "U_ALICE")
        clock[0] = NOW + timedelta(minutes=5)
        recent = await new_change(store)
        await store.transition(recent.id, ["proposed"], "applying", "U_ALICE")
        clock[0] = NOW + timedelta(minutes=6)
        stuck = await store.stuck_applying(timedelta(minutes=2))
        assert [c.id for c in stuck] == [old.id]
        assert [c.id for c in await store.stuck_applying(NOW + timedelta(minutes=10))] == [old.id, recent.id]
    finally:
        await store.close()


async def test_twenty_concurrent_transitions_have_one_winner(store: Store) -> None:
    change = await new_change(store)
    results = await asyncio.gather(
        *(store.transition(change.id, ["proposed"], "applying", f"U_{i}") for i in range(20))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    trail = await store.audit_for(change.id)
    assert [e.to_state for e in trail] == ["proposed", "applying"]
    assert trail[1].actor_id in {f"U_{i}" for i in range(20)}


async def test_two_instances_race_on_one_database(database_url: str) -> None:
    """Two bot instances (two engines, two pools) on one database: one winner per change."""
    await migrate(database_url)
    first, second = Store.from_url(database_url), Store.from_url(database_url)
    try:
        for _ in range(3):
            change = await new_change(first)
            results = await asyncio.gather(
                *(
                    (first if i % 2 else second).transition(change.id, ["proposed"], "applying", f"U_{i}")
                    for i in range(20)
                )
            )
            assert sum(r is not None for r in results) == 1
            assert len(await second.audit_for(change.id)) == 2
    finally:
        await first.close()
        await second.close()


async def test_migrations_are_idempotent_and_match_the_tables(database_url: str) -> None:
    await migrate(database_url)
    await migrate(database_url)
    store = Store.from_url(database_url)
    try:
        async with store.engine.connect() as connection:

            def columns(sync_connection: Any) -> dict[str, set[str]]:
                inspector = inspect(sync_connection)
                return {
                    name: {c["name"] for c in inspector.get_columns(name)} for name in ("changes", "audit")
                }

            found = await connection.run_sync(columns)
    finally:
        await store.close()
    assert found == {name: {c.name for c in metadata.tables[name].columns} for name in ("changes", "audit")}


def test_states_are_the_documented_ten() -> None:
    assert {
        "proposed",
        "applying",
        "applied",
        "failed",
        "needs_approval",
        "approval_requested",
        "cancelled",
        "expired",
        "outcome_unknown",
        "superseded",
    } == ALL_STATES
    assert all(member.__doc__ for member in State)


async def test_a_move_the_lifecycle_never_makes_is_refused(store: Store) -> None:
    change = await new_change(store)
    assert await store.transition(change.id, ["proposed"], "applying", "U_ALICE") is not None
    assert await store.transition(change.id, ["applying"], "applied", "U_ALICE") is not None
    with pytest.raises(ValueError, match="never moves from applied to applying"):
        await store.transition(change.id, ["applied"], "applying", "U_ALICE")


def test_every_move_the_code_makes_is_in_the_table() -> None:
    # Each literal store.transition(id, [from...], to) in bot/ is a move MOVES allows, so the
    # check in transition can only ever refuse a bug, never a flow the bot has.
    import ast
    from pathlib import Path

    from bot.persistence.store import MOVES

    root = Path(__file__).resolve().parents[2] / "bot"
    names = {s.name: s for s in State}
    seen = 0
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "transition" or "store" not in ast.unparse(node.func.value):
                continue
            sources, target = node.args[1], ast.unparse(node.args[2]).removeprefix("State.")
            if target not in names:
                continue  # a variable: finish() moves applying to failed, checked by its tests
            assert isinstance(sources, ast.List | ast.Tuple), ast.unparse(node)
            for source in sources.elts:
                source_name = ast.unparse(source).removeprefix("State.")
                assert names[target] in MOVES[names[source_name]], (path.name, source_name, target)
                seen += 1
    assert seen > 20
