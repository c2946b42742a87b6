"""What a patch amounts to before it is sent: the document after it, the environments and fields
it changes, the semantic-patch kinds the policy reads, its operations in words, a project's
before → after; and whether a project shows a patch (a project patch has no comment to find)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from commands.patches.documents import (
    ABSENT,
    Part,
    PatchRefusal,
    apply_json_patch,
    apply_merge_patch,
    changed_keys,
    check_flag_document,
    check_project_document,
    clip,
    normalise_project,
    pointer,
    short_json,
)
from commands.summary import FactChange, value_text

FlagShape = Literal["json-patch", "merge-patch"]

_PROJECT_LABELS = {
    "name": "Project name",
    "tags": "Project tags",
    "includeInSnippetByDefault": "New flags in the JavaScript snippet",
    "defaultClientSideAvailability": "New flags' client-side SDKs",
    "defaultReleasePipelineKey": "Default release pipeline",
}

#: What a change of one part amounts to, in semantic-patch kinds: the policy reads these (a patch
#: that sets ``/archived`` is an ``archiveFlag`` and needs a second person like one).
_ENV_KINDS: dict[str, tuple[str, ...]] = {
    "rules": ("replaceRules",),
    "targets": ("replaceTargets",),
    "contextTargets": ("replaceTargets",),
    "fallthrough": ("updateFallthroughVariationOrRollout",),
    "offVariation": ("updateOffVariation",),
    "prerequisites": ("replacePrerequisites",),
    "trackEvents": ("updateTrackEvents",),
    "trackEventsFallthrough": ("updateTrackEventsFallthrough",),
}
_FLAG_KINDS: dict[str, tuple[str, ...]] = {
    "name": ("updateName",),
    "description": ("updateDescription",),
    "customProperties": ("replaceCustomProperties",),
    "variations": ("updateVariation",),
    "defaults": ("updateDefaultVariation",),
    "clientSideAvailability": ("turnOnClientSideAvailability", "turnOffClientSideAvailability"),
    "includeInSnippet": ("turnOnClientSideAvailability", "turnOffClientSideAvailability"),
}


@dataclass(frozen=True)
class FlagPatchPlan:
    """A JSON or merge patch applied to a flag document, before anything is sent."""

    after: dict[str, Any]
    environments: tuple[str, ...]
    """The environments whose targeting it changes, sorted."""
    flag_fields: tuple[str, ...]
    """The flag-level fields it changes, sorted."""
    parts: tuple[Part, ...]
    kinds: tuple[str, ...]
    """The semantic-patch kinds it amounts to (for the policy)."""
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class ProjectPatchPlan:
    """A JSON patch applied to a project document, before anything is sent."""

    after: dict[str, Any]
    fields: tuple[str, ...]
    sentences: tuple[str, ...]


# --- plans ---------------------------------------------------------------------------------------


def operation_sentence(op: Mapping[str, Any]) -> str:
    """One RFC 6902 operation in words."""
    name, path = str(op.get("op")), clip(str(op.get("path", "")))
    value = short_json(op.get("value"))
    source = clip(str(op.get("from", "")))
    return {
        "add": f"Add {value} at {path}",
        "remove": f"Remove {path}",
        "replace": f"Set {path} to {value}",
        "move": f"Move {source} to {path}",
        "copy": f"Copy {source} to {path}",
        "test": f"Check that {path} is {value}",
    }.get(name, f"{name} {path}")


def merge_sentences(patch: Mapping[str, Any], doc: Any, prefix: str = "") -> list[str]:
    """A merge patch in words, member by member (objects merged into objects are walked)."""
    out: list[str] = []
    for key, value in patch.items():
        path = prefix + pointer(key)
        here = doc.get(key) if isinstance(doc, dict) else None
        if value is None:
            out.append(f"Remove {clip(path)}")
        elif isinstance(value, dict) and isinstance(here, dict):
            out.extend(merge_sentences(value, here, path))
        else:
            out.append(f"Set {clip(path)} to {short_json(value)}")
    return out


def _kinds(before: dict[str, Any], after: dict[str, Any], parts: Iterable[Part]) -> tuple[str, ...]:
    kinds: list[str] = []
    for scope, field in parts:
        if scope != "flag":
            if field == "on":
                on = bool(((after.get("environments") or {}).get(scope) or {}).get("on"))
                found: tuple[str, ...] = ("turnFlagOn",) if on else ("turnFlagOff",)
            else:
                found = _ENV_KINDS.get(field, ())
        elif field in ("archived", "deprecated", "temporary"):
            now = bool(after.get(field))
            found = {
                ("archived", True): ("archiveFlag",),
                ("archived", False): ("restoreFlag",),
                ("deprecated", True): ("deprecateFlag",),
                ("deprecated", False): ("restoreDeprecatedFlag",),
                ("temporary", True): ("makeFlagTemporary",),
                ("temporary", False): ("makeFlagPermanent",),
            }[(field, now)]
        elif field == "tags":
            was, now_tags = set(before.get("tags") or []), set(after.get("tags") or [])
            found = (("addTags",) if now_tags - was else ()) + (("removeTags",) if was - now_tags else ())
        elif field in ("maintainerId", "maintainerTeamKey"):
            found = (
                ("updateMaintainerMember",)
                if after.get("maintainerId")
                else ("updateMaintainerTeam",)
                if after.get("maintainerTeamKey")
                else ("removeMaintainer",)
            )
        else:
            found = _FLAG_KINDS.get(field, ())
        kinds.extend(k for k in found if k not in kinds)
    return tuple(kinds)


def plan_flag_patch(before: dict[str, Any], shape: FlagShape, body: Any) -> FlagPatchPlan:
    """Apply a ``json-patch`` (``{"patch": [...]}`` or a bare array) or a ``merge-patch`` (an
    object, or ``{"merge": {...}}``) to ``before``, the flag as just read.

    Raises:
        PatchRefusal: the patch does not apply, or leaves a flag LaunchDarkly would refuse, or
            changes nothing.
    """
    if shape == "json-patch":
        ops = body.get("patch") if isinstance(body, dict) else body
        if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
            raise PatchRefusal("a JSON patch is an array of operations")
        after = apply_json_patch(before, ops)
        sentences = [operation_sentence(op) for op in ops]
    else:
        merge = merge_body(body)
        after = apply_merge_patch(before, merge)
        sentences = merge_sentences(merge, before)
    parts = check_flag_document(before, after)
    if not parts:
        raise PatchRefusal("the patch changes nothing: the flag already looks like that")
    environments = tuple(sorted({scope for scope, _ in parts if scope != "flag"}))
    fields = tuple(sorted(field for scope, field in parts if scope == "flag"))
    return FlagPatchPlan(
        after, environments, fields, tuple(parts), _kinds(before, after, parts), tuple(sentences)
    )


def merge_body(body: Any) -> dict[str, Any]:
    """The object a merge patch merges: the body itself, or its ``merge`` member when the body is
    LaunchDarkly's "update with comment" shape ``{"merge": {...}, "comment": "..."}``.

    Raises:
        PatchRefusal: not an object.
    """
    if isinstance(body, dict) and set(body) <= {"merge", "comment"} and isinstance(body.get("merge"), dict):
        inner: dict[str, Any] = body["merge"]
        return inner
    if not isinstance(body, dict):
        raise PatchRefusal("a merge patch is a JSON object")
    return body


def plan_project_patch(before: dict[str, Any], ops: Any) -> ProjectPatchPlan:
    """Apply a JSON patch to a project document (tags then deduplicated and sorted, as seed 004 says).

    Raises:
        PatchRefusal: it does not apply, touches a field a project patch cannot change, or
            changes nothing.
    """
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise PatchRefusal("a project patch is an array of operations")
    after = normalise_project(apply_json_patch(before, ops, what="project"))
    fields = check_project_document(before, after)
    if not fields:
        raise PatchRefusal("the patch changes nothing: the project already looks like that")
    sentences = [operation_sentence(op) for op in ops]
    if "tags" in fields:
        sentences.append("LaunchDarkly keeps project tags deduplicated and in alphabetical order")
    return ProjectPatchPlan(after, tuple(fields), tuple(sentences))


def project_changes(before: dict[str, Any], after: dict[str, Any]) -> list[FactChange]:
    """Before → after of a project's fields, as a card shows them."""
    out: list[FactChange] = []
    for field in changed_keys(before, after):
        label = _PROJECT_LABELS.get(field, field)
        was, now = before.get(field, ABSENT), after.get(field, ABSENT)
        out.append(FactChange(label, _project_text(was), _project_text(now)))
    return out


def _project_text(value: Any) -> str | None:
    if value is ABSENT:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{k} {value_text(v)}" for k, v in sorted(value.items())) or "—"
    return value_text(value)


def project_shows(before: dict[str, Any], current: dict[str, Any], ops: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the project ``current`` shows every field a patch set on ``before``.

    A field that differs from what the patch set still counts when applying the patch to
    ``current`` would leave it as it is (someone added another tag since, say).
    """
    try:
        want = normalise_project(apply_json_patch(before, ops, what="project"))
    except PatchRefusal:
        return False
    fields = changed_keys(before, want)
    if not fields:
        return False
    try:
        again: dict[str, Any] | None = normalise_project(apply_json_patch(current, ops, what="project"))
    except PatchRefusal:
        again = None
    for field in fields:
        have = current.get(field, ABSENT)
        if have == want.get(field, ABSENT):
            continue
        if again is not None and again.get(field, ABSENT) == have:
            continue
        return False
    return True
