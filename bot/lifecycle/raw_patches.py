"""JSON patches, merge patches and project patches through the change loop: ``json-patch``,
``merge-patch`` (a flag, seeds 002/003) and ``project-patch`` (the project, seed 004).

::

    /flag json-patch <flag> [ops]  ──apply locally (refused here when it does not apply)──▶ plan
        ──policy (each environment it changes; flag-level fields as flag settings)──▶
        ──an environment requiring approval: the same change as instructions, or refused──▶
        ──dryRun (LaunchDarkly's preview; the local result where it refuses one)──▶ card
    Apply ──▶ PATCH {"patch": [...], "comment": "flagops change <id>…"}   (application/json)
              PATCH {"merge": {...}, "comment": "flagops change <id>…"}
              PATCH /api/v2/projects/<p> [...]   (a bare array, no comment, no dryRun)

The card, the exactly-once Apply, the thread and Undo are the lifecycle's (``service``): this
module plans and previews the patch, and sends it. A flag patch's comment carries the change id,
so the audit log decides an unknown outcome as for every other write; a project patch has no
comment, so the project's documents decide (:func:`project_outcome`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from bot.config import Settings
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient
from bot.launchdarkly.models import FeatureFlag
from bot.lifecycle import outcome as outcomes
from bot.lifecycle.flags import FlagReader
from bot.lifecycle.models import DANGEROUS_KINDS, Draft, Proposal, RawPatch, Who
from bot.persistence.store import Change
from bot.slack.blocks import escape
from commands import describe
from commands.errors import CommandError
from commands.instructions import FlagJsonPatch, FlagMergePatch, JsonPatch, MergePatch, SemanticPatch
from commands.intents import RawCommand
from commands.patches import (
    FlagPatchPlan,
    FlagShape,
    PatchRefusal,
    apply_json_patch,
    apply_merge_patch,
    merge_body,
    plan_flag_patch,
    plan_project_patch,
    project_changes,
    project_shows,
    translate,
)
from commands.summary import FactChange, diff_facts

#: What a project's "did it change since the preview?" compares (no ``_version`` on projects).
_PROJECT_COMPARED = ("key", "name", "tags", "includeInSnippetByDefault", "defaultClientSideAvailability")


class PatchLifecycle(Protocol):
    """What this module needs of the lifecycle (``bot.lifecycle.service.ChangeService``)."""

    settings: Settings
    ld: LaunchDarklyClient
    flags: FlagReader

    async def project_for(self, who: Who) -> str: ...

    async def policy_notes(self, who: Who, draft: Draft, before: dict[str, Any]) -> list[str]: ...

    async def post_card(
        self,
        who: Who,
        draft: Draft,
        before: dict[str, Any],
        text: str,
        proposal: Proposal,
        *,
        thread_ts: str | None = None,
    ) -> None: ...


async def propose(
    service: PatchLifecycle, who: Who, command: RawCommand, text: str, *, thread_ts: str | None = None
) -> None:
    """Preview a ``json-patch``, ``merge-patch`` or ``project-patch`` and post its card.

    Raises:
        CommandError: the patch does not apply (a path that is not there, a failing ``test``, a
            field LaunchDarkly sets, a wrong type), it changes nothing, or it changes an
            environment that requires approval and has no equivalent instructions.
        LaunchDarklyError: reading the flag or project, or the dry run, failed.
    """
    project = command.project or await service.project_for(who)
    if command.shape == "project-patch":
        await propose_project_body(service, who, project, command.body, text, thread_ts=thread_ts)
        return
    if command.shape == "link-patch":
        raise CommandError(
            "`link-patch` bodies are not sent from Slack: flag links are edited with "
            "`link edit <flag> <link-id> [title <text>] [description <text>]`; "
            "`python -m commands explain` shows the request."
        )
    if command.shape not in ("json-patch", "merge-patch") or not command.flag:
        raise CommandError(f"`{command.shape}` needs the flag it changes.")
    shape: FlagShape = "json-patch" if command.shape == "json-patch" else "merge-patch"
    body = command.body
    comment = body.get("comment") if isinstance(body, dict) else None
    sent = body.get("patch") if shape == "json-patch" and isinstance(body, dict) else body
    if shape == "merge-patch":
        sent = merge_body(body)
    await propose_flag_body(
        service,
        who,
        project,
        command.flag,
        shape,
        sent,
        text,
        comment=comment if isinstance(comment, str) else None,
        thread_ts=thread_ts,
    )


async def propose_flag_body(
    service: PatchLifecycle,
    who: Who,
    project: str,
    flag_key: str,
    shape: FlagShape,
    body: Any,
    text: str,
    *,
    comment: str | None = None,
    canonical: str | None = None,
    notes: Sequence[str] = (),
    before: dict[str, Any] | None = None,
    thread_ts: str | None = None,
) -> None:
    """Preview a JSON patch (``body``: the operations) or merge patch (the object) on a flag and
    post its card (``notes``: lines the card shows, e.g. what an undo undoes).

    Raises:
        as :func:`propose`.
    """
    if before is None:
        before = await service.flags.flag(project, flag_key, fresh=True)
    try:
        plan = plan_flag_patch(before, shape, body)
    except PatchRefusal as refusal:
        raise PatchRefusal(f"{refusal.message}. Nothing was sent.") from None
    approval_envs = [
        env for env in plan.environments if await service.flags.requires_approval(project, env, before)
    ]
    environment = plan.environments[0] if len(plan.environments) == 1 else None
    translation, why_not, related = await _translation(
        service, project, before, plan.after, plan, environment
    )
    raw = RawPatch(
        shape=shape,
        body=body,
        environments=list(plan.environments),
        fields=list(plan.flag_fields),
        kinds=list(plan.kinds),
        translated=translation is not None,
        why_not=why_not,
    )
    draft = Draft(
        project,
        flag_key,
        environment,
        translation,
        canonical or text.strip(),
        comment,
        False,
        related=related,
        raw=raw,
    )
    # The policy first (it may refuse outright), as for every change; then whether it can be sent.
    card_notes = list(notes) + await service.policy_notes(who, draft, before)
    if approval_envs and translation is None:
        raise CommandError(
            f"{approval_envs[0]} requires approval, and an approval request carries semantic-patch "
            f"instructions only: {why_not}. Nothing was sent."
        )
    after = await _preview(service.ld, project, flag_key, shape, body, plan.after)
    sentences = list(plan.sentences)
    if approval_envs and translation is not None:
        card_notes.append(
            f":lock: *{escape(approval_envs[0])}* requires approval, and approval requests carry "
            "instructions, not patches: *Request approval* asks for the same change as the "
            "*As instructions* lines say (the ⋯ menu's *Details* shows both requests)."
        )
        sentences += [f"As instructions: {s}" for s in describe(translation, before, flags=related)]
    proposal = Proposal(
        command_text=text,
        canonical=draft.canonical,
        patch=translation.body() if translation is not None else {},
        sentences=sentences,
        changes=[(c.label, c.before, c.after) for c in changes_between(before, after, raw, environment)],
        flag_name=str(before.get("name") or flag_key),
        approval_required=bool(approval_envs),
        dangerous=bool(set(plan.kinds) & DANGEROUS_KINDS),
        flag_url=service.flags.flag_url(before, environment),
        notes=card_notes,
        raw=raw,
    )
    await service.post_card(who, draft, before, text, proposal, thread_ts=thread_ts)


async def _translation(
    service: PatchLifecycle,
    project: str,
    before: dict[str, Any],
    after: dict[str, Any],
    plan: FlagPatchPlan,
    environment: str | None,
) -> tuple[SemanticPatch | None, str | None, dict[str, dict[str, Any]]]:
    """The patch as instructions (``None`` and why not when there are none), and the flags its
    prerequisites name (their variations name what a prerequisite must serve)."""
    if plan.flag_fields and plan.environments:
        return None, "an approval request is for one environment: send the flag-level fields separately", {}
    if environment is None:
        why = "it changes several environments" if plan.environments else "it changes flag-level fields"
        return None, f"{why}; an approval request is for one environment's targeting", {}
    keys = {
        str(p.get("key"))
        for p in ((after.get("environments") or {}).get(environment) or {}).get("prerequisites") or []
        if isinstance(p, dict)
    }
    related = {key: await service.flags.flag(project, key) for key in sorted(keys - {str(before.get("key"))})}
    try:
        return translate(before, after, environment, other_flags=related), None, related
    except PatchRefusal as refusal:
        return None, refusal.message, related


async def _preview(
    ld: LaunchDarklyClient, project: str, flag_key: str, shape: FlagShape, body: Any, local: dict[str, Any]
) -> dict[str, Any]:
    """The flag as it would be: LaunchDarkly's dry run, or the patch applied here where LaunchDarkly
    refuses one (an approval environment, a pending conflict)."""
    try:
        if shape == "json-patch":
            result = await ld.patch_flag_json(
                project, flag_key, FlagJsonPatch.model_validate({"patch": body}), dry_run=True
            )
        else:
            result = await ld.patch_flag_merge(
                project, flag_key, MergePatch.model_validate(body), dry_run=True
            )
    except (ld_errors.ApprovalRequired, ld_errors.ConflictError):
        return local
    return result.document()


def changes_between(
    before: dict[str, Any],
    after: dict[str, Any],
    raw: RawPatch | None,
    environment: str | None,
    flags: Mapping[str, dict[str, Any]] | None = None,
) -> list[FactChange]:
    """Before → after as a card shows it: the flag's facts (each environment a patch changes), or
    a project's fields. ``flags``: the prerequisite flags by key (to name what they must serve,
    as the preview did)."""
    if raw is not None and raw.on_project:
        return project_changes(before, after)
    if raw is None or len(raw.environments) <= 1:
        return diff_facts(
            before, after, environment or (raw.environments[0] if raw and raw.environments else None), flags
        )
    found = diff_facts(before, after, None)
    flag_level = {c.label for c in found}
    for env in raw.environments:
        for change in diff_facts(before, after, env, flags):
            if change.label in flag_level:
                continue
            label = change.label if f" {env}" in change.label else f"{change.label} ({env})"
            found.append(FactChange(label, change.before, change.after))
    return found


async def send(
    ld: LaunchDarklyClient,
    change: Change,
    proposal: Proposal,
    *,
    comment: str,
    ignore_conflicts: bool,
    token: str | None,
) -> FeatureFlag:
    """PATCH a flag with the change's JSON or merge patch, its comment carrying the change id."""
    raw = proposal.raw
    assert raw is not None and not raw.on_project
    if raw.shape == "json-patch":
        body = FlagJsonPatch.model_validate({"patch": raw.body, "comment": comment})
        return await ld.patch_flag_json(
            change.project, change.flag_key, body, ignore_conflicts=ignore_conflicts, token=token
        )
    merge = FlagMergePatch(merge=raw.body, comment=comment)
    return await ld.patch_flag_merge(
        change.project, change.flag_key, merge, ignore_conflicts=ignore_conflicts, token=token
    )


