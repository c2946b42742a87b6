"""Ramps: ``/flag ramp new-checkout production 5% 25% 50% 100% every 30m``.

One card, one Apply: each step becomes a LaunchDarkly scheduled change (LaunchDarkly runs it at its
time; no local timer). Step *k* runs *k* intervals after the card was made, so the card shows the
exact times and Apply creates exactly those. In an environment that requires approval each step is
an approval request with its own ``executionDate`` (a request carries one), all created by one
Request approvals. **Pause** deletes what has not run yet and reads back what is left.

What exists of a ramp is stored on its change row (``outcome_json``, ``{"ramp": {...}}``), written
after each step LaunchDarkly confirms (``Store.record``), so the card never lists a step that
LaunchDarkly did not confirm, and a Pause after a partial Apply deletes exactly what exists. No
table of its own: one change row is one card, and its audit rows say each step and each Pause.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from bot.config import Settings
from bot.errors import explain_error
from bot.launchdarkly import errors as ld_errors
from bot.lifecycle.flags import FlagReader
from bot.lifecycle.models import (
    APPLIED,
    APPLYING,
    APPROVAL_REQUESTED,
    FAILED,
    NEEDS_APPROVAL,
    PROPOSED,
    Draft,
    Proposal,
    RampPlan,
    RampStep,
    Who,
    proposal_of,
)
from bot.lifecycle.scheduled import Lifecycle
from bot.persistence.store import Change
from bot.slack import blocks
from commands import describe, parse
from commands import resolve as resolve_command
from commands.errors import CommandError
from commands.instructions import SemanticPatch
from commands.intents import ChangeCommand
from commands.natural import complete_ramp_step

log = logging.getLogger(__name__)


class RampProposer(Protocol):
    """What proposing a ramp needs of the lifecycle (``ChangeService``)."""

    flags: FlagReader
    clock: Callable[[], datetime]
    settings: Settings

    async def project_for(self, who: Who) -> str: ...

    async def propose_draft(
        self, who: Who, draft: Draft, before: dict[str, Any], text: str, *, thread_ts: str | None = None
    ) -> None: ...


class RampLifecycle(Lifecycle, Protocol):
    """What a ramp needs of the lifecycle (``ChangeService``): a scheduled change's needs, the rule
    of Apply (Pause follows it), and answering the clicker alone."""

    async def apply_refusal(self, change: Change, who: Who) -> str | None: ...

    async def tell(self, who: Who, text: str, lines: Sequence[str] = ()) -> None: ...


#: Apply refuses a ramp whose first step is due sooner than this: LaunchDarkly must get it in time.
FIRST_STEP_MARGIN_MS = 60_000

StepState = Literal["created", "unknown", "failed", "skipped", "deleted", "ran", "passed", "gone", "kept"]


class StepOutcome(BaseModel):
    """What LaunchDarkly confirmed of one step: its id, and what became of it."""

    state: StepState
    id: str | None = None
    note: str | None = None


class RampOutcome(BaseModel):
    """What exists of a ramp (``outcome_json["ramp"]``)."""

    kind: Literal["scheduled", "approval"]
    steps: list[StepOutcome]
    reviewers: list[str] = []
    """Who the approval requests notify, as shown."""

    def live(self) -> list[int]:
        """Indexes of the steps that may still run (Pause has something to delete)."""
        return [i for i, s in enumerate(self.steps) if s.state in ("created", "unknown", "kept")]


def outcome_of(change: Change) -> RampOutcome | None:
    ramp = (change.outcome or {}).get("ramp")
    return RampOutcome.model_validate(ramp) if isinstance(ramp, dict) else None


# --- propose ---------------------------------------------------------------------------------


async def propose(
    service: RampProposer,
    who: Who,
    ramp: tuple[str, str, tuple[float, ...], int, str | None],
    text: str,
    *,
    thread_ts: str | None = None,
) -> None:
    """Resolve every step against the flag and post the ramp's card (``service``: the lifecycle).

    Raises:
        CommandError: a step cannot be said on this flag, or the flag or environment is unknown.
    """
    key, env_name, percents, every, variation = ramp
    project = await service.project_for(who)
    before = await service.flags.flag(project, key, fresh=True)
    env = await service.flags.environment_key(project, env_name, before) or env_name
    key = str(before.get("key") or key)
    start_s = int(service.clock().timestamp())
    start_s += -start_s % 60  # on the minute
    steps: list[RampStep] = []
    label = ""
    for n, percent in enumerate(percents, 1):
        line = complete_ramp_step(before, env, percent, variation)
        if line is None:
            if variation is not None and not _has_variation(before, variation):
                raise CommandError(
                    f"`{key}` has no variation `{variation}` (it has "
                    + ", ".join(f"`{v}`" for v in _variation_words(before))
                    + "): name one of them, by its name or value."
                )
            if variation is None:
                raise CommandError(
                    f"Which variation does the ramp of `{key}` serve more of? Name it: "
                    f"`ramp {key} {env} {' '.join(f'{p:g}%' for p in percents)} <variation> every …`."
                )
            raise CommandError(
                f"I cannot tell where the other {100 - percent:g}% go at the {percent:g}% step of `{key}` in "
                f"`{env}`: a ramp leaves the rest with what the default rule serves now, so that must be one "
                "variation other than the ramped one (an unknown name is refused the same way). "
                f"Serve one first (`serve {key} {env} <variation>`), then ramp."
            )
        command = parse(line)
        assert isinstance(command, ChangeCommand)
        patch = resolve_command(command, before, members={}, flags={})
        label = _served(before, patch)
        steps.append(
            RampStep(
                percent=percent,
                at_ms=(start_s + n * every) * 1000,
                patch=patch.body(),
                sentence=f"{percent:g}% {label}" if label else "; ".join(describe(patch, before)),
            )
        )
    _refuse_a_ramp_down(service, before, key, env, steps[0])
    said = " ".join(f"{p:g}%" for p in percents)
    canonical = f"ramp {key} {env} {said} every {_interval(every, short=True)}"
    if variation is not None:
        canonical += f" {variation}"
    environment = (before.get("environments") or {}).get(env) or {}
    notes: tuple[str, ...] = ()
    if environment.get("on") is False:
        notes = (
            f":information_source: *{key}* is OFF in *{env}*: it serves its off variation to everyone, so "
            "the ramp changes what it serves only once it is turned on.",
        )
    draft = Draft(
        project,
        key,
        env,
        SemanticPatch.model_validate(steps[0].patch),
        canonical,
        None,
        False,
        ramp=RampPlan(
            every_seconds=every,
            steps=steps,
            summary=f"Ramp the default rule to {label or 'the variation'}: "
            + " → ".join(f"{p:g}%" for p in percents)
            + f", every {_interval(every)}",
        ),
        notes=notes,
    )
    # The same loop as every card: the policy, the preview of the first step, approval known.
    await service.propose_draft(who, draft, before, text, thread_ts=thread_ts)


def _variation_words(flag: dict[str, Any]) -> list[str]:
    """Each variation as a person names it: its name, else its value."""
    words = []
    for variation in flag.get("variations") or []:
        if isinstance(variation, dict):
            raw = variation.get("value")
            words.append(str(variation.get("name") or (raw if isinstance(raw, str) else json.dumps(raw))))
    return words


def _has_variation(flag: dict[str, Any], said: str) -> bool:
    lowered = said.lower()
    for variation in flag.get("variations") or []:
        if isinstance(variation, dict):
            raw = variation.get("value")
            value = raw if isinstance(raw, str) else json.dumps(raw)
            if lowered in (value.lower(), str(variation.get("name") or "").lower()):
                return True
    return False


def _refuse_a_ramp_down(
    service: RampProposer, flag: dict[str, Any], key: str, env: str, first: RampStep
) -> None:
    """A ramp goes up: refuse one whose first step serves less of the ramped variation than the
    default rule serves now (``5%`` of true where true gets 100% would take it from 95%).

    Raises:
        CommandError: the first step would take the variation away from some now getting it.
    """
    body = first.patch["instructions"][0]
    weights: dict[str, int] = body.get("rolloutWeights") or {}
    ramped = body.get("variationId") or next(iter(weights), None)
    variations = [v for v in flag.get("variations") or [] if isinstance(v, dict)]
    ids = [v.get("_id") for v in variations]
    environment = (flag.get("environments") or {}).get(env) or {}
    fallthrough = environment.get("fallthrough") or {}
    now = 0.0
    if isinstance(fallthrough.get("variation"), int):
        index = fallthrough["variation"]
        now = 100.0 if 0 <= index < len(ids) and ids[index] == ramped else 0.0
    else:
        for share in (fallthrough.get("rollout") or {}).get("variations") or []:
            index = share.get("variation") if isinstance(share, dict) else None
            if isinstance(index, int) and 0 <= index < len(ids) and ids[index] == ramped:
                now += float(share.get("weight") or 0) / 1000
    first_percent = first.percent
    if first_percent >= now:
        return
    other_id = next((i for i in weights if i != ramped), None)
    other = next((v for v in variations if v.get("_id") == other_id), None)
    served = next((v for v in variations if v.get("_id") == ramped), {})

    def said(variation: dict[str, Any]) -> str:
        raw = variation.get("value")
        return raw if isinstance(raw, str) else json.dumps(raw)

    command = service.settings.flagops_command
    advice = (
        f"To ramp, first serve {said(other)}: `{command} serve {key} {env} {said(other)}`, or ramp the other "
        "variation."
        if other is not None
        else "A ramp starts below what is served now."
    )
    raise CommandError(
        f"`{key}` already serves {said(served)} to {now:g}% in `{env}`; a ramp from {first_percent:g}% "
        f"would take it away from {now - first_percent:g}%. {advice}"
    )


def _served(flag: dict[str, Any], patch: SemanticPatch) -> str:
    """The variation a step ramps up, as the card names it (``Enabled (true)``): the one it serves
    fully, or the first of its rollout (the ramped one, as the step's command puts it first)."""
    body = patch.body()["instructions"][0]
    wanted = body.get("variationId") or next(iter(body.get("rolloutWeights") or {}), None)
    for variation in flag.get("variations") or []:
        if isinstance(variation, dict) and variation.get("_id") == wanted:
            raw = variation.get("value")
            value = raw if isinstance(raw, str) else json.dumps(raw)
            name = variation.get("name")
            return f"{name} ({value})" if name else value
    return ""


# --- the card --------------------------------------------------------------------------------


def card_lines(proposal: Proposal, outcome: dict[str, Any] | None, environment: str | None) -> list[str]:
    """The card's ramp section: a heading, then each step with its time (in the viewer's zone, by
    Slack's date formatting) and what LaunchDarkly confirmed of it."""
    plan = proposal.ramp
    if plan is None:
        return []
    raw = (outcome or {}).get("ramp")
    done = RampOutcome.model_validate(raw) if isinstance(raw, dict) else None
    count = len(plan.steps)
    approval = proposal.approval_required if done is None else done.kind == "approval"
    heading = (
        f":chart_with_upwards_trend: *Ramp in {blocks.escape(environment or '')}: {count} "
        f"step{'s' if count != 1 else ''}, every {_interval(plan.every_seconds)}*"
    )
    if done is None:
        heading += f" (the first comes {_interval(plan.every_seconds)} after this card). " + (
            f"Each step needs its own approval request (a request has one time): Request approval "
            f"creates all {count} together."
            if approval
            else f"Apply creates the {count} steps as LaunchDarkly scheduled changes."
        )
    lines = [heading]
    for n, step in enumerate(plan.steps, 1):
        line = f"{n}. {_when(step.at_ms)} · {blocks.escape(step.sentence)}"
        if done is not None and n <= len(done.steps):
            line += f" · {_state_words(done.steps[n - 1], done.kind, proposal, environment)}"
        lines.append(line)
    return lines


def _state_words(step: StepOutcome, kind: str, proposal: Proposal, environment: str | None) -> str:
    """What became of one step, in words; its LaunchDarkly id is behind *Details* (``step_ids``)."""
    thing = "approval request" if kind == "approval" else "scheduled change"
    note = f": {blocks.escape(blocks.clip(step.note, 200))}" if step.note else ""
    words = {
        "created": thing + (" (pending review)" if kind == "approval" else ""),
        # Why is said once, under the card; the line stays short.
        "unknown": f":warning: unknown whether the {thing} exists (*Pause* looks for it)",
        "failed": f":x: not created{note}",
        "skipped": "not created",
        "deleted": f":wastebasket: {thing} deleted by Pause",
        "ran": "already run",
        "passed": "no longer in LaunchDarkly (its time has passed)",
        "gone": f"no longer in LaunchDarkly{note}",
        "kept": f":warning: {thing} still there{note}",
    }
    return words[step.state]


def step_ids(change: Change) -> str | None:
    """The LaunchDarkly id of each step of a ramp, for *Details* (``1. `id` (created)``), or None."""
    done = outcome_of(change)
    if done is None or not done.steps:
        return None
    thing = "approval request" if done.kind == "approval" else "scheduled change"
    return "; ".join(
        f"{n}. {thing} `{blocks.escape(s.id)}` ({s.state})" if s.id else f"{n}. no id ({s.state})"
        for n, s in enumerate(done.steps, 1)
    )


def _when(ms: int) -> str:
    fallback = f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"
    return f"<!date^{ms // 1000}^{{date_short_pretty}} {{time}}|{fallback}>"


def _interval(seconds: int, *, short: bool = False) -> str:
    """``30 minutes``, ``1 hour 30 minutes``, ``2 days`` (``30m``, ``1h30m`` when ``short``)."""
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit[0]}" if short else f"{count} {unit}{'s' if count != 1 else ''}")
    return ("" if short else " ").join(parts) or "0m"


