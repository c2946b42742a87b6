"""How the sandbox changes flags: patches, approval requirements, conflicts, audit.

Semantic patches go through ``commands.engine`` (the same engine the bot previews with); JSON
patches through the ``jsonpatch`` library; merge patches follow RFC 7386. Every refusal is an
``ApiError`` carrying the status and body LaunchDarkly would answer.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from typing import Any

import jsonpatch
from pydantic import ValidationError

from bot.launchdarkly.sandbox.state import Account, JsonDoc, Project, SandboxState
from commands.engine import apply as engine_apply
from commands.engine import touched_parts
from commands.errors import EngineRefusal
from commands.instructions import SemanticPatch
from commands.patches import (
    JSON_PATCH_ERRORS,
    PatchRefusal,
    apply_merge_patch,
    check_flag_document,
    merge_body,
)


class ApiError(Exception):
    """An error answer: HTTP ``status`` and LaunchDarkly's body ``{code, message, id, ...}``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> JsonDoc:
        return {"code": self.code, "message": self.message, "id": str(uuid.uuid4()), **self.extra}


def invalid(message: str, **extra: Any) -> ApiError:
    return ApiError(400, "invalid_request", message, **extra)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


# --- lookups ------------------------------------------------------------------------------------


def get_project(state: SandboxState, key: str) -> Project:
    project = state.projects.get(key)
    if project is None:
        raise not_found(f"Unknown project key '{key}'")
    return project


def get_environment(project: Project, key: str) -> JsonDoc:
    env = project.environments.get(key)
    if env is None:
        raise not_found(f"Unknown environment key '{key}'")
    return env


def get_flag(project: Project, key: str) -> JsonDoc:
    flag = project.flags.get(key)
    if flag is None:
        raise not_found(f"Unknown flag key '{key}'")
    return flag


def needs_approval(env: JsonDoc, flag: JsonDoc) -> bool:
    """Whether changes to ``flag``'s targeting in ``env`` need an approval request.

    ``required`` with no ``requiredApprovalTags`` covers every flag; a flag carrying one of the
    ``requiredApprovalTags`` needs approval in any case.
    """
    settings = env.get("approvalSettings") or {}
    tags = set(settings.get("requiredApprovalTags") or [])
    tagged = bool(tags & set(flag.get("tags") or []))
    return (bool(settings.get("required")) and not tags) or tagged


# The 405 message names the action LaunchDarkly's access control would check.
_ACTIONS = {
    "on": "updateOn",
    "fallthrough": "updateFallthrough",
    "offVariation": "updateOffVariation",
    "prerequisites": "updatePrerequisites",
    "trackEvents": "updateTrackEvents",
    "targets": "updateTargets",
    "contextTargets": "updateTargets",
    "rules": "updateRules",
    "rule": "updateRules",
}


def _action_for(part: str) -> str:
    family = part.split(":", 1)[0]
    return _ACTIONS.get(family, "updateFlagConfiguration")


def approval_required(state: SandboxState, part: str) -> ApiError:
    """The 405 LaunchDarkly answers when a change needs an approval request."""
    if state.switches.approval_405_message == "action":
        message = f"Flag configuration updates require approval: action '{_action_for(part)}' not allowed"
    else:
        message = "This environment requires approval for changes to this flag"
    return ApiError(405, "method_not_allowed", message)


# --- conflicts ---------------------------------------------------------------------------------


def _overlap(a: str, b: str) -> bool:
    """Whether two touched parts of one environment overlap.

    Equal parts overlap; so do a whole family and one of its members ("targets" replaces the
    targets of every variation, "rules" reorders or replaces every rule).
    """
    if a == b:
        return True
    for family, member in (("targets", "targets:"), ("rules", "rule:")):
        if (a == family and b.startswith(member)) or (b == family and a.startswith(member)):
            return True
    return False


