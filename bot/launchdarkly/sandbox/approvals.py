"""Approval requests and scheduled changes in the sandbox.

Lifecycle of an approval request: ``reviewStatus`` pending → approved (enough approvals) or
declined (any decline); ``status`` pending → completed when applied (scheduled when approved with
an ``executionDate``, then completed or failed when it runs), failed when it no longer applies.
Scheduled changes wait in ``state.scheduled`` until ``run_due(state, now)`` runs them.
"""

from __future__ import annotations

from typing import Any

from bot.launchdarkly.sandbox.changes import (
    ApiError,
    approval_required,
    check_conflicts,
    get_environment,
    get_flag,
    get_project,
    invalid,
    needs_approval,
    not_found,
    parse_semantic_patch,
    pending_conflicts,
    run_engine,
    store_flag,
)
from bot.launchdarkly.sandbox.state import (
    Account,
    JsonDoc,
    SandboxState,
    StoredApproval,
    StoredScheduled,
    new_id,
)
from commands.engine import touched_parts
from commands.instructions import SemanticPatch


def approvals_path(project: str, flag: str, env: str) -> str:
    return f"/api/v2/projects/{project}/flags/{flag}/environments/{env}/approval-requests"


def scheduled_path(project: str, flag: str, env: str) -> str:
    return f"/api/v2/projects/{project}/flags/{flag}/environments/{env}/scheduled-changes"


def _patch_for(env: str, instructions: Any) -> SemanticPatch:
    if not isinstance(instructions, list) or not instructions:
        raise invalid("instructions must be a non-empty array")
    return parse_semantic_patch({"environmentKey": env, "instructions": instructions})


def _instructions(patch: SemanticPatch) -> list[JsonDoc]:
    return [i.model_dump(mode="json", exclude_unset=True) for i in patch.instructions]


def _body(body: Any) -> JsonDoc:
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    return body


# --- approval requests ---------------------------------------------------------------------------


def create_approval(
    state: SandboxState, account: Account, project_key: str, flag_key: str, env_key: str, body: Any
) -> JsonDoc:
    """POST an approval request: validated against the current flag, stored pending."""
    body = _body(body)
    project = get_project(state, project_key)
    flag = get_flag(project, flag_key)
    get_environment(project, env_key)
    description = body.get("description")
    if not isinstance(description, str) or not description:
        raise invalid("description is required")
    patch = _patch_for(env_key, body.get("instructions"))
    run_engine(state, project, flag, patch)  # refuse now what could never apply
    request_id = new_id()
    doc: JsonDoc = {
        "_id": request_id,
        "_version": 1,
        "creationDate": state.clock(),
        "serviceKind": "launchdarkly",
        "requestorId": account.member_id,
        "description": description,
        "reviewStatus": "pending",
        "allReviews": [],
        "notifyMemberIds": list(body.get("notifyMemberIds") or []),
        "status": "pending",
        "instructions": _instructions(patch),
        "conflicts": pending_conflicts(state, project_key, flag_key, touched_parts(patch)),
        "_links": {
            "self": {
                "href": f"{approvals_path(project_key, flag_key, env_key)}/{request_id}",
                "type": "application/json",
            }
        },
    }
    if body.get("notifyTeamKeys"):
        doc["notifyTeamKeys"] = list(body["notifyTeamKeys"])
    for field in ("executionDate", "operatingOnId"):
        if body.get(field) is not None:
            doc[field] = body[field]
    state.approvals[request_id] = StoredApproval(project_key, flag_key, env_key, doc, body.get("comment"))
    state.record(
        {
            "memberId": account.member_id,
            "kind": "createApprovalRequest",
            "project": project_key,
            "flag": flag_key,
            "environmentKey": env_key,
            "approvalRequestId": request_id,
        }
    )
    return doc


def find_approval(state: SandboxState, project: str, flag: str, env: str, request_id: str) -> StoredApproval:
    """The approval request with this id on this flag and environment (else 404)."""
    get_environment(get_project(state, project), env)
    stored = state.approvals.get(request_id)
    if stored is None or (stored.project, stored.flag, stored.env) != (project, flag, env):
        raise not_found(f"Unknown approval request '{request_id}'")
    return stored


