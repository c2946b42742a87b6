"""Fixtures for the bot's tests: databases (SQLite always, Postgres when configured) and the
end-to-end harness (see ``tests/bot/harness.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import make_url

from bot.config import normalise_database_url
from bot.persistence.db import migrate
from bot.persistence.store import Store
from tests.bot.harness import Harness
from tests.bot.rendered import BROADCASTS, leaks

POSTGRES_SKIP = (
    "TEST_DATABASE_URL is not set: set it to a Postgres URL (e.g. postgresql://postgres@127.0.0.1/test)"
)


def _plain_postgres(url: str) -> str:
    """asyncpg wants a plain ``postgresql://`` URL, without SQLAlchemy's driver suffix."""
    return normalise_database_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


@contextlib.contextmanager
def _fresh_postgres_database() -> Iterator[str]:
    """A new, empty Postgres database on ``TEST_DATABASE_URL``'s server, dropped afterwards.

    Each gets its own name (``flagops_test_<random>``), so concurrent or repeated runs on one
    server never see each other's rows.
    """
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip(POSTGRES_SKIP)
    plain = _plain_postgres(base)
    name = f"flagops_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(plain)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    def run(sql: str) -> None:
        # In a thread of its own: asyncio.run here would replace the main thread's event loop
        # that pytest-asyncio manages.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, admin(sql)).result()

    run(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(normalise_database_url(base)).set(database=name).render_as_string(hide_password=False)
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh Postgres database for this test session, dropped at the end."""
    with _fresh_postgres_database() as url:
        yield url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A fresh Postgres database of this test's own, never migrated, dropped at the end."""
    with _fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of this test's own."""
    return f"sqlite+aiosqlite:///{tmp_path / 'flagops.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database flagops supports (Postgres skipped with a reason when not configured)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'flagops.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store on each supported database."""
    await migrate(database_url)
    opened = Store.from_url(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session: each bot starts on a copy (the bot still checks
    its schema at start, and finds it current), instead of running every migration again."""
    path = tmp_path_factory.mktemp("template") / "flagops.sqlite3"
    # In a thread of its own: asyncio.run in this thread would unset the loop pytest-asyncio made.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, migrate(f"sqlite+aiosqlite:///{path}")).result()
    return path


@pytest.fixture
async def start_bot(
    tmp_path: Path, migrated_sqlite: Path
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Start bot instances (``await start_bot(database_url=..., **settings)``); all stop at teardown.

    Without ``database_url`` each instance gets a SQLite file under this test's ``tmp_path``, a
    copy of the session's migrated one.
    """
    started: list[Harness] = []

    async def start(**kwargs: Any) -> Harness:
        if "database_url" not in kwargs:
            path = tmp_path / f"bot{len(started)}.sqlite3"
            shutil.copyfile(migrated_sqlite, path)
            kwargs["database_url"] = f"sqlite+aiosqlite:///{path}"
        harness = await Harness.start(**kwargs)
        started.append(harness)
        return harness

    try:
        yield start
    finally:
        for harness in reversed(started):
            await harness.stop()
    # Whatever a test did, no broadcast mention left the bot in any field Slack renders.
    for harness in started:
        broadcasts = leaks(harness, BROADCASTS)
        assert not broadcasts, broadcasts[:3]


@pytest.fixture
async def bot(start_bot: Callable[..., Awaitable[Harness]]) -> Harness:
    """One bot on SQLite, with the sandbox and the fake Slack, driven as Slack does."""
    return await start_bot()