def _parts(env: str, instructions: list[JsonDoc]) -> set[tuple[str, str]]:
    try:
        return touched_parts(SemanticPatch(environmentKey=env, instructions=instructions))
    except ValidationError:
        return set()


def pending_conflicts(
    state: SandboxState,
    project: str,
    flag: str,
    parts: set[tuple[str, str]],
    *,
    exclude_approval: str | None = None,
) -> list[JsonDoc]:
    """Conflict entries ``{instruction, reason}`` against pending approval requests and
    scheduled changes of the same flag that touch an overlapping part of the same environment."""
    if not parts:
        return []
    conflicts: list[JsonDoc] = []
    pending: list[tuple[str, str, list[JsonDoc]]] = []
    for approval_id, stored in state.approvals.items():
        same_flag = (stored.project, stored.flag) == (project, flag) and approval_id != exclude_approval
        if same_flag and stored.doc["status"] == "pending" and stored.doc["reviewStatus"] != "declined":
            pending.append((f"approval request {approval_id}", stored.env, stored.doc["instructions"]))
    for change_id, scheduled in state.scheduled.items():
        if (scheduled.project, scheduled.flag) == (project, flag):
            pending.append((f"scheduled change {change_id}", scheduled.env, scheduled.doc["instructions"]))
    for what, env, instructions in pending:
        for instruction in instructions:
            theirs = _parts(env, [instruction])
            if any(e1 == e2 and _overlap(p1, p2) for (e1, p1) in parts for (e2, p2) in theirs):
                conflicts.append({"instruction": instruction, "reason": f"conflicts with pending {what}"})
    return conflicts


def check_conflicts(
    state: SandboxState, project: str, flag: str, parts: set[tuple[str, str]], ignore: bool, **kw: Any
) -> None:
    """Raise the 400 for a change that conflicts with pending changes, unless ``ignore``."""
    if ignore:
        return
    conflicts = pending_conflicts(state, project, flag, parts, **kw)
    if conflicts:
        raise invalid(
            f"This change conflicts with {len(conflicts)} pending change(s) on this flag: "
            f"{conflicts[0]['reason']}. Retry with ignoreConflicts=true to apply it anyway",
            conflicts=conflicts,
        )


# --- applying changes --------------------------------------------------------------------------


def parse_semantic_patch(body: Any) -> SemanticPatch:
    """Validate a semantic-patch body; a malformed one is LaunchDarkly's 400."""
    try:
        return SemanticPatch.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise invalid(f"Invalid semantic patch: {where}: {first['msg']}") from exc


def run_engine(state: SandboxState, project: Project, flag: JsonDoc, patch: SemanticPatch) -> JsonDoc:
    """The flag after ``patch``, computed by the engine; a refusal is a 400 with its message."""
    try:
        return engine_apply(flag, patch, other_flags=project.flags, now_ms=state.clock())
    except EngineRefusal as refusal:
        raise invalid(refusal.message) from refusal


def store_flag(
    state: SandboxState,
    project_key: str,
    key: str,
    after: JsonDoc,
    *,
    member: JsonDoc | None,
    comment: str | None,
    environments: list[str],
) -> JsonDoc:
    """Store (or, for a ``_deleted`` result, remove) a flag and write LaunchDarkly's audit entry;
    return the document to answer."""
    project = get_project(state, project_key)
    before = project.flags.get(key)
    deleted = bool(after.pop("_deleted", False))
    if deleted:
        project.flags.pop(key, None)
    else:
        project.flags[key] = after
    state.record_flag_change(
        project=project_key,
        flag_key=key,
        before=before,
        after=None if deleted else after,
        member=member,
        comment=comment,
        environments=environments,
        title_verb="deleted the flag" if deleted else "updated the flag",
    )
    return after


def changed_environments(before: JsonDoc, after: JsonDoc) -> list[str]:
    """The environments whose configuration differs between two versions of a flag."""
    was, now = before.get("environments") or {}, after.get("environments") or {}
    return sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))


