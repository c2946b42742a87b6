"""Write the command reference into README.md from the parser's own registry (``help_text``).

Run after changing a verb: ``.venv/bin/python scripts/update_readme.py``. A test fails while the
README and the registry disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commands import help_text  # noqa: E402

START, END = "<!-- reference:start -->", "<!-- reference:end -->"


def reference() -> str:
    """``/flag help all`` in Markdown: groups as headings, one bullet per verb."""
    lines = []
    for line in help_text("all").splitlines():
        heading = re.fullmatch(r"\*(.+?)\*(.*)", line.strip())
        if heading and not line.startswith(" "):
            lines.append(f"\n**{heading[1]}**{heading[2]}\n")
        elif line.startswith("  "):
            lines.append(f"- {line.strip()}")
        elif line.strip():
            lines.append(line.strip())
    return "\n".join(lines).strip()


def updated(readme: str) -> str:
    """The README with its reference section replaced by the current one."""
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{reference()}\n{END}{after}"


if __name__ == "__main__":
    path = ROOT / "README.md"
    path.write_text(updated(path.read_text(encoding="utf-8")), encoding="utf-8")
