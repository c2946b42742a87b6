"""Vendor the example bodies of LaunchDarkly's reference pages into tests/data/seed_examples.json.

The reference pages this product was founded on live outside the repository (``../shared/seeds/``
in this workplace), and a user's clone has none of them, so the tests read this fixture instead.
Run this once when the pages change; it reads ``../shared/seeds/`` (or the folder given as the
first argument) and writes data only: for every example its instruction kind (or ``json-patch``),
the page and section it comes from, and the body exactly as printed, ``//`` comments included.

    python scripts/vendor_seeds.py [SEEDS_DIR]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SEEDS = ROOT.parent / "shared" / "seeds"
OUT = ROOT / "tests" / "data" / "seed_examples.json"
FLAG_PAGE = "002_215e94b1fb26f890.txt"
FLAG_ENDPOINT = "PATCH /api/v2/flags/{projectKey}/{featureFlagKey}"


def examples(seeds: Path) -> list[dict[str, str]]:
    text = (seeds / FLAG_PAGE).read_text(encoding="utf-8")
    found: list[dict[str, str]] = []
    start = text.index("### Instructions")
    end = text.index("### Using JSON patches on a feature flag", start)
    for match in re.finditer(r"(?<!#)#### (\w+)(.*?)(?=(?<!#)#### |\Z)", text[start:end], re.S):
        heading, chunk = match.group(1), match.group(2)
        for block in re.findall(r"```json(.*?)```", chunk, re.S):
            found.append(
                {
                    "kind": heading,
                    "page": FLAG_PAGE,
                    "endpoint": FLAG_ENDPOINT,
                    "section": f"Instructions / {heading}",
                    "raw": block.strip(),
                }
            )
    start = text.index("### Using JSON patches on a feature flag")
    end = text.index("### Required approvals", start)
    for block in re.findall(r"```json(.*?)```", text[start:end], re.S):
        found.append(
            {
                "kind": "json-patch",
                "page": FLAG_PAGE,
                "endpoint": FLAG_ENDPOINT,
                "section": "Using JSON patches on a feature flag",
                "raw": block.strip(),
            }
        )
    return found


def main(argv: list[str]) -> int:
    seeds = Path(argv[1]) if len(argv) > 1 else DEFAULT_SEEDS
    if not (seeds / FLAG_PAGE).is_file():
        print(f"no reference pages at {seeds}; the fixture {OUT.relative_to(ROOT)} is left as it is")
        return 1
    found = examples(seeds)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(found, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(found)} examples to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
