"""The example bodies of the LaunchDarkly reference pages, from the vendored fixture.

``tests/data/seed_examples.json`` holds every example of the flag page (002) as printed, with the
kind, page and section it comes from; ``scripts/vendor_seeds.py`` wrote it from the reference
pages, which live outside the repository. The tests read only the fixture.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parent / "data" / "seed_examples.json"


@dataclass(frozen=True)
class SeedExample:
    section: str  # the "#### kind" heading the example stands under
    raw: str  # the example as printed, comments and all
    body: Any  # parsed, after stripping // comments


def strip_json_comments(text: str) -> str:
    """The rolloutWeights examples carry `// serve 15% ...` comments, which JSON does not allow."""
    return re.sub(r"//[^\n\"]*?(?=\s*(?:\"|\}|$))", "", text)


def _parse(raw: str) -> Any:
    return json.loads(strip_json_comments(raw.replace("// serve", "\n// serve")))


def _fixture() -> list[dict[str, str]]:
    data: list[dict[str, str]] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def semantic_patch_examples() -> list[SeedExample]:
    """Every example of the semantic-patch section, with the instruction heading above it."""
    return [
        SeedExample(e["kind"], e["raw"], _parse(e["raw"])) for e in _fixture() if e["kind"] != "json-patch"
    ]


def json_patch_examples() -> list[Any]:
    """The bare-array JSON patch examples of the flag page (special cases of `path`)."""
    return [json.loads(e["raw"]) for e in _fixture() if e["kind"] == "json-patch"]