def _steps_said(indexes: Sequence[int]) -> str:
    """``step 2``, ``steps 2 and 3``, ``steps 2, 3 and 4``."""
    names = [str(i + 1) for i in indexes]
    if len(names) == 1:
        return f"step {names[0]}"
    return f"steps {', '.join(names[:-1])} and {names[-1]}"


# --- Apply and Request approval --------------------------------------------------------------


async def apply(service: RampLifecycle, change: Change, who: Who, proposal: Proposal) -> None:
    """Create every step as a LaunchDarkly scheduled change (``change`` held in ``applying``)."""
    assert proposal.ramp is not None and change.environment is not None
    plan = proposal.ramp
    if await _too_late(service, change, who, plan):
        return
    token = await service.approvals.token_for(who.user_id) if service.approvals else None
    done = RampOutcome(kind="scheduled", steps=[])
    for n, step in enumerate(plan.steps):
        instructions = SemanticPatch.model_validate(step.patch).instructions
        try:
            created = await service.ld.create_scheduled_change(
                change.project,
                change.flag_key,
                change.environment,
                execution_date=step.at_ms,
                instructions=instructions,
                comment=f"{service.comment(change, who)} (ramp step {n + 1} of {len(plan.steps)})",
                # The later steps conflict with the first (the same default rule): that is the ramp.
                # The first is sent as the card says (Apply anyway after a conflict with another change).
                ignore_conflicts=change.ignore_conflicts or n > 0,
                token=token,
            )
            outcome = StepOutcome(state="created", id=created.id)
        except ld_errors.Unreachable as error:
            if n == 0:
                await service.apply_failed(change, who, error)  # nothing was sent: Apply again
                return
            outcome = StepOutcome(state="failed", note=explain_error(error))
        except (ld_errors.OutcomeUnknown, ld_errors.ServerError) as error:
            # The answer was lost: LaunchDarkly may create the step still. Never "not created",
            # never Apply again: look once the settle window has passed, as for a single change.
            why = explain_error(error)
            outcome = await _look_again(service, change, plan, n, "scheduled", why, wait=True)
        except ld_errors.LaunchDarklyError as error:
            if n == 0:
                await service.apply_failed(change, who, error)  # 400 conflict, 405 approval, 429, 4xx
                return
            outcome = StepOutcome(state="failed", note=explain_error(error))
        done.steps.append(outcome)
        if outcome.state != "created":
            break
        await _remember(service, change, who, done, f"ramp step {n + 1}: scheduled change {outcome.id}")
    await _settle(service, change, who, plan, done)