def semantic_patch(
    state: SandboxState,
    account: Account,
    project_key: str,
    flag_key: str,
    body: Any,
    *,
    dry_run: bool,
    ignore_conflicts: bool,
) -> JsonDoc:
    """PATCH a flag with a semantic patch: approvals, conflicts, engine, store, audit."""
    project = get_project(state, project_key)
    flag = get_flag(project, flag_key)
    patch = parse_semantic_patch(body)
    parts = touched_parts(patch)
    if patch.environmentKey is not None:
        env = get_environment(project, patch.environmentKey)
        refuse_dry_run = state.switches.dry_run_in_approval_env == "405"
        if parts and needs_approval(env, flag) and (not dry_run or refuse_dry_run):
            raise approval_required(state, sorted(parts)[0][1])
    check_conflicts(state, project_key, flag_key, parts, ignore_conflicts)
    after = run_engine(state, project, flag, patch)
    if dry_run:
        after.pop("_deleted", None)
        return after
    envs = [patch.environmentKey] if patch.environmentKey and parts else changed_environments(flag, after)
    answer = store_flag(
        state,
        project_key,
        flag_key,
        after,
        member=account.member,
        comment=patch.comment,
        environments=envs,
    )
    state.record(
        {
            "memberId": account.member_id,
            "kind": "semanticPatch",
            "project": project_key,
            "flag": flag_key,
            "environmentKey": patch.environmentKey,
            "instructions": [i.model_dump(mode="json", exclude_unset=True) for i in patch.instructions],
            "comment": patch.comment,
        }
    )
    return answer


def _checked(before: JsonDoc, after: JsonDoc) -> set[tuple[str, str]]:
    """The (environment, field) parts a JSON or merge patch changed; LaunchDarkly's 400 when it
    changes a field LaunchDarkly sets, a field no flag has, or leaves a value of the wrong type
    (the same checks the bot makes before it sends anything: ``commands.patches``)."""
    try:
        parts = check_flag_document(before, after)
    except PatchRefusal as refusal:
        raise invalid(f"Invalid patch: {refusal.message}") from refusal
    return {(scope, field) for scope, field in parts if scope != "flag"}


