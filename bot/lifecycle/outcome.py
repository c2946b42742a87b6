"""Whether a change landed in LaunchDarkly, decided from LaunchDarkly itself, never from display text.

Every flagops write carries its change id in its comment (``flagops change <id> via Slack…``),
and LaunchDarkly's audit log keeps the comment of each flag change. So after a write whose answer
was lost (a timeout, a dropped connection, a 5xx, the bot stopping), the audit log is asked:

* an entry for the flag with the change id in its ``comment`` → **landed** (definitive);
* no such entry, read once the *settle window* has passed since the write was sent → **not
  landed** (definitive: a write still in flight lands within the window or not at all);
* no such entry before the window has passed → **pending**: it may still land; look again later.

Only when the audit log cannot be read are the flag's documents compared (:func:`documents_show`):
every value each instruction touches, in full (no summaries, which truncate lists), and "the flag
shows the change" is then said as that, not as "your write landed".
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient
from bot.launchdarkly.models import AuditEntry
from commands.engine import apply as engine_apply
from commands.errors import CommandError, EngineRefusal
from commands.instructions import SemanticPatch

log = logging.getLogger(__name__)

#: At most this many audit log pages (20 entries each) are read for one decision.
MAX_AUDIT_PAGES = 10
#: The audit log is searched from this long before the change was created (clock skew).
CLOCK_SKEW_MS = 5 * 60 * 1000

# Parts of a flag document that change with every write or describe rather than configure it.
_VOLATILE = frozenset(
    {
        "_version",
        "version",
        "lastModified",
        "_lastModified",
        "_links",
        "_site",
        "_summary",
        "_access",
        "_environmentName",
        "_debugEventsUntilDate",
        "salt",
        "sel",
        "creationDate",
        "_id",  # rules and clauses get new ids from whoever writes them
    }
)


#: A change as a function of a flag document (a JSON or merge patch replayed; raises
#: ``CommandError`` or ``EngineRefusal`` when it does not apply).
Applier = Callable[[dict[str, Any]], dict[str, Any]]


class Verdict(StrEnum):
    LANDED = "landed"
    """LaunchDarkly's audit log has an entry with the change id in its comment."""
    NOT_LANDED = "not_landed"
    """The audit log was read after the settle window and has no such entry."""
    PENDING = "pending"
    """The audit log has no such entry yet, and the settle window has not passed."""
    SHOWN = "shown"
    """The audit log could not be read; the flag's documents show every value the change sets."""
    NOT_SHOWN = "not_shown"
    """The audit log could not be read; the flag's documents do not show the change."""
    UNKNOWN = "unknown"
    """Neither the audit log nor the flag could be read."""


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    entry: AuditEntry | None = None
    current: dict[str, Any] | None = None
    """The flag as read now (None when it was not read, or is gone)."""
    gone: bool = False
    """The flag no longer exists (404)."""
    audit_error: str | None = None


def audit_spec(project: str, flag_key: str, env: str | None) -> str:
    """The resource specifier of a flag in one environment (``env/*``: any, for flag-level kinds)."""
    return f"proj/{project}:env/{env or '*'}:flag/{flag_key}"


async def find_in_audit_log(
    ld: LaunchDarklyClient, project: str, flag_key: str, env: str | None, change_id: str, since: datetime
) -> AuditEntry | None:
    """The audit log entry of the flag whose comment carries ``change_id``, or None.

    ``q`` searches resource names, not comments, so the comments are matched here, newest first,
    paging back by ``before`` (the last entry's date, as ``_links.next`` does).

    Raises:
        LaunchDarklyError: the audit log could not be read.
    """
    after = int(since.timestamp() * 1000) - CLOCK_SKEW_MS
    before: int | None = None
    for _ in range(MAX_AUDIT_PAGES):
        page = await ld.list_audit_log(audit_spec(project, flag_key, env), after=after, before=before)
        for entry in page.items:
            if entry.comment and change_id in entry.comment:
                return entry
        if not page.items or not page.has_next:
            return None
        before = min(e.date for e in page.items)
    log.warning("audit log search for change %s stopped after %d pages", change_id, MAX_AUDIT_PAGES)
    return None


