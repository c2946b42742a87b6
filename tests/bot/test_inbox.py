"""The durable inbox (issue 22): one row per Slack delivery, taken by one worker at a time under a
lease, in order per card; a worker's death loses nothing and never makes a second card.

Store-level tests run on SQLite and Postgres; the end-to-end ones drive the bot as Slack does
(signed requests, the fake Slack, the sandbox) and start a bot on a database where a worker died."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from sqlalchemy import delete, event
from sqlalchemy import text as sql
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from bot.inbox.service import delivery_key
from bot.inbox.store import DONE, PENDING, WORKING, InboxStore, NotKept, card_key
from bot.offline.payloads import SignedRequest, sign, slash_command_body
from bot.persistence import db
from bot.persistence.db import create_engine, migrate
from bot.persistence.db import inbox as inbox_table
from bot.persistence.store import Store
from bot.slack.server import Runtime
from tests.bot.harness import ALICE, RELEASES, Harness, card_text

LEASE = timedelta(seconds=30)


@pytest.fixture
async def fresh(store: Store) -> Store:
    """The store, its inbox emptied (the Postgres database is shared by a session's tests)."""
    async with store.engine.begin() as connection:
        await connection.execute(delete(inbox_table))
    return store


async def _add(inbox: InboxStore, key: str, *, card: str | None = None, channel: str = RELEASES) -> int:
    row_id = await inbox.add("command", key, {"text": key}, channel_id=channel, card_key=card)
    assert row_id is not None
    return row_id


async def test_one_delivery_is_one_row(fresh: Store) -> None:
    inbox = InboxStore(fresh.engine)
    first = await inbox.add("command", "k1", {"text": "on x"}, channel_id=RELEASES)
    again = await inbox.add("command", "k1", {"text": "on x"}, channel_id=RELEASES)
    assert first is not None and again is None
    assert [r.id for r in await inbox.rows()] == [first]


def _count_commits(inbox: InboxStore) -> list[int]:
    commits = [0]

    def on_commit(_connection: object) -> None:
        commits[0] += 1

    event.listen(inbox.engine.sync_engine, "commit", on_commit)
    return commits


async def test_deliveries_written_at_one_moment_share_a_transaction_and_each_gets_its_answer(
    fresh: Store,
) -> None:
    inbox = InboxStore(fresh.engine)
    await _add(inbox, "before")  # a row of an earlier delivery: its retry now is acked only
    commits = _count_commits(inbox)
    keys = [f"k{n}" for n in range(60)]
    found = await asyncio.gather(
        *(inbox.add("command", key, {"text": key}, channel_id=RELEASES) for key in keys),
        inbox.add("command", "before", {"text": "again"}, channel_id=RELEASES),
        inbox.add("command", "k7", {"text": "k7, sent again at once"}, channel_id=RELEASES),
    )
    *ids, retry, twice = found
    assert retry is None and twice is None  # one delivery, one row, even within one transaction
    rows = {r.delivery_key: r for r in await inbox.rows()}
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == len(keys)
    assert [rows[key].id for key in keys] == ids and json.loads(rows["k7"].body_json) == {"text": "k7"}
    assert commits[0] <= 3, commits  # group commit: not one transaction per delivery


async def test_deliveries_about_one_card_in_one_transaction_are_worked_in_the_order_they_came(
    fresh: Store,
) -> None:
    # "On" then "off" clicked on one card at one moment: a card's rows are taken in id order, so
    # the first to come must get the lower id, whatever the keys (found by an outside review:
    # the batch was sorted by key).
    inbox = InboxStore(fresh.engine)
    card = card_key(RELEASES, "1700000000.000100")
    first, second = await asyncio.gather(
        inbox.add("change_click", "zz-clicked-first", {"v": "on"}, channel_id=RELEASES, card_key=card),
        inbox.add("change_click", "aa-clicked-second", {"v": "off"}, channel_id=RELEASES, card_key=card),
    )
    assert first is not None and second is not None and first < second
    taken = await inbox.claim("w", LEASE)
    assert taken is not None and taken.delivery_key == "zz-clicked-first"


@pytest.mark.parametrize("refused", ["postgres", "sqlite"])
async def test_a_writer_that_cannot_reach_the_database_fails_its_deliveries_and_stops(
    refused: str, tmp_path: Path
) -> None:
    # A database that refuses (Postgres restarting; a SQLite disk gone): the delivery is answered
    # with the error (the person is told to send it again), and the writer stops; it does not try
    # again and again with nothing to write (found by an outside review: ~1,000 tries a second).
    url = "postgresql+asyncpg://postgres@127.0.0.1:9/none" if refused == "postgres" else ""
    engine = create_engine(url or f"sqlite+aiosqlite:///{tmp_path / 'refused.sqlite3'}")
    tries = [0]

    def refuse(*_args: object) -> None:
        tries[0] += 1
        if refused == "sqlite":
            raise OSError("the disk is gone")

    event.listen(engine.sync_engine, "do_connect" if refused == "postgres" else "begin", refuse)
    try:
        with pytest.raises((OSError, SQLAlchemyError)):
            await InboxStore(engine).add("command", "k", {}, channel_id=RELEASES)
        await asyncio.sleep(0.5)
        assert tries[0] <= 2, tries[0]
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "flagops-inbox-add"]
    finally:
        await engine.dispose()


async def test_a_writer_cancelled_before_it_ran_leaves_no_later_delivery_waiting(fresh: Store) -> None:
    # Stopping cancels every task, the writer among them, before it ran: a delivery written after
    # (a test's next bot on the same loop, a restart of the loop's work) must not wait for it.
    inbox = InboxStore(fresh.engine)
    first = asyncio.ensure_future(inbox.add("command", "k1", {}, channel_id=RELEASES))
    await asyncio.sleep(0)  # add() ran: its writer is made, not started
    for task in asyncio.all_tasks():
        if task.get_name() == "flagops-inbox-add":
            task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(first, 3.0)  # nobody would write it: its caller is told at once
    later = await asyncio.wait_for(inbox.add("command", "k2", {}, channel_id=RELEASES), 3.0)
    assert isinstance(later, int)
    assert [r.delivery_key for r in await inbox.rows()] == ["k2"]


async def test_a_delivery_given_up_is_taken_out_of_its_shared_transaction_alone(fresh: Store) -> None:
    inbox = InboxStore(fresh.engine)

    def add(key: str, keep: bool) -> Awaitable[int | None]:
        return inbox.add("command", key, {"text": key}, channel_id=RELEASES, keep=lambda: keep)

    outcomes = await asyncio.gather(
        add("kept-1", True),
        add("given-up", False),
        add("kept-2", True),
        add("given-up", True),  # sent again at the same moment: the next transaction writes it
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], NotKept)
    assert all(isinstance(o, int) for o in (outcomes[0], outcomes[2], outcomes[3])), outcomes
    assert sorted(r.delivery_key for r in await inbox.rows()) == ["given-up", "kept-1", "kept-2"]
    assert {r.id for r in await inbox.rows() if r.delivery_key == "given-up"} == {outcomes[3]}