def review_approval(state: SandboxState, account: Account, stored: StoredApproval, body: Any) -> JsonDoc:
    """POST a review (approve, decline, comment) as the token's member."""
    body = _body(body)
    kind = body.get("kind")
    if kind not in ("approve", "decline", "comment"):
        raise invalid("kind must be one of approve, decline, comment")
    doc = stored.doc
    env = get_environment(get_project(state, stored.project), stored.env)
    settings = env.get("approvalSettings") or {}
    if kind != "comment":
        if doc["status"] != "pending":
            raise invalid(f"This approval request is {doc['status']} and can no longer be reviewed")
        if doc.get("requestorId") == account.member_id and not settings.get("canReviewOwnRequest"):
            raise invalid("You cannot review your own approval request in this environment")
    review: JsonDoc = {
        "_id": new_id(),
        "kind": kind,
        "creationDate": state.clock(),
        "memberId": account.member_id,
    }
    if body.get("comment") is not None:
        review["comment"] = body["comment"]
    doc["allReviews"].append(review)
    if kind == "decline":
        doc["reviewStatus"] = "declined"
    elif kind == "approve" and doc["reviewStatus"] != "declined":
        approvers = {r["memberId"] for r in doc["allReviews"] if r["kind"] == "approve"}
        if len(approvers) >= int(settings.get("minNumApprovals") or 1):
            doc["reviewStatus"] = "approved"
    doc["_version"] += 1
    state.record(
        {
            "memberId": account.member_id,
            "kind": f"review:{kind}",
            "project": stored.project,
            "flag": stored.flag,
            "environmentKey": stored.env,
            "approvalRequestId": doc["_id"],
        }
    )
    return doc


def apply_approval(state: SandboxState, account: Account, stored: StoredApproval, body: Any) -> JsonDoc:
    """POST apply: only an approved (or, where allowed, declined) pending request; re-checked
    against the flag as it is now. One that no longer applies is marked failed and refused."""
    doc = stored.doc
    project = get_project(state, stored.project)
    env = get_environment(project, stored.env)
    settings = env.get("approvalSettings") or {}
    if doc["status"] != "pending":
        raise invalid(f"This approval request is already {doc['status']}")
    allowed = doc["reviewStatus"] == "approved" or (
        doc["reviewStatus"] == "declined" and settings.get("canApplyDeclinedChanges")
    )
    if not allowed:
        raise invalid(
            f"This approval request is {doc['reviewStatus']}: it must be approved before it is applied"
        )
    patch = _patch_for(stored.env, doc["instructions"])
    flag = get_flag(project, stored.flag)
    comment = body.get("comment") if isinstance(body, dict) else None
    execution = doc.get("executionDate")
    if isinstance(execution, int) and execution > state.clock():
        run_engine(state, project, flag, patch)  # still applicable now
        change_id = new_id()
        state.scheduled[change_id] = StoredScheduled(
            stored.project,
            stored.flag,
            stored.env,
            _scheduled_doc(change_id, stored, account, execution, doc["instructions"], state.clock()),
            comment,
            approval_id=doc["_id"],
        )
        doc["status"] = "scheduled"
    else:
        try:
            after = run_engine(state, project, flag, patch)
        except ApiError:
            doc["status"] = "failed"
            doc["_version"] += 1
            raise
        store_flag(
            state,
            stored.project,
            stored.flag,
            after,
            member=account.member,
            comment=comment if isinstance(comment, str) else stored.comment,
            environments=[stored.env],
        )
        doc["status"] = "completed"
        doc["appliedDate"] = state.clock()
    doc["appliedByMemberId"] = account.member_id
    doc["_version"] += 1
    state.record(
        {
            "memberId": account.member_id,
            "kind": "applyApprovalRequest",
            "project": stored.project,
            "flag": stored.flag,
            "environmentKey": stored.env,
            "approvalRequestId": doc["_id"],
            "requestorId": doc.get("requestorId"),
            "instructions": doc["instructions"],
            "comment": comment,
        }
    )
    return doc


def delete_approval(state: SandboxState, account: Account, stored: StoredApproval) -> None:
    """DELETE an approval request."""
    del state.approvals[stored.doc["_id"]]
    state.record(
        {
            "memberId": account.member_id,
            "kind": "deleteApprovalRequest",
            "project": stored.project,
            "flag": stored.flag,
            "environmentKey": stored.env,
            "approvalRequestId": stored.doc["_id"],
        }
    )


def generic_doc(state: SandboxState, stored: StoredApproval, expand: set[str]) -> JsonDoc:
    """An approval request as ``/api/v2/approval-requests`` shows it (resourceId, expansions)."""
    doc = dict(stored.doc)
    doc["resourceId"] = f"proj/{stored.project}:env/{stored.env}:flag/{stored.flag}"
    project = state.projects.get(stored.project)
    if project is not None:
        env = project.environments.get(stored.env)
        if env is not None:
            doc["approvalSettings"] = env.get("approvalSettings")
            if "environments" in expand:
                doc["environments"] = [env]
        if "project" in expand:
            doc["project"] = project.doc
        if "flag" in expand and stored.flag in project.flags:
            doc["flag"] = project.flags[stored.flag]
    return doc


# --- scheduled changes -------------------------------------------------------------------------