def applier(raw: RawPatch) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The patch as a function of a document (what the outcome's documents comparison replays)."""
    if raw.shape == "merge-patch":

        def merged(doc: dict[str, Any]) -> dict[str, Any]:
            result: dict[str, Any] = apply_merge_patch(doc, raw.body)
            return result

        return merged
    return lambda doc: apply_json_patch(doc, raw.body)


# --- the project ---------------------------------------------------------------------------------


async def read_project(ld: LaunchDarklyClient, project: str) -> dict[str, Any]:
    """The project document, fresh.

    Raises:
        CommandError: no such project. LaunchDarklyError: it could not be read.
    """
    try:
        return (await ld.get_project(project)).document()
    except ld_errors.NotFound as error:
        raise CommandError(
            f"There is no project `{project}` in LaunchDarkly (or the token cannot see it)."
        ) from error


async def propose_project_body(
    service: PatchLifecycle,
    who: Who,
    project: str,
    ops: Any,
    text: str,
    *,
    canonical: str | None = None,
    notes: Sequence[str] = (),
    before: dict[str, Any] | None = None,
    thread_ts: str | None = None,
) -> None:
    """Preview a JSON patch on the project and post its card. LaunchDarkly documents no dry run
    for projects, so the preview is the patch applied here (tags deduplicated and sorted).

    Raises:
        CommandError: the patch does not apply, or changes nothing. LaunchDarklyError: the
            project could not be read.
    """
    if before is None:
        before = await read_project(service.ld, project)
    try:
        plan = plan_project_patch(before, ops)
    except PatchRefusal as refusal:
        raise PatchRefusal(f"{refusal.message}. Nothing was sent.") from None
    raw = RawPatch(shape="project-patch", body=ops, fields=list(plan.fields))
    draft = Draft(project, "", None, None, canonical or text.strip(), None, False, raw=raw)
    card_notes = list(notes) + await service.policy_notes(who, draft, before)
    proposal = Proposal(
        command_text=text,
        canonical=draft.canonical,
        patch={},
        sentences=list(plan.sentences),
        changes=[(c.label, c.before, c.after) for c in project_changes(before, plan.after)],
        flag_name=str(before.get("name") or project),
        notes=card_notes,
        raw=raw,
    )
    await service.post_card(who, draft, before, text, proposal, thread_ts=thread_ts)


def project_moved(before: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether the project changed since the preview (projects carry no version to compare)."""
    return any(before.get(field) != current.get(field) for field in _PROJECT_COMPARED)


async def send_project(
    ld: LaunchDarklyClient, change: Change, proposal: Proposal, token: str | None
) -> dict[str, Any]:
    """PATCH the project with the change's operations (a bare array: no comment, no dryRun).

    Raises:
        LaunchDarklyError: the write failed (OutcomeUnknown: it may have landed).
    """
    assert proposal.raw is not None
    try:
        return (
            await ld.patch_project(change.project, JsonPatch.model_validate(proposal.raw.body), token=token)
        ).document()
    except ValidationError:
        # Accepted (a 2xx) with an answer the model cannot read: read the project again.
        return await read_project(ld, change.project)


async def project_outcome(ld: LaunchDarklyClient, change: Change, proposal: Proposal) -> outcomes.Outcome:
    """Whether a project patch whose answer was lost shows in the project: a project patch carries
    no comment, so no audit entry can be matched to it, and the documents decide."""
    assert proposal.raw is not None
    try:
        current = await read_project(ld, change.project)
    except (CommandError, ld_errors.LaunchDarklyError) as error:
        return outcomes.Outcome(outcomes.Verdict.UNKNOWN, audit_error=getattr(error, "message", str(error)))
    before = change.flag_before or {}
    shown = project_shows(before, current, proposal.raw.body)
    return outcomes.Outcome(outcomes.Verdict.SHOWN if shown else outcomes.Verdict.NOT_SHOWN, current=current)