async def test_a_failed_shared_transaction_fails_its_deliveries_and_the_next_ones_are_written(
    fresh: Store,
) -> None:
    inbox = InboxStore(fresh.engine)
    failures = [1]

    def fail_once(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO INBOX") and failures[0]:
            failures[0] -= 1
            raise OSError("the disk said no")

    event.listen(inbox.engine.sync_engine, "before_cursor_execute", fail_once)
    try:
        first = await asyncio.gather(
            *(inbox.add("command", f"a{n}", {}, channel_id=RELEASES) for n in range(5)),
            return_exceptions=True,
        )
        later = await asyncio.gather(
            *(inbox.add("command", f"b{n}", {}, channel_id=RELEASES) for n in range(5))
        )
    finally:
        event.remove(inbox.engine.sync_engine, "before_cursor_execute", fail_once)
    assert all(isinstance(o, Exception) for o in first), first  # the person is told to send it again
    assert all(isinstance(i, int) for i in later)
    assert sorted(r.delivery_key for r in await inbox.rows()) == [f"b{n}" for n in range(5)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # it holds SQLite's write gate
async def test_a_delivery_whose_caller_is_gone_fails_none_of_those_after_it(fresh: Store) -> None:
    inbox = InboxStore(fresh.engine)
    later: list[asyncio.Future[int | None]] = []

    def on_begin(_connection: object) -> None:  # a delivery arriving as the writer's transaction begins
        if not later:
            later.append(asyncio.ensure_future(inbox.add("command", "k2", {}, channel_id=RELEASES)))

    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:  # another writer holds the write gate a moment
        async with inbox.engine.begin():
            holding.set()
            await release.wait()

    held = asyncio.create_task(hold())
    await holding.wait()
    first = asyncio.create_task(inbox.add("command", "k1", {}, channel_id=RELEASES))
    await asyncio.sleep(0.05)
    first.cancel()  # its caller is gone before the writer got the database: its batch is empty
    await asyncio.sleep(0)
    event.listen(inbox.engine.sync_engine, "begin", on_begin)
    try:
        release.set()
        await held
        for _ in range(200):
            if later:
                break
            await asyncio.sleep(0.01)
        [written] = await asyncio.gather(*later)
    finally:
        event.remove(inbox.engine.sync_engine, "begin", on_begin)
    assert isinstance(written, int)
    assert [r.delivery_key for r in await inbox.rows()] == ["k2"]


async def _writing_elsewhere(engine: AsyncEngine, key: str) -> tuple[AsyncConnection, AsyncTransaction]:
    """Another process writing delivery ``key`` (Slack's first copy): inserted, not committed."""
    holder = await engine.connect()
    holding = await holder.begin()
    await holder.execute(
        sql(
            "INSERT INTO inbox (delivery_key, handler, body_json, state, attempts, created_at,"
            " updated_at) VALUES (:key, 'command', '{}', 'pending', 0, now(), now())"
        ),
        {"key": key},
    )
    return holder, holding


async def test_on_postgres_a_row_locked_elsewhere_holds_up_its_own_delivery_only(
    postgres_url: str,
) -> None:
    await migrate(postgres_url)
    mine, other = create_engine(postgres_url), create_engine(postgres_url)
    try:
        async with other.begin() as connection:
            await connection.execute(delete(inbox_table))
        # Another process is writing "retried" (Slack's first copy), not committed yet.
        holder, holding = await _writing_elsewhere(other, "retried")
        inbox = InboxStore(mine)
        retried = asyncio.ensure_future(inbox.add("command", "retried", {}, channel_id=RELEASES))
        await asyncio.sleep(0.05)
        others = [
            asyncio.ensure_future(inbox.add("command", f"new{n}", {}, channel_id=RELEASES)) for n in range(5)
        ]
        done, _ = await asyncio.wait(others, timeout=1.0)  # well within ACCEPT_TIMEOUT
        assert len(done) == 5 and not retried.done()
        await holding.commit()
        await holder.close()
        assert await retried is None  # the other process's row: one delivery, one row
    finally:
        await mine.dispose()
        await other.dispose()


@pytest.mark.parametrize("holder_commits", [True, False])
async def test_on_postgres_a_row_locked_elsewhere_in_a_shared_batch_holds_up_that_delivery_only(
    empty_postgres_url: str, holder_commits: bool
) -> None:
    # The locked row is in the same batch as five others: the batch waits at most
    # POSTGRES_BATCH_LOCK_WAIT, then each is written on its own, and only the locked one waits.
    await migrate(empty_postgres_url)
    mine, other = create_engine(empty_postgres_url), create_engine(empty_postgres_url)
    try:
        holder, holding = await _writing_elsewhere(other, "retried")
        inbox = InboxStore(mine)
        adds = [
            asyncio.ensure_future(inbox.add("command", key, {}, channel_id=RELEASES))
            for key in ("a", "retried", "b", "c", "d", "e")
        ]
        retried = adds.pop(1)
        done, _ = await asyncio.wait(adds, timeout=1.0)  # well within ACCEPT_TIMEOUT
        assert len(done) == 5 and not retried.done()
        assert all(isinstance(d.result(), int) for d in done)
        await (holding.commit() if holder_commits else holding.rollback())
        await holder.close()
        found = await asyncio.wait_for(retried, 5.0)
        if holder_commits:
            assert found is None  # the other process's row: one delivery, one row
        else:
            assert isinstance(found, int)  # the other gave up on it: this one is the row
        keys = sorted(r.delivery_key for r in await inbox.rows())
        assert keys == ["a", "b", "c", "d", "e", "retried"]
    finally:
        await mine.dispose()
        await other.dispose()


async def test_on_postgres_two_processes_writing_the_same_deliveries_at_once_make_each_one_row(
    empty_postgres_url: str,
) -> None:
    # Slack's retries reaching two instances at the same moment, in opposite orders: a batch that
    # waits on the other's rows (or deadlocks with it) is written one by one, every delivery is
    # answered, and each key is one row, written by one of them.
    await migrate(empty_postgres_url)
    engines = [create_engine(empty_postgres_url) for _ in range(2)]
    try:
        shared = [f"shared-{n:02d}" for n in range(30)]
        first, second = InboxStore(engines[0]), InboxStore(engines[1])
        for _ in range(5):
            async with engines[0].begin() as connection:
                await connection.execute(delete(inbox_table))
            answers = await asyncio.gather(
                *(first.add("command", key, {}, channel_id=RELEASES) for key in shared),
                *(second.add("command", key, {}, channel_id=RELEASES) for key in reversed(shared)),
            )
            mine, theirs = answers[:30], list(reversed(answers[30:]))
            for key, a, b in zip(shared, mine, theirs, strict=True):
                assert (a is None) != (b is None), (key, a, b)  # one wrote it, the other was told so
            rows = {r.delivery_key: r.id for r in await first.rows()}
            assert sorted(rows) == shared
            written = [a if a is not None else b for a, b in zip(mine, theirs, strict=True)]
            assert sorted(rows.values()) == sorted(written)
    finally:
        for engine in engines:
            await engine.dispose()


def test_the_delivery_key_is_the_payloads_identity_whatever_the_envelope() -> None:
    command = {"command": "/flag", "text": "on x", "trigger_id": "1.2.abc", "token": "legacy"}
    assert delivery_key("command", command) == delivery_key("command", {**command, "token": "other"})
    assert delivery_key("command", command) != delivery_key("command", {**command, "trigger_id": "1.2.abd"})
    click = {
        "type": "block_actions",
        "user": {"id": "U1"},
        "actions": [{"action_id": "a", "action_ts": "9.1"}],
    }
    assert delivery_key("change_click", click) != delivery_key(
        "change_click", {**click, "actions": [{"action_id": "a", "action_ts": "9.2"}]}
    )
    hostile = {"trigger_id": "x" * 100_000 + "/../?#\x00<!channel>"}
    assert len(delivery_key("command", hostile)) <= 60


async def test_a_worker_takes_a_row_once_and_another_takes_it_over_after_its_lease(fresh: Store) -> None:
    clock = [datetime(2026, 12, 3, 12, 0, tzinfo=UTC)]
    inbox = InboxStore(fresh.engine, clock=lambda: clock[0])
    row_id = await _add(inbox, "k1")
    taken = await inbox.claim("w1", LEASE)
    assert taken is not None and (taken.id, taken.state, taken.attempts) == (row_id, WORKING, 1)
    assert await inbox.claim("w2", LEASE) is None  # held
    clock[0] += LEASE + timedelta(seconds=1)  # w1 died: its lease ran out
    again = await inbox.claim("w2", LEASE)
    assert again is not None and (again.lease_owner, again.attempts) == ("w2", 2)
    # The old worker, were it only slow, may neither post nor finish: the row is w2's now.
    assert not await inbox.mark_posting(row_id, "w1", 1)
    assert not await inbox.finish(row_id, "w1", 1, "ok")
    assert await inbox.mark_posting(row_id, "w2", 2)
    assert await inbox.finish(row_id, "w2", 2, "ok")
    done = await inbox.get(row_id)
    assert done is not None and (done.state, done.body, done.lease_owner) == (DONE, {}, None)


async def test_a_process_that_takes_its_own_row_again_holds_it_by_the_newer_take_only(fresh: Store) -> None:
    # A worker starved past its lease may take its own row again: the older take (still running
    # in the same process, with the same owner) may then neither post nor finish.
    clock = [datetime(2026, 12, 3, 12, 0, tzinfo=UTC)]
    inbox = InboxStore(fresh.engine, clock=lambda: clock[0])
    row_id = await _add(inbox, "k1")
    first = await inbox.claim("w1", LEASE)
    clock[0] += LEASE + timedelta(seconds=1)
    second = await inbox.claim("w1", LEASE)
    assert first is not None and second is not None and (first.attempts, second.attempts) == (1, 2)
    assert not await inbox.mark_posting(row_id, "w1", first.attempts)
    assert await inbox.mark_posting(row_id, "w1", second.attempts)
    assert not await inbox.finish(row_id, "w1", first.attempts, "ok")
    assert await inbox.finish(row_id, "w1", second.attempts, "ok")


async def test_a_renewed_lease_is_not_taken_over(fresh: Store) -> None:
    clock = [datetime(2026, 12, 3, 12, 0, tzinfo=UTC)]
    inbox = InboxStore(fresh.engine, clock=lambda: clock[0])
    row_id = await _add(inbox, "k1")
    assert await inbox.claim("w1", LEASE) is not None
    clock[0] += LEASE - timedelta(seconds=1)
    assert await inbox.renew("w1", LEASE, {row_id: 1}) == 1
    clock[0] += timedelta(seconds=2)
    assert await inbox.claim("w2", LEASE) is None


async def test_a_click_waits_for_the_row_that_posted_its_card(fresh: Store) -> None:
    inbox = InboxStore(fresh.engine)
    command = await _add(inbox, "command")
    assert (await inbox.claim("w1", LEASE)) is not None
    assert await inbox.mark_posting(command, "w1", 1)
    await inbox.record_post(command, RELEASES, "1700000000.000100")
    card = card_key(RELEASES, "1700000000.000100")
    assert (await inbox.get(command)).card_key == card  # type: ignore[union-attr]
    click = await _add(inbox, "click", card=card)
    other_card = await _add(inbox, "click elsewhere", card=card_key(RELEASES, "1.2"))
    # The proposal is still being stored: its card's click waits; a click on another card does not.
    taken = await inbox.claim("w2", LEASE)
    assert taken is not None and taken.id == other_card
    assert await inbox.claim("w2", LEASE, row_id=click) is None
    assert await inbox.finish(command, "w1", 1, "ok")
    taken = await inbox.claim("w2", LEASE)
    assert taken is not None and taken.id == click


async def test_a_click_waits_while_a_row_of_its_channel_is_between_post_and_ts(fresh: Store) -> None:
    inbox = InboxStore(fresh.engine)
    command = await _add(inbox, "command")
    assert (await inbox.claim("w1", LEASE)) is not None
    assert await inbox.mark_posting(command, "w1", 1)  # posted, ts not recorded yet
    click = await _add(inbox, "click", card=card_key(RELEASES, "1.5"))
    elsewhere = await _add(inbox, "click elsewhere", card=card_key("C_OTHER", "1.5"), channel="C_OTHER")
    assert await inbox.claim("w2", LEASE, row_id=click) is None
    assert await inbox.claim("w2", LEASE, row_id=elsewhere) is not None
    await inbox.record_post(command, RELEASES, "1.4")
    assert await inbox.claim("w2", LEASE, row_id=click) is not None


async def test_two_clicks_on_one_card_run_in_the_order_slack_sent_them(fresh: Store) -> None:
    inbox = InboxStore(fresh.engine)
    card = card_key(RELEASES, "1.1")
    apply_click = await _add(inbox, "apply", card=card)
    cancel_click = await _add(inbox, "cancel", card=card)
    assert await inbox.claim("w1", LEASE, row_id=cancel_click) is None
    first = await inbox.claim("w1", LEASE)
    assert first is not None and first.id == apply_click
    assert await inbox.claim("w2", LEASE) is None
    assert await inbox.finish(apply_click, "w1", 1, "ok")
    second = await inbox.claim("w2", LEASE)
    assert second is not None and second.id == cancel_click


async def test_a_click_on_a_card_posted_by_a_click_waits_for_that_click(fresh: Store) -> None:
    # Propose again, Did you mean, Undo: a click's row keeps the card it was clicked on, and posts
    # another card; a click on that new card waits until the row that posted it is done.
    inbox = InboxStore(fresh.engine)
    old_card = card_key(RELEASES, "1.1")
    again = await _add(inbox, "propose again", card=old_card)
    assert (await inbox.claim("w1", LEASE)) is not None
    assert await inbox.mark_posting(again, "w1", 1)
    await inbox.record_post(again, RELEASES, "2.2")
    click = await _add(inbox, "apply the new card", card=card_key(RELEASES, "2.2"))
    assert await inbox.claim("w2", LEASE, row_id=click) is None
    assert await inbox.finish(again, "w1", 1, "ok")
    assert await inbox.claim("w2", LEASE, row_id=click) is not None


async def test_a_worker_leaves_rows_it_has_no_handler_for_to_one_that_has(fresh: Store) -> None:
    # A rolling deploy: an older worker does not know a newer release's handler.
    inbox = InboxStore(fresh.engine)
    row_id = await inbox.add("newer_feature", "k-new", {"text": "x"}, channel_id=RELEASES)
    assert await inbox.claim("old", LEASE, handlers={"command"}) is None
    taken = await inbox.claim("new", LEASE, handlers={"command", "newer_feature"})
    assert taken is not None and (taken.id, taken.attempts) == (row_id, 1)


async def test_workers_racing_take_each_row_exactly_once(fresh: Store) -> None:
    inbox = InboxStore(fresh.engine)
    ids = {await _add(inbox, f"k{i}") for i in range(30)}
    taken: dict[str, list[int]] = {f"w{n}": [] for n in range(4)}

    async def worker(name: str) -> None:
        while (row := await inbox.claim(name, LEASE)) is not None:
            taken[name].append(row.id)
            assert await inbox.finish(row.id, name, row.attempts, "ok")

    await asyncio.gather(*(worker(name) for name in taken))
    every = [row_id for rows in taken.values() for row_id in rows]
    assert sorted(every) == sorted(ids)
    assert await inbox.waiting() == 0


async def test_old_done_rows_are_purged_and_pending_ones_kept(fresh: Store) -> None:
    clock = [datetime(2026, 12, 3, 12, 0, tzinfo=UTC)]
    inbox = InboxStore(fresh.engine, clock=lambda: clock[0])
    done = await _add(inbox, "done")
    assert await inbox.claim("w1", LEASE, row_id=done) is not None
    assert await inbox.finish(done, "w1", 1, "ok")
    waiting = await _add(inbox, "waiting")
    clock[0] += timedelta(days=2)
    assert await inbox.purge(timedelta(days=1)) == 1
    assert [(r.id, r.state) for r in await inbox.rows()] == [(waiting, PENDING)]


# --- end to end ------------------------------------------------------------------------------------


async def test_a_command_sent_twice_is_one_row_and_one_card(bot: Harness) -> None:
    request = bot.command_request("/flag off new-checkout test")
    first, again = await bot.send(request), await bot.send(request)  # Slack's retry: the same bytes
    assert first.status_code == again.status_code == 200
    await bot.idle()
    assert len([m for m in bot.slack.messages(RELEASES) if m.buttons]) == 1
    [row] = await InboxStore(bot.store.engine).rows()
    assert (row.handler, row.state, row.outcome, row.body) == ("command", DONE, "ok", {})


async def test_a_click_is_written_done_and_its_card_key_kept(bot: Harness) -> None:
    await bot.command("/flag off new-checkout test")
    await bot.idle()
    card = bot.card()
    await bot.click("Apply")
    await bot.idle()
    assert "Applied" in card_text(bot)
    command, click = await InboxStore(bot.store.engine).rows()
    assert command.card_key == click.card_key == card_key(RELEASES, card.ts)
    assert (command.card_ts, click.handler, click.state) == (card.ts, "change_click", DONE)
    assert "token" not in json.dumps([command.body, click.body])


async def _dead_worker_rows(url: str) -> dict[str, int]:
    """Rows a worker held when it died (leases already expired), in three states of progress."""
    await migrate(url)
    store = Store.from_url(url)
    inbox = InboxStore(store.engine, clock=lambda: datetime.now(UTC) - timedelta(minutes=5))
    made: dict[str, int] = {}
    try:
        for name, text in (("fresh", "off new-checkout test"), ("posting", "on banner-color test")):
            body = {
                "command": "/flag",
                "text": text,
                "user_id": ALICE,
                "user_name": "alice",
                "channel_id": RELEASES,
                "trigger_id": f"dead.{name}",
            }
            made[name] = await _add_body(inbox, body)
        posted_body = {"command": "/flag", "text": "off pricing-page test", "user_id": ALICE}
        made["posted"] = await _add_body(inbox, {**posted_body, "channel_id": RELEASES, "trigger_id": "p"})
        for row_id in made.values():
            assert await inbox.claim("dead-worker", timedelta(seconds=1), row_id=row_id) is not None
        assert await inbox.mark_posting(made["posting"], "dead-worker", 1)
        assert await inbox.mark_posting(made["posted"], "dead-worker", 1)
        await inbox.record_post(made["posted"], RELEASES, "1600000000.000001")
    finally:
        await store.close()
    return made


async def _add_body(inbox: InboxStore, body: dict[str, object]) -> int:
    row_id = await inbox.add("command", delivery_key("command", body), body, channel_id=RELEASES)
    assert row_id is not None
    return row_id


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.05)


async def test_rows_of_a_dead_worker_are_taken_over_without_a_second_card(
    start_bot: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dead.sqlite3'}"
    made = await _dead_worker_rows(url)
    bot = await start_bot(database_url=url, flagops_inbox_poll=0.05)
    inbox = InboxStore(bot.store.engine)

    async def all_done() -> bool:
        return await inbox.waiting() == 0

    await _until(all_done, 15, "the dead worker's rows were not taken over")
    await bot.idle()
    rows = {r.id: r for r in await inbox.rows()}
    # Not started posting: run again, its card posted. Started posting, no ts: maybe posted, so not
    # run again (never two cards); the person is told. Posted: done, nothing more.
    assert [rows[made[n]].outcome for n in ("fresh", "posting", "posted")] == ["ok", "uncertain", "posted"]
    assert [rows[made[n]].attempts for n in ("fresh", "posting", "posted")] == [2, 2, 2]
    cards = [m for m in bot.slack.messages(RELEASES) if m.buttons]
    assert len(cards) == 1 and "new-checkout" in cards[0].text
    told = " ".join(bot.ephemeral_texts(ALICE))
    assert "restarted while it was posting its answer to `/flag on banner-color test`" in told
    assert "pricing-page" not in told


async def test_with_separate_workers_the_web_process_only_writes_and_acks(
    start_bot: Callable[..., Awaitable[Harness]],
) -> None:
    bot = await start_bot(flagops_inbox="workers")
    assert (await bot.command("/flag off new-checkout test")).status_code == 200
    await bot.idle()
    assert bot.slack.messages(RELEASES) == []
    [row] = await InboxStore(bot.store.engine).rows()
    assert row.state == PENDING
    worker = await Runtime.open(bot.stack.settings, work_inbox=True)
    try:

        async def carded() -> bool:
            return any(m.buttons for m in bot.slack.messages(RELEASES))

        await _until(carded, 15, "the worker made no card")
        await bot.idle()
    finally:
        await worker.close()
    assert len([m for m in bot.slack.messages(RELEASES) if m.buttons]) == 1
    assert (await InboxStore(bot.store.engine).rows())[0].state == DONE


@pytest.mark.parametrize("poll", [0.05])
async def test_a_row_that_raises_is_answered_in_words_and_done(
    start_bot: Callable[..., Awaitable[Harness]], poll: float
) -> None:
    bot = await start_bot(flagops_inbox_poll=poll)
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"error_every": 1})
    await bot.command("/flag off new-checkout test")
    await bot.idle()
    [row] = await InboxStore(bot.store.engine).rows()
    assert row.state == DONE
    assert bot.ephemeral_texts(ALICE)
    assert "Traceback" not in " ".join(bot.ephemeral_texts(ALICE))


