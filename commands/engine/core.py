"""``apply``: run a semantic patch's instructions over a flag document, all or nothing."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

# The handler modules register themselves in HANDLERS when imported.
from commands.engine import lifecycle, prerequisites, rules, settings, targets, variations  # noqa: F401
from commands.engine._context import HANDLERS, Context, FlagDoc
from commands.instructions import SemanticPatch

# Fields of an environment that bookkeeping, not targeting, changes: they do not make an
# environment "changed" by themselves.
_BOOKKEEPING = frozenset({"version", "lastModified", "_summary", "archived"})


def _new_uuid() -> str:
    return str(uuid.uuid4())


def _targeting(env: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in env.items() if key not in _BOOKKEEPING}


def apply(
    flag: dict[str, Any],
    patch: SemanticPatch,
    *,
    other_flags: Mapping[str, dict[str, Any]] | None = None,
    new_id: Callable[[], str] | None = None,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """Apply every instruction of ``patch`` to ``flag``, in order, as LaunchDarkly does.

    All or nothing: the input is never mutated; the result is a new document, returned only when
    every instruction applied.

    Versions (decision): any successful patch moves the flag's ``_version`` by one, even when an
    instruction changes nothing (removeRule of an absent rule still "applies"), as a successful
    LaunchDarkly PATCH records a new flag version. The patch's environment gets ``version`` + 1 and
    ``lastModified = now_ms`` when the patch has an environment-scoped instruction; any other
    environment whose targeting changed (removeVariation moves indices everywhere) gets the same.
    Those environments lose ``_summary``: LaunchDarkly computes it server-side and the engine cannot
    reproduce all its counters faithfully, so it drops it rather than serve a stale one.

    ``deleteFlag`` returns the document marked ``"_deleted": True`` (the caller removes the flag).

    Args:
        flag: the flag document, in the shape of LaunchDarkly's flag response.
        patch: the semantic patch to apply.
        other_flags: the project's other flags by key. Needed to resolve prerequisite variations
            (addPrerequisite, updatePrerequisite, replacePrerequisites refuse without it), to
            refuse archiving or deleting a flag other flags depend on, and to refuse removing a
            variation another flag's prerequisite uses; those checks are skipped when None.
        new_id: makes the ``_id`` of each new rule, clause and variation (default: uuid4).
        now_ms: the time of the change in epoch milliseconds (default: now), for
            ``lastModified``, ``archivedDate`` and ``deprecatedDate``.

    Returns:
        The new flag document.

    Raises:
        EngineRefusal: an instruction cannot apply; ``index`` is its 0-based position in
            ``patch.instructions``, ``kind`` its kind, and the message reads
            'instruction <index + 1> (<kind>): <reason>'.
    """
    work = copy.deepcopy(flag)
    before = {key: _targeting(env) for key, env in work.get("environments", {}).items()}
    stamp = now_ms if now_ms is not None else int(time.time() * 1000)
    ctx = Context(
        work,
        environment_key=patch.environmentKey,
        other_flags=other_flags,
        new_id=new_id or _new_uuid,
        now_ms=stamp,
    )
    scoped = False
    for index, instruction in enumerate(patch.instructions):
        ctx.index, ctx.kind = index, instruction.kind
        if ctx.deleted_at is not None:
            ctx.refuse(f"the flag is deleted by instruction {ctx.deleted_at + 1}; nothing can follow it")
        if instruction.environment_scoped:
            ctx.env  # noqa: B018 - refuses an unknown environmentKey before the handler runs
            scoped = True
        HANDLERS[instruction.kind](ctx, instruction)

    work["_version"] = int(work.get("_version", 0)) + 1
    for key, env in work.get("environments", {}).items():
        if (scoped and key == patch.environmentKey) or _targeting(env) != before.get(key):
            env["version"] = int(env.get("version", 0)) + 1
            env["lastModified"] = stamp
            env.pop("_summary", None)
    result: FlagDoc = work
    return result
