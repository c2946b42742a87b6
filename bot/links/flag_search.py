"""Flag search for ``external_select`` menus, answered inside Slack's 3 seconds.

Slack shows an options request's answer only if it comes within 3 seconds, and it sends one per
keystroke. LaunchDarkly's flag search (``GET /api/v2/flags/{project}?filter=query:...``) is usually
fast but not bounded, so each search here is:

* answered from a small cache when the same search was made in the last ``ttl`` seconds;
* otherwise sent, and waited for at most ``timeout`` seconds. A search that takes longer keeps
  running in the background and fills the cache for the next keystroke, while this one is answered
  from what is known: the stale answer to the same search, else a shorter search's answer filtered
  here (``new`` contains every match of ``new-c``), else nothing. A LaunchDarkly error is answered
  the same way; it is logged, never shown in a menu.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient
from bot.slack import blocks

log = logging.getLogger(__name__)

OPTION_TEXT_LIMIT = 75  # Slack's limit on an option's text
OPTION_VALUE_LIMIT = 150  # and on its value


@dataclass(frozen=True)
class FlagChoice:
    """One flag a menu offers."""

    key: str
    name: str

    def matches(self, query: str) -> bool:
        """Whether LaunchDarkly's search for ``query`` would find this flag (key or name contains it)."""
        text = query.lower()
        return text in self.key.lower() or text in self.name.lower()

    def option(self) -> dict[str, Any]:
        """The Block Kit option: the name and key shown, the key as the value."""
        shown = f"{self.name} ({self.key})" if self.name and self.name != self.key else self.key
        return {
            "text": {"type": "plain_text", "text": blocks.clip(shown, OPTION_TEXT_LIMIT)},
            "value": self.key,
        }


@dataclass
class _Entry:
    at: float
    choices: list[FlagChoice]
    complete: bool
    """Whether ``choices`` is every match (no more pages): only then may a longer search filter it."""


class FlagSearch:
    """Bounded, cached flag search (see the module docstring).

    Args:
        ld: the LaunchDarkly client (the service token reads flags).
        timeout: seconds to wait for LaunchDarkly before answering from the cache.
        ttl: seconds a cached answer is used without asking LaunchDarkly again.
        max_entries: cached searches kept (least recently used dropped first).
        limit: flags asked for per search (Slack shows at most 100 options).
        clock: monotonic seconds (tests move it).
    """

    def __init__(
        self,
        ld: LaunchDarklyClient,
        *,
        timeout: float,
        ttl: float = 30.0,
        max_entries: int = 256,
        limit: int = 25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ld = ld
        self.timeout = timeout
        self.ttl = ttl
        self.max_entries = max_entries
        self.limit = limit
        self.clock = clock
        self._cache: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._pending: dict[tuple[str, str], asyncio.Task[list[FlagChoice]]] = {}

    async def choices(self, project: str, query: str) -> list[FlagChoice]:
        """The flags of ``project`` whose key or name contains ``query``, within :attr:`timeout`.

        Never raises for LaunchDarkly's failures or slowness: those answer from the cache, or empty.
        """
        key = (project, query.strip().lower())
        entry = self._cache.get(key)
        if entry is not None and self.clock() - entry.at < self.ttl:
            self._cache.move_to_end(key)
            return entry.choices
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(key))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        finished, _ = await asyncio.wait({task}, timeout=self.timeout)
        if finished and not task.cancelled():
            error = task.exception()
            if error is None:
                return task.result()
            if not isinstance(error, ld_errors.LaunchDarklyError):
                raise error  # a bug, not LaunchDarkly being down: the app's error handler logs it
        if not finished:
            log.info(
                "flag search %r in %s took over %.1fs: answered from the cache", key[1], project, self.timeout
            )
        return self._fallback(key)

    async def _fetch(self, key: tuple[str, str]) -> list[FlagChoice]:
        project, query = key
        page = await self.ld.list_flags(project, query=query or None, limit=self.limit)
        choices = [FlagChoice(f.key, f.name or f.key) for f in page.items if len(f.key) <= OPTION_VALUE_LIMIT]
        self._cache[key] = _Entry(self.clock(), choices, complete=not page.has_next)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return choices

    def _settled(self, key: tuple[str, str], task: asyncio.Task[list[FlagChoice]]) -> None:
        # Runs whether or not anyone still waits: retrieving the exception here keeps a failed
        # background search from being reported as "never retrieved".
        self._pending.pop(key, None)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, ld_errors.LaunchDarklyError):
            log.info("flag search %r in %s failed: %s", key[1], key[0], type(error).__name__)
        elif error is not None:
            log.error("flag search %r in %s failed", key[1], key[0], exc_info=error)

    def _fallback(self, key: tuple[str, str]) -> list[FlagChoice]:
        project, query = key
        stale = self._cache.get(key)
        if stale is not None:
            return stale.choices
        shorter = [
            (len(q), entry)
            for (p, q), entry in self._cache.items()
            if p == project and entry.complete and query.startswith(q)
        ]
        if not shorter:
            return []
        _, best = max(shorter, key=lambda item: item[0])
        return [c for c in best.choices if c.matches(query)]