async def test_hostile_payloads_are_written_and_acked_on_each_database(
    start_bot: Callable[..., Awaitable[Harness]], database_url: str
) -> None:
    bot = await start_bot(database_url=database_url)
    driver = bot.driver
    # The session's Postgres database is shared by the tests of a worker: only this test's rows.
    before = max((r.id for r in await InboxStore(bot.store.engine).rows()), default=0)
    texts = ["off new-checkout\x00 test <!channel>", "on " + "é" * 5000, "off ../?# test"]
    for text in texts:
        body = slash_command_body(
            command="/flag",
            text=text,
            user=driver.user(ALICE),
            channel_id="C" + "X/..?#" * 200,
            response_url=bot.slack.new_response_url(RELEASES, ALICE),
        )
        answer = await bot.send(
            SignedRequest(body, sign(bot.stack.settings.slack_signing_secret.get_secret_value(), body))
        )
        assert answer.status_code == 200
    await bot.idle()
    rows = [r for r in await InboxStore(bot.store.engine).rows() if r.handler == "command" and r.id > before]
    assert len(rows) >= len(texts) and all(r.state == DONE for r in rows)
    told = " ".join(bot.ephemeral_texts(ALICE))
    assert "Traceback" not in told and "<!channel>" not in told


async def test_on_postgres_a_worker_is_woken_by_notify_not_by_its_poll(
    start_bot: Callable[..., Awaitable[Harness]], empty_postgres_url: str
) -> None:
    # A poll of 30 s and a lease of 90 s: only NOTIFY can wake the worker within the 3 s allowed.
    slow = {"flagops_inbox": "workers", "flagops_inbox_poll": 30.0, "flagops_inbox_lease": 90.0}
    bot = await start_bot(database_url=empty_postgres_url, **slow)
    worker = await Runtime.open(bot.stack.settings, work_inbox=True)
    try:
        await asyncio.sleep(0.3)  # the worker's first look (an empty inbox) is over: it waits now
        loop = asyncio.get_running_loop()
        for n, text in enumerate(('off new-checkout test -m "one"', 'off new-checkout test -m "two"'), 1):
            sent = loop.time()
            assert (await bot.command(f"/flag {text}")).status_code == 200

            async def carded(n: int = n) -> bool:
                return len([m for m in bot.slack.messages(RELEASES) if m.buttons]) >= n

            await _until(carded, 3, "the worker was not woken by NOTIFY")
            assert loop.time() - sent < 3
        await bot.idle()
    finally:
        await worker.close()
    assert [r.state for r in await InboxStore(bot.store.engine).rows()] == [DONE, DONE]


