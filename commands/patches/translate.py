"""A JSON or merge patch on one environment as the semantic-patch instructions that make the same
change (an approval request carries instructions only), and the inverse of a patch (undo)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jsonpatch
from pydantic import ValidationError

from commands.engine import apply as engine_apply
from commands.engine.inverse import instructions_toward, without_ids
from commands.errors import CommandError, EngineRefusal
from commands.instructions import Instruction, SemanticPatch
from commands.patches.documents import (
    ABSENT,
    ENV_FIELDS,
    ENV_READ_ONLY,
    FLAG_READ_ONLY,
    Part,
    PatchRefusal,
    changed_keys,
    pointer,
)

# --- the same change as semantic instructions (approval requests) -------------------------------------


_VOLATILE_ENV = ENV_READ_ONLY


def _comparable_env(env: Mapping[str, Any]) -> dict[str, Any]:
    """An environment's targeting, as two versions compare: no bookkeeping, no generated ids,
    targets as sets per (context kind, variation), empty target entries dropped."""
    targets: dict[tuple[str, int], list[str]] = {}
    for entry in list(env.get("targets") or []) + list(env.get("contextTargets") or []):
        values = entry.get("values") or []
        if values:
            key = (str(entry.get("contextKind") or "user"), int(entry.get("variation", -1)))
            targets[key] = sorted(set(targets.get(key, [])) | {str(v) for v in values})
    rest = {
        k: without_ids(v)
        for k, v in env.items()
        if k not in _VOLATILE_ENV and k not in ("targets", "contextTargets")
    }
    rest["targets"] = sorted(targets.items())
    for field in ("trackEvents", "trackEventsFallthrough"):
        rest[field] = bool(rest.get(field))
    rest["prerequisites"] = rest.get("prerequisites") or []
    rest["rules"] = [_serving(rule) for rule in rest.get("rules") or []]
    if isinstance(rest.get("fallthrough"), dict):
        rest["fallthrough"] = _serving(rest["fallthrough"])
    return rest


def _serving(rule: Any) -> Any:
    """A rule or the default rule with LaunchDarkly's defaults filled in (``negate`` false,
    ``contextKind`` user, no description, no event tracking), so equal rules compare equal."""
    if not isinstance(rule, dict):
        return rule
    out = {k: v for k, v in rule.items() if v is not None and k not in ("trackEvents", "description")}
    out["trackEvents"] = bool(rule.get("trackEvents"))
    out["description"] = rule.get("description") or ""
    if isinstance(rule.get("clauses"), list):
        out["clauses"] = [
            {**c, "negate": bool(c.get("negate")), "contextKind": c.get("contextKind") or "user"}
            if isinstance(c, dict)
            else c
            for c in rule["clauses"]
        ]
    rollout = rule.get("rollout")
    if isinstance(rollout, dict):
        out["rollout"] = {
            **{k: v for k, v in rollout.items() if v is not None},
            "contextKind": rollout.get("contextKind") or "user",
            "bucketBy": rollout.get("bucketBy") or "key",
        }
    return out


def translate(
    before: dict[str, Any],
    after: dict[str, Any],
    env_key: str,
    *,
    other_flags: Mapping[str, dict[str, Any]] | None = None,
) -> SemanticPatch:
    """The semantic patch that leaves environment ``env_key`` of ``before`` as ``after`` has it.

    An approval request carries semantic-patch instructions only, so a JSON or merge patch on an
    environment that requires approval is sent for approval as these. Each part is translated
    with the builders undo uses (read the other way round); the result is checked by applying it
    with the engine: the environment it leaves must equal ``after``'s, generated ids aside (a
    rule added by instructions gets its id from LaunchDarkly).

    Raises:
        PatchRefusal: no instructions make the same change (says which part, and why).
    """
    was = (before.get("environments") or {}).get(env_key) or {}
    want = (after.get("environments") or {}).get(env_key) or {}
    for field in changed_keys(was, want):
        if field not in ENV_FIELDS or field == "migrationSettings":
            raise PatchRefusal(f"no instruction changes `{field}` of an environment")
    attempts: list[Callable[[], list[Instruction]]] = [
        lambda: instructions_toward(after, want, was, other_flags=dict(other_flags or {})),
        lambda: instructions_toward(after, want, was, other_flags=dict(other_flags or {}), whole_rules=True),
    ]
    reason = "the instructions that come closest leave the environment otherwise"
    for attempt in attempts:
        try:
            instructions = attempt()
            patch = SemanticPatch(environmentKey=env_key, instructions=instructions)
            result = engine_apply(before, patch, other_flags=other_flags)
        except (CommandError, EngineRefusal, ValidationError) as error:
            reason = _translation_reason(error)
            continue
        got = (result.get("environments") or {}).get(env_key) or {}
        if _comparable_env(got) == _comparable_env(want):
            return patch
    raise PatchRefusal(f"no semantic-patch instructions make the same change in `{env_key}`: {reason}")


def _translation_reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(str(e["msg"]) for e in error.errors()[:2])
    return getattr(error, "message", str(error))


# --- undo ----------------------------------------------------------------------------------------


def parts_between(before: dict[str, Any], after: dict[str, Any]) -> list[Part]:
    """The parts of a flag that differ between two versions (bookkeeping fields aside)."""
    parts: list[Part] = [
        ("flag", field)
        for field in changed_keys(before, after)
        if field not in FLAG_READ_ONLY and field != "environments"
    ]
    was, now = before.get("environments") or {}, after.get("environments") or {}
    for env_key in sorted(set(was) & set(now)):
        fields = changed_keys(was[env_key] or {}, now[env_key] or {})
        parts.extend((env_key, f) for f in fields if f not in ENV_READ_ONLY)
    return parts


def _part_pointer(part: Part) -> str:
    scope, field = part
    return pointer(field) if scope in ("flag", "project") else pointer("environments", scope, field)


def _at(doc: Mapping[str, Any], part: Part) -> Any:
    scope, field = part
    if scope in ("flag", "project"):
        return doc.get(field, ABSENT)
    env = (doc.get("environments") or {}).get(scope)
    return env.get(field, ABSENT) if isinstance(env, dict) else ABSENT


def inverse_ops(
    before: dict[str, Any], current: dict[str, Any], parts: Iterable[Part]
) -> list[dict[str, Any]]:
    """The JSON patch that sets each of ``parts`` of ``current`` back to how ``before`` had it.

    Computed from the two documents (``jsonpatch.make_patch`` inside each part), against the
    document as it is now, so it applies to it; parts already back are left out.

    Raises:
        CommandError: every part is already as ``before`` had it.
    """
    ops: list[dict[str, Any]] = []
    for part in parts:
        was, now = _at(before, part), _at(current, part)
        if was == now:
            continue
        path = _part_pointer(part)
        if was is ABSENT:
            ops.append({"op": "remove", "path": path})
        elif now is ABSENT:
            ops.append({"op": "add", "path": path, "value": copy.deepcopy(was)})
        elif isinstance(was, dict | list) and isinstance(now, dict | list) and type(was) is type(now):
            for op in jsonpatch.make_patch(now, was).patch:
                moved = {**op, "path": path + op["path"]}
                if "from" in op:
                    moved["from"] = path + op["from"]
                ops.append(moved)
        else:
            ops.append({"op": "replace", "path": path, "value": copy.deepcopy(was)})
    if not ops:
        raise CommandError("Nothing to undo: what that change set is already back to how it was before it.")
    return ops