async def request_approvals(service: RampLifecycle, change: Change, who: Who) -> None:
    """Request approval of every step at once, each with its ``executionDate``."""
    if service.approvals is not None and not await service.approvals.may_act(who, "request approval"):
        return
    won = await service.store.transition(
        change.id, [PROPOSED, NEEDS_APPROVAL], APPLYING, who.user_id, detail="Request approval (ramp)"
    )
    if won is None:
        await _tell(service, who, "This ramp is already on its way.")
        return
    try:
        await _request_steps(service, won, who)
    except Exception:
        # Not LaunchDarkly's answer (a bug, the database): say what exists, never "nothing".
        log.exception("requesting approval of ramp %s failed unexpectedly", won.id)
        await unexpected(service, won, who, "approval")
        raise


async def _request_steps(service: RampLifecycle, won: Change, who: Who) -> None:
    """Create the approval request of each step (``won`` held in ``applying``)."""
    proposal = proposal_of(won)
    assert proposal.ramp is not None and won.environment is not None
    plan = proposal.ramp
    if await _too_late(service, won, who, plan):
        return
    await service.update_card(
        won, f":hourglass_flowing_sand: Requesting approval… (pressed by <@{who.user_id}>)"
    )
    token = await service.approvals.token_for(who.user_id) if service.approvals else None
    members: list[str] = []
    teams: list[str] = []
    shown: list[str] = []
    if service.approvals is not None:
        try:
            members, teams, shown = await service.approvals.notify_for(won)
        except (CommandError, ld_errors.LaunchDarklyError):
            log.warning("ramp %s: reviewers could not be looked up; LaunchDarkly's own apply", won.id)
    done = RampOutcome(kind="approval", steps=[], reviewers=shown)
    count = len(plan.steps)
    for n, step in enumerate(plan.steps):
        instructions = SemanticPatch.model_validate(step.patch).instructions
        try:
            request = await service.ld.create_approval_request(
                won.project,
                won.flag_key,
                won.environment,
                description=blocks.clip(
                    f"{who.user_name} (via Slack) asks for ramp step {n + 1} of {count}: {step.sentence}", 500
                ),
                instructions=instructions,
                comment=f"{service.comment(won, who)} (ramp step {n + 1} of {count})",
                execution_date=step.at_ms,  # approved and applied, LaunchDarkly runs it then
                notify_member_ids=members,
                notify_team_keys=teams,
                token=token,
            )
            outcome = StepOutcome(state="created", id=request.id)
        except (ld_errors.OutcomeUnknown, ld_errors.ServerError) as error:
            # The answer was lost: never "nothing was created"; look once the settle window passed.
            outcome = await _look_again(service, won, plan, n, "approval", explain_error(error), wait=True)
        except ld_errors.LaunchDarklyError as error:
            outcome = StepOutcome(state="failed", note=explain_error(error))
        if n == 0 and outcome.state == "failed":  # LaunchDarkly answered no: nothing exists
            await service.finish(
                won, FAILED, who, None, f":x: Could not request approval: {outcome.note} Nothing was created."
            )
            return
        done.steps.append(outcome)
        if outcome.state != "created":
            break
        await _remember(service, won, who, done, f"ramp step {n + 1}: approval request {outcome.id}")
    await _settle(service, won, who, plan, done)


