"""The history page as Block Kit: pure builders, from entries already put in words.

What matters first in each entry: when and who, then what changed (before → after), then the
comment and where it was asked for. Every text from LaunchDarkly or from a person is escaped here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from bot.slack import blocks
from commands.keys import Key
from commands.summary import FactChange

OLDER = "history_older"
PAGE_SIZE = 5
MAX_CHANGE_LINES = 6
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\](?:\([^)]*\))?")


class HistoryRef(BaseModel):
    """A History or Older button's value: the flag, and the page (entries before ``before``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: Key
    flag: Key
    env: Key | None = None
    before: int | None = None

    @field_validator("before")
    @classmethod
    def _moment(cls, value: int | None) -> int | None:
        if value is not None and not 0 < value < 10**14:
            raise ValueError("not a moment")
        return value

    def value(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), separators=(",", ":"))


@dataclass(frozen=True)
class EntryView:
    """One change, in the words the page uses (plain text; the builder escapes it)."""

    when: str
    who: str
    what: str
    changes: Sequence[FactChange] = ()
    comment: str | None = None
    versions: str | None = None  # e.g. "no versions recorded" when the entry has none to compare
    card_url: str | None = None  # the flagops card it was made from
    requester_id: str | None = None  # who asked for it in Slack (a flagops change)
    flagops_change: str | None = None  # its change id, when the card could not be linked


@dataclass(frozen=True)
class HistoryPage:
    """A page of a flag's history."""

    flag_key: str
    flag_name: str
    project: str
    environment: str | None
    entries: Sequence[EntryView]
    older: HistoryRef | None = None  # the next page, when there is one
    before_text: str | None = None  # this page's "before" moment, in words (a later page)
    notes: Sequence[str] = field(default_factory=tuple)  # plain-text notes under the title


def plain_title(text: str) -> str:
    """LaunchDarkly's title without its Markdown links and brackets: ``[Ann](mailto:…) turned on
    [X](/…)`` → ``Ann turned on X``."""
    return " ".join(_MARKDOWN_LINK.sub(r"\1", text).split())


def audit_lines(
    changes: Sequence[FactChange], versions: str | None, comment: str | None, *, limit: int
) -> list[str]:
    """What an audit log entry changed (before → after, else its versions) and its comment."""
    lines = blocks.fact_change_lines(changes, limit) if changes else []
    if not changes and versions:
        lines.append(f"_{blocks.escape(versions)}_")
    if comment:
        lines.append(f":memo: “{blocks.escape(blocks.clip(comment, 300))}”")
    return lines


def _entry_text(entry: EntryView) -> str:
    head = f"*{blocks.escape(entry.when)}* · {blocks.escape(entry.who)}"
    what = blocks.escape(blocks.clip(entry.what, 200))
    lines = [f"{head} · _{what}_"] if len(entry.what) <= 60 else [head, what]
    lines += audit_lines(entry.changes, entry.versions, entry.comment, limit=MAX_CHANGE_LINES)
    via: list[str] = []
    if entry.requester_id or entry.card_url or entry.flagops_change:
        asked = f" for <@{entry.requester_id}>" if entry.requester_id else ""
        where = f": <{entry.card_url}|the card>" if entry.card_url else ""
        if not where and entry.flagops_change:
            where = f" (change `{blocks.escape(entry.flagops_change[:8])}`)"
        via.append(f":link: through flagops{asked}{where}")
    return "\n".join(lines + via)


def render_history(page: HistoryPage) -> tuple[str, blocks.Blocks]:
    """The page: a title, one section per change, Older when there is more, and where it comes from."""
    where = f" in *{blocks.escape(page.environment)}*" if page.environment else " (every environment)"
    name = blocks.escape(page.flag_name)
    title = f":scroll: History of *{name}* (`{blocks.escape(page.flag_key)}`){where}"
    if page.before_text:
        title += f", before {blocks.escape(page.before_text)}"
    text = blocks.clip(f"History of {page.flag_key}", 3000)
    body: blocks.Blocks = [_section(title)]
    if page.notes:
        body.append(_context(*(blocks.escape(n) for n in page.notes)))
    if not page.entries:
        none = "No older changes" if page.before_text else "No changes"
        body.append(_section(f"_{none} in LaunchDarkly's audit log._"))
    for entry in page.entries:
        body.append({"type": "divider"})
        body.append(_section(_entry_text(entry)))
    if page.older is not None:
        body.append(
            {"type": "actions", "elements": [blocks.action_button(OLDER, "Older", page.older.value())]}
        )
    source = "Newest first, from LaunchDarkly's audit log" + (
        "" if page.environment else "; add an environment to see only its changes"
    )
    body.append(_context(f"{source} · project {blocks.escape(page.project)}"))
    return text, body[:50]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": blocks.clip(text, blocks.SECTION_LIMIT)}}


def _context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": blocks.clip(t, 2000)} for t in texts]}
