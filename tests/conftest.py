"""Suite-wide guard: no test reads anything outside the repository.

A user's clone (and any CI outside this workplace) has nothing beside it, so the reference pages
and LaunchDarkly's OpenAPI spec that live in ``../shared`` are vendored into ``tests/data``. An
audit hook records every file or folder opened under ``../shared``; the run fails if there is
any. (``tests/test_plain_clone.py`` also collects a copy of the repository that has nothing
beside it, which catches a read of any other neighbour.)
"""

from __future__ import annotations

import os
import sys
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