async def unexpected(
    service: RampLifecycle, change: Change, who: Who, kind: Literal["scheduled", "approval"]
) -> None:
    """An error that is not LaunchDarkly's answer while creating the steps (a bug, an answer that
    cannot be read, the database): the steps stored as confirmed exist; the one being created may,
    so it is looked for and the card says what is known and offers Pause (never Send again)."""
    current = await service.store.get_change(change.id)
    if current is None or current.state != APPLYING:
        return  # settled already (or never claimed): its card says what happened
    plan = proposal_of(current).ramp
    assert plan is not None
    done = outcome_of(current) or RampOutcome(kind=kind, steps=[])
    cause = "Something went wrong on the bot's side while creating the ramp."
    if len(done.steps) < len(plan.steps):
        done.steps.append(
            await _look_again(
                service,
                current,
                plan,
                len(done.steps),
                done.kind,
                "Something went wrong on the bot's side.",
                wait=False,
            )
        )
    await _settle(service, current, who, plan, done, cause=cause)


async def interrupted(service: RampLifecycle, change: Change, who: Who) -> None:
    """A ramp left in ``applying`` (the bot stopped while creating its steps): the steps stored as
    confirmed exist; the next one may or may not; the card says so and offers Pause."""
    proposal = proposal_of(change)
    assert proposal.ramp is not None
    done = outcome_of(change)
    if done is None:
        audit = await service.store.audit_for(change.id)
        claims = [a for a in audit if a.to_state == APPLYING and a.from_state != APPLYING]
        claim = (claims[-1].detail or "") if claims else ""
        done = RampOutcome(kind="approval" if claim.startswith("Request approval") else "scheduled", steps=[])
    if len(done.steps) < len(proposal.ramp.steps):
        done.steps.append(
            StepOutcome(state="unknown", note="the bot stopped while creating it; Pause looks for it")
        )
    await _settle(service, change, who, proposal.ramp, done)


