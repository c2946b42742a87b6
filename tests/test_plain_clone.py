"""The suite runs from a plain clone: nothing beside the repository is read or needed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests import conftest
from tests.seeds import FIXTURE, json_patch_examples, semantic_patch_examples

ROOT = Path(__file__).resolve().parents[1]


def test_the_guard_sees_a_read_beside_the_repository() -> None:
    before = len(conftest.outside_reads)
    assert conftest._is_outside(ROOT.parent / "shared" / "seeds" / "README.md")
    assert conftest._is_outside(str(ROOT.parent / "shared"))
    assert not conftest._is_outside(ROOT / "tests" / "data" / "seed_examples.json")
    assert not conftest._is_outside(ROOT.parent / "shared-not" / "x")
    assert not conftest._is_outside(3)
    assert len(conftest.outside_reads) == before


def test_the_fixture_holds_every_example_with_where_it_comes_from() -> None:
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert len([e for e in data if e["kind"] != "json-patch"]) == 55
    assert len(json_patch_examples()) == 3
    for entry in data:
        assert set(entry) == {"kind", "page", "endpoint", "section", "raw"}
        assert entry["page"].endswith(".txt") and entry["endpoint"].startswith("PATCH /api/v2/")
    # As printed: the rolloutWeights examples keep their // comments.
    assert any("// serve" in e.raw for e in semantic_patch_examples())


def _copy_tracked(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / os.fsdecode(name)
        if src.is_file():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def test_the_suite_collects_with_nothing_beside_the_clone(tmp_path: Path) -> None:
    # A copy of the repository in a folder with no ../shared: every test module must import and
    # collect, which is where reading the reference pages used to fail.
    clone = tmp_path / "alone" / "flagops"
    _copy_tracked(clone)
    assert not (clone.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "error" not in done.stdout.lower().splitlines()[-1]