def _scheduled_doc(
    change_id: str,
    stored: StoredApproval | None,
    account: Account,
    execution: int,
    instructions: list[JsonDoc],
    now: int,
    project: str = "",
    flag: str = "",
    env: str = "",
) -> JsonDoc:
    if stored is not None:
        project, flag, env = stored.project, stored.flag, stored.env
    return {
        "_id": change_id,
        "_creationDate": now,
        "_maintainerId": account.member_id,
        "_version": 1,
        "executionDate": execution,
        "instructions": instructions,
        "conflicts": None,
        "_links": {
            "self": {"href": f"{scheduled_path(project, flag, env)}/{change_id}", "type": "application/json"}
        },
    }


def create_scheduled(
    state: SandboxState,
    account: Account,
    project_key: str,
    flag_key: str,
    env_key: str,
    body: Any,
    *,
    ignore_conflicts: bool,
) -> JsonDoc:
    """POST a scheduled change: needs approval where the environment requires it (LaunchDarkly
    schedules those through an approval request with an executionDate)."""
    body = _body(body)
    project = get_project(state, project_key)
    flag = get_flag(project, flag_key)
    env = get_environment(project, env_key)
    execution = body.get("executionDate")
    if not isinstance(execution, int) or isinstance(execution, bool):
        raise invalid("executionDate (epoch milliseconds) is required")
    patch = _patch_for(env_key, body.get("instructions"))
    parts = touched_parts(patch)
    if parts and needs_approval(env, flag):
        raise approval_required(state, sorted(parts)[0][1])
    check_conflicts(state, project_key, flag_key, parts, ignore_conflicts)
    run_engine(state, project, flag, patch)
    change_id = new_id()
    doc = _scheduled_doc(
        change_id,
        None,
        account,
        execution,
        _instructions(patch),
        state.clock(),
        project_key,
        flag_key,
        env_key,
    )
    state.scheduled[change_id] = StoredScheduled(project_key, flag_key, env_key, doc, body.get("comment"))
    state.record(
        {
            "memberId": account.member_id,
            "kind": "createScheduledChange",
            "project": project_key,
            "flag": flag_key,
            "environmentKey": env_key,
            "scheduledChangeId": change_id,
        }
    )
    return doc


def find_scheduled(state: SandboxState, project: str, flag: str, env: str, change_id: str) -> StoredScheduled:
    """The scheduled change with this id on this flag and environment (else 404)."""
    get_environment(get_project(state, project), env)
    stored = state.scheduled.get(change_id)
    if stored is None or (stored.project, stored.flag, stored.env) != (project, flag, env):
        raise not_found(f"Unknown scheduled change '{change_id}'")
    return stored


def delete_scheduled(state: SandboxState, account: Account, stored: StoredScheduled) -> None:
    """DELETE a scheduled change."""
    del state.scheduled[stored.doc["_id"]]
    state.record(
        {
            "memberId": account.member_id,
            "kind": "deleteScheduledChange",
            "project": stored.project,
            "flag": stored.flag,
            "environmentKey": stored.env,
            "scheduledChangeId": stored.doc["_id"],
        }
    )


def run_due(state: SandboxState, now: int) -> list[JsonDoc]:
    """Run every scheduled change due at ``now`` (epoch ms), oldest first.

    Returns:
        One ``{"_id", "status": "completed" | "failed", "message"?}`` per change run.
    """
    due = sorted(
        (s for s in state.scheduled.values() if s.doc["executionDate"] <= now),
        key=lambda s: s.doc["executionDate"],
    )
    results: list[JsonDoc] = []
    for stored in due:
        del state.scheduled[stored.doc["_id"]]
        result: JsonDoc = {"_id": stored.doc["_id"], "status": "completed"}
        try:
            project = get_project(state, stored.project)
            flag = get_flag(project, stored.flag)
            after = run_engine(state, project, flag, _patch_for(stored.env, stored.doc["instructions"]))
            store_flag(
                state,
                stored.project,
                stored.flag,
                after,
                member=state.member_by_id(str(stored.doc["_maintainerId"])),
                comment=stored.comment,
                environments=[stored.env],
            )
        except ApiError as error:
            result = {"_id": stored.doc["_id"], "status": "failed", "message": error.message}
        approval = state.approvals.get(stored.approval_id or "")
        if approval is not None:
            approval.doc["status"] = result["status"]
            approval.doc["_version"] += 1
            if result["status"] == "completed":
                approval.doc["appliedDate"] = now
        state.record(
            {
                "memberId": stored.doc["_maintainerId"],
                "kind": "runScheduledChange",
                "project": stored.project,
                "flag": stored.flag,
                "environmentKey": stored.env,
                "scheduledChangeId": stored.doc["_id"],
                "instructions": stored.doc["instructions"],
                "comment": stored.comment,
                **{k: v for k, v in result.items() if k != "_id"},
            }
        )
        results.append(result)
    return results
