"""Applying a JSON patch (RFC 6902) or a merge patch (RFC 7386) to a LaunchDarkly document, and
checking what it leaves: fields LaunchDarkly sets itself, fields no flag or project has, values of
the wrong type. Every refusal says which operation or field, and why, in words."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jsonpatch
import jsonpointer

from commands.errors import CommandError

#: Top-level fields of a flag a patch may change (LaunchDarkly's ``FeatureFlag`` schema, and
#: ``releasePipelineKey``, which seed 002 adds by JSON patch).
FLAG_FIELDS = frozenset(
    {
        "name",
        "description",
        "tags",
        "temporary",
        "archived",
        "deprecated",
        "variations",
        "defaults",
        "clientSideAvailability",
        "includeInSnippet",
        "customProperties",
        "maintainerId",
        "maintainerTeamKey",
        "migrationSettings",
        "releasePipelineKey",
        "environments",
    }
)
#: Top-level fields LaunchDarkly sets itself: a patch may ``test`` them, never change them.
FLAG_READ_ONLY = frozenset(
    {
        "key",
        "kind",
        "_version",
        "creationDate",
        "_links",
        "_maintainer",
        "_maintainerTeam",
        "_purpose",
        "archivedDate",
        "deprecatedDate",
        "experiments",
        "goalIds",
    }
)
#: Fields of a flag's environment (``FeatureFlagConfig``) a patch may change.
ENV_FIELDS = frozenset(
    {
        "on",
        "offVariation",
        "fallthrough",
        "targets",
        "contextTargets",
        "rules",
        "prerequisites",
        "trackEvents",
        "trackEventsFallthrough",
        "migrationSettings",
    }
)
ENV_READ_ONLY = frozenset(
    {
        "_access",
        "_debugEventsUntilDate",
        "_environmentName",
        "_site",
        "_summary",
        "archived",
        "evaluation",
        "lastModified",
        "salt",
        "sel",
        "version",
    }
)
#: What a project patch may change (seed 004's project response), and what it may not.
PROJECT_FIELDS = frozenset(
    {
        "name",
        "tags",
        "includeInSnippetByDefault",
        "defaultClientSideAvailability",
        "defaultReleasePipelineKey",
    }
)
PROJECT_READ_ONLY = frozenset({"_links", "_id", "key", "environments", "_access"})

Part = tuple[str, str]
"""``("flag", field)`` or ``(environment key, field)``: one part of a flag a patch changes."""


class PatchRefusal(CommandError):
    """The patch cannot apply to the document as it is; nothing is sent."""


#: What ``jsonpatch`` raises for an operation that does not apply to a document (a failed ``test``
#: is one of them: catch ``jsonpatch.JsonPatchTestFailed`` first to tell it apart).
JSON_PATCH_ERRORS: tuple[type[Exception], ...] = (
    jsonpatch.JsonPatchException,
    jsonpointer.JsonPointerException,
    TypeError,
    ValueError,
    KeyError,
    IndexError,
)


# --- applying -----------------------------------------------------------------------------------


def short_json(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tokens(path: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]] if path else []


def pointer(*tokens: str) -> str:
    """A JSON pointer from raw tokens (``~`` and ``/`` escaped as RFC 6901 says)."""
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def _missing(doc: Any, path: str) -> str:
    """Why ``path`` does not resolve in ``doc``: the first step that is not there."""
    node = doc
    walked: list[str] = []
    for token in _tokens(path):
        where = pointer(*walked) or "the top"
        if isinstance(node, dict):
            if token not in node:
                return (
                    f"there is no `{clip(token)}` in `{clip(where)}`"
                    if walked
                    else f"there is no `{clip(token)}` field"
                )
            node = node[token]
        elif isinstance(node, list):
            if token == "-" or not token.isdigit() or int(token) >= len(node):
                return f"`{clip(where)}` has no item `{clip(token)}` ({len(node)} items)"
            node = node[int(token)]
        else:
            return f"`{clip(where)}` is {short_json(node, 30)}, not an object or a list"
        walked.append(token)
    return "it does not resolve"


def clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _resolves(doc: Any, path: str) -> bool:
    try:
        jsonpointer.resolve_pointer(doc, path)
    except (jsonpointer.JsonPointerException, TypeError, ValueError, IndexError, KeyError):
        return False
    return True


def apply_json_patch(
    doc: dict[str, Any], ops: Sequence[Mapping[str, Any]], *, what: str = "flag"
) -> dict[str, Any]:
    """``doc`` after the RFC 6902 operations ``ops`` (a new document; ``doc`` is left as it is).

    Raises:
        PatchRefusal: an operation does not apply (names it: its number, op and path, and why),
            or a ``test`` operation fails (says what the document has there).
    """
    result: Any = copy.deepcopy(doc)
    for number, op in enumerate(ops, start=1):
        name, path = str(op.get("op")), str(op.get("path", ""))
        head = f"operation {number} (`{name} {clip(path)}`)"
        try:
            result = jsonpatch.JsonPatch([dict(op)]).apply(result)
        except jsonpatch.JsonPatchTestFailed:
            if not _resolves(result, path):
                raise PatchRefusal(f"{head} failed: {_missing(result, path)}") from None
            actual = jsonpointer.resolve_pointer(result, path)
            raise PatchRefusal(
                f"{head} failed: the {what} has {short_json(actual)} there, not {short_json(op.get('value'))}"
            ) from None
        except JSON_PATCH_ERRORS:
            source = str(op.get("from", ""))
            if name in ("move", "copy") and not _resolves(result, source):
                reason = f"`from` {_missing(result, source)}"
            elif name in ("add",):
                parent = pointer(*_tokens(path)[:-1])
                reason = _missing(result, parent) if not _resolves(result, parent) else "it cannot go there"
            elif name in ("move",) and path.startswith(source + "/"):
                reason = "a value cannot move into itself"
            else:
                reason = _missing(result, path)
            raise PatchRefusal(f"{head} does not apply to the {what}: {reason}") from None
        if not isinstance(result, dict):
            raise PatchRefusal(f"{head} would replace the whole {what}: a patch changes its fields")
    done: dict[str, Any] = result
    return done


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: ``target`` with ``patch`` merged in (``null`` removes a member); a new value."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# --- checking the document a patch leaves ----------------------------------------------------------


ABSENT = object()


def _bad(path: str, message: str) -> PatchRefusal:
    return PatchRefusal(f"`{clip(path)}` {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _variation_index(path: str, value: Any, count: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not _is_int(value) or not 0 <= value < count:
        raise _bad(path, f"must be a variation index from 0 to {count - 1}, not {short_json(value)}")


def _serve(path: str, serve: Any, count: int) -> None:
    if not isinstance(serve, dict):
        raise _bad(path, f"must be an object with `variation` or `rollout`, not {short_json(serve)}")
    if serve.get("variation") is not None:
        _variation_index(f"{path}/variation", serve["variation"], count)
        return
    rollout = serve.get("rollout")
    items = rollout.get("variations") if isinstance(rollout, dict) else None
    if not isinstance(items, list) or not items:
        raise _bad(path, "must serve a `variation` or a `rollout` with `variations`")
    for index, item in enumerate(items):
        where = f"{path}/rollout/variations/{index}"
        if not isinstance(item, dict) or not _is_int(item.get("weight")) or not 0 <= item["weight"] <= 100000:
            raise _bad(where, "must have a `weight` from 0 to 100000")
        _variation_index(f"{where}/variation", item.get("variation"), count)
    if sum(int(item["weight"]) for item in items) != 100000:
        raise _bad(f"{path}/rollout", "weights must add up to 100000 (100%)")


def _targets(path: str, entries: Any, count: int) -> None:
    if not isinstance(entries, list):
        raise _bad(path, f"must be a list, not {short_json(entries)}")
    for index, entry in enumerate(entries):
        where = f"{path}/{index}"
        if not isinstance(entry, dict):
            raise _bad(where, "must be an object with `values` and `variation`")
        values = entry.get("values")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _bad(f"{where}/values", "must be a list of context keys (strings)")
        _variation_index(f"{where}/variation", entry.get("variation"), count)
        kind = entry.get("contextKind", "user")
        if kind is not None and not isinstance(kind, str):
            raise _bad(f"{where}/contextKind", "must be a context kind (a string)")


def _rules(path: str, rules: Any, count: int) -> None:
    if not isinstance(rules, list):
        raise _bad(path, f"must be a list, not {short_json(rules)}")
    for index, rule in enumerate(rules):
        where = f"{path}/{index}"
        if not isinstance(rule, dict):
            raise _bad(where, "must be a rule object")
        _serve(where, rule, count)
        clauses = rule.get("clauses", [])
        if not isinstance(clauses, list):
            raise _bad(f"{where}/clauses", "must be a list")
        for number, clause in enumerate(clauses):
            spot = f"{where}/clauses/{number}"
            if not isinstance(clause, dict) or not isinstance(clause.get("attribute"), str):
                raise _bad(spot, "must be a clause with `attribute`, `op` and `values`")
            if not isinstance(clause.get("op"), str) or not isinstance(clause.get("values"), list):
                raise _bad(spot, "must be a clause with `attribute`, `op` and `values`")
        for name in ("description",):
            if rule.get(name) is not None and not isinstance(rule[name], str):
                raise _bad(f"{where}/{name}", "must be text")


def _environment(env_key: str, env: Any, count: int, changed: Iterable[str]) -> None:
    base = pointer("environments", env_key)
    if not isinstance(env, dict):
        raise _bad(base, "must be an object (a flag's environment)")
    for field in changed:
        path = f"{base}/{field}"
        value = env.get(field, ABSENT)
        if field in ENV_READ_ONLY:
            raise _bad(path, "is set by LaunchDarkly: a patch cannot change it")
        if field not in ENV_FIELDS:
            raise _bad(path, f"is not a field of a flag's environment ({', '.join(sorted(ENV_FIELDS))})")
        if value is ABSENT and field in ("on", "fallthrough", "targets", "rules", "prerequisites"):
            raise _bad(path, "cannot be removed: set it instead")
        if value is ABSENT:
            continue
        if field in ("on", "trackEvents", "trackEventsFallthrough") and not isinstance(value, bool):
            raise _bad(path, f"must be true or false, not {short_json(value)}")
        if field == "offVariation":
            _variation_index(path, value, count, optional=True)
        elif field == "fallthrough":
            _serve(path, value, count)
        elif field in ("targets", "contextTargets"):
            _targets(path, value, count)
        elif field == "rules":
            _rules(path, value, count)
        elif field == "prerequisites" and not _prerequisites_ok(value):
            raise _bad(path, "must be a list of {`key`, `variation`}")


def _prerequisites_ok(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(p, dict) and isinstance(p.get("key"), str) and _is_int(p.get("variation")) for p in value
    )


def _flag_field(field: str, value: Any) -> None:
    path = pointer(field)
    if value is ABSENT:
        if field in ("name", "variations", "tags", "temporary", "archived", "deprecated", "environments"):
            raise _bad(path, "cannot be removed: set it instead")
        return
    if field == "name" and (not isinstance(value, str) or not value.strip()):
        raise _bad(path, f"must be a non-empty name, not {short_json(value)}")
    if field == "description" and value is not None and not isinstance(value, str):
        raise _bad(path, f"must be text, not {short_json(value)}")
    if field in ("temporary", "archived", "deprecated", "includeInSnippet") and not isinstance(value, bool):
        raise _bad(path, f"must be true or false, not {short_json(value)}")
    if field == "tags" and (not isinstance(value, list) or not all(isinstance(t, str) and t for t in value)):
        raise _bad(path, "must be a list of tags (non-empty strings)")
    if field == "variations" and (
        not isinstance(value, list)
        or len(value) < 2
        or not all(isinstance(v, dict) and "value" in v for v in value)
    ):
        raise _bad(path, "must be a list of at least two variations, each with a `value`")
    if field == "clientSideAvailability" and not (
        isinstance(value, dict) and all(isinstance(v, bool) for v in value.values())
    ):
        raise _bad(path, "must be {`usingMobileKey`: true|false, `usingEnvironmentId`: true|false}")


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    keys = list(before) + [k for k in after if k not in before]
    return [k for k in keys if before.get(k, ABSENT) != after.get(k, ABSENT)]


def check_flag_document(before: dict[str, Any], after: dict[str, Any]) -> list[Part]:
    """Check what a patch did to a flag; the parts it changed.

    Raises:
        PatchRefusal: it changes a field LaunchDarkly sets (``/key``, ``/_version``...), a field no
            flag has, an environment the flag does not have, or leaves a value of the wrong type.
    """
    parts: list[Part] = []
    variations = after.get("variations")
    count = len(variations) if isinstance(variations, list) else 0
    for field in changed_keys(before, after):
        if field in FLAG_READ_ONLY:
            raise _bad(pointer(field), "is set by LaunchDarkly: a patch cannot change it")
        if field not in FLAG_FIELDS:
            raise _bad(
                pointer(field), "is not a field of a LaunchDarkly flag (see `show` for the flag's fields)"
            )
        value = after.get(field, ABSENT)
        _flag_field(field, value)
        if field != "environments":
            parts.append(("flag", field))
            continue
        if not isinstance(value, dict):
            raise _bad("/environments", "must be an object of environments")
        was: dict[str, Any] = before.get("environments") or {}
        for env_key in changed_keys(was, value):
            if env_key not in was:
                known = ", ".join(sorted(was)) or "none"
                raise _bad(pointer("environments", env_key), f"is not an environment of this flag ({known})")
            if env_key not in value:
                raise _bad(pointer("environments", env_key), "cannot be removed from the flag by a patch")
            fields = changed_keys(
                was[env_key] or {}, value[env_key] if isinstance(value[env_key], dict) else {}
            )
            _environment(env_key, value[env_key], count, fields)
            parts.extend((env_key, f) for f in fields)
    if ("flag", "variations") in parts:
        # Indices elsewhere must still point at a variation.
        for env_key, env in (after.get("environments") or {}).items():
            _environment(
                env_key, env, count, ["offVariation", "fallthrough", "targets", "contextTargets", "rules"]
            )
    return parts


def check_project_document(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Check what a patch did to a project; the fields it changed.

    Raises:
        PatchRefusal: a read-only or unknown field, or a value of the wrong type.
    """
    fields = changed_keys(before, after)
    for field in fields:
        path = pointer(field)
        if field in PROJECT_READ_ONLY:
            raise _bad(path, "is set by LaunchDarkly: a patch cannot change it")
        if field not in PROJECT_FIELDS:
            raise _bad(path, f"is not a field a project patch changes ({', '.join(sorted(PROJECT_FIELDS))})")
        value = after.get(field, ABSENT)
        if field in ("name", "tags", "includeInSnippetByDefault") and value is ABSENT:
            raise _bad(path, "cannot be removed: set it instead")
        if field == "name" and (not isinstance(value, str) or not value.strip()):
            raise _bad(path, f"must be a non-empty name, not {short_json(value)}")
        if field == "tags" and (
            not isinstance(value, list) or not all(isinstance(t, str) and t for t in value)
        ):
            raise _bad(path, "must be a list of tags (non-empty strings)")
        if field == "includeInSnippetByDefault" and not isinstance(value, bool):
            raise _bad(path, f"must be true or false, not {short_json(value)}")
        if field == "defaultClientSideAvailability" and not (
            isinstance(value, dict)
            and set(value) <= {"usingMobileKey", "usingEnvironmentId"}
            and all(isinstance(v, bool) for v in value.values())
        ):
            raise _bad(path, "must be {`usingMobileKey`: true|false, `usingEnvironmentId`: true|false}")
        if field == "defaultReleasePipelineKey" and value is not ABSENT and not isinstance(value, str):
            raise _bad(path, f"must be a release pipeline key, not {short_json(value)}")
    return fields


def normalise_project(doc: dict[str, Any]) -> dict[str, Any]:
    """A project as LaunchDarkly keeps it: "tags are always deduplicated and returned in
    alphabetical order, regardless of the array index used in the patch path" (seed 004)."""
    tags = doc.get("tags")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        return {**doc, "tags": sorted(set(tags))}
    return doc
