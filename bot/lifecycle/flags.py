"""Reading flags and environments from LaunchDarkly for previews, and judging flag documents.

A short cache keeps a burst of commands on one flag from costing a GET each ("read the flag,
cached briefly"); Apply and outcome checks always read fresh.
"""

from __future__ import annotations

import asyncio
import difflib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from bot.config import Settings
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient
from commands.engine import apply as engine_apply
from commands.errors import CommandError
from commands.instructions import SemanticPatch
from commands.intents import ChangeCommand, MaintainerMember

FLAG_CACHE_SECONDS = 5.0
ENVIRONMENT_CACHE_SECONDS = 60.0
#: At most this many flags and projects are cached (the oldest entry makes room), so no number of
#: spellings can grow the process without bound.
CACHE_ENTRIES = 256


def _bounded_put(cache: dict[Any, Any], key: Any, value: Any) -> None:
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > CACHE_ENTRIES:
        cache.pop(next(iter(cache)))


K = TypeVar("K")
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """At most one call in flight per key: whoever asks while it runs waits for its answer (a
    burst of commands after a cache expired makes one LaunchDarkly call, not one each). A failure
    reaches every waiter and is not kept: the next ask calls again."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(call())
            self._running[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        # Shielded: one waiter given up (its request cancelled) does not cancel the others' call.
        return await asyncio.shield(task)

    def _forget(self, key: K, done: asyncio.Task[V]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter got it, or none is left to


#: Short forms people type for an environment, matched only when exactly one environment fits.
ENVIRONMENT_ALIASES: dict[str, tuple[str, ...]] = {
    "prod": ("production", "prd", "live"),
    "prd": ("production", "prod"),
    "live": ("production", "prod"),
    "stg": ("staging", "stage"),
    "stage": ("staging", "stg"),
    "staging": ("stage", "stg"),
    "dev": ("development", "develop"),
    "qa": ("qa", "test", "testing"),
    "uat": ("uat", "acceptance"),
}


class FlagReader:
    """Flags, environments and members as the previews need them."""

    def __init__(self, ld: LaunchDarklyClient, settings: Settings) -> None:
        self.ld = ld
        self.settings = settings
        self._flag_cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._env_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._env_reads: SingleFlight[str, tuple[float, dict[str, Any]]] = SingleFlight()

    def remember(self, project: str, key: str, flag: dict[str, Any]) -> None:
        """Cache a flag document just received (e.g. the answer to an applied PATCH)."""
        _bounded_put(self._flag_cache, (project, key), (time.monotonic(), flag))

    async def flag(self, project: str, key: str, *, fresh: bool = False) -> dict[str, Any]:
        cached = self._flag_cache.get((project, key))
        if cached and not fresh and time.monotonic() - cached[0] < FLAG_CACHE_SECONDS:
            return cached[1]
        try:
            flag = (await self.ld.get_flag(project, key)).document()
        except ld_errors.NotFound as error:
            # Keys are typed in a hurry: `New-Checkout` is `new-checkout` (the document says the
            # real key, which the change then uses).
            if key == key.lower():
                message, guess = await self._not_found_message(project, key, error)
                raise CommandError(message, guess=guess) from error
            try:
                flag = (await self.ld.get_flag(project, key.lower())).document()
            except ld_errors.NotFound:
                message, guess = await self._not_found_message(project, key, error)
                raise CommandError(message, guess=guess) from error
        _bounded_put(self._flag_cache, (project, key), (time.monotonic(), flag))
        return flag

    async def _not_found_message(
        self, project: str, key: str, error: ld_errors.NotFound
    ) -> tuple[str, tuple[str, str] | None]:
        """What to say about a flag LaunchDarkly does not have, and the guess (the one flag that
        comes close, offered as a corrected command)."""
        try:
            page = await self.ld.list_flags(project, query=key[:20])
            keys = [f.key for f in page.items]
            if not keys:
                keys = [f.key for f in (await self.ld.list_flags(project)).items]
        except ld_errors.NotFound:
            return f"There is no project `{project}` in LaunchDarkly (or the token cannot see it).", None
        # LaunchDarkly's search matches parts of keys and names: a hit there is a good guess too.
        close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6) or (keys[:3] if page.items else [])
        if close:
            hint = f" Did you mean {', '.join(f'`{k}`' for k in close)}?"
        elif keys:
            hint = f" Some of its flags: {', '.join(f'`{k}`' for k in keys[:5])} (`list <text>` searches)."
        else:
            hint = " It has no flags the bot's token can see."
        guess = (key, close[0]) if len(close) == 1 else None
        return f"There is no flag `{key}` in project `{project}`.{hint}", guess

    async def environment(self, project: str, env_key: str) -> dict[str, Any]:
        return dict((await self._environments(project)).get(env_key) or {})

    async def _environments(self, project: str) -> dict[str, dict[str, Any]]:
        """The project's environments by key, cached ``ENVIRONMENT_CACHE_SECONDS``; a burst of
        commands after the cache expired reads them once (the others wait for that read)."""
        cached = self._env_cache.get(project)
        if cached is None or time.monotonic() - cached[0] > ENVIRONMENT_CACHE_SECONDS:

            async def read() -> tuple[float, dict[str, Any]]:
                envs = await self.ld.all_environments(project)
                fresh = (time.monotonic(), {e.key: e.model_dump(mode="json", by_alias=True) for e in envs})
                _bounded_put(self._env_cache, project, fresh)
                return fresh

            cached = await self._env_reads.run(project, read)
        return cached[1]

    async def check_environment(self, project: str, env: str | None, flag: dict[str, Any]) -> None:
        if env and env not in (flag.get("environments") or {}):
            await self._unknown_environment(project, env)

    async def check_segments(self, project: str, env: str | None, patch: SemanticPatch) -> None:
        """Every segment a clause of ``patch`` names exists in ``env`` (LaunchDarkly would take an
        unknown key and the rule would silently match no one).

        Raises:
            CommandError: an unknown segment, with the environment's segments that come close.
        """
        keys = sorted(_segment_keys(patch.body()))
        if not keys or env is None:
            return
        for key in keys:
            try:
                await self.ld.get_segment(project, env, key)
            except ld_errors.NotFound:
                try:
                    known = [s.key for s in (await self.ld.list_segments(project, env)).items]
                except ld_errors.LaunchDarklyError:
                    known = []
                close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
                hint = (
                    f" Did you mean {', '.join(f'`{k}`' for k in close)}?"
                    if close
                    else (f" Its segments: {', '.join(f'`{k}`' for k in known[:8])}." if known else "")
                )
                raise CommandError(
                    f"There is no segment `{key}` in `{env}`: a rule on it would match no one.{hint} "
                    "Nothing was changed.",
                    guess=(key, close[0]) if len(close) == 1 else None,
                ) from None

    async def environment_key(self, project: str, env: str | None, flag: dict[str, Any]) -> str | None:
        """The environment ``env`` names: its key as typed, in any case, its name, or a short form
        (``prod``, ``stg``, ``dev``: an alias or the start of a key) when exactly one environment
        of the flag fits.

        Raises:
            CommandError: none fits, or several do (the answer names the environments).
        """
        keys: list[str] = [str(k) for k in flag.get("environments") or {}]
        if env is None or env in keys:
            return env
        wanted = env.lower()
        found = [k for k in keys if k.lower() == wanted]
        if not found:
            environments = await self._environments(project)
            found = [
                key
                for key, found_env in environments.items()
                if key in keys and str(found_env.get("name") or "").strip().lower() == wanted
            ]
        if not found:
            found = [k for k in keys if k.lower() in ENVIRONMENT_ALIASES.get(wanted, ())]
        if not found and len(wanted) >= 3:
            found = [k for k in keys if k.lower().startswith(wanted)]
        if len(found) == 1:
            return found[0]
        await self._unknown_environment(project, env)
        return None  # not reached: the line above raises

    async def _unknown_environment(self, project: str, env: str) -> None:
        envs = [e.key for e in await self.ld.all_environments(project)]
        close = difflib.get_close_matches(env, envs, n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(f'`{e}`' for e in close)}?" if close else ""
        raise CommandError(
            f"There is no environment `{env}` in project `{project}`.{hint} ({', '.join(envs)})",
            guess=(env, close[0]) if len(close) == 1 else None,
        )

    async def requires_approval(self, project: str, env_key: str, flag: dict[str, Any]) -> bool:
        env = await self.environment(project, env_key)
        settings = env.get("approvalSettings") or {}
        if settings.get("required"):
            return True
        tags = set(settings.get("requiredApprovalTags") or [])
        return bool(tags & set(flag.get("tags") or []))

    # --- clicks -----------------------------------------------------------------------------

    async def members(self, command: ChangeCommand) -> dict[str, str]:
        """Member ids for the emails a command names (``maintainer alice@example.com``)."""
        members: dict[str, str] = {}
        for change in command.changes:
            email = getattr(change, "member", None)
            if isinstance(change, MaintainerMember) and isinstance(email, str) and "@" in email:
                member = await self.ld.find_member_by_email(email)
                if member is None:
                    raise CommandError(f"There is no LaunchDarkly member with the email {email}.")
                members[email] = member.id
        return members

    async def preview(
        self, project: str, flag_key: str, patch: SemanticPatch, before: dict[str, Any]
    ) -> dict[str, Any]:
        """The flag as it would be: LaunchDarkly's dry run, or our engine where LD refuses one."""
        try:
            result = await self.ld.patch_flag_semantic(project, flag_key, patch, dry_run=True)
            return result.document()
        except (ld_errors.ApprovalRequired, ld_errors.ConflictError):
            # An approval-gated environment may refuse even a dry run; a pending change may
            # conflict. The engine applies the same instructions as LaunchDarkly would.
            return engine_apply(before, patch, other_flags=await self.related_flags(project, patch, before))

    async def related_flags(
        self, project: str, patch: SemanticPatch, flag: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """The flags a patch's prerequisites name (the engine needs their variations), and the flag."""
        keys: set[str] = set()
        for instruction in patch.instructions:
            key = getattr(instruction, "key", None)
            if instruction.kind in ("addPrerequisite", "updatePrerequisite") and isinstance(key, str):
                keys.add(key)
            for prerequisite in getattr(instruction, "prerequisites", None) or []:
                keys.add(prerequisite.key)
        related = {key: await self.flag(project, key) for key in sorted(keys - {flag.get("key")})}
        related[str(flag.get("key"))] = flag
        return related

    def flag_url(self, flag: dict[str, Any], env: str | None) -> str | None:
        envs = flag.get("environments") or {}
        site = (envs.get(env) or {}).get("_site") if env else None
        if site is None and envs:
            site = next(iter(envs.values())).get("_site")
        href = (site or {}).get("href")
        return f"{self.settings.ld_base_url}{href}" if href else None


def _segment_keys(value: Any) -> set[str]:
    """The segment keys named by ``segmentMatch`` clauses anywhere in a semantic patch body."""
    found: set[str] = set()
    if isinstance(value, dict):
        if value.get("op") == "segmentMatch":
            found |= {str(v) for v in value.get("values") or [] if isinstance(v, str)}
        for item in value.values():
            found |= _segment_keys(item)
    elif isinstance(value, list):
        for item in value:
            found |= _segment_keys(item)
    return found