def _conflict_parts(parts: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The parts a patch changed, named as the engine names what instructions touch (a whole
    list: ``targets``, ``rules``), so conflicts with pending changes are found the same way."""
    family = {"contextTargets": "targets", "trackEventsFallthrough": "trackEvents"}
    return {(env, family.get(field, field)) for env, field in parts}


def _bump(before: JsonDoc, after: JsonDoc, now_ms: int) -> JsonDoc:
    """Move versions as LaunchDarkly does: the flag's always, each changed environment's too."""
    after["_version"] = int(before.get("_version", 0)) + 1
    for key, env in (after.get("environments") or {}).items():
        if env != (before.get("environments") or {}).get(key):
            env["version"] = int(env.get("version", 0)) + 1
            env["lastModified"] = now_ms
    return after


def _check_read_only(before: JsonDoc, after: JsonDoc) -> None:
    for field in ("key", "_version", "creationDate", "_links", "kind"):
        if before.get(field) != after.get(field):
            raise invalid(f"'{field}' cannot be changed by a patch")


def _approval_for_parts(
    state: SandboxState, project: Project, flag: JsonDoc, touched: set[tuple[str, str]], dry_run: bool
) -> None:
    """The 405 of a change to an environment that requires approval (a dry run answers its preview
    unless the ``dry_run_in_approval_env`` switch says 405, as for semantic patches)."""
    if dry_run and state.switches.dry_run_in_approval_env != "405":
        return
    for env_key, part in sorted(touched):
        env = project.environments.get(env_key)
        if env is not None and needs_approval(env, flag):
            raise approval_required(state, part)


def plain_patch(
    state: SandboxState,
    account: Account,
    project_key: str,
    flag_key: str,
    body: Any,
    *,
    dry_run: bool,
    ignore_conflicts: bool = False,
) -> JsonDoc:
    """PATCH a flag with a JSON patch (``{"patch": [...], "comment"}``, or a bare array: ``test``
    operations honoured) or else a JSON merge patch (a plain object of the fields to change, or with
    a comment ``{"merge": {...}, "comment": "..."}``: LaunchDarkly's "updates with comments");
    approvals, conflicts (``ignoreConflicts``) and ``dryRun`` as for semantic patches."""
    project = get_project(state, project_key)
    flag = get_flag(project, flag_key)
    if isinstance(body, list) or (isinstance(body, dict) and "patch" in body):
        after, record = _json_patched(flag, body)
    else:
        after, record = _merge_patched(flag, body)
    _check_read_only(flag, after)
    parts = _checked(flag, after)
    _approval_for_parts(state, project, flag, parts, dry_run)
    check_conflicts(state, project_key, flag_key, _conflict_parts(parts), ignore_conflicts)
    _bump(flag, after, state.clock())
    if not dry_run:
        comment = record["comment"]
        store_flag(
            state,
            project_key,
            flag_key,
            after,
            member=account.member,
            comment=comment if isinstance(comment, str) else None,
            environments=changed_environments(flag, after),
        )
        state.record({"memberId": account.member_id, "project": project_key, "flag": flag_key, **record})
    return after


def _json_patched(flag: JsonDoc, body: Any) -> tuple[JsonDoc, JsonDoc]:
    """The flag after a JSON patch body, and what the sandbox records of it."""
    ops = _operations(body.get("patch") if isinstance(body, dict) else body)
    comment = body.get("comment") if isinstance(body, dict) else None
    after = _apply_operations(flag, ops, what="flag")
    return after, {"kind": "jsonPatch", "patch": ops, "comment": comment}


def _merge_patched(flag: JsonDoc, body: Any) -> tuple[JsonDoc, JsonDoc]:
    """The flag after a merge patch body, and what the sandbox records of it."""
    if not isinstance(body, dict):
        raise invalid("A merge patch is a JSON object")
    if "instructions" in body:
        # LaunchDarkly reads a semantic patch sent without its Content-Type as another format.
        raise invalid(
            "This looks like a semantic patch: send it with "
            "'Content-Type: application/json; domain-model=launchdarkly.semanticpatch'"
        )
    merge = merge_body(body)
    comment = body.get("comment") if merge is not body else None
    after: JsonDoc = apply_merge_patch(copy.deepcopy(flag), merge)
    return after, {"kind": "mergePatch", "patch": merge, "comment": comment}


def _operations(ops: Any) -> list[JsonDoc]:
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise invalid("A JSON patch is an array of operations")
    return ops


def _apply_operations(doc: JsonDoc, ops: list[JsonDoc], *, what: str) -> JsonDoc:
    """``doc`` after a JSON patch: a failing ``test`` operation is LaunchDarkly's 409, an operation
    that does not apply (or replaces the whole ``what``) its 400."""
    try:
        result = jsonpatch.JsonPatch(ops).apply(doc)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise ApiError(409, "optimistic_locking_error", f"A test operation failed: {exc}") from exc
    except JSON_PATCH_ERRORS as exc:
        raise invalid(f"Invalid JSON patch: {exc}") from exc
    if not isinstance(result, dict):
        raise invalid(f"Invalid JSON patch: a patch changes the {what}'s fields, not the whole {what}")
    return result


def patch_document(doc: JsonDoc, ops: Any, *, editable: Iterable[str]) -> JsonDoc:
    """Apply a bare-array JSON patch to a link or project, touching only ``editable`` fields."""
    operations = _operations(ops)
    allowed = set(editable)
    for op in operations:
        field = str(op.get("path", "")).split("/")[1:2]
        if op.get("op") != "test" and (not field or field[0] not in allowed):
            raise invalid(f"'{op.get('path')}' cannot be changed; editable: {', '.join(sorted(allowed))}")
    return _apply_operations(doc, operations, what="document")
