"""The change lifecycle: propose → confirm → apply → report, one stored state machine.

::

    proposed ──Apply──▶ applying ──200──────────────▶ applied
       │  ▲                 ├──400 conflict──▶ proposed (Apply anyway: ignoreConflicts)
       │  │                 ├──429 (budget spent)──▶ proposed (nothing changed; Apply again)
       │  │                 ├──405──────────▶ needs_approval ──Request approval──▶ approval_requested
       │  │                 ├──flag moved since the preview──▶ superseded (a new card asks again)
       │  │                 ├──400/401/403/404/422──▶ failed
       │  │                 └──timeout/5xx/crash──▶ outcome_unknown ──re-read: in the flag──▶ applied
       │  └──────────────────────────── Send again ◀──────┘ (re-read: not in the flag)
       ├──Cancel──▶ cancelled
       └──TTL────▶ expired

Every move is a compare-and-set in ``bot.persistence.store`` (one conditional UPDATE), so a double click, a
replayed request or a second bot instance applies a change at most once: the loser of the race
is told "already being applied" and changes nothing. Every move is written to the audit table.

Nothing here knows Slack's or LaunchDarkly's wire formats: ``bot.slack.messenger`` sends what
``bot.slack.blocks`` builds, ``bot.launchdarkly`` talks HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bot.clock import utcnow
from bot.config import Settings
from bot.errors import error_text, explain_error, technical
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient
from bot.lifecycle import outcome as outcomes
from bot.lifecycle import ramps, raw_patches
from bot.lifecycle import scheduled as scheduled_changes
from bot.lifecycle.flags import FlagReader
from bot.lifecycle.models import (
    APPLIED,
    APPLYING,
    APPROVAL_REQUESTED,
    CANCELLED,
    DANGEROUS_KINDS,
    EXPIRED,
    FAILED,
    NEEDS_APPROVAL,
    OUTCOME_UNKNOWN,
    PROPOSED,
    SUPERSEDED,
    ApprovalFlow,
    ChangeGuard,
    ChannelDefaults,
    Draft,
    Proposal,
    RoleCheck,
    RoleRefused,
    VerbHandler,
    Who,
    proposal_of,
)
from bot.lifecycle.people import people_as_users
from bot.persistence.store import Change, Store
from bot.scheduling.jobs import JobStore
from bot.slack import blocks
from bot.slack.blocks import CardView
from bot.slack.messenger import SLACK_FAILURES, Messenger, ReplyTo
from commands import canonical as canonical_text
from commands import describe, parse
from commands import resolve as resolve_command
from commands.errors import CommandError, EngineRefusal, FlagopsError
from commands.instructions import SemanticPatch
from commands.intents import ChangeCommand, RawCommand, ReservedCommand
from commands.natural import ramp_steps
from commands.redundant import drop_redundant
from commands.resolve import referenced_flags
from commands.summary import diff_facts

log = logging.getLogger(__name__)
_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9_]+")
# An expired change's ``lease_owner`` while a press of *Propose again* proposes it, and once it has.
_PROPOSING, _PROPOSED_AGAIN = "proposing-again:", "proposed-again:"
# How long a click waits for the row of a card posted a moment ago (see ``_find_change``).
_CARD_STORE_WAIT = 2.0

# What may break in work done after the fact (a later settle, the sweep), logged and not raised.
_REPORT_FAILURES: tuple[type[Exception], ...] = (FlagopsError, SQLAlchemyError, *SLACK_FAILURES)


class NothingToChange(CommandError):
    """The change would leave the flag as it is: refused before any card or request."""

    icon = ":information_source:"


def _already(draft: Draft, proposal: Proposal, patch: SemanticPatch) -> str:
    """How the refusal of a change that changes nothing says the flag's state."""
    kinds = [i.kind for i in patch.instructions]
    where = f" in {draft.environment}" if draft.environment else ""
    if kinds in (["turnFlagOn"], ["turnFlagOff"]):
        state = "on" if kinds == ["turnFlagOn"] else "off"
        return f"{draft.flag_key} is already {state}{where}: nothing to change, nothing was sent."
    what = "; ".join(proposal.sentences) or "this change"
    return (
        f"Nothing to change: {proposal.flag_name}{where} already looks like that ({what}). Nothing was sent."
    )


