"""Suite-wide guard: no test reads anything outside the repository.

A user's clone (and any CI outside this workplace) has nothing beside it, so the reference pages
and LaunchDarkly's OpenAPI spec that live in ``../shared`` are vendored into ``tests/data``. An
audit hook records every file or folder opened under ``../shared``; the run fails if there is
any. (``tests/test_plain_clone.py`` also collects a copy of the repository that has nothing
beside it, which catches a read of any other neighbour.)
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SHARED = os.path.join(str(ROOT.parent / "shared"), "")
_EVENTS = {"open", "os.listdir", "os.scandir"}
outside_reads: list[str] = []


def _is_outside(path: Any) -> bool:
    if isinstance(path, int) or path is None:
        return False
    try:
        full = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return os.path.join(full, "").startswith(_SHARED)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _EVENTS and args and _is_outside(args[0]):
        outside_reads.append(f"{event} {args[0]!r}")


sys.addaudithook(_audit)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if outside_reads:
        sys.stderr.write(
            "\nTests read paths outside the repository (vendor what they need into tests/data):\n"
            + "".join(f"  {r}\n" for r in sorted(set(outside_reads))[:20])
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Close the event loop pytest-asyncio leaves set for the thread, before a synchronous test.

    After each async test pytest-asyncio sets a fresh, idle loop as the thread's loop. A
    synchronous test that calls ``asyncio.run`` ends by setting the thread's loop to None, which
    drops that idle loop unclosed; the garbage collector finalises it later, during whatever test
    is running then, and its ``ResourceWarning`` (its self-pipe socket) fails *that* test under
    ``filterwarnings = error``. Closed here, it warns nowhere.
    """
    if item.get_closest_marker("asyncio") is not None:
        return  # pytest-asyncio closes it itself when it sets up the test's own loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            return  # none set
    if not loop.is_running() and not loop.is_closed():
        loop.close()
