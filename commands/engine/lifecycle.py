"""Flag-level lifecycle instructions: archive, restore, deprecate, restore deprecated, delete.

``deleteFlag`` cannot return "no flag" through ``apply``'s signature, so it marks the returned
document with a top-level ``"_deleted": True``; the caller (the sandbox) then removes the flag.
Any instruction after ``deleteFlag`` in the same patch is refused: there is no flag left to change.
"""

from __future__ import annotations

from commands.engine._context import Context, handles
from commands.instructions import ArchiveFlag, DeleteFlag, DeprecateFlag, RestoreDeprecatedFlag, RestoreFlag

DELETED = "_deleted"


def dependents(ctx: Context) -> list[str]:
    """``"<flag> (<environment>)"`` for every other flag that has this flag as a prerequisite."""
    me = ctx.flag.get("key")
    found = []
    for other_key, other in sorted((ctx.other_flags or {}).items()):
        if other_key == me or other.get(DELETED):
            continue
        for env_key, env in sorted(other.get("environments", {}).items()):
            if any(p.get("key") == me for p in env.get("prerequisites", [])):
                found.append(f'"{other_key}" ({env_key})')
    return found


def _set_archived(ctx: Context, archived: bool) -> None:
    ctx.flag["archived"] = archived
    # Each environment of the flag response repeats the flag's "archived"; keep them in step.
    for _, env in ctx.environments():
        if "archived" in env:
            env["archived"] = archived


@handles(ArchiveFlag)
def archive_flag(ctx: Context, ins: ArchiveFlag) -> None:
    # "Archives the feature flag. This retires it from LaunchDarkly without deleting it. You
    # cannot archive a flag that is a prerequisite of other flags." (Checked only when the caller
    # passes the other flags.) "archivedDate: If archived is true, date of archive" (seed 003).
    users = dependents(ctx)
    if users:
        ctx.refuse("cannot archive a flag that is a prerequisite of other flags: " + ", ".join(users))
    if not ctx.flag.get("archived"):
        ctx.flag["archivedDate"] = ctx.now_ms
    _set_archived(ctx, True)


@handles(RestoreFlag)
def restore_flag(ctx: Context, ins: RestoreFlag) -> None:
    # "Restores the feature flag if it was previously archived." archivedDate only exists "If
    # archived is true", so it goes.
    _set_archived(ctx, False)
    ctx.flag.pop("archivedDate", None)


@handles(DeprecateFlag)
def deprecate_flag(ctx: Context, ins: DeprecateFlag) -> None:
    # "Deprecates the feature flag. This hides it from the live flags list without archiving or
    # deleting it." "deprecatedDate: If deprecated is true, date of deprecation" (seed 003).
    if not ctx.flag.get("deprecated"):
        ctx.flag["deprecatedDate"] = ctx.now_ms
    ctx.flag["deprecated"] = True


@handles(RestoreDeprecatedFlag)
def restore_deprecated_flag(ctx: Context, ins: RestoreDeprecatedFlag) -> None:
    # "Restores the feature flag if it was previously deprecated."
    ctx.flag["deprecated"] = False
    ctx.flag.pop("deprecatedDate", None)


@handles(DeleteFlag)
def delete_flag(ctx: Context, ins: DeleteFlag) -> None:
    # "Deletes the feature flag and its rules. You cannot restore a deleted flag." Decision: a
    # flag other flags depend on is refused, for the reason archiving one is ("You cannot archive
    # a flag that is a prerequisite of other flags"): their evaluation would break.
    users = dependents(ctx)
    if users:
        ctx.refuse("cannot delete a flag that is a prerequisite of other flags: " + ", ".join(users))
    ctx.flag[DELETED] = True
    ctx.deleted_at = ctx.index