async def test_a_long_row_keeps_its_lease_and_another_instance_does_not_take_it(
    start_bot: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite3'}"
    quick = {"flagops_inbox_lease": 1.0, "flagops_inbox_poll": 0.05}
    first = await start_bot(database_url=url, **quick)
    second = await start_bot(database_url=url, sandbox=first.sandbox, slack=first.slack, **quick)
    first.sandbox.faults = first.sandbox.faults.model_copy(update={"latency": 0.8})  # 2+ leases per row
    assert (await first.command("/flag off new-checkout test")).status_code == 200
    await first.idle()
    await second.idle()
    [row] = await InboxStore(first.store.engine).rows()
    assert (row.state, row.outcome, row.attempts) == (DONE, "ok", 1)  # renewed, never taken over
    assert len([m for m in first.slack.messages(RELEASES) if m.buttons]) == 1


# --- taken over, stopped, failing: the reviewer's cases (two bots on one SQLite file) -----------


QUICK = {"flagops_inbox_lease": 1.0, "flagops_inbox_poll": 0.05, "ld_timeout": 10.0}


async def _first_bot(start_bot: Callable[..., Awaitable[Harness]], tmp_path: Path) -> Harness:
    return await start_bot(database_url=f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite3'}", **QUICK)


async def _second_bot(start_bot: Callable[..., Awaitable[Harness]], first: Harness) -> Harness:
    """Another bot on the first one's database, LaunchDarkly and Slack: started once the first
    holds its row (else its loop may take the row the first bot just wrote)."""
    url = first.stack.settings.database_url
    return await start_bot(database_url=url, sandbox=first.sandbox, slack=first.slack, **QUICK)


def _slow_ld(bot: Harness, seconds: float) -> None:
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"latency": seconds})


