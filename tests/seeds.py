"""Read the example bodies out of the LaunchDarkly reference pages in ../shared/seeds/."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
FLAG_PAGE = SEEDS / "002_215e94b1fb26f890.txt"


@dataclass(frozen=True)
class SeedExample:
    section: str  # the "#### kind" heading the example stands under
    raw: str  # the example as printed, comments and all
    body: Any  # parsed, after stripping // comments


def strip_json_comments(text: str) -> str:
    """The rolloutWeights examples carry `// serve 15% ...` comments, which JSON does not allow."""
    return re.sub(r"//[^\n\"]*?(?=\s*(?:\"|\}|$))", "", text)


def semantic_patch_examples() -> list[SeedExample]:
    """Every ```json example of the semantic-patch section, with the instruction heading above it."""
    text = FLAG_PAGE.read_text(encoding="utf-8")
    start = text.index("### Instructions")
    end = text.index("### Using JSON patches on a feature flag", start)
    section_text = text[start:end]
    examples = []
    for match in re.finditer(r"(?<!#)#### (\w+)(.*?)(?=(?<!#)#### |\Z)", section_text, re.S):
        heading, chunk = match.group(1), match.group(2)
        for block in re.findall(r"```json(.*?)```", chunk, re.S):
            cleaned = strip_json_comments(block.replace("// serve", "\n// serve"))
            examples.append(SeedExample(heading, block.strip(), json.loads(cleaned)))
    return examples


def json_patch_examples() -> list[Any]:
    """The bare-array JSON patch examples of the flag page (special cases of `path`)."""
    text = FLAG_PAGE.read_text(encoding="utf-8")
    start = text.index("### Using JSON patches on a feature flag")
    end = text.index("### Required approvals", start)
    return [json.loads(b) for b in re.findall(r"```json(.*?)```", text[start:end], re.S)]
