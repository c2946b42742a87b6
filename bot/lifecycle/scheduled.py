"""Scheduled flag changes: ``/flag on new-checkout production at Monday 09:00`` (or ``in 2 hours``).

The card says when (in the requester's zone and in UTC); Apply creates a LaunchDarkly scheduled
change with the same instructions (LaunchDarkly applies it at ``executionDate``: no local timer),
and a ``scheduled_check`` job says in the thread, after that time, whether the flag shows it.
Conflicts (400: Apply anyway sends ``ignoreConflicts``) and approval-required environments (405:
Request approval, whose approved request applies at the same ``executionDate``) go the way of the
core loop, through the lifecycle's public moves (the ``Lifecycle`` protocol below).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.config import Settings
from bot.errors import error_text, explain_error
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient
from bot.lifecycle.models import ApprovalFlow, Proposal, Who
from bot.persistence.store import Change, State, Store
from bot.scheduling.jobs import SCHEDULED_CHECK, SCHEDULED_CHECK_DELAY, JobStore
from bot.scheduling.schedule_time import When, describe_moment, resolve_when, user_timezone
from bot.slack import blocks
from bot.slack.messenger import Messenger
from commands.errors import CommandError
from commands.intents import ChangeCommand


class Lifecycle(Protocol):
    """What scheduling a change needs of the lifecycle (``bot.lifecycle.service.ChangeService``,
    which calls in here): its parts, and the moves every apply ends with."""

    settings: Settings
    store: Store
    ld: LaunchDarklyClient
    messenger: Messenger
    clock: Callable[[], datetime]
    approvals: ApprovalFlow | None
    jobs: JobStore

    def comment(self, change: Change, who: Who) -> str: ...

    async def finish(
        self, change: Change, state: str, who: Who, status: int | None, message: str
    ) -> None: ...

    async def back_to_proposed(self, change: Change, who: Who, message: str) -> None: ...

    async def apply_failed(self, change: Change, who: Who, error: ld_errors.LaunchDarklyError) -> None: ...

    async def update_card(self, change: Change, status: str, *, buttons: Sequence[str] = ()) -> None: ...

    async def reply(
        self, change: Change, text: str, lines: Sequence[str] = (), *, buttons: Sequence[dict[str, Any]] = ()
    ) -> None: ...


UNKNOWN_OUTCOME = (ld_errors.OutcomeUnknown, ld_errors.ServerError, ld_errors.Unreachable)


async def when_for(service: Lifecycle, who: Who, command: ChangeCommand) -> When:
    """The moment a change command's ``at``/``in`` names, read in the requester's Slack zone.

    Raises:
        CommandError: no environment (LaunchDarkly schedules changes per environment), a time
            it cannot read, or a time not in the future.
    """
    assert command.schedule is not None
    if command.environment is None:
        raise CommandError(
            "A scheduled change needs an environment: LaunchDarkly schedules changes per environment "
            f"(e.g. `{command.flag} production {command.schedule.kind} {command.schedule.text}`). "
            "Nothing was scheduled."
        )
    tz = await user_timezone(service.messenger, who.user_id)
    return resolve_when(command.schedule.kind, command.schedule.text, now=service.clock(), tz=tz)


async def apply_scheduled(service: Lifecycle, change: Change, who: Who, proposal: Proposal) -> None:
    """Create the LaunchDarkly scheduled change for a change this instance holds in ``applying``.

    Args:
        service: the change lifecycle (its store, client, card and thread helpers).
        change: the change, in ``applying``.
        who: who pressed Apply.
        proposal: the change's stored proposal (``execute_at_ms`` set).
    """
    assert proposal.execute_at_ms is not None and change.environment is not None
    when = proposal.when_text or describe_moment(_moment(proposal.execute_at_ms), "UTC")
    if proposal.execute_at_ms <= int(service.clock().timestamp() * 1000):
        await service.finish(
            change,
            State.FAILED,
            who,
            None,
            f":x: The time it was scheduled for ({when}) has passed. Nothing was scheduled: "
            "run the command again with a time in the future.",
        )
        return
    patch = proposal.semantic_patch()
    if await _is_resend(service, change):
        # Send again after an unknown outcome: the first create may have worked. Look before
        # creating, so a second press never makes a second scheduled change.
        try:
            found = await _find_created(service, change, proposal)
        except ld_errors.LaunchDarklyError as list_error:
            await _unknown(service, change, who, None, list_error, when, resend=True)
            return
        if found is not None:
            await _scheduled(service, change, who, proposal, found, when)
            return
    try:
        created = await service.ld.create_scheduled_change(
            change.project,
            change.flag_key,
            change.environment,
            execution_date=proposal.execute_at_ms,
            instructions=patch.instructions,
            comment=service.comment(change, who),
            ignore_conflicts=change.ignore_conflicts,
            # As the core's PATCH: the linked LaunchDarkly account of whoever pressed Apply, if any.
            token=await service.approvals.token_for(who.user_id) if service.approvals else None,
        )
        scheduled_id = created.id
    except UNKNOWN_OUTCOME as error:
        try:
            found = await _find_created(service, change, proposal)
        except ld_errors.LaunchDarklyError as list_error:
            # "Could not list" is not "not listed": it may be scheduled; never invite a duplicate.
            await _unknown(service, change, who, error, list_error, when)
            return
        if found is None:
            await service.back_to_proposed(
                change,
                who,
                f":warning: {error_text(error)} LaunchDarkly lists no such scheduled change, so nothing is "
                "scheduled: press Apply again.",
            )
            return
        scheduled_id = found
    except ld_errors.LaunchDarklyError as error:
        await service.apply_failed(change, who, error)  # 400 conflict, 405 approval, 429, 4xx
        return
    await _scheduled(service, change, who, proposal, scheduled_id, when)


async def _find_created(service: Lifecycle, change: Change, proposal: Proposal) -> str | None:
    """After an unknown outcome: the id of a scheduled change with our time and instructions.

    Returns:
        Its id, or None when LaunchDarkly lists none like it.

    Raises:
        LaunchDarklyError: the list could not be read (so whether it exists is unknown).
    """
    assert change.environment is not None
    listed = await service.ld.list_scheduled_changes(change.project, change.flag_key, change.environment)
    wanted = [i.body() for i in proposal.semantic_patch().instructions]
    for scheduled in listed:
        if scheduled.execution_date == proposal.execute_at_ms and scheduled.instructions == wanted:
            return scheduled.id
    return None


async def _is_resend(service: Lifecycle, change: Change) -> bool:
    """Whether this apply is a Send again: the move into applying came from outcome unknown (the
    row's own ``previous_state``, re-read so the answer never depends on which object was passed)."""
    current = await service.store.get_change(change.id) or change
    return current.state == State.APPLYING and current.previous_state == State.OUTCOME_UNKNOWN


async def _unknown(
    service: Lifecycle,
    change: Change,
    who: Who,
    error: ld_errors.LaunchDarklyError | None,
    list_error: ld_errors.LaunchDarklyError,
    when: str,
    *,
    resend: bool = False,
) -> None:
    """Settle as outcome unknown: the create may have worked and LaunchDarkly cannot be listed."""
    command = service.settings.flagops_command
    moved = await service.store.transition(
        change.id,
        [State.APPLYING],
        State.OUTCOME_UNKNOWN,
        who.user_id,
        ld_status=error.status if error else list_error.status,
        detail=f"could not list scheduled changes: {list_error}",
    )
    if moved is None:
        return  # settled by someone else meanwhile: their outcome stands
    cause = (
        "Nothing was sent: I could not check whether the first attempt scheduled it."
        if resend
        else explain_error(error)
        if error
        else "The request may not have reached LaunchDarkly."
    )
    message = (
        f":warning: Outcome unknown: {cause} I could not list the flag's scheduled changes either "
        f"({explain_error(list_error)}), so I cannot tell whether the change for {when} is scheduled. "
        f"Check with `{command} scheduled {change.flag_key} {change.environment}` before pressing "
        "*Send again*."
    )
    await service.update_card(moved, message, buttons=(blocks.SEND_AGAIN, blocks.CANCEL))
    await service.reply(moved, message)


async def _scheduled(
    service: Lifecycle, change: Change, who: Who, proposal: Proposal, scheduled_id: str, when: str
) -> None:
    assert proposal.execute_at_ms is not None
    final = await service.store.transition(
        change.id,
        [State.APPLYING],
        State.APPLIED,
        who.user_id,
        ld_status=201,
        detail=f"scheduled change {scheduled_id} for {when}",
        outcome_json=json.dumps({"scheduledChangeId": scheduled_id, "executionDate": proposal.execute_at_ms}),
    )
    await service.update_card(
        final or change,
        f":calendar: Scheduled by <@{who.user_id}> for {when}: LaunchDarkly applies it then "
        f"(scheduled change `{scheduled_id}`).",
    )
    command = service.settings.flagops_command
    await service.reply(
        change,
        f":calendar: Scheduled *{change.flag_key}* in *{change.environment}* for {when}. "
        f"`{command} scheduled {change.flag_key} {change.environment}` lists it, with a Delete button; "
        "I'll say here whether the flag shows the change once the time has come.",
    )
    await service.jobs.add(
        SCHEDULED_CHECK,
        _moment(proposal.execute_at_ms) + SCHEDULED_CHECK_DELAY,
        {
            "change_id": change.id,
            "scheduled_id": scheduled_id,
            "project": change.project,
            "flag": change.flag_key,
            "env": change.environment,
            "execute_at_ms": proposal.execute_at_ms,
        },
        channel_id=change.channel_id,
        user_id=change.requester_id,
        dedupe_key=f"scheduled:{scheduled_id}:1",
    )


def _moment(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)