async def _too_late(service: RampLifecycle, change: Change, who: Who, plan: RampPlan) -> bool:
    now_ms = int(service.clock().timestamp() * 1000)
    if plan.steps[0].at_ms > now_ms + FIRST_STEP_MARGIN_MS:
        return False
    await service.finish(
        change,
        FAILED,
        who,
        None,
        f":x: The first step's time ({_when(plan.steps[0].at_ms)}) has come: nothing of the ramp was "
        "created. Run the command again for a ramp starting from now.",
    )
    return True


async def _remember(service: RampLifecycle, change: Change, who: Who, done: RampOutcome, detail: str) -> None:
    """Store what LaunchDarkly confirmed so far (a crash after this still knows the ids)."""
    await service.store.record(
        change.id,
        [APPLYING],
        who.user_id,
        detail=detail,
        outcome_json=json.dumps({"ramp": done.model_dump()}),
    )


async def _look_again(
    service: RampLifecycle,
    change: Change,
    plan: RampPlan,
    n: int,
    kind: Literal["scheduled", "approval"],
    why: str,
    *,
    wait: bool,
) -> StepOutcome:
    """Step ``n`` whose answer was lost (``why``): look for it by its time and instructions.

    ``wait``: the write may still be on its way (a timeout, a 5xx), so look only once the settle
    window has passed, as for a single change. Found, it is created; not found, or not listable,
    it stays unknown (never "not created": LaunchDarkly may still make it) and Pause looks again.
    """
    assert change.environment is not None
    step = plan.steps[n]
    thing = "approval request" if kind == "approval" else "scheduled change"
    settle = service.settings.settle_seconds
    if wait:
        at = service.clock() + timedelta(seconds=settle)
        # Noted for Details; the wait counts against this instance's lease, so push that on (no
        # sweep takes the ramp over as if the bot had stopped).
        lease: dict[str, Any] = {}
        if change.lease_expires_at is not None:
            room = at + timedelta(seconds=2 * service.settings.ld_timeout + 60)
            expires = change.lease_expires_at
            expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
            lease = {"lease_expires_at": max(expires, room)}
        await service.store.record(
            change.id,
            [APPLYING],
            "flagops",
            detail=f"ramp step {n + 1}: {why} Looking for it after the settle window ({settle:g} s).",
            require={"lease_owner": change.lease_owner},
            **lease,
        )
        await service.update_card(
            change,
            f":hourglass: {why} LaunchDarkly may still create step {n + 1} of {len(plan.steps)}, so it is "
            f"not sent again: I look for it at {at:%H:%M:%S} UTC, then say here what exists.",
        )
        await asyncio.sleep(settle)
    wanted = step.patch.get("instructions")
    try:
        if kind == "approval":
            requests = await service.ld.list_approval_requests(
                change.project, change.flag_key, change.environment
            )
            found = [
                r.id
                for r in requests
                if r.status == "pending" and r.execution_date == step.at_ms and r.instructions == wanted
            ]
        else:
            listed = await service.ld.list_scheduled_changes(
                change.project, change.flag_key, change.environment
            )
            found = [s.id for s in listed if s.execution_date == step.at_ms and s.instructions == wanted]
    except ld_errors.LaunchDarklyError as list_error:
        return StepOutcome(
            state="unknown",
            note=f"{why} The {thing}s could not be listed either ({explain_error(list_error)}); "
            "*Pause* looks for it",
        )
    if found:
        return StepOutcome(state="created", id=found[0])
    later = f" {_seconds_said(settle)} later" if wait else ""
    return StepOutcome(
        state="unknown",
        note=f"{why} LaunchDarkly listed no such {thing}{later}, but may still create it; "
        "*Pause* looks for it",
    )