async def decide(
    ld: LaunchDarklyClient,
    *,
    project: str,
    flag_key: str,
    env: str | None,
    change_id: str,
    since: datetime,
    settled: bool,
    before: dict[str, Any] | None,
    patch: SemanticPatch | Applier,
    read_flag: Any,
) -> Outcome:
    """Decide whether change ``change_id`` landed (see the module docstring).

    Args:
        since: when the change was created (the audit log is read from a little before).
        settled: whether the settle window has passed since the write was last sent.
        before: the flag as the change was previewed against (for the documents fallback).
        patch: the change: a semantic patch, or a JSON or merge patch as an :data:`Applier`.
        read_flag: ``async () -> dict``: the flag read fresh (raises ``CommandError`` on 404).
    """
    current: dict[str, Any] | None = None
    gone = False
    try:
        current = await read_flag()
    except CommandError:
        gone = True
    except ld_errors.LaunchDarklyError:
        current = None
    try:
        entry = await find_in_audit_log(ld, project, flag_key, env, change_id, since)
    except ld_errors.LaunchDarklyError as error:
        audit_error = error.message
    else:
        if entry is not None:
            # The entry itself carries the flag right after this write (list entries do not).
            with contextlib.suppress(ld_errors.LaunchDarklyError):
                entry = await ld.get_audit_entry(entry.id)
            return Outcome(Verdict.LANDED, entry=entry, current=current, gone=gone)
        return Outcome(Verdict.NOT_LANDED if settled else Verdict.PENDING, current=current, gone=gone)
    if current is None and not gone:
        return Outcome(Verdict.UNKNOWN, audit_error=audit_error)
    shown = before is not None and current is not None and documents_show(before, current, patch)
    verdict = Verdict.SHOWN if shown else Verdict.NOT_SHOWN
    return Outcome(verdict, current=current, gone=gone, audit_error=audit_error)


def _normal(value: Any, key: str = "") -> Any:
    """A value without what every write changes; target lists and tags as sets."""
    if isinstance(value, dict):
        return {k: _normal(v, k) for k, v in sorted(value.items()) if k not in _VOLATILE}
    if isinstance(value, list):
        items = [_normal(v) for v in value]
        if key in ("targets", "contextTargets", "tags", "values") and all(
            not isinstance(i, list) for i in items
        ):
            return sorted(items, key=repr)
        return items
    return value


def _parts(flag: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """Each configurable part of a flag: ``("flag", field)`` and ``(environment, field)``."""
    parts: dict[tuple[str, str], Any] = {}
    for key, value in flag.items():
        if key != "environments" and key not in _VOLATILE:
            parts[("flag", key)] = _normal(value, key)
    for env_key, env in (flag.get("environments") or {}).items():
        for key, value in (env or {}).items():
            if key not in _VOLATILE:
                parts[(env_key, key)] = _normal(value, key)
    return parts


def documents_show(before: dict[str, Any], current: dict[str, Any], patch: SemanticPatch | Applier) -> bool:
    """Whether ``current`` holds every value that ``patch`` applied to ``before`` would set.

    Each part the change touches (a flag field, or an environment's ``on``, ``targets``,
    ``rules``...) is compared whole. A part that differs from the expected value still counts as
    showing the change when applying the change to ``current`` would leave that part as it is
    (the change's effect is there and someone else changed the part besides, e.g. added another
    target). Nothing is compared by its display text.
    """
    apply_change: Applier = (
        (lambda doc: engine_apply(doc, patch)) if isinstance(patch, SemanticPatch) else patch
    )
    try:
        expected = apply_change(before)
    except (EngineRefusal, CommandError):
        return False
    if expected.get("_deleted"):
        return False
    want, had, have = _parts(expected), _parts(before), _parts(current)
    touched = [key for key in set(want) | set(had) if want.get(key) != had.get(key)]
    if not touched:
        return False
    try:
        again: dict[tuple[str, str], Any] | None = _parts(apply_change(current))
    except (EngineRefusal, CommandError):
        again = None
    for key in touched:
        if have.get(key) == want.get(key):
            continue
        if again is not None and again.get(key) == have.get(key):
            continue
        return False
    return True