class ChangeService:
    """Runs slash commands and card clicks through the lifecycle above."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        ld: LaunchDarklyClient,
        messenger: Messenger,
        clock: Callable[[], datetime] = utcnow,
        guard: ChangeGuard | None = None,
        roles: RoleCheck | None = None,
        channel_defaults: ChannelDefaults | None = None,
        approvals: Callable[[ChangeService], ApprovalFlow] | None = None,
        verbs: Mapping[str, VerbHandler] | None = None,
        jobs: JobStore | None = None,
    ) -> None:
        """Build the lifecycle with the features it consults (``bot.wiring`` passes them all).

        Args:
            settings, store, ld, messenger, clock: the bot's parts.
            guard: the policy (``bot.guardrails.policy``); None keeps the core's rule
                (only the requester may press Apply).
            channel_defaults: each channel's project and environment (``/flag config``); None: the
                settings' ``LD_PROJECT`` and default environment.
            approvals: builds the approvals feature on this lifecycle (it calls back into it); None:
                every Slack user acts through the service token, Request approval is unavailable.
            verbs: the handlers of reserved verbs (e.g. ``undo <id>``), filled in as features
                register, so a superseded card made by one of them can be made again.
            jobs: the job store (a scheduled change's later check); built on ``store`` when None.
            roles: LaunchDarkly's roles of whoever acts through the service token
                (``bot.identity.roles``), checked at propose and at Apply; None: not checked.
        """
        self.settings = settings
        self.store = store
        self.ld = ld
        self.messenger = messenger
        self.clock = clock
        self.flags = FlagReader(ld, settings)
        self.guard = guard
        self.roles = roles
        self.channel_defaults = channel_defaults
        self.verbs: Mapping[str, VerbHandler] = verbs if verbs is not None else {}
        self.jobs = jobs if jobs is not None else JobStore(store.engine)
        self.approvals: ApprovalFlow | None = approvals(self) if approvals is not None else None
        # This process, as the owner of the leases on the changes it applies.
        self.instance_id = uuid.uuid4().hex[:16]
        self._work: set[asyncio.Task[Any]] = set()  # clicks being handled (drained at stop)
        self._timers: set[asyncio.Task[Any]] = set()  # settle checks waiting for their time

    # --- commands ---------------------------------------------------------------------------

    async def propose(
        self, who: Who, command: ChangeCommand, text: str, *, thread_ts: str | None = None
    ) -> None:
        """Resolve a change command against its flag, preview it and post its card.

        Raises:
            CommandError / ResolveError: the command does not fit the flag.
            LaunchDarklyError: reading the flag failed.
            CannotPost: the bot may not post in the channel (nothing is stored).
        """
        # `at <time>` / `in <duration>` is read (in the user's zone) before anything else.
        when = await scheduled_changes.when_for(self, who, command) if command.schedule else None
        project = command.project or await self.project_for(who)
        if command.environment is None and command.environment_scoped:
            # `on <flag>` alone uses the channel's default environment.
            default = await self.environment_for(who) or self.settings.flagops_default_environment
            if default is None:
                raise CommandError(
                    "Which environment? Say it "
                    f"(`{self.settings.flagops_command} {text.strip()} production`), or set this "
                    f"channel's default with `{self.settings.flagops_command} config env <env>`."
                )
            command = command.model_copy(update={"environment": default})
        # Read fresh: the card states "before → after", and another instance's write within
        # the cache's seconds would make this instance's copy stale (its Apply then superseded).
        before = await self.flags.flag(project, command.flag, fresh=True)
        # `New-Checkout`, `prod`: the change uses the real keys, and the card says how it read them.
        env = await self.flags.environment_key(project, command.environment, before)
        real_key = str(before.get("key") or command.flag)
        if env != command.environment or real_key != command.flag:
            command = command.model_copy(update={"environment": env, "flag": real_key})
        # `<@U0BOB>`: that person's email as a user key, said on the card.
        command, notes = await people_as_users(self.messenger, command)
        related = {key: await self.flags.flag(project, key) for key in sorted(referenced_flags(command))}
        # `target … alice,bob` where alice is targeted already: only bob is sent, the card says so
        # (not for a scheduled change: the flag may be otherwise by then).
        reduced, already = drop_redundant(command, before, related) if when is None else (command, [])
        if reduced is None:
            where = f" in {command.environment}" if command.environment else ""
            raise NothingToChange(
                f"Nothing to change on {command.flag}{where}: {'; '.join(already)}. Nothing was sent."
            )
        command = reduced
        notes += [f":heavy_minus_sign: {blocks.escape(state)}: left out" for state in already]
        patch = resolve_command(command, before, members=await self.flags.members(command), flags=related)
        await self.flags.check_segments(project, command.environment, patch)
        draft = Draft(
            project,
            command.flag,
            command.environment,
            patch,
            canonical_text(command),
            command.comment,
            command.approval,
            related,
            notes=tuple(notes),
        )
        if when is not None:
            draft = dataclasses.replace(draft, when=when)
        await self._post_proposal(who, draft, before, text, thread_ts=thread_ts)

    async def propose_raw(
        self, who: Who, command: RawCommand, text: str, *, thread_ts: str | None = None
    ) -> None:
        """Preview a raw body (the experts' escape hatch) and post its card: semantic-patch
        instructions here; JSON, merge and project patches in ``raw_patches``.

        Raises:
            CommandError: a shape the Slack loop does not send (``link-patch``: `link edit`),
                a patch that does not apply, or no flag named.
        """
        if command.shape != "semantic" or not command.flag:
            await raw_patches.propose(self, who, command, text, thread_ts=thread_ts)
            return
        project = command.project or await self.project_for(who)
        before = await self.flags.flag(project, command.flag, fresh=True)
        patch = SemanticPatch.model_validate(command.body)
        env = patch.environmentKey or command.environment
        await self.flags.check_environment(project, env, before)
        draft = Draft(project, command.flag, env, patch, text.strip(), patch.comment, False)
        await self._post_proposal(who, draft, before, text, thread_ts=thread_ts)

    async def propose_draft(
        self, who: Who, draft: Draft, before: dict[str, Any], text: str, *, thread_ts: str | None = None
    ) -> None:
        """Preview and post a change computed elsewhere (undo) through the same loop.

        Args:
            who: the requester.
            draft: the change (its ``notes`` go on the card).
            before: the flag as it is now (the preview's starting point).
            text: what the card records as the command.
            thread_ts: post the card in this thread.

        Raises:
            CommandError: the policy refuses it. LaunchDarklyError: the preview failed.
            CannotPost: the bot may not post in the channel (nothing is stored).
        """
        await self._post_proposal(who, draft, before, text, thread_ts=thread_ts)

    async def project_for(self, who: Who) -> str:
        """The project of the channel ``who`` is in: ``/flag config project``, else ``LD_PROJECT``."""
        if self.channel_defaults is not None:
            return await self.channel_defaults.project(who.reply.channel_id)
        return self.settings.ld_project

    async def environment_for(self, who: Who) -> str | None:
        """The channel's default environment (``/flag config env``), or None."""
        if self.channel_defaults is not None:
            return await self.channel_defaults.environment(who.reply.channel_id)
        return None

    async def policy_notes(self, who: Who, draft: Draft, before: dict[str, Any]) -> list[str]:
        """The policy's check of a proposal (before anything is previewed or posted): the lines
        its card shows about the rules.

        Raises:
            CommandError: the policy refuses it (names the rule), or the requester's LaunchDarkly
                roles do not allow it (the Connect button comes with it, where OAuth is set up).
        """
        notes = await self.guard.check_propose(who, draft, before) if self.guard is not None else []
        if self.roles is not None:
            refusal = await self.roles.check_propose(who, draft, before)
            if refusal is not None:
                await self.roles.offer_connect(who)
                raise CommandError(str(refusal).removeprefix(":no_entry: "))
        return notes

    async def _post_proposal(
        self, who: Who, draft: Draft, before: dict[str, Any], text: str, *, thread_ts: str | None = None
    ) -> None:
        # The policy is checked before anything is previewed or posted.
        notes = list(draft.notes) + await self.policy_notes(who, draft, before)
        env = draft.environment
        assert draft.patch is not None, "raw patches are previewed by raw_patches"
        patch = draft.patch.model_copy(update={"comment": None})
        after = await self.flags.preview(draft.project, draft.flag_key, patch, before)
        if any(i.kind == "deleteFlag" for i in patch.instructions):
            after = {**after, "_deleted": True}  # a dry run answers the flag as it was: say what goes
        required = (
            env is not None
            and patch.environment_scoped
            and await self.flags.requires_approval(draft.project, env, before)
        )
        approval = draft.approval or required
        proposal = Proposal(
            command_text=text,
            canonical=draft.canonical,
            patch=patch.body(),
            sentences=[draft.ramp.summary] if draft.ramp else describe(patch, before, flags=draft.related),
            changes=[
                (c.label, c.before, c.after) for c in diff_facts(before, after, env, flags=draft.related)
            ],
            flag_name=str(before.get("name") or draft.flag_key),
            approval_required=approval,
            approval_asked=approval and not required,
            critical=env is not None
            and bool((await self.flags.environment(draft.project, env)).get("critical")),
            dangerous=any(i.kind in DANGEROUS_KINDS for i in patch.instructions),
            flag_url=self.flags.flag_url(before, env),
            notes=notes,
            execute_at_ms=draft.when.epoch_ms if draft.when else None,
            when_text=draft.when.describe() if draft.when else None,
            ramp=draft.ramp,
        )
        if not proposal.changes and not proposal.dangerous and draft.when is None and draft.ramp is None:
            # Nothing would change: no card, no approval request, no version bump.
            raise NothingToChange(_already(draft, proposal, patch))
        await self.post_card(who, draft, before, text, proposal, thread_ts=thread_ts)

    async def post_card(
        self,
        who: Who,
        draft: Draft,
        before: dict[str, Any],
        text: str,
        proposal: Proposal,
        *,
        thread_ts: str | None = None,
    ) -> None:
        """Post a previewed change's card and store the change (a JSON patch's too: ``raw_patches``).

        Raises:
            CannotPost: the bot may not post in the channel (nothing is stored).
        """
        approval = proposal.approval_required
        change_id = str(uuid.uuid4())
        buttons = (blocks.REQUEST_APPROVAL if approval else blocks.APPLY, blocks.CANCEL)
        view = self._view(
            change_id,
            who.user_id,
            draft.project,
            draft.flag_key,
            draft.environment,
            proposal,
            draft.comment,
            buttons=buttons,
        )
        card_text, card_blocks = blocks.render_card(view)
        channel = who.reply.channel_id
        # Post first: where the bot may not post, CannotPost leaves nothing stored.
        ts = await self.messenger.post(channel, card_text, card_blocks, thread_ts=thread_ts)
        try:
            created = await self._store_proposal(who, draft, before, text, change_id, ts, thread_ts, proposal)
        except SQLAlchemyError:
            view = dataclasses.replace(
                view,
                buttons=(),
                status=":x: I could not store this change, so it cannot be applied. Try again.",
            )
            await self.messenger.update(channel, ts, *blocks.render_card(view))
            raise
        if draft.approval and approval and self.approvals is not None:
            # `--approval`: ask for approval at once, as if the requester pressed Request approval.
            await self.approvals.request_approval(created, who)

    async def _store_proposal(
        self,
        who: Who,
        draft: Draft,
        before: dict[str, Any],
        text: str,
        change_id: str,
        ts: str,
        thread_ts: str | None,
        proposal: Proposal,
    ) -> Change:
        env = draft.environment
        channel = who.reply.channel_id
        return await self.store.create_change(
            change_id=change_id,
            requester_id=who.user_id,
            requester_name=who.user_name,
            channel_id=channel,
            card_ts=ts,
            thread_ts=thread_ts,
            project=draft.project,
            flag_key=draft.flag_key,
            environment=env,
            command_text=text,
            request_json=proposal.model_dump_json(),
            preview_version=int(before.get("_version") or 0),
            env_version=_env_version(before, env),
            flag_before_json=json.dumps(before),
            comment=draft.comment or "",
            expires_at=self.clock() + self.settings.flagops_confirm_ttl,
        )

    async def click(self, action_id: str, change_id: str, who: Who) -> None:
        """Handle a card button (after the ack); a stopping process lets it finish (``drain``)."""
        task = asyncio.current_task()
        if task is not None:
            self._work.add(task)
        try:
            await self._click(action_id, change_id, who)
        finally:
            if task is not None:
                self._work.discard(task)

    async def _click(self, action_id: str, change_id: str, who: Who) -> None:
        change = await self._find_change(change_id)
        if change is None:
            await self.tell(who, ":grey_question: I don't know this change any more.")
            return
        handlers = {
            blocks.APPLY: self._apply_clicked,
            blocks.APPLY_ANYWAY: self._apply_anyway_clicked,
            blocks.SEND_AGAIN: self._send_again_clicked,
            blocks.CANCEL: self._cancel_clicked,
            blocks.REQUEST_APPROVAL: self._request_approval_clicked,
            blocks.PAUSE: self._pause_clicked,
            blocks.PROPOSE_AGAIN: self._propose_again_clicked,
        }
        handler = handlers.get(action_id)
        if handler is None:
            await self.tell(who, ":grey_question: That button is not for me.")
            return
        await handler(change, who)

    async def _only_requester(self, change: Change, who: Who, what: str) -> bool:
        if who.user_id == change.requester_id:
            return True
        await self.tell(who, f":no_entry: Only <@{change.requester_id}> can {what} this change.")
        return False

    async def apply_refusal(self, change: Change, who: Who) -> str | None:
        """Why ``who`` may not press Apply on ``change`` now, or None: the one rule of Apply, which
        the features that act like Apply (deleting a scheduled change) follow too. With a policy,
        it decides (a second person applies deleteFlag, archiveFlag...); without one, only the
        requester may."""
        if self.guard is not None:
            refusal = await self.guard.check_apply(who, change)
        elif who.user_id == change.requester_id:
            refusal = None
        else:
            refusal = f":no_entry: Only <@{change.requester_id}> can apply this change."
        if refusal is None and self.roles is not None:
            # LaunchDarkly's rule after flagops' own: what goes through the service token.
            return await self.roles.check_apply(who, change)
        return refusal

    async def _may_apply(self, change: Change, who: Who) -> bool:
        refusal = await self.apply_refusal(change, who)
        if isinstance(refusal, RoleRefused) and self.roles is not None:
            await self.roles.answer(who, refusal)
            return False
        if refusal is not None:
            await self.tell(who, refusal)
            return False
        return True

    async def _closed(self, change: Change, who: Who) -> bool:
        """Tell a late clicker what became of the change; True when there is nothing to press."""
        if change.state in (PROPOSED, NEEDS_APPROVAL) and _aware(change.expires_at) <= self.clock():
            await self._expire(change)
            change = await self.store.get_change(change.id) or change
        messages: dict[str, str] = {
            APPLYING: "is already being applied.",
            APPLIED: "was already applied.",
            CANCELLED: "was cancelled.",
            EXPIRED: "expired: *Propose again* on the card makes a fresh preview.",
            FAILED: "failed; see the thread. Run the command again to retry.",
            SUPERSEDED: "was replaced by a newer preview; use that card.",
            APPROVAL_REQUESTED: "is waiting for approval.",
        }
        if change.state == EXPIRED and self._command_of(change) is None and self._ramp_of(change) is None:
            messages[EXPIRED] = "expired. Run the command again to start over."
        if change.state == EXPIRED and (change.lease_owner or "").startswith(_PROPOSED_AGAIN):
            messages[EXPIRED] = "expired and was proposed again: use the newer card."
        if change.state in messages:
            await self.tell(who, f"This change {messages[change.state]}")
            return True
        return False

    async def _apply_anyway_clicked(self, change: Change, who: Who) -> None:
        await self._apply_clicked(change, who, anyway=True)

    async def _apply_clicked(self, change: Change, who: Who, *, anyway: bool = False) -> None:
        """Apply (or, after a conflict, Apply anyway: ``ignoreConflicts=true``).

        Whether conflicts are ignored is decided by the button pressed, in the claiming
        transition: a replayed plain Apply after a conflict conflicts again.
        """
        if await self._closed(change, who) or not await self._may_apply(change, who):
            return
        # With FLAGOPS_REQUIRE_LINKED_ACCOUNTS an unlinked user links first; nothing moves.
        if self.approvals is not None and not await self.approvals.may_act(who, "apply this change"):
            return
        if change.state != PROPOSED:
            waiting: dict[str, str] = {
                NEEDS_APPROVAL: "needs approval first: press *Request approval*.",
                OUTCOME_UNKNOWN: "may already be in the flag: see the card; *Send again* only if not.",
            }
            await self.tell(who, f"This change {waiting.get(change.state, 'has nothing to apply.')}")
            return
        won = await self.store.transition(
            change.id,
            [PROPOSED],
            APPLYING,
            who.user_id,
            detail="Apply anyway pressed" if anyway else "Apply pressed",
            ignore_conflicts=anyway,
            **self._lease(),
        )
        if won is None:
            await self.tell(who, "This change is already being applied.")
            return
        await self._apply(won, who)

    async def _send_again_clicked(self, change: Change, who: Who) -> None:
        if proposal_of(change).ramp is not None:  # its steps may exist: never created twice
            await self.tell(
                who,
                "A ramp is never sent again: its card says which steps exist in LaunchDarkly, and "
                "*Pause* deletes those not yet run. For a new ramp, run the command again.",
            )
            return
        # Send again applies the change: the same rules as Apply (the policy may have changed).
        if not await self._may_apply(change, who):
            return
        if self.approvals is not None and not await self.approvals.may_act(who, "send this change again"):
            return  # as for Apply
        # Only once the outcome was decided for good (settle_at cleared): before that the first
        # write may still land, and sending again could apply the change twice.
        won = await self.store.transition(
            change.id,
            [OUTCOME_UNKNOWN],
            APPLYING,
            who.user_id,
            detail="Send again",
            require={"settle_at": None},
            **self._lease(),
        )
        if won is None:
            latest = await self.store.get_change(change.id) or change
            if latest.state == OUTCOME_UNKNOWN and latest.settle_at is not None:
                await self.tell(
                    who,
                    ":hourglass: LaunchDarkly may still apply the first attempt, so nothing is sent yet: "
                    f"I look again at {_clock_time(latest.settle_at)} UTC and say in the thread whether it "
                    "landed. *Send again* works after that, if it did not.",
                )
                return
            await self.tell(who, "This change is not waiting to be sent again.")
            return
        await self._apply(won, who, resend=True)

    async def _propose_again_clicked(self, change: Change, who: Who) -> None:
        """An expired card's *Propose again*: the same command, previewed afresh against the flag as
        it is now, as a new card by whoever pressed (the policy checks them as for a typed command)."""
        if change.state != EXPIRED:
            await self.tell(who, "Only an expired card can be proposed again.")
            return
        command = self._command_of(change)
        ramp = self._ramp_of(change) if command is None else None
        if command is None and ramp is None:
            await self.tell(who, "I cannot read this card's command again: type it anew.")
            return
        # One new card however many press at once: the press that claims the expired change
        # (a compare-and-set on its row) proposes; the others are told who did.
        claim = f"{_PROPOSING}{who.user_id}"
        claimed = await self.store.record(
            change.id,
            [EXPIRED],
            who.user_id,
            detail="Propose again pressed",
            require={"lease_owner": None},
            lease_owner=claim,
        )
        if claimed is None:
            await self._proposed_again_already(change, who)
            return
        try:
            if ramp is not None:  # a ramp is read by ``ramp_steps``, not the grammar
                await ramps.propose(self, who, ramp, change.command_text, thread_ts=change.thread_ts)
            elif command is not None:
                await self._propose_command(who, command, change.command_text, thread_ts=change.thread_ts)
        except BaseException as error:
            # Refused (or failed): no new card, so the old one keeps its button for a later try.
            said = explain_error(error) if isinstance(error, Exception) else "stopped"
            await self.store.record(
                change.id,
                [EXPIRED],
                who.user_id,
                detail=f"Propose again refused: {said}",
                require={"lease_owner": claim},
                lease_owner=None,
            )
            if isinstance(error, CommandError | ld_errors.LaunchDarklyError | EngineRefusal):
                await self.tell(who, f":warning: {said}")
                return
            raise
        done = await self.store.record(
            change.id,
            [EXPIRED],
            who.user_id,
            detail="proposed again: a new card was posted",
            require={"lease_owner": claim},
            lease_owner=f"{_PROPOSED_AGAIN}{who.user_id}",
        )
        # Said only now that the new card is there (posted just before, so it is below this one).
        await self.update_card(
            done or claimed,
            f":hourglass: Expired. <@{who.user_id}> proposed it again: see the newer card.",
        )

    async def _proposed_again_already(self, change: Change, who: Who) -> None:
        """Tell a press that lost the race for *Propose again* who won it."""
        latest = await self.store.get_change(change.id) or change
        owner = latest.lease_owner or ""
        if latest.state != EXPIRED:
            await self.tell(who, "Only an expired card can be proposed again.")
        elif owner.startswith(_PROPOSING):
            await self.tell(
                who,
                f":hourglass: <@{owner.removeprefix(_PROPOSING)}> is already proposing this again: "
                "their new card follows unless it is refused.",
            )
        elif owner.startswith(_PROPOSED_AGAIN):
            by = owner.removeprefix(_PROPOSED_AGAIN)
            said = f"<@{by}>" if _SLACK_USER_ID.fullmatch(by) else "someone"
            await self.tell(who, f"This change was already proposed again by {said}: use the newer card.")
        else:  # a press made at the same moment was refused and let go of it
            await self.tell(who, "Another *Propose again* was refused a moment ago: press it again to retry.")

    def _ramp_of(self, change: Change) -> tuple[str, str, tuple[float, ...], int, str | None] | None:
        """A ramp card's ramp, read again (as typed, else as its canonical form), or None."""
        if proposal_of(change).ramp is None:
            return None
        for text in (change.command_text, proposal_of(change).canonical):
            try:
                ramp = ramp_steps(text)
            except CommandError:
                continue
            if ramp is not None:
                return ramp
        return None

    def _command_of(self, change: Change) -> ChangeCommand | RawCommand | ReservedCommand | None:
        """The command a card was made from, read again (as typed, else as its canonical form)."""
        for text in (change.command_text, proposal_of(change).canonical):
            try:
                command = parse(text)
            except CommandError:
                continue
            if isinstance(command, ChangeCommand | RawCommand) or (
                isinstance(command, ReservedCommand) and command.verb in self.verbs
            ):
                return command
        return None

    async def _propose_command(
        self,
        who: Who,
        command: ChangeCommand | RawCommand | ReservedCommand,
        text: str,
        *,
        thread_ts: str | None,
    ) -> None:
        if isinstance(command, ChangeCommand):
            await self.propose(who, command, text, thread_ts=thread_ts)
        elif isinstance(command, RawCommand):
            await self.propose_raw(who, command, text, thread_ts=thread_ts)
        elif command.verb in self.verbs:
            await self.verbs[command.verb](who, command, text)

    async def show_details(self, who: Who, change_id: str) -> None:
        """The ⋯ menu's *Details*, to ``who`` alone: the request as it was (or will be) sent, the
        ids, and each move of the change with LaunchDarkly's answers (code, message, request id)."""
        change = await self.store.get_change(change_id) if change_id else None
        if change is None:
            await self.tell(who, ":grey_question: I don't know this change any more.")
            return
        proposal = proposal_of(change)
        facts = [f"*Change id*: `{change.id}` · state *{change.state}*"]
        if proposal.raw is not None and proposal.raw.on_project:
            route = f"PATCH /api/v2/projects/{change.project}"
        else:
            route = f"PATCH /api/v2/flags/{change.project}/{change.flag_key}"
        raw = proposal.raw
        flag_env = (
            f"/api/v2/projects/{change.project}/flags/{change.flag_key}/environments/{change.environment}"
        )
        # An approval environment takes an approval request, a scheduled change's too (approved, it
        # applies at its executionDate): it is never sent as a scheduled change there.
        approval = (
            proposal.approval_required
            or change.approval_request_id is not None
            or change.state in (NEEDS_APPROVAL, APPROVAL_REQUESTED)
        )
        if proposal.ramp is not None:
            sent = f"a ramp: one LaunchDarkly scheduled change per step ({len(proposal.ramp.steps)})"
        elif approval and proposal.execute_at_ms is not None:
            sent = (
                f"an approval request with these instructions and `executionDate` {proposal.execute_at_ms} "
                f"({proposal.when_text or ''}): approved, LaunchDarkly applies it then "
                f"(`POST {flag_env}/approval-requests`)"
            )
        elif approval:
            sent = f"an approval request with these instructions (`POST {flag_env}/approval-requests`)"
        elif proposal.execute_at_ms is not None:
            sent = (
                f"a LaunchDarkly scheduled change on `{change.flag_key}` ({proposal.when_text or ''}) "
                f"(`POST {flag_env}/scheduled-changes`)"
            )
        elif raw is not None:
            sent = f"a {raw.shape} (`{route}`)"
        else:
            sent = f"a semantic patch (`{route}`)"
        facts.append(f"*Sent as*: {blocks.escape(sent)}")
        if sent.startswith("a semantic patch") or (raw is not None and sent.startswith(f"a {raw.shape}")):
            facts.append(
                f"*Its comment*: `flagops change {change.id} via Slack by @…` (who pressed Apply)"
                + (f" + the comment `{blocks.quoted(change.comment, 200)}`" if change.comment else "")
            )
        if change.approval_request_id:
            facts.append(f"*Approval request id*: `{blocks.escape(change.approval_request_id)}`")
        if proposal.ramp is not None and (ids := ramps.step_ids(change)):
            facts.append(f"*Steps in LaunchDarkly*: {ids}")
        facts.append(f"*Flag version previewed*: {change.preview_version}")
        facts.append(f"*Typed*: `{blocks.quoted(blocks.shorten_lists(change.command_text), 300)}`")
        if raw is None or (raw.translated and approval):
            body: Any = {
                "environmentKey": change.environment,
                "instructions": json.loads(proposal.request_text()),
            }
            if change.environment is None or not proposal.semantic_patch().environment_scoped:
                body.pop("environmentKey")
        elif raw.on_project:
            body = raw.body  # a project patch is a bare array: no comment
        else:
            # The body as sent: the operations with the comment that carries the change id.
            said = f"flagops change {change.id} via Slack by @…"
            said += f": {change.comment}" if change.comment else ""
            key = "patch" if raw.shape == "json-patch" else "merge"
            body = {key: raw.body, "comment": said}
        shortened = blocks.shorten_json(body)
        request = _json_lines(shortened)
        if shortened != body:
            facts.append(
                f"_Lists longer than {2 * blocks.MAX_LISTED} items are cut to their first ones here._"
            )
        audit = await self.store.audit_for(change.id)
        history = [
            f"• {_clock_time(entry.at)} UTC · {entry.from_state or 'new'} → *{entry.to_state}* · "
            + (
                f"<@{entry.actor_id}>"
                if _SLACK_USER_ID.fullmatch(entry.actor_id)
                else blocks.quoted(entry.actor_id, 40)
            )
            + (
                f" · LaunchDarkly {entry.ld_status}"
                if entry.ld_status and not (entry.detail or "").startswith(f"LaunchDarkly {entry.ld_status}")
                else ""
            )
            # Stored plain (LaunchDarkly's answer first): escaped once, here.
            + (f" · {blocks.quoted(entry.detail, blocks.HISTORY_LINE_LIMIT - 200)}" if entry.detail else "")
            for entry in audit
        ]
        title = f":mag: *Details* of the change to *{blocks.escape(change.flag_key)}*" + (
            f" in *{blocks.escape(change.environment)}*" if change.environment else ""
        )
        shown_at_most = blocks.HISTORY_LINE_LIMIT - 200
        answers = [e.detail for e in audit if e.ld_status and e.detail]
        whole = answers[-1] if answers and len(answers[-1]) > shown_at_most else None
        text, body_blocks = blocks.render_details(title, facts, request, history, answer=whole)
        await self.messenger.ephemeral(who.reply, text, body_blocks)

    async def _cancel_clicked(self, change: Change, who: Who) -> None:
        if await self._closed(change, who) or not await self._only_requester(change, who, "cancel"):
            return
        won = await self.store.transition(
            change.id,
            [PROPOSED, NEEDS_APPROVAL, OUTCOME_UNKNOWN],
            CANCELLED,
            who.user_id,
            detail="Cancel pressed",
            # Not while an unknown outcome is still being decided: its answer must reach the card.
            require={"settle_at": None},
        )
        if won is None:
            await self.tell(who, "Too late to cancel: this change is already being applied.")
            return
        if change.state == OUTCOME_UNKNOWN:
            await self.update_card(
                won,
                f":no_entry_sign: Closed by <@{who.user_id}>; "
                "whether the change reached the flag is still unknown.",
            )
            return
        await self.update_card(won, f":no_entry_sign: Cancelled by <@{who.user_id}>.")

    async def _pause_clicked(self, change: Change, who: Who) -> None:
        """A ramp's Pause: delete the steps not yet run (``bot.lifecycle.ramps``)."""
        await ramps.pause(self, change, who)

    async def _request_approval_clicked(self, change: Change, who: Who) -> None:
        if await self._closed(change, who) or not await self._only_requester(
            change, who, "request approval for"
        ):
            return
        if proposal_of(change).ramp is not None:  # a request for each step (bot.lifecycle.ramps)
            await ramps.request_approvals(self, change, who)
            return
        if self.approvals is not None:  # approvals feature: linked tokens, reviewers, approval card
            await self.approvals.request_approval(change, who)
            return
        won = await self.store.transition(
            change.id, [PROPOSED, NEEDS_APPROVAL], APPLYING, who.user_id, detail="Request approval pressed"
        )
        if won is None:
            await self.tell(who, "This change is already on its way.")
            return
        proposal = proposal_of(won)
        patch = proposal.semantic_patch()
        assert won.environment is not None  # approval requests exist only for environments
        try:
            request = await self.ld.create_approval_request(
                won.project,
                won.flag_key,
                won.environment,
                description=clip_description("; ".join(proposal.sentences)),
                instructions=patch.instructions,
                comment=self.comment(won, who),
                execution_date=proposal.execute_at_ms,  # approved, it applies then
            )
        except ld_errors.LaunchDarklyError as error:
            await self.finish(
                won, FAILED, who, error.status, f":x: Could not request approval: {explain_error(error)}"
            )
            return
        url = self._approval_url(won, request.id)
        await self.store.transition(
            won.id,
            [APPLYING],
            APPROVAL_REQUESTED,
            who.user_id,
            ld_status=201,
            detail=f"approval request {request.id}",
            approval_request_id=request.id,
        )
        await self.update_card(
            won, f":lock: Approval requested by <@{who.user_id}>: <{url}|approval request in LaunchDarkly>."
        )
        await self.reply(
            won,
            f":lock: Approval requested for *{won.flag_key}* in *{won.environment}*. "
            f"A reviewer approves it in <{url}|LaunchDarkly>; once approved it can be applied.",
        )

    # --- apply ------------------------------------------------------------------------------

    async def _apply(self, change: Change, who: Who, *, resend: bool = False) -> None:
        """Send a change that this instance holds in ``applying`` and report how it ended.

        ``resend``: this is a Send again after an unknown outcome; if the flag moved since and
        now shows the change, the earlier attempt landed after all and nothing is sent.

        Whatever goes wrong after the claim, the change does not stay "Applying…": an
        unexpected error settles it as outcome unknown (the flag is re-read) and is re-raised
        for the one error handler to log.
        """
        try:
            await self._apply_claimed(change, who, resend=resend)
        except Exception:
            log.exception("applying change %s failed unexpectedly; settling it as outcome unknown", change.id)
            if proposal_of(change).ramp is not None:  # which steps exist, and Pause (never Send again)
                await ramps.unexpected(self, change, who, "scheduled")
            else:
                cause = "Something went wrong on the bot's side."
                await self._outcome_unknown(change, who, None, cause=cause)
            raise

    async def _apply_claimed(self, change: Change, who: Who, *, resend: bool) -> None:
        status = f":hourglass_flowing_sand: Applying… (pressed by <@{who.user_id}>)"
        applying: str | None = status  # a flag PATCH says it while the flag is re-read (below)
        proposal = proposal_of(change)
        on_project = proposal.raw is not None and proposal.raw.on_project
        if proposal.ramp is not None or proposal.execute_at_ms is not None or resend or on_project:
            await self.update_card(change, status)
            applying = None  # said
        if proposal.ramp is not None:  # scheduled changes, one per step
            await ramps.apply(self, change, who, proposal)
            return
        if proposal.execute_at_ms is not None:  # a LaunchDarkly scheduled change, not a patch now
            await scheduled_changes.apply_scheduled(self, change, who, proposal)
            return
        if resend and await self._landed_after_all(change, who, proposal):
            return
        if proposal.raw is not None and proposal.raw.on_project:
            await self._apply_project(change, who, proposal)
            return
        try:
            current = await self._reread(change, applying)
        except CommandError as error:  # the flag is gone (404, with suggestions)
            await self.finish(change, FAILED, who, 404, f":x: {error_text(error)} Nothing changed.")
            return
        except ld_errors.LaunchDarklyError as error:
            await self.back_to_proposed(
                change, who, f":warning: Could not re-read the flag, nothing changed: {explain_error(error)}"
            )
            return
        if int(current.get("_version") or 0) != change.preview_version:
            await self._supersede(change, who, current)
            return
        token = await self.approvals.token_for(who.user_id) if self.approvals else None
        for attempt in (1, 2):
            try:
                if proposal.raw is not None:  # a JSON or merge patch, sent as it is
                    result = await raw_patches.send(
                        self.ld,
                        change,
                        proposal,
                        comment=self.comment(change, who),
                        ignore_conflicts=change.ignore_conflicts,
                        token=token,
                    )
                else:
                    result = await self.ld.patch_flag_semantic(
                        change.project,
                        change.flag_key,
                        proposal.semantic_patch().model_copy(update={"comment": self.comment(change, who)}),
                        ignore_conflicts=change.ignore_conflicts,
                        token=token,
                    )
            except ld_errors.OptimisticLockError as error:
                if attempt == 2:
                    await self.finish(
                        change,
                        FAILED,
                        who,
                        409,
                        f":x: Not applied: {explain_error(error)} Nothing changed; run the command "
                        "again for a fresh preview.",
                        detail=technical(error),
                    )
                    return
                continue  # 409 means nothing was applied: retried once, as LaunchDarkly asks
            except ld_errors.LaunchDarklyError as error:
                await self.apply_failed(change, who, error, linked=token is not None)
                return
            except ValidationError:
                # A 2xx: LaunchDarkly accepted the change, but its answer lacks what the flag
                # model needs. The outcome is known; only the "after" is read again.
                log.warning("LaunchDarkly accepted change %s; its answer could not be read", change.id)
                try:
                    after = await self.flags.flag(change.project, change.flag_key, fresh=True)
                except (CommandError, ld_errors.LaunchDarklyError):
                    after = current
                note = "LaunchDarkly accepted it; its answer could not be read, so the flag was read again"
                await self._applied(change, who, proposal, current, after, note=note)
                return
            await self._applied(change, who, proposal, current, result.document())
            return

    async def _reread(self, change: Change, applying: str | None) -> dict[str, Any]:
        """The flag read fresh before its PATCH, while the card says ``applying`` (when given): the
        two do not wait for each other (a Slack round trip less before the outcome), and both are
        done when this returns or raises, so nothing said on the card later can be overtaken."""
        shown = asyncio.ensure_future(self.update_card(change, applying)) if applying else None
        try:
            return await self.flags.flag(change.project, change.flag_key, fresh=True)
        finally:
            if shown is not None:
                await shown

    async def _apply_project(self, change: Change, who: Who, proposal: Proposal) -> None:
        """Send a project patch this instance holds in ``applying`` (the project's counterpart of
        the flag PATCH above: re-read, superseded if it moved, sent once, reported)."""
        before = change.flag_before or {}
        try:
            current = await raw_patches.read_project(self.ld, change.project)
        except (CommandError, ld_errors.LaunchDarklyError) as error:
            await self.back_to_proposed(
                change,
                who,
                f":warning: Could not re-read the project, nothing changed: {explain_error(error)}",
            )
            return
        if raw_patches.project_moved(before, current):
            await self._supersede(change, who, current, moved="the project changed since this preview")
            return
        token = await self.approvals.token_for(who.user_id) if self.approvals else None
        try:
            after = await raw_patches.send_project(self.ld, change, proposal, token)
        except ld_errors.LaunchDarklyError as error:
            await self.apply_failed(change, who, error, linked=token is not None)
            return
        await self._applied(change, who, proposal, current, after)

    async def _applied(
        self,
        change: Change,
        who: Who,
        proposal: Proposal,
        before: dict[str, Any],
        after: dict[str, Any],
        *,
        note: str | None = None,
    ) -> None:
        on_project = proposal.raw is not None and proposal.raw.on_project
        if on_project:
            versions = "project patched"  # projects carry no version
        else:
            self.flags.remember(change.project, change.flag_key, after)
            versions = f"version {before.get('_version')} → {after.get('_version')}"
        if note:
            versions += f"; {note}"
        final = await self.store.transition(
            change.id,
            [APPLYING, OUTCOME_UNKNOWN],
            APPLIED,
            who.user_id,
            ld_status=200,
            detail=versions,
            outcome_json=json.dumps({"flag_after": after}),  # undo compares with it
        )
        if final is None:
            log.info("change %s was settled elsewhere before this apply reported", change.id)
            return
        await self.update_card(
            final,
            f":white_check_mark: Applied by <@{who.user_id}> · {versions}.",
            # Undo proposes the inverse change (a deleted flag has none).
            buttons=() if "deleteFlag" in proposal.kinds() else (blocks.UNDO,),
        )
        related = await self._prerequisite_flags(change.project, change.environment, before, after)
        changes = raw_patches.changes_between(before, after, proposal.raw, change.environment, related)
        lines = blocks.fact_change_lines(changes)
        link = f" · <{proposal.flag_url}|open in LaunchDarkly>" if proposal.flag_url else ""
        what = f"project *{blocks.escape(change.project)}*" if on_project else f"*{change.flag_key}*"
        await self.reply(change, f":white_check_mark: Applied {what} ({versions}){link}", lines)

    async def _prerequisite_flags(
        self, project: str, env: str | None, *flags: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """The flags the prerequisites of ``flags`` name (in ``env``), so the thread names what they
        must serve as the preview did; one that cannot be read is left out (its index shows)."""
        keys = {
            str(p.get("key"))
            for flag in flags
            for p in (((flag.get("environments") or {}).get(env or "") or {}).get("prerequisites") or [])
        }
        related: dict[str, dict[str, Any]] = {}
        for key in sorted(keys):
            try:
                related[key] = await self.flags.flag(project, key)
            except (CommandError, ld_errors.LaunchDarklyError):
                continue
        return related

    async def apply_failed(
        self, change: Change, who: Who, error: ld_errors.LaunchDarklyError, *, linked: bool = False
    ) -> None:
        """Settle a change whose PATCH failed; ``linked``: it was sent with the user's own token.

        The card and the thread say it in one plain sentence; LaunchDarkly's code, message and
        request id go to the log and the change's audit (the ⋯ menu's Details shows them)."""
        status = error.status
        answered = technical(error)
        log.warning("change %s: LaunchDarkly refused or failed the write: %s", change.id, answered)
        if isinstance(error, ld_errors.ConflictError):
            refreshed = await self.store.transition(
                change.id,
                [APPLYING],
                PROPOSED,
                who.user_id,
                ld_status=status,
                detail=f"conflict with a pending change: {answered}",
                expires_at=self._new_expiry(),
            )
            if refreshed is None:
                return
            message = (
                f":warning: Not applied: {explain_error(error)} *Apply anyway* applies it regardless "
                "(that pending change may then fail), or *Cancel*."
            )
            shown = _pressed(message, who)
            await self.update_card(refreshed, shown, buttons=(blocks.APPLY_ANYWAY, blocks.CANCEL))
            await self.reply(change, message)
        elif isinstance(error, ld_errors.ApprovalRequired) and not _may_request_approval(change):
            # A JSON or merge patch with no equivalent instructions cannot become an approval request.
            why = proposal_of(change).raw
            await self.finish(
                change,
                FAILED,
                who,
                status,
                f":lock: {change.environment or 'An environment it changes'} requires approval, "
                "and an approval request carries semantic-patch instructions only: "
                f"{blocks.escape((why.why_not if why else None) or 'this patch has none')}. Nothing changed.",
                detail=answered,
            )
        elif isinstance(error, ld_errors.ApprovalRequired):
            moved = await self.store.transition(
                change.id,
                [APPLYING],
                NEEDS_APPROVAL,
                who.user_id,
                ld_status=status,
                detail=answered,
                expires_at=self._new_expiry(),
            )
            if moved is None:
                return
            message = (
                f":lock: Not applied: *{blocks.escape(change.environment or '')}* requires approval in "
                "LaunchDarkly. *Request approval* asks reviewers; it applies once approved."
            )
            shown = _pressed(message, who)
            await self.update_card(moved, shown, buttons=(blocks.REQUEST_APPROVAL, blocks.CANCEL))
            await self.reply(change, message, buttons=[blocks.button(blocks.REQUEST_APPROVAL, change.id)])
        elif isinstance(error, ld_errors.RateLimited):
            await self.back_to_proposed(
                change,
                who,
                f":hourglass: {explain_error(error)} Nothing changed: press Apply again in a minute.",
                detail=answered,
            )
        elif isinstance(error, ld_errors.Unreachable):
            # Never reached LaunchDarkly (no connection): nothing can have changed.
            await self.back_to_proposed(
                change,
                who,
                f":warning: {explain_error(error)} Nothing was sent: press Apply to try again.",
                detail=answered,
            )
        elif isinstance(error, ld_errors.OutcomeUnknown | ld_errors.ServerError):
            await self._outcome_unknown(change, who, error)
        elif isinstance(error, ld_errors.Unauthorized) and linked:
            await self.finish(
                change,
                FAILED,
                who,
                status,
                ":x: LaunchDarkly refused your linked token (401): it was revoked or expired. "
                "Run `/flag link-account` again, or `/flag unlink-account` to act through the bot. "
                "Nothing changed.",
                detail=answered,
            )
        else:
            await self.finish(
                change,
                FAILED,
                who,
                status,
                f":x: Not applied: {explain_error(error)} Nothing changed. {_next_step(error)}",
                detail=answered,
            )

    async def _outcome_unknown(
        self,
        change: Change,
        who: Who,
        error: FlagopsError | None,
        *,
        cause: str | None = None,
        settled: bool = False,
    ) -> None:
        """A write that may or may not have happened: ask LaunchDarkly, never resend.

        ``settled``: the settle window has already passed since the write (a change taken over
        from a process that is gone), so the first look decides for good.
        """
        now = self.clock()
        settle_at = now if settled else now + timedelta(seconds=self.settings.settle_seconds)
        moved = await self.store.transition(
            change.id,
            [APPLYING],
            OUTCOME_UNKNOWN,
            who.user_id,
            ld_status=getattr(error, "status", None),
            detail=str(error) if error else (cause or "interrupted"),
            settle_at=settle_at,
            lease_owner=None,
            lease_expires_at=None,
        )
        if moved is None:
            return  # settled by someone else meanwhile: their outcome stands
        text = explain_error(error) if error else (cause or "The bot stopped while applying it.")
        await self._decide_outcome(moved, who, text, settled=settled)

    async def _decide_outcome(self, change: Change, who: Who, cause: str, *, settled: bool) -> None:
        """Say what LaunchDarkly shows about a change in ``outcome_unknown`` (``bot.lifecycle.outcome``)."""
        proposal = proposal_of(change)
        before = change.flag_before or {}

        result = await self._ask_launchdarkly(change, proposal, before, settled=settled)
        verdict = result.verdict
        if verdict is outcomes.Verdict.LANDED:
            # The flag right after this write (the audit entry's currentVersion), not as read now:
            # undo must not count what others did since as part of this change.
            after = (result.entry.current_version if result.entry else None) or result.current
            if after is None:
                after = {**before, "_deleted": True} if result.gone else before
            await self._applied(
                change, who, proposal, before, after, note="LaunchDarkly's audit log shows this change"
            )
            return
        on_project = proposal.raw is not None and proposal.raw.on_project
        if verdict is outcomes.Verdict.SHOWN and result.current is not None:
            note = (
                "the project shows every value this change sets (a project patch carries no comment "
                "for the audit log, so the documents decide)"
                if on_project
                else "the flag shows every value this change sets (the audit log could not be read to "
                "confirm that this write made them)"
            )
            await self._applied(change, who, proposal, before, result.current, note=note)
            return
        if not settled:
            # It may still land: look again once the settle window has passed; nothing is offered
            # to press meanwhile.
            assert change.settle_at is not None
            when = _clock_time(change.settle_at)
            message = (
                f":hourglass: Outcome unknown: {cause} LaunchDarkly may still apply it, so nothing is "
                f"resent. I look again at {when} UTC and say here whether it landed."
            )
            await self.update_card(change, _pressed(message, await self._presser(change, who)))
            await self.reply(change, message)
            self._settle_later(change.id, _aware(change.settle_at))
            return
        final = await self.store.transition(
            change.id,
            [OUTCOME_UNKNOWN],
            OUTCOME_UNKNOWN,
            "flagops",
            detail=f"outcome decided: {verdict.value}",
            require={"settle_at": change.settle_at},
            settle_at=None,
        )
        if final is None:
            return  # decided elsewhere meanwhile
        if result.gone:
            none = verdict is outcomes.Verdict.NOT_LANDED
            message = f":warning: {cause} The flag no longer exists in LaunchDarkly" + (
                ", and its audit log shows no change from this card." if none else "."
            )
            shown = _pressed(message, await self._presser(final, who))
            await self.update_card(final, shown, buttons=(blocks.CANCEL,))
            await self.reply(final, message)
            return
        if verdict is outcomes.Verdict.NOT_LANDED:
            message = (
                f":x: Not applied. {cause} LaunchDarkly's audit log shows no change from this card "
                f"{_seconds(self.settings.settle_seconds)} later, so it did not land. "
                "*Send again* sends it once more."
            )
        elif verdict is outcomes.Verdict.NOT_SHOWN and on_project:
            message = (
                f":x: Not applied. {cause} The project does not show this change "
                f"{_seconds(self.settings.settle_seconds)} later (a project patch carries no comment for "
                "the audit log, so the documents decide): it did not land, or was changed back since. "
                "*Send again* sends it once more."
            )
        elif on_project:
            message = (
                f":warning: Outcome unknown: {cause} The project could not be read "
                f"({blocks.escape(result.audit_error or 'no answer')}). Check it in LaunchDarkly before "
                "pressing *Send again*."
            )
        elif verdict is outcomes.Verdict.NOT_SHOWN:
            message = (
                f":warning: Outcome unknown: {cause} LaunchDarkly's audit log could not be read "
                f"({result.audit_error}), and the flag does not show the change. "
                "Check the flag before pressing *Send again*."
            )
        else:
            message = (
                f":warning: Outcome unknown: {cause} Neither LaunchDarkly's audit log nor the flag could "
                "be read. Check the flag in LaunchDarkly before pressing *Send again*."
            )
        shown = _pressed(message, await self._presser(final, who))
        await self.update_card(final, shown, buttons=(blocks.SEND_AGAIN, blocks.CANCEL))
        await self.reply(final, message)

    async def _presser(self, change: Change, who: Who) -> Who:
        """Who pressed the button that sent ``change`` (its last move to ``applying``): a later
        settle check acts as the requester, but the card names the one who pressed."""
        for entry in reversed(await self.store.audit_for(change.id)):
            if entry.to_state == APPLYING and entry.from_state != APPLYING:
                return dataclasses.replace(who, user_id=entry.actor_id)
        return who

    async def _landed_after_all(self, change: Change, who: Who, proposal: Proposal) -> bool:
        """Before a Send again writes: does LaunchDarkly show the first attempt after all?"""
        before = change.flag_before or {}

        result = await self._ask_launchdarkly(change, proposal, before, settled=True)
        if result.verdict is outcomes.Verdict.LANDED:
            entry_after = result.entry.current_version if result.entry else None
            after = entry_after or result.current or before
            note = "the earlier attempt landed (LaunchDarkly's audit log shows it); nothing was resent"
            await self._applied(change, who, proposal, before, after, note=note)
            return True
        if result.verdict is outcomes.Verdict.SHOWN and result.current is not None:
            what = "project" if proposal.raw is not None and proposal.raw.on_project else "flag"
            note = f"the {what} already shows every value this change sets; nothing was resent"
            await self._applied(change, who, proposal, before, result.current, note=note)
            return True
        if result.verdict is outcomes.Verdict.UNKNOWN:
            await self._outcome_unknown(
                change,
                who,
                None,
                cause="Nothing was resent: LaunchDarkly could not be read to check "
                "whether the first attempt landed.",
                settled=True,
            )
            return True
        return False

    async def _ask_launchdarkly(
        self, change: Change, proposal: Proposal, before: dict[str, Any], *, settled: bool
    ) -> outcomes.Outcome:
        """Whether ``change`` landed, as LaunchDarkly's audit log (or the flag) shows it; a project
        patch, as the project shows it (it carries no comment to find in the audit log)."""
        raw = proposal.raw
        if raw is not None and raw.on_project:
            return await raw_patches.project_outcome(self.ld, change, proposal)

        async def read_flag() -> dict[str, Any]:
            return await self.flags.flag(change.project, change.flag_key, fresh=True)

        return await outcomes.decide(
            self.ld,
            project=change.project,
            flag_key=change.flag_key,
            env=None,  # env/*: LaunchDarkly files flag-level kinds under no one environment
            change_id=change.id,
            since=_aware(change.created_at),
            settled=settled,
            before=before or None,
            patch=raw_patches.applier(raw) if raw is not None else proposal.semantic_patch(),
            read_flag=read_flag,
        )

    # --- settling unknown outcomes ------------------------------------------------------------

    def _settle_later(self, change_id: str, at: datetime) -> None:
        """Decide ``change_id`` for good at ``at`` in this process (the sweep does it after a restart)."""

        async def wait_then_settle() -> None:
            delay = (at - self.clock()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self.settle(change_id)
            except _REPORT_FAILURES:
                log.exception("settling change %s failed; the sweep tries again", change_id)

        task = asyncio.create_task(wait_then_settle(), name=f"flagops-settle-{change_id}")
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def settle(self, change_id: str) -> None:
        """Decide an unknown outcome whose settle time has come (once, whichever instance asks)."""
        change = await self.store.get_change(change_id)
        if change is None or change.state != OUTCOME_UNKNOWN or change.settle_at is None:
            return
        if _aware(change.settle_at) > self.clock():
            return
        # Claim the check: push settle_at on, so that another instance's sweep leaves it alone
        # while this one asks LaunchDarkly (and takes it up again if this process dies).
        claimed = await self.store.transition(
            change.id,
            [OUTCOME_UNKNOWN],
            OUTCOME_UNKNOWN,
            "flagops",
            detail="settle window over: deciding the outcome",
            require={"settle_at": change.settle_at},
            settle_at=self.clock() + timedelta(seconds=60),
        )
        if claimed is None:
            return
        who = Who(change.requester_id, change.requester_name, ReplyTo(change.channel_id, change.requester_id))
        await self._decide_outcome(claimed, who, "LaunchDarkly did not answer the write.", settled=True)

    async def _find_change(self, change_id: str) -> Change | None:
        """The change a button names. The card is posted before its row is stored (where the bot
        may not post, nothing is stored), so a click fast on the heels of the post may come first:
        look again for a moment before saying the change is unknown."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CARD_STORE_WAIT
        while (change := await self.store.get_change(change_id)) is None and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return change

    async def drain(self, grace: float | None = None) -> None:
        """Let the clicks in flight finish (at most ``grace`` seconds, ``FLAGOPS_SHUTDOWN_GRACE``).

        Settle checks waiting for their time are cancelled: their time is stored, and the sweep
        of whichever instance runs next decides them. A click still running after the grace keeps
        its lease; once that expires (and the settle window passed) another instance settles it.
        """
        for timer in list(self._timers):
            timer.cancel()
        current = asyncio.current_task()
        work = [t for t in self._work if t is not current and not t.done()]
        if work:
            grace = self.settings.flagops_shutdown_grace if grace is None else grace
            log.info("waiting up to %.0f s for %d change(s) in flight", grace, len(work))
            _done, pending = await asyncio.wait(work, timeout=grace)
            if pending:
                log.warning("%d change(s) still in flight at stop; their leases will expire", len(pending))
        # Clicks that ended in an unknown outcome meanwhile started timers of their own: their
        # settle time is stored too, so they are cancelled as well, not waited out.
        for timer in list(self._timers):
            timer.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)

    def _lease(self) -> dict[str, Any]:
        """The columns that make this instance the owner of a change it moves to ``applying``."""
        now = self.clock()
        expires = now + self._apply_budget()
        return {"lease_owner": self.instance_id, "lease_expires_at": expires, "sent_at": now}

    async def _supersede(
        self, change: Change, who: Who, current: dict[str, Any], *, moved: str | None = None
    ) -> None:
        """``moved``: what changed since the preview, in words (default: the flag's versions)."""
        since = moved or (
            "The flag changed since this preview "
            f"(version {change.preview_version} → {current.get('_version')})"
        )
        superseded = await self.store.transition(
            change.id, [APPLYING], SUPERSEDED, who.user_id, detail=f"{since[0].lower()}{since[1:]}"
        )
        if superseded is None:
            return
        try:
            command = parse(change.command_text)
        except CommandError:
            command = None
        again = isinstance(command, ChangeCommand | RawCommand) or (
            isinstance(command, ReservedCommand) and command.verb in self.verbs
        )
        await self.update_card(
            superseded,
            f":arrows_counterclockwise: {since[0].upper()}{since[1:]}. Nothing was applied; "
            + ("a new preview follows." if again else "run the command again for a new preview."),
        )
        if moved is None:
            self.flags.remember(change.project, change.flag_key, current)
        try:
            if isinstance(command, ChangeCommand):
                await self.propose(who, command, change.command_text, thread_ts=change.card_ts)
            elif isinstance(command, RawCommand):
                await self.propose_raw(who, command, change.command_text, thread_ts=change.card_ts)
            elif isinstance(command, ReservedCommand) and command.verb in self.verbs:
                await self.verbs[command.verb](who, command, change.command_text)
        except (CommandError, ld_errors.LaunchDarklyError, EngineRefusal) as error:
            await self.reply(change, f":warning: The command no longer fits the flag: {explain_error(error)}")

    async def back_to_proposed(
        self, change: Change, who: Who, message: str, *, detail: str | None = None
    ) -> None:
        """``detail``: what the audit keeps (LaunchDarkly's answer), when not ``message``."""
        moved = await self.store.transition(
            change.id,
            [APPLYING],
            PROPOSED,
            who.user_id,
            detail=detail or blocks.unescape(message),  # plain: Details escapes it once
            expires_at=self._new_expiry(),
        )
        if moved is not None:
            await self.update_card(moved, _pressed(message, who), buttons=(blocks.APPLY, blocks.CANCEL))

    async def finish(
        self,
        change: Change,
        state: str,
        who: Who,
        status: int | None,
        message: str,
        *,
        detail: str | None = None,
    ) -> None:
        """Settle a change in ``applying``: the card and one thread reply say ``message``; the audit
        keeps ``detail`` too (LaunchDarkly's answer, for Details)."""
        moved = await self.store.transition(
            change.id,
            [APPLYING],
            state,
            who.user_id,
            ld_status=status,
            detail=detail or blocks.unescape(message),  # plain: Details escapes it once
        )
        if moved is None:
            return
        await self.update_card(moved, _pressed(message, who))
        await self.reply(moved, message)

    def _new_expiry(self) -> datetime:
        """A change handed back to the requester waits a whole confirmation window again."""
        return self.clock() + self.settings.flagops_confirm_ttl

    # --- time -------------------------------------------------------------------------------

    async def sweep(
        self, *, stuck_after: timedelta = timedelta(minutes=2), now: datetime | None = None
    ) -> None:
        """Expire unconfirmed cards on time; settle changes left in ``applying`` by a crash.

        ``now``: the scheduler's time (default: this service's clock).
        """
        now = now or self.clock()
        stuck_after = max(stuck_after, self._apply_budget())
        for change in await self.store.due_expiries(now):
            await self._settle(change, self._expire(change))
        # A change whose owner's lease expired and whose write had the whole settle window to land.
        leases = now - timedelta(seconds=self.settings.settle_seconds)
        for change in await self.store.stuck_applying(now - stuck_after, lease_expired_before=leases):
            who = Who(
                change.requester_id, change.requester_name, ReplyTo(change.channel_id, change.requester_id)
            )
            await self._settle(change, self._interrupted(change, who))
        for change in await self.store.due_settles(now):
            await self._settle(change, self.settle(change.id))

    async def _settle(self, change: Change, work: Awaitable[None]) -> None:
        """Run one change's sweep work; a failure is logged and the sweep goes on with the rest."""
        try:
            await work
        except _REPORT_FAILURES:
            log.exception("sweeping change %s failed; the next sweep tries again", change.id)

    def _apply_budget(self) -> timedelta:
        """The longest an apply may legitimately hold ``applying``: re-read with retries, the
        PATCH and its 409 retry, each with the rate-limit wait, and Slack's retries, with margin."""
        timeout = self.settings.ld_timeout
        seconds = 3 * timeout + 2 * (timeout + self.settings.ld_max_rate_limit_wait) + 60
        return timedelta(seconds=max(seconds, 300))

    async def _interrupted(self, change: Change, who: Who) -> None:
        """A change left in ``applying`` (the bot stopped): say what is known, never resend."""
        proposal = proposal_of(change)
        audit = await self.store.audit_for(change.id)
        detail = (audit[-1].detail or "") if audit else ""
        if proposal.ramp is not None:  # say exactly which steps LaunchDarkly confirmed
            await ramps.interrupted(self, change, who)
            return
        if detail.startswith("Request approval") or proposal.execute_at_ms is not None:
            # Not a flag PATCH: an approval request or a scheduled change may exist now.
            where = "`/flag approvals`" if detail.startswith("Request approval") else "`/flag scheduled`"
            await self.finish(
                change,
                FAILED,
                who,
                None,
                f":warning: The bot stopped while sending this to LaunchDarkly. Check {where} "
                f"for {change.flag_key} before asking again.",
            )
            return
        await self._outcome_unknown(change, who, None, settled=True)

    async def _expire(self, change: Change) -> None:
        moved = await self.store.transition(
            change.id, [PROPOSED, NEEDS_APPROVAL], EXPIRED, "flagops", detail="confirmation window over"
        )
        if moved is not None:
            await self.update_card(
                moved,
                ":hourglass: Expired: nobody applied it within "
                f"{_duration(self.settings.flagops_confirm_ttl)}. "
                "*Propose again* previews it afresh.",
                buttons=(blocks.PROPOSE_AGAIN,)
                if self._command_of(moved) is not None or self._ramp_of(moved) is not None
                else (),
            )

    # --- helpers ----------------------------------------------------------------------------

    def _approval_url(self, change: Change, request_id: str) -> str:
        return (
            f"{self.settings.ld_base_url}/projects/{change.project}/flags/{change.flag_key}"
            f"/approvals/{request_id}?env={change.environment}"
        )

    def comment(self, change: Change, who: Who) -> str:
        text = f"flagops change {change.id} via Slack by @{who.user_name}"
        return f"{text}: {change.comment}" if change.comment else text

    def _view(
        self,
        change_id: str,
        requester_id: str,
        project: str,
        flag_key: str,
        env: str | None,
        proposal: Proposal,
        comment: str | None,
        *,
        status: str | None = None,
        buttons: Sequence[str] = (),
        outcome: dict[str, Any] | None = None,
    ) -> CardView:
        return CardView(
            change_id=change_id,
            requester_id=requester_id,
            project=project,
            flag_key=flag_key,
            flag_name=proposal.flag_name,
            environment=env,
            sentences=proposal.sentences,
            changes=proposal.fact_changes(),
            canonical=f"{self.settings.flagops_command} {proposal.canonical}",
            instructions_json=proposal.request_text(),
            comment=comment,
            status=status,
            buttons=buttons,
            dangerous=proposal.dangerous,
            approval_required=proposal.approval_required,
            approval_asked=proposal.approval_asked,
            critical=proposal.critical,
            flag_url=proposal.flag_url,
            notes=proposal.notes,
            schedule=proposal.when_text,
            on_project=proposal.raw is not None and proposal.raw.on_project,
            read_as=proposal.read_as,
            ramp=ramps.card_lines(proposal, outcome, env),
        )

    async def update_card(self, change: Change, status: str, *, buttons: Sequence[str] = ()) -> None:
        if not change.card_ts:
            return
        proposal = proposal_of(change)
        view = self._view(
            change.id,
            change.requester_id,
            change.project,
            change.flag_key,
            change.environment,
            proposal,
            change.comment,
            status=status,
            buttons=buttons,
            outcome=change.outcome,
        )
        text, body = blocks.render_card(view)
        try:
            await self.messenger.update(change.channel_id, change.card_ts, text, body)
        except SLACK_FAILURES:
            # The store holds the truth; a card that could not be updated must not stop the
            # lifecycle (the thread reply still tells the outcome).
            log.warning("could not update the card of change %s", change.id, exc_info=True)

    async def reply(
        self, change: Change, text: str, lines: Sequence[str] = (), *, buttons: Sequence[dict[str, Any]] = ()
    ) -> None:
        message, body = blocks.render_notice(text, lines, buttons=buttons)
        try:
            await self.messenger.post(
                change.channel_id, message, body, thread_ts=change.thread_ts or change.card_ts
            )
        except SLACK_FAILURES:
            log.warning("could not reply in the thread of change %s", change.id, exc_info=True)

    async def tell(self, who: Who, text: str, lines: Sequence[str] = ()) -> None:
        message, body = blocks.render_notice(text, lines)
        await self.messenger.ephemeral(who.reply, message, body)

    async def tell_text(self, who: Who, text: str) -> None:
        message, body = blocks.render_text(text)
        await self.messenger.ephemeral(who.reply, message, body)


def _next_step(error: ld_errors.LaunchDarklyError) -> str:
    """What to do after LaunchDarkly refused a change for good (its whole answer is in Details)."""
    if isinstance(error, ld_errors.PatchFailed):
        return "Run the command again for a fresh preview; ⋯ → *Details* has LaunchDarkly's whole answer."
    if isinstance(error, ld_errors.Forbidden):
        return "Ask a LaunchDarkly admin for the access it needs, then run the command again."
    if isinstance(error, ld_errors.NotFound):
        return "Check the flag and environment with `/flag show`, then run the command again."
    return "⋯ → *Details* has LaunchDarkly's whole answer; fix the command and run it again."


def _pressed(status: str, who: Who) -> str:
    """A card's status on a failure or an unknown outcome, saying who pressed (once)."""
    mention = f"<@{who.user_id}>"
    if mention in status or not _SLACK_USER_ID.fullmatch(who.user_id):
        return status
    return f"{status} _(pressed by {mention})_"


def _json_lines(value: Any) -> str:
    """JSON for Details: an object's top-level fields one a line, a list's items one a line (an
    instruction a line), each compact."""
    if isinstance(value, dict):
        fields = [f"  {json.dumps(k)}: {_json_items(v)}" for k, v in value.items()]
        return "{\n" + ",\n".join(fields) + "\n}"
    return _json_items(value)


def _json_items(value: Any) -> str:
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(f"    {json.dumps(v, ensure_ascii=False)}" for v in value) + "\n  ]"
    return json.dumps(value, ensure_ascii=False)


def _duration(delta: timedelta) -> str:
    """``15 minutes``, ``1 hour``, ``30 seconds``: a confirmation window in words."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _clock_time(moment: datetime) -> str:
    """``21:04:05``: an instant in UTC, to the second."""
    return _aware(moment).astimezone(UTC).strftime("%H:%M:%S")


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def _may_request_approval(change: Change) -> bool:
    """Whether a 405 can become Request approval: a semantic patch, or a JSON or merge patch on
    one environment with equivalent instructions."""
    raw = proposal_of(change).raw
    return raw is None or (raw.translated and change.environment is not None)


def _env_version(flag: dict[str, Any], env: str | None) -> int | None:
    if not env:
        return None
    version = ((flag.get("environments") or {}).get(env) or {}).get("version")
    return int(version) if version is not None else None


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; every time the store writes is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def clip_description(text: str) -> str:
    return text if len(text) <= 500 else text[:499] + "…"