async def _settled(*bots: Harness, timeout: float = 30.0) -> None:
    inbox = InboxStore(bots[0].store.engine)

    async def nothing_waits() -> bool:
        return await inbox.waiting() == 0

    await _until(nothing_waits, timeout, "inbox rows were left undone")
    for bot in bots:
        await bot.idle(timeout=timeout)


def _working(bot: Harness) -> Callable[[], Awaitable[bool]]:
    async def working() -> bool:
        return any(r.state == WORKING for r in await InboxStore(bot.store.engine).rows())

    return working


def _link_posts(bot: Harness) -> list[dict[str, object]]:
    return [r for r in bot.ld_requests() if r["method"] == "POST" and "/flag-links/" in str(r["path"])]


async def test_a_row_taken_over_after_it_started_a_write_is_not_run_again(
    start_bot: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    # `link` writes to LaunchDarkly before it posts anything: run again by the bot that took it
    # over, it made a second flag link. Now it is not run again, and the person is told to check.
    first = await _first_bot(start_bot, tmp_path)
    _slow_ld(first, 4.0)
    assert (await first.command("/flag link new-checkout Incident-42")).status_code == 200
    await _until(_working(first), 5, "bot 1 did not take its row")
    second = await _second_bot(start_bot, first)
    await asyncio.sleep(0.3)
    await first.stack.runtime.services.inbox.stop(grace=0)  # bot 1 stops renewing: as if it hung
    await _settled(first, second)
    assert len(_link_posts(first)) == 1
    [row] = await InboxStore(first.store.engine).rows()
    assert (row.attempts, row.outcome) == (2, "not run again")
    told = " ".join(first.ephemeral_texts(ALICE))
    assert "may or may not have been done" in told and "`/flag link new-checkout Incident-42`" in told


def test_what_may_run_again_when_taken_over() -> None:
    from bot.inbox.service import reruns_safely

    def command(text: str) -> dict[str, object]:
        return {"command": "/flag", "text": text}

    assert reruns_safely("command", command("off new-checkout production"))  # proposes a card
    assert reruns_safely("command", command("show new-checkout"))
    assert reruns_safely("command", command("not a command at all ../?#\x00"))  # answered only
    for writes in ("link new-checkout Incident-42", "remind new-checkout in 1h", "subscribe new-checkout"):
        assert not reruns_safely("command", command(writes)), writes
    assert reruns_safely("change_click", {})  # guarded by the change's compare-and-set
    for handler in ("approval_click", "scheduled_delete", "digest_archive", "link_submitted", "mystery"):
        assert not reruns_safely(handler, {}), handler
    guess = {"actions": [{"value": "link new-checkout x"}]}
    assert not reruns_safely("guess", guess)


async def test_a_stopping_bot_keeps_its_leases_until_its_clicks_are_drained(
    start_bot: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    first = await _first_bot(start_bot, tmp_path)
    await first.command("/flag off new-checkout test")
    await _settled(first)
    card = first.card()
    _slow_ld(first, 4.0)
    assert (await first.click("Apply")).status_code == 200
    await _until(_working(first), 5, "bot 1 did not take the click")
    second = await _second_bot(start_bot, first)
    await asyncio.sleep(0.3)
    runtime = first.stack.runtime
    await runtime.services.inbox.stop(drain=runtime.changes.drain)  # what Runtime.close does
    await _settled(first, second)
    assert len(first.ld_patches()) == 1
    assert any("Applied" in m.text for m in first.thread(card)), [m.text for m in first.thread(card)]
    click = (await InboxStore(first.store.engine).rows())[-1]
    assert (click.handler, click.attempts, click.outcome) == ("change_click", 1, "ok")  # never taken over
    assert not any("already being applied" in t for t in first.ephemeral_texts(ALICE))


async def test_a_click_that_wrote_reports_its_outcome_even_after_its_lease_was_lost(
    start_bot: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    first = await _first_bot(start_bot, tmp_path)
    await first.command("/flag off new-checkout test")
    await _settled(first)
    card = first.card()
    _slow_ld(first, 4.0)
    assert (await first.click("Apply")).status_code == 200
    await _until(_working(first), 5, "bot 1 did not take the click")
    second = await _second_bot(start_bot, first)
    await asyncio.sleep(0.3)
    await first.stack.runtime.services.inbox.stop(grace=0)  # its lease runs out: bot 2 takes over
    await _settled(first, second)
    assert len(first.ld_patches()) == 1
    assert any("Applied" in m.text for m in first.thread(card)), [m.text for m in first.thread(card)]


async def _sqlite_fault(bot: Harness, trigger: str) -> None:
    """A real database failure: a trigger that aborts while the table ``fault`` has a row."""
    async with bot.store.engine.begin() as connection:
        await connection.execute(sql("CREATE TABLE IF NOT EXISTS fault (x INTEGER)"))
        await connection.execute(sql("INSERT INTO fault VALUES (1)"))
        await connection.execute(sql(trigger))


async def _sqlite_fault_over(bot: Harness) -> None:
    async with bot.store.engine.begin() as connection:
        await connection.execute(sql("DELETE FROM fault"))


async def test_a_row_that_cannot_be_marked_done_is_not_held_for_ever(
    start_bot: Callable[..., Awaitable[Harness]],
) -> None:
    bot = await start_bot(flagops_inbox_lease=1.0, flagops_inbox_poll=0.05)
    await _sqlite_fault(
        bot,
        "CREATE TRIGGER done_fails BEFORE UPDATE OF state ON inbox "
        "WHEN NEW.state = 'done' AND EXISTS (SELECT 1 FROM fault) "
        "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
    )
    await bot.command("/flag off new-checkout test")

    async def carded() -> bool:
        return any(m.buttons for m in bot.slack.messages(RELEASES))

    await _until(carded, 10, "no card")
    card = bot.card()
    await asyncio.sleep(2.5)  # every try to mark the command's row done failed meanwhile
    await _sqlite_fault_over(bot)
    await bot.click("Apply", message=card)

    async def applied() -> bool:
        return any(
            m.ts == card.ts and "Applied" in m.text + str(m.blocks) for m in bot.slack.messages(RELEASES)
        )

    await _until(applied, 15, "the click on the card waited for a row held for ever")
    await _settled(bot)
    assert [r.state for r in await InboxStore(bot.store.engine).rows()] == [DONE, DONE]


async def test_a_post_whose_ts_cannot_be_recorded_is_still_a_card(
    start_bot: Callable[..., Awaitable[Harness]],
) -> None:
    bot = await start_bot(flagops_inbox_poll=0.05)
    await _sqlite_fault(
        bot,
        "CREATE TRIGGER ts_fails BEFORE UPDATE OF card_ts ON inbox "
        "WHEN NEW.card_ts IS NOT NULL AND EXISTS (SELECT 1 FROM fault) "
        "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
    )
    await bot.command("/flag off new-checkout test")
    await _settled(bot)
    card = bot.card()
    assert card.buttons
    assert not any("Nothing was changed" in t for t in bot.ephemeral_texts(ALICE)), bot.ephemeral_texts(ALICE)
    await bot.click("Apply", message=card)
    await _settled(bot)
    assert "Applied" in card_text(bot)
    assert len(bot.ld_patches()) == 1


async def test_a_database_error_at_the_ack_logs_no_payload_and_asks_to_try_again(
    start_bot: Callable[..., Awaitable[Harness]], caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start_bot()
    await _sqlite_fault(
        bot,
        "CREATE TRIGGER insert_fails BEFORE INSERT ON inbox WHEN EXISTS (SELECT 1 FROM fault) "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    )
    request = bot.command_request('/flag off new-checkout test -m "typed-words-xyzzy"')
    form = parse_qs(request.body.decode())
    [response_url] = form["response_url"]
    caplog.set_level(logging.INFO)  # what flagops logs in production (DEBUG is for a developer)
    answer = await bot.send(request)
    await bot.idle()
    assert answer.status_code == 200
    assert "try again" in answer.text
    assert response_url not in caplog.text and "typed-words-xyzzy" not in caplog.text
    assert "Traceback" not in answer.text
    assert await InboxStore(bot.store.engine).rows() == []
    assert bot.slack.messages(RELEASES) == []


async def test_an_account_verb_after_options_never_reaches_the_inbox(bot: Harness) -> None:
    for typed in ("--project demo link-account api-SECRET-1", '-p demo "unlink-account" api-SECRET-2'):
        assert (await bot.command(f"/flag {typed}")).status_code == 200
    await bot.idle()
    rows = await InboxStore(bot.store.engine).rows()
    assert not [r for r in rows if "SECRET" in r.body_json], rows
    assert "SECRET" not in json.dumps([r.body for r in rows])


async def test_a_post_held_up_by_slack_does_not_hold_clicks_on_a_card_already_up(
    start_bot: Callable[..., Awaitable[Harness]],
) -> None:
    bot = await start_bot(flagops_inbox_poll=0.05)
    await bot.command("/flag off new-checkout test")
    await _settled(bot)
    card_a = bot.card()
    bot.slack.rate_limit("chat.postMessage", next=2, retry_after=4)
    await bot.command("/flag off banner-color test")  # its card waits out Slack's rate limit

    async def posting() -> bool:
        return any(
            r.posting_at is not None and r.card_ts is None for r in await InboxStore(bot.store.engine).rows()
        )

    await _until(posting, 5, "the second card's post did not start")
    loop = asyncio.get_running_loop()
    clicked = loop.time()
    await bot.click("Apply", message=card_a)

    async def applied() -> bool:
        found = [m for m in bot.slack.messages(RELEASES) if m.ts == card_a.ts]
        return any("Applied" in m.text + str(m.blocks) for m in found)

    await _until(applied, 15, "the click was not applied")
    assert loop.time() - clicked < 3.0, "the click waited for another card's post"
    await _settled(bot)
    assert len([m for m in bot.slack.messages(RELEASES) if m.buttons]) == 2


async def _carded_by_notify(bot: Harness, sent: float) -> None:
    """The command sent at ``sent`` got its card within 5 s: the worker heard NOTIFY (its poll is
    30 s in these tests)."""

    async def carded() -> bool:
        return any(m.buttons for m in bot.slack.messages(RELEASES))

    await _until(carded, 5, "the worker no longer hears NOTIFY")
    assert asyncio.get_running_loop().time() - sent < 5
    await bot.idle()


async def test_on_postgres_a_worker_listens_again_when_its_connection_drops(
    start_bot: Callable[..., Awaitable[Harness]], empty_postgres_url: str
) -> None:
    slow = {"flagops_inbox": "workers", "flagops_inbox_poll": 30.0, "flagops_inbox_lease": 90.0}
    bot = await start_bot(database_url=empty_postgres_url, **slow)
    worker = await Runtime.open(bot.stack.settings, work_inbox=True)
    try:
        await asyncio.sleep(0.3)
        async with bot.store.engine.begin() as connection:  # the database drops the LISTEN connection
            dropped = await connection.execute(
                sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query ILIKE 'LISTEN%' AND datname = current_database()"
                )
            )
            assert dropped.all(), "no LISTEN connection found"
        await asyncio.sleep(1.5)  # listening again (after its pause)
        sent = asyncio.get_running_loop().time()
        assert (await bot.command("/flag off new-checkout test")).status_code == 200
        await _carded_by_notify(bot, sent)
    finally:
        await worker.close()


@pytest.mark.parametrize("pinged", [True, False], ids=["idle-ping", "no-idle-ping"])
async def test_on_postgres_every_connection_dropped_at_once_is_survived_by_the_worker_and_the_acks(
    start_bot: Callable[..., Awaitable[Harness]],
    empty_postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    pinged: bool,
) -> None:
    if not pinged:  # the worker's LISTEN must find its way back by itself, and a retried ack works
        monkeypatch.setattr(db, "POSTGRES_PING_AFTER_IDLE_SECONDS", 3600.0)
    slow = {"flagops_inbox": "workers", "flagops_inbox_poll": 30.0, "flagops_inbox_lease": 90.0}
    bot = await start_bot(database_url=empty_postgres_url, **slow)
    worker = await Runtime.open(bot.stack.settings, work_inbox=True)
    try:
        await asyncio.sleep(0.3)
        async with bot.store.engine.begin() as connection:  # as a restart does: every session ends
            dropped = await connection.execute(
                sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            assert len(dropped.all()) >= 2
        await asyncio.sleep(3.0)  # the pools' connections idle past the ping; the worker listens again
        sent = asyncio.get_running_loop().time()
        answer = await bot.command("/flag off new-checkout test")
        assert answer.status_code == 200
        if pinged:
            assert "try again" not in answer.text
        elif "try again" in answer.text:  # the dead connection failed that ack once: sent again
            answer = await bot.command("/flag off new-checkout test")
            assert answer.status_code == 200 and "try again" not in answer.text
        await _carded_by_notify(bot, sent)
    finally:
        await worker.close()


async def test_a_slow_insert_at_the_ack_fails_cleanly_in_time_and_runs_nothing_later(
    start_bot: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    bot = await start_bot(flagops_inbox_poll=0.05)
    [path] = [p for p in tmp_path.glob("bot*.sqlite3")]
    locker = sqlite3.connect(path, isolation_level=None, timeout=0.5)
    try:
        for _ in range(100):  # another writer holds SQLite's lock for 5 s (once the bot's loop lets go)
            try:
                locker.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:
                await asyncio.sleep(0.02)
        assert locker.in_transaction
        loop = asyncio.get_running_loop()
        sent = loop.time()
        answer = await bot.command("/flag off new-checkout test")
        took = loop.time() - sent
        await asyncio.sleep(max(0.0, 5.0 - took))
    finally:
        if locker.in_transaction:
            locker.execute("ROLLBACK")
        locker.close()
    assert answer.status_code == 200 and took < 2.9, took  # within Slack's 3 s
    assert "try again" in answer.text
    await asyncio.sleep(1.0)
    await bot.idle()
    assert await InboxStore(bot.store.engine).rows() == []
    assert bot.slack.messages(RELEASES) == []  # the retry the person makes is the only card


async def test_a_burst_is_worked_a_few_rows_at_a_time_and_every_command_gets_its_card(
    start_bot: Callable[..., Awaitable[Harness]],
) -> None:
    # The web process's own rows count against FLAGOPS_INBOX_CONCURRENCY: a burst does not put
    # every command on the loop at once (the bench's acks and memory), and none is left behind.
    bot = await start_bot(flagops_inbox_concurrency=2, flagops_inbox_poll=0.05)
    _slow_ld(bot, 0.2)
    most = 0
    sampling = True

    async def sample() -> None:
        nonlocal most
        while sampling:
            rows = await InboxStore(bot.store.engine).rows()
            most = max(most, sum(r.state == WORKING for r in rows))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    answers = await asyncio.gather(*(bot.command("/flag off new-checkout test") for _ in range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    inbox = InboxStore(bot.store.engine)

    async def nothing_waits() -> bool:
        return await inbox.waiting() == 0

    await _until(nothing_waits, 30.0, "inbox rows were left undone")
    sampling = False
    await sampler
    await bot.idle(timeout=30.0)
    assert 1 <= most <= 2, most
    assert len([m for m in bot.slack.messages(RELEASES) if m.buttons]) == 8


@pytest.mark.parametrize("burst, most", [(2, 2), (0, 1)])
async def test_while_commands_arrive_few_rows_are_worked_and_the_rest_at_full_pace_after(
    start_bot: Callable[..., Awaitable[Harness]], burst: int, most: int
) -> None:
    # The front door first: while deliveries keep arriving, the web process works at most
    # FLAGOPS_INBOX_BURST_CONCURRENCY rows (the acks get the loop; 0: only the first, which came
    # alone); once they stop, the rows left are taken at FLAGOPS_INBOX_CONCURRENCY, and every
    # command gets its card.
    bot = await start_bot(
        flagops_inbox_concurrency=8, flagops_inbox_burst_concurrency=burst, flagops_inbox_poll=0.05
    )
    _slow_ld(bot, 0.2)
    inbox = InboxStore(bot.store.engine)
    arriving = True
    during = after = 0

    async def sample() -> None:
        nonlocal during, after
        while True:
            rows = await inbox.rows()
            working = sum(r.state == WORKING for r in rows)
            if arriving:
                during = max(during, working)
            else:
                after = max(after, working)
            if not arriving and all(r.state == DONE for r in rows):
                return
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    sent = []
    for _ in range(12):  # one every 20 ms: deliveries keep arriving for about a quarter second
        sent.append(asyncio.create_task(bot.command("/flag off new-checkout test")))
        await asyncio.sleep(0.02)
    answers = await asyncio.gather(*sent)
    arriving = False
    assert [a.status_code for a in answers] == [200] * 12
    await asyncio.wait_for(sampler, 30.0)
    await bot.idle(timeout=30.0)
    assert 1 <= during <= most, during
    assert after >= 3, after  # back to full pace once the burst passed
    assert len([m for m in bot.slack.messages(RELEASES) if m.buttons]) == 12


async def test_rows_left_to_the_loop_just_before_a_stop_are_worked_within_its_grace(
    start_bot: Callable[..., Awaitable[Harness]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two commands together (a burst: rows left to the loop until a quiet), then a stop before
    # the quiet: the stopping process works them within its grace; it does not leave them for a
    # start that may never come (found by an outside review).
    from bot.inbox import service

    monkeypatch.setattr(service, "BURST_QUIET", 5.0)
    bot = await start_bot(flagops_inbox_poll=30.0)
    inbox = bot.stack.runtime.services.inbox
    answers = await asyncio.gather(
        bot.command('/flag off new-checkout test -m "one"'),
        bot.command('/flag off new-checkout test -m "two"'),
    )
    assert [a.status_code for a in answers] == [200, 200]
    assert inbox.settling  # at least one was left to the loop
    await inbox.stop(grace=10.0)
    assert len([m for m in bot.slack.messages(RELEASES) if m.buttons]) == 2
    assert await InboxStore(bot.store.engine).waiting() == 0


async def test_a_command_alone_is_worked_at_once_and_one_right_after_another_waits_for_the_quiet(
    start_bot: Callable[..., Awaitable[Harness]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # By default (FLAGOPS_INBOX_BURST_CONCURRENCY=0) no row is worked while other deliveries are
    # arriving; a delivery's own arrival does not count, so a command alone gets its card at once,
    # and one that comes right after another waits for BURST_QUIET without a new one.
    from bot.inbox import service

    monkeypatch.setattr(service, "BURST_QUIET", 1.5)
    bot = await start_bot(flagops_inbox_poll=0.05)
    loop = asyncio.get_running_loop()

    def cards(count: int) -> Callable[[], Awaitable[bool]]:
        async def made() -> bool:
            return len([m for m in bot.slack.messages(RELEASES) if m.buttons]) >= count

        return made

    sent = loop.time()
    assert (await bot.command("/flag off new-checkout test")).status_code == 200
    await _until(cards(1), 10.0, "the first card was not made")
    assert loop.time() - sent < 1.0, loop.time() - sent  # alone: worked at once
    sent = loop.time()
    assert (await bot.command("/flag off new-checkout test")).status_code == 200
    await _until(cards(2), 10.0, "the second card was not made")
    assert loop.time() - sent >= 1.4, loop.time() - sent  # after the first: the quiet first
    await bot.idle(timeout=10.0)


async def test_a_steady_stream_is_load_not_a_burst_and_its_rows_are_worked_at_full_pace(
    start_bot: Callable[..., Awaitable[Harness]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deliveries that keep coming without a quiet for longer than BURST_LONGEST are load: the rows
    # are worked at FLAGOPS_INBOX_CONCURRENCY again (no card waits for good behind a stream).
    from bot.inbox import service

    monkeypatch.setattr(service, "BURST_LONGEST", 0.3)
    bot = await start_bot(
        flagops_inbox_concurrency=8, flagops_inbox_burst_concurrency=1, flagops_inbox_poll=0.05
    )
    _slow_ld(bot, 0.2)
    inbox = InboxStore(bot.store.engine)
    loop = asyncio.get_running_loop()
    started = loop.time()
    arriving = True
    early = late = 0

    async def sample() -> None:
        nonlocal early, late
        while arriving:
            working = sum(r.state == WORKING for r in await inbox.rows())
            if loop.time() - started < 0.25:
                early = max(early, working)
            elif loop.time() - started > 0.6:
                late = max(late, working)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    sent = []
    for _ in range(40):  # one every 25 ms for a second: never 50 ms of quiet
        sent.append(asyncio.create_task(bot.command("/flag off new-checkout test")))
        await asyncio.sleep(0.025)
    answers = await asyncio.gather(*sent)
    arriving = False
    await sampler
    assert [a.status_code for a in answers] == [200] * 40
    await bot.idle(timeout=60.0)
    assert early <= 1, early  # the front door first at the start of the stream
    assert late >= 3, late  # then full pace, while the stream still comes
    assert len([m for m in bot.slack.messages(RELEASES) if m.buttons]) == 40
