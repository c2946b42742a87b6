"""Undo: the inverse of an applied change, proposed through the normal confirm loop. This module
finds the change and reads the flags; the inverse itself is pure, in ``commands.engine.inverse``.

The inverse is computed from the flag as it was before the apply (``changes.flag_before_json``)
and the flag as it is now: every part the change touched is set back with one instruction.

* environment: on ↔ off; targets, rules and prerequisites by the *minimal* inverse of what the
  change itself did (the difference between the flag before and right after it): a target it
  added is removed and one it removed is added back (``removeTargets`` / ``addTargets``), a rule
  it added is removed by its id, one it removed is added back in its place, one it edited has its
  serving, description, event tracking or clauses set back (``updateRule…``, ``removeClauses`` +
  ``addClauses``), prerequisites likewise; so an undo never takes away what others added since.
  Only a reordering of rules has nothing finer than ``replaceRules``, and then the card lists what
  else that replace reverts. The default rule, the off variation and event tracking with their
  ``update*`` instructions;
* flag: tags (added ↔ removed), name, description, temporary, client-side availability,
  maintainer, custom properties, variations' names and values, defaults;
* lifecycle: archive ↔ restore, deprecate ↔ restore deprecated; a delete cannot be undone, and
  neither can removing a variation (its id, and what served it, are gone).

Rules restored with ``replaceRules`` get new ``_id``s in LaunchDarkly: the restored document equals
the old one except for generated ids, versions and timestamps.

When the flag changed since the apply (someone else, or a later change), the card says what else
changed and which of those changes the undo would overwrite.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bot.lifecycle import raw_patches
from bot.lifecycle.models import APPLIED, Draft, RawPatch, Who, proposal_of
from bot.lifecycle.service import ChangeService
from bot.persistence.db import changes as changes_table
from bot.persistence.store import Change
from bot.scheduling.schedule_time import describe_moment
from bot.slack import blocks
from commands.engine import apply as engine_apply
from commands.engine.inverse import aspects_of, inverse_patch
from commands.errors import CommandError, EngineRefusal
from commands.instructions import (
    SemanticPatch,
)
from commands.patches import (
    apply_json_patch,
    inverse_ops,
    parts_between,
    plan_flag_patch,
    plan_project_patch,
)
from commands.summary import FactChange, diff_facts

MAX_NOTE_LINES = 6
_PREFIX = re.compile(r"^[0-9a-f-]{4,36}$")


def changed_since_notes(
    after: dict[str, Any], current: dict[str, Any], undone: dict[str, Any], env_key: str | None
) -> list[str]:
    """Card lines when the flag moved since the apply: what else changed, what undo overwrites.

    Args:
        after: the flag right after the apply.
        current: the flag now.
        undone: the flag as the undo would leave it (the engine's preview).
        env_key: the environment of the change.

    Returns:
        Lines of mrkdwn (empty when nothing changed since the apply).
    """
    if after.get("_version") == current.get("_version"):
        return []
    since = diff_facts(after, current, env_key)
    if not since:
        return []
    lines = [
        f":warning: *The flag changed since* (version {after.get('_version')} → {current.get('_version')}):"
    ]
    lines += _limited(since)
    undo_moves = {c.label: c for c in diff_facts(current, undone, env_key)}
    overwritten = [undo_moves[c.label] for c in since if c.label in undo_moves]
    if overwritten:
        lines.append(":rotating_light: *Undo would overwrite* those later changes:")
        lines += _limited(overwritten)
    else:
        lines.append("Undo leaves those later changes alone.")
    return lines


def _limited(changes: list[FactChange]) -> list[str]:
    lines = [blocks.fact_change_line(c) for c in changes[:MAX_NOTE_LINES]]
    if len(changes) > MAX_NOTE_LINES:
        lines.append(f"_…and {len(changes) - MAX_NOTE_LINES} more_")
    return lines


# --- the service ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UndoService:
    """Finds the change to undo and proposes its inverse through ``ChangeService``."""

    changes: ChangeService

    async def undo_last(self, who: Who) -> None:
        """``/flag undo``: the requester's last applied change in this channel.

        Raises:
            CommandError: there is none, or it cannot be undone.
        """
        statement = (
            select(changes_table)
            .where(
                changes_table.c.state == APPLIED,
                changes_table.c.requester_id == who.user_id,
                changes_table.c.channel_id == who.reply.channel_id,
            )
            .order_by(changes_table.c.updated_at.desc())
            .limit(1)
        )
        found = await self._select(statement)
        if not found:
            raise CommandError(
                "You have no applied change in this channel to undo. "
                "`/flag undo <change-id>` undoes a change by the id on its card."
            )
        await self.undo(who, found[0])

    async def undo_id(self, who: Who, prefix: str) -> None:
        """``/flag undo <change-id>`` (a prefix of 4 or more characters, as the card shows 8).

        Raises:
            CommandError: no such change, several match, or it was not applied.
        """
        prefix = prefix.strip().lower()
        if not _PREFIX.match(prefix):
            raise CommandError(
                f"`{prefix}` is not a change id: use the id on the card's footer (8 characters)."
            )
        statement = select(changes_table).where(changes_table.c.id.like(f"{prefix}%")).limit(5)
        found = await self._select(statement)
        if not found:
            raise CommandError(f"There is no change `{prefix}`.")
        if len(found) > 1:
            raise CommandError(
                f"Several changes start with `{prefix}`: give more of the id "
                f"({', '.join(c.id[:12] for c in found)})."
            )
        await self.undo(who, found[0])

    async def undo_clicked(self, who: Who, change_id: str) -> None:
        """The Undo button of an applied card (its value is the change id)."""
        change = await self.changes.store.get_change(change_id)
        if change is None:
            raise CommandError("I don't know this change any more.")
        await self.undo(who, change)

    async def undo(self, who: Who, change: Change) -> None:
        """Propose the inverse of ``change`` as a new card (nothing is applied before Apply).

        Raises:
            CommandError: the change was not applied, or cannot be undone; says why.
            LaunchDarklyError: reading the flag failed.
        """
        if change.state != APPLIED:
            raise CommandError(
                f"Change `{change.id[:8]}` was not applied (it is {change.state.replace('_', ' ')}): "
                "there is nothing to undo."
            )
        self._refuse_pending_schedule(change)
        proposal = proposal_of(change)
        if proposal.ramp is not None:
            # Undoing "the first step" would leave the later ones scheduled: say what stops a ramp.
            raise CommandError(
                f"Change `{change.id[:8]}` is a ramp: *Pause* on its card deletes the steps not yet run; "
                "then say what the flag should serve (e.g. "
                f"`{self.changes.settings.flagops_command} serve {change.flag_key} {change.environment} "
                "<variation>`, or a rollout)."
            )
        if proposal.raw is not None:
            await self._undo_raw(who, change, proposal.raw, proposal.canonical)
            return
        applied = proposal.semantic_patch()
        aspects_of(applied)  # an irreversible change is explained before any read
        before = change.flag_before
        if not before:
            raise CommandError(
                f"Change `{change.id[:8]}` kept no copy of the flag before it: it cannot be undone."
            )
        flags = self.changes.flags
        current = await flags.flag(change.project, change.flag_key, fresh=True)
        others = {
            key: await flags.flag(change.project, key)
            for key in sorted(_prerequisite_keys(before, applied.environmentKey))
        }
        after = _after(change, before, applied)
        inverse = inverse_patch(before, current, applied, other_flags=others, after=after)
        try:
            undone = engine_apply(current, inverse, other_flags={**others, change.flag_key: current})
        except EngineRefusal as refusal:
            raise CommandError(f"The flag changed so much that undo cannot apply: {refusal}") from refusal
        who_applied = f"<@{change.requester_id}>"
        notes = [
            f":leftwards_arrow_with_hook: Undoes change `{change.id[:8]}` by {who_applied}: "
            f"“{blocks.escape(proposal.canonical)}”"
        ]
        notes += changed_since_notes(after, current, undone, change.environment)
        short = change.id[:8]
        draft = Draft(
            project=change.project,
            flag_key=change.flag_key,
            environment=inverse.environmentKey or change.environment,
            patch=inverse,
            canonical=f"undo {short}",
            comment=f"undo of flagops change {change.id}",
            approval=False,
            notes=tuple(notes),
        )
        await self.changes.propose_draft(who, draft, current, f"undo {short}")

    async def _undo_raw(self, who: Who, change: Change, raw: RawPatch, canonical: str) -> None:
        """Undo a JSON, merge or project patch by the inverse JSON patch computed from the documents:
        each part the change set (a field, an environment's targets...) set back to how it was
        before, against the document as it is now, through the same loop (an environment that
        requires approval gets the same change as instructions, or a refusal)."""
        before = change.flag_before
        if not before:
            raise CommandError(
                f"Change `{change.id[:8]}` kept no copy of the document before it: it cannot be undone."
            )
        stored = change.outcome
        after = stored.get("flag_after") if isinstance(stored, dict) else None
        short = change.id[:8]
        note = (
            f":leftwards_arrow_with_hook: Undoes change `{short}` by <@{change.requester_id}>: "
            f"“{blocks.escape(canonical)}”"
        )
        lifecycle = self.changes
        if raw.on_project:
            current = await raw_patches.read_project(lifecycle.ld, change.project)
            if not isinstance(after, dict):
                after = plan_project_patch(before, raw.body).after
            parts = [("project", field) for field in raw.fields]
            ops = inverse_ops(before, current, parts)
            await raw_patches.propose_project_body(
                lifecycle, who, change.project, ops, f"undo {short}", notes=[note], before=current
            )
            return
        current = await lifecycle.flags.flag(change.project, change.flag_key, fresh=True)
        if not isinstance(after, dict):
            after = plan_flag_patch(
                before, "json-patch" if raw.shape == "json-patch" else "merge-patch", raw.body
            ).after
        ops = inverse_ops(before, current, parts_between(before, after))
        undone = apply_json_patch(current, ops)
        notes = [note]
        environments: list[str | None] = [*raw.environments] or [None]
        for env in environments:
            notes += [line for line in changed_since_notes(after, current, undone, env) if line not in notes]
        await raw_patches.propose_flag_body(
            lifecycle,
            who,
            change.project,
            change.flag_key,
            "json-patch",
            ops,
            f"undo {short}",
            comment=f"undo of flagops change {change.id}",
            notes=notes,
            before=current,
        )

    def _refuse_pending_schedule(self, change: Change) -> None:
        """A scheduled change whose time has not come is not in the flag yet: undo means deleting it.

        Raises:
            CommandError: the change is a LaunchDarkly scheduled change still to run.
        """
        outcome = change.outcome
        if not isinstance(outcome, dict) or not outcome.get("scheduledChangeId"):
            return
        at = datetime.fromtimestamp(int(outcome.get("executionDate") or 0) / 1000, UTC)
        if at <= self.changes.clock():
            return  # it has run: undo it like any applied change
        command = self.changes.settings.flagops_command
        scheduled_id = outcome["scheduledChangeId"]
        raise CommandError(
            f"Change `{change.id[:8]}` has not run yet: LaunchDarkly applies it on "
            f"{describe_moment(at, 'UTC')} (scheduled change `{scheduled_id}`). Nothing to undo; to "
            f"stop it, delete it: `{command} scheduled cancel {scheduled_id}`, or the Delete button of "
            f"`{command} scheduled {change.flag_key} {change.environment}`."
        )

    async def _select(self, statement: Any) -> list[Change]:
        async with self.changes.store.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [Change.model_validate(dict(row)) for row in rows]


def _after(change: Change, before: dict[str, Any], applied: SemanticPatch) -> dict[str, Any]:
    """The flag right after the apply: as LaunchDarkly answered, else the engine's replay."""
    stored = change.outcome
    if stored is not None and isinstance(stored.get("flag_after"), dict):
        flag_after: dict[str, Any] = stored["flag_after"]
        return flag_after
    try:
        return engine_apply(before, applied)
    except EngineRefusal:
        return before


def _prerequisite_keys(flag: dict[str, Any], env_key: str | None) -> Iterable[str]:
    if not env_key:
        return ()
    env = (flag.get("environments") or {}).get(env_key) or {}
    return {str(p["key"]) for p in env.get("prerequisites") or []}