def _seconds_said(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} minutes"


async def _settle(
    service: RampLifecycle,
    change: Change,
    who: Who,
    plan: RampPlan,
    done: RampOutcome,
    *,
    cause: str | None = None,
) -> None:
    """Report how the creation ended: every step, or exactly which exist (``cause``: what broke it
    off, when not LaunchDarkly's answer)."""
    count = len(plan.steps)
    done.steps += [StepOutcome(state="skipped") for _ in range(count - len(done.steps))]
    outcome_json = json.dumps({"ramp": done.model_dump()})
    created = [i for i, s in enumerate(done.steps) if s.state == "created"]
    approval = done.kind == "approval"
    thing = "approval requests" if approval else "scheduled changes"
    command = service.settings.flagops_command
    where = f"*{change.flag_key}* in *{change.environment}*"
    if len(created) == count:
        extra: dict[str, Any] = {"approval_request_id": done.steps[0].id} if approval else {}
        final = await service.store.transition(
            change.id,
            [APPLYING],
            APPROVAL_REQUESTED if approval else APPLIED,
            who.user_id,
            ld_status=201,
            detail=f"ramp: {count} {thing}",
            outcome_json=outcome_json,
            **extra,
        )
        if final is None:
            return
        if approval:
            notified = ", ".join(done.reviewers) or "none named, LaunchDarkly's own rules say who may review"
            status = (
                f":lock: Approval requested by <@{who.user_id}> for each of the {count} steps (reviewers "
                f"notified: {notified}). A reviewer "
                f"approves each (`{command} approvals {change.flag_key} {change.environment}` shows them "
                "here); applied, each runs at its time. *Pause* deletes the requests not yet run."
            )
        else:
            status = (
                f":calendar: Ramp scheduled by <@{who.user_id}>: LaunchDarkly runs the {count} steps at "
                "their times. *Pause* deletes the steps not yet run."
            )
        await service.update_card(final, status, buttons=(blocks.PAUSE,))
        listing = "approvals" if approval else "scheduled"
        await service.reply(
            final,
            f":chart_with_upwards_trend: Ramp of {where}: {count} {thing} created, the first for "
            f"{_when(plan.steps[0].at_ms)}. `{command} {listing} {change.flag_key} {change.environment}` "
            f"lists {'the requests waiting for review' if approval else 'the steps still to come'}.",
        )
        return
    failed_at = next(i for i, s in enumerate(done.steps) if s.state != "created")
    step = done.steps[failed_at]
    why = f": {step.note.rstrip('.')}" if step.note else ""
    if step.state == "unknown":
        headline = f":warning: Step {failed_at + 1} of {count}: unknown whether it was created{why}."
    else:
        headline = f":warning: Step {failed_at + 1} of {count} was not created{why}."
    exists = ""
    if created:
        one = len(created) == 1
        exists = (
            f" {_steps_said(created).capitalize()} {'exists' if one else 'exist'} in LaunchDarkly and "
            f"{'runs at its time' if one else 'run at their times'} unless you press *Pause*."
        )
    rest = " The steps after it were not created." if failed_at + 1 < count else ""
    if cause:
        headline = f":warning: {cause} {headline.removeprefix(':warning: ')}"
    message = f"{headline}{exists}{rest}"
    final = await service.store.transition(
        change.id, [APPLYING], FAILED, who.user_id, detail=message, outcome_json=outcome_json
    )
    if final is None:
        return
    live = RampOutcome.model_validate(done.model_dump()).live()
    await service.update_card(final, message, buttons=(blocks.PAUSE,) if live else ())
    await service.reply(final, message)


