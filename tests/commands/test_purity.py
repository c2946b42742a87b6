"""`commands/` is pure: importing all of it loads no Slack, HTTP, database or scheduler library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = [
    "slack_sdk",
    "slack_bolt",
    "httpx",
    "aiohttp",
    "requests",
    "sqlalchemy",
    "apscheduler",
    "starlette",
    "uvicorn",
    "asyncpg",
    "aiosqlite",
    "alembic",
    "urllib3",
]

PROBE = f"""
import importlib, pkgutil, sys
import commands
names = [m.name for m in pkgutil.walk_packages(commands.__path__, "commands.")]
for name in names:
    importlib.import_module(name)
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({FORBIDDEN!r}))
print(len(names), ",".join(loaded))
"""


def test_commands_imports_no_io_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=60, check=True
    )
    count, loaded = (
        done.stdout.strip().split(" ") if " " in done.stdout.strip() else (done.stdout.strip(), "")
    )
    assert int(count) >= 10  # every module was imported, __main__ included
    assert loaded == "", f"commands/ imports {loaded}"
