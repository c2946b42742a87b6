"""Instances that start together migrate the database once: every one becomes ready at head."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.persistence.db import create_engine, migrate, require_current_schema
from bot.slack.server import free_port
from commands.errors import FlagopsError

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "SLACK_BOT_TOKEN": "xoxb-race",
        "SLACK_SIGNING_SECRET": "race-secret",
        "LD_API_TOKEN": "api-race",
        "LD_BASE_URL": "http://127.0.0.1:9",
        "FLAGOPS_SCHEDULER": "off",
        "DATABASE_URL": database_url,
        **extra,
    }


def _versions(url: str) -> list[str]:
    async def read() -> list[str]:
        from sqlalchemy import text

        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
                return [r[0] for r in rows]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _head() -> str:
    from alembic.script import ScriptDirectory

    from bot.persistence.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _start_together(url: str, tmp_path: Path) -> None:
    ports = [free_port() for _ in range(PROCESSES)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=tmp_path,
            env=_env(url, PORT=str(port)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for port in ports
    ]
    try:
        ready: set[int] = set()
        deadline = time.monotonic() + 90
        while len(ready) < PROCESSES:
            for port, process in zip(ports, processes, strict=True):
                if port in ready:
                    continue
                assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        ready.add(port)
                except httpx.TransportError:
                    pass
            assert time.monotonic() < deadline, f"only {len(ready)} of {PROCESSES} became ready"
            time.sleep(0.1)
    finally:
        outputs = []
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            outputs.append(process.communicate(timeout=30)[0].decode())
    for output in outputs:
        assert "Traceback" not in output and "startup failed" not in output, output
    assert _versions(url) == [_head()]


def test_four_processes_on_a_fresh_postgres_database(empty_postgres_url: str, tmp_path: Path) -> None:
    _start_together(empty_postgres_url, tmp_path)


def test_four_processes_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    _start_together(f"sqlite:///{tmp_path / 'fresh.sqlite3'}", tmp_path)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_concurrent_migrations_in_one_process(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # The lock is per transaction, not per process: four upgrades at once in one loop agree too.
    url = (
        str(request.getfixturevalue("empty_postgres_url"))
        if database == "postgres"
        else f"sqlite+aiosqlite:///{tmp_path / 'one.sqlite3'}"
    )
    await asyncio.gather(*(migrate(url) for _ in range(PROCESSES)))
    await require_current_schema(url)


def test_python_m_bot_migrate_needs_only_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'release.sqlite3'}"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _versions(url) == [_head()]


def test_skipping_the_migration_at_start_refuses_an_old_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=_env(url, FLAGOPS_MIGRATE_ON_START="false", PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "python -m bot migrate" in done.stderr and "Traceback" not in done.stderr
    with sqlite3.connect(tmp_path / "old.sqlite3") as db:  # nothing was created
        assert db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall() == []


async def test_require_current_schema_passes_once_migrated(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ok.sqlite3'}"
    with pytest.raises(FlagopsError, match="python -m bot migrate"):
        await require_current_schema(url)
    await migrate(url)
    await require_current_schema(url)