# --- Pause -----------------------------------------------------------------------------------


async def pause(service: RampLifecycle, change: Change, who: Who) -> None:
    """Delete the steps not yet run (scheduled changes, or pending approval requests), read back
    what is left, and say which steps had already run."""
    done = outcome_of(change)
    if proposal_of(change).ramp is None or done is None or not done.live():
        await _tell(
            service, who, "Nothing of this ramp is waiting in LaunchDarkly: there is nothing to pause."
        )
        return
    if change.state == APPLYING:
        await _tell(
            service,
            who,
            "This ramp's steps are still being created: *Pause* once its card says how it ended.",
        )
        return
    refusal = await service.apply_refusal(change, who)
    if refusal is not None:
        await _tell(service, who, f"{refusal} Pause follows the rule of Apply: nothing was deleted.")
        return
    if service.approvals is not None and not await service.approvals.may_act(who, "pause this ramp"):
        return
    claimed = await service.store.record(
        change.id, [change.state], who.user_id, detail="Pause pressed", require={"version": change.version}
    )
    if claimed is None:
        await _tell(service, who, "Someone else is acting on this ramp right now: see its card.")
        return
    token = await service.approvals.token_for(who.user_id) if service.approvals else None
    try:
        if done.kind == "scheduled":
            problem = await _pause_scheduled(service, claimed, done, token)
        else:
            problem = await _pause_requests(service, claimed, done, token)
    except ld_errors.LaunchDarklyError as error:
        await _tell(
            service,
            who,
            f":x: Could not read the ramp in LaunchDarkly: {explain_error(error)} Nothing was deleted.",
        )
        return
    proposal = proposal_of(claimed)
    assert proposal.ramp is not None
    message = _paused_message(done, who, problem)
    final = await service.store.record(
        change.id,
        [claimed.state],
        who.user_id,
        detail=message,
        outcome_json=json.dumps({**(claimed.outcome or {}), "ramp": done.model_dump()}),
    )
    await service.update_card(final or claimed, message, buttons=(blocks.PAUSE,) if done.live() else ())
    await service.reply(final or claimed, message)


async def _pause_scheduled(
    service: RampLifecycle, change: Change, done: RampOutcome, token: str | None
) -> str | None:
    """Delete the ramp's scheduled changes still listed; returns a problem reading back, if any."""
    assert change.environment is not None
    plan = proposal_of(change).ramp
    assert plan is not None
    ld = service.ld
    project, flag, env = change.project, change.flag_key, change.environment
    listed = {s.id: s for s in await ld.list_scheduled_changes(project, flag, env, token=token)}
    now_ms = int(service.clock().timestamp() * 1000)
    for i in done.live():
        step, at = done.steps[i], plan.steps[i]
        ident = step.id
        if ident is None:  # unknown whether it was created: look for it by time and instructions
            wanted = at.patch.get("instructions")
            ident = next(
                (s.id for s in listed.values() if s.execution_date == at.at_ms and s.instructions == wanted),
                None,
            )
        if ident is None or ident not in listed:
            done.steps[i] = _not_listed(step, ident, at.at_ms, now_ms)
            continue
        try:
            await ld.delete_scheduled_change(project, flag, env, ident, token=token)
            done.steps[i] = StepOutcome(state="deleted", id=ident)
        except ld_errors.NotFound:
            done.steps[i] = _not_listed(step, ident, at.at_ms, now_ms)
        except ld_errors.LaunchDarklyError as error:
            done.steps[i] = StepOutcome(state="kept", id=ident, note=explain_error(error))
    # Read back: a deleted step still listed is said to be there.
    try:
        left = {s.id for s in await ld.list_scheduled_changes(project, flag, env, token=token)}
    except ld_errors.LaunchDarklyError as error:
        return f"I could not read back what is left ({explain_error(error)})"
    for i, step in enumerate(done.steps):
        if step.state == "deleted" and step.id in left:
            done.steps[i] = StepOutcome(state="kept", id=step.id, note="LaunchDarkly still lists it")
    return None


async def _pause_requests(
    service: RampLifecycle, change: Change, done: RampOutcome, token: str | None
) -> str | None:
    """Delete the ramp's approval requests not yet run (and the scheduled change an approved and
    applied one became)."""
    assert change.environment is not None
    plan = proposal_of(change).ramp
    assert plan is not None
    ld = service.ld
    project, flag, env = change.project, change.flag_key, change.environment
    now_ms = int(service.clock().timestamp() * 1000)
    scheduled = None
    pending = None
    for i in done.live():
        step, at = done.steps[i], plan.steps[i]
        wanted = at.patch.get("instructions")
        if step.id is None:  # unknown whether it was created: look for it by time and instructions
            if pending is None:
                pending = await ld.list_approval_requests(project, flag, env, token=token)
            found = next(
                (r.id for r in pending if r.execution_date == at.at_ms and r.instructions == wanted), None
            )
            if found is None:
                done.steps[i] = _not_listed(step, None, at.at_ms, now_ms)
                continue
            step = StepOutcome(state="unknown", id=found)
        assert step.id is not None
        try:
            request = await ld.get_approval_request(project, flag, env, step.id, token=token)
            if request.status == "pending":
                await ld.delete_approval_request(project, flag, env, step.id, token=token)
                done.steps[i] = StepOutcome(state="deleted", id=step.id)
            elif request.status == "scheduled":
                # Approved and applied: LaunchDarkly made a scheduled change of it; delete that.
                if scheduled is None:
                    scheduled = await ld.list_scheduled_changes(project, flag, env, token=token)
                match = next(
                    (s.id for s in scheduled if s.execution_date == at.at_ms and s.instructions == wanted),
                    None,
                )
                if match is None:
                    seen = StepOutcome(state="created", id=step.id)
                    done.steps[i] = _not_listed(seen, None, at.at_ms, now_ms)
                else:
                    await ld.delete_scheduled_change(project, flag, env, match, token=token)
                    done.steps[i] = StepOutcome(state="deleted", id=step.id)
            elif request.status == "completed":
                done.steps[i] = StepOutcome(state="ran", id=step.id)
            else:
                done.steps[i] = StepOutcome(
                    state="gone", id=step.id, note=f"LaunchDarkly says {request.status}"
                )
        except ld_errors.NotFound:
            done.steps[i] = StepOutcome(state="gone", id=step.id, note="deleted in LaunchDarkly")
        except ld_errors.LaunchDarklyError as error:
            done.steps[i] = StepOutcome(state="kept", id=step.id, note=explain_error(error))
    return None


def _not_listed(step: StepOutcome, ident: str | None, at_ms: int, now_ms: int) -> StepOutcome:
    """A step LaunchDarkly does not list (now). Said only as far as LaunchDarkly shows it: the clock
    alone does not prove a step ran (it may have been deleted there), and a step whose creation is
    unknown may still appear, so Pause stays offered to look for it again."""
    if step.state == "unknown" and ident is None:  # never seen in LaunchDarkly
        if at_ms > now_ms:
            return StepOutcome(
                state="unknown",
                note="LaunchDarkly did not list it at the Pause but may still create it; *Pause* looks again",
            )
        return StepOutcome(state="gone", note="LaunchDarkly does not list it, and its time has passed")
    if at_ms <= now_ms:
        return StepOutcome(state="passed", id=ident or step.id)
    return StepOutcome(state="gone", id=ident or step.id, note="deleted outside this card")


def _paused_message(done: RampOutcome, who: Who, problem: str | None) -> str:
    def having(state: str) -> list[int]:
        return [i for i, s in enumerate(done.steps) if s.state == state]

    deleted, ran, passed, kept, unknown = (having(s) for s in ("deleted", "ran", "passed", "kept", "unknown"))
    parts = [f":double_vertical_bar: Paused by <@{who.user_id}>:"]
    parts.append(
        f"deleted {_steps_said(deleted)} from LaunchDarkly." if deleted else "nothing was left to delete."
    )
    if ran:
        parts.append(f"{_steps_said(ran).capitalize()} had already run (LaunchDarkly says completed).")
    if passed:
        one = len(passed) == 1
        parts.append(
            f"{_steps_said(passed).capitalize()} {'is' if one else 'are'} no longer in LaunchDarkly "
            f"({'its time has' if one else 'their times have'} passed)."
        )
    if kept:
        parts.append(f":warning: {_steps_said(kept).capitalize()} could not be deleted and may still run.")
    if unknown:
        parts.append(
            f":warning: {_steps_said(unknown).capitalize()}, whose creation LaunchDarkly never confirmed, "
            f"{'is' if len(unknown) == 1 else 'are'} not listed now but may still appear and run: *Pause* "
            "stays on the card to look again."
        )
    if problem:
        parts.append(f":warning: {problem}.")
    if not kept and not unknown and not problem:
        parts.append("The flag keeps what it serves now.")
    return " ".join(parts)


async def _tell(service: RampLifecycle, who: Who, text: str) -> None:
    await service.tell(who, text)
