"""What each kind of job does when it comes due: the reminder posts.

* ``approval_reminder``: in the thread of a change still waiting for approval (re-read from
  LaunchDarkly first: reviewed, applied or deleted requests get no reminder), naming its
  reviewers; then again every ``FLAGOPS_APPROVAL_REMIND_EVERY``.
* ``digest``: a channel's stale temporary flags, each with **Archive** (through the normal confirm
  card) and **Snooze** (left out of the digests for ``FLAGOPS_SNOOZE``).
* ``user_reminder``: ``/flag remind``: the text and the flag's current state, in the channel.
* ``scheduled_check``: after a LaunchDarkly scheduled change's time, whether the flag shows it.
* ``snooze``: nothing to post; while pending, it keeps a flag out of a channel's digest.

Each handler returns a note for the job's ``detail`` (what it did, or why it said nothing).
Unconfirmed cards expire through ``ChangeService.sweep``, which the scheduler runs each tick.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, literal, select

from bot.errors import explain_error
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.models import FeatureFlag
from bot.lifecycle.models import APPROVAL_REQUESTED, proposal_of
from bot.lifecycle.outcome import documents_show
from bot.lifecycle.service import ChangeService
from bot.persistence.db import changes as changes_table
from bot.persistence.db import jobs as jobs_table
from bot.persistence.store import Change
from bot.scheduling.jobs import (
    APPROVAL_REMINDER,
    DIGEST,
    SCHEDULED_CHECK,
    SNOOZE,
    USER_REMINDER,
    Job,
    JobStore,
)
from bot.scheduling.schedule_time import describe_moment
from bot.slack import blocks
from commands.errors import CommandError
from commands.summary import diff_facts, environment_facts, flag_facts

JobHandler = Callable[[Job, datetime], Awaitable[str]]

STALE_STATUSES = frozenset({"launched", "inactive"})
MAX_DIGEST_FLAGS = 20  # two blocks each: within Slack's 50 blocks per message
SCHEDULED_RECHECK = timedelta(minutes=5)
SCHEDULED_RECHECKS = 3
APPROVAL_RETRY = timedelta(minutes=15)  # after LaunchDarkly failed to say whether a request is pending
APPROVAL_RETRIES = 4  # then the next regular reminder, FLAGOPS_APPROVAL_REMIND_EVERY later

# Digest buttons; the value is ``{"project", "flag"}`` as JSON.
DIGEST_ARCHIVE = "digest_archive"
DIGEST_SNOOZE = "digest_snooze"


def _ago(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours >= 48:
        return f"{hours // 24} days"
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{max(1, int(delta.total_seconds() // 60))} minutes"


class ReminderService:
    """Runs due jobs (one handler per kind) and enqueues the ones that follow from the changes."""

    def __init__(self, changes: ChangeService, jobs: JobStore) -> None:
        self.changes = changes
        self.jobs = jobs
        self.settings = changes.settings
        self.ld = changes.ld
        self.messenger = changes.messenger
        self.flags = changes.flags
        self.handlers: dict[str, JobHandler] = {
            APPROVAL_REMINDER: self.approval_reminder,
            DIGEST: self.digest,
            USER_REMINDER: self.user_reminder,
            SCHEDULED_CHECK: self.scheduled_check,
            SNOOZE: self.snooze_over,
        }

    # --- approval reminders -----------------------------------------------------------------

    async def enqueue_approval_reminders(self) -> int:
        """Give every change waiting for approval its first reminder (idempotent: one per change).

        Returns:
            How many reminders were added.
        """
        # Only changes without their first reminder yet: re-adding every tick would retry a
        # duplicate insert for each change waiting (or forgotten) in approval_requested.
        first_key = literal("approval:") + changes_table.c.id + literal(":1")
        statement = select(changes_table.c.id, changes_table.c.updated_at, changes_table.c.channel_id).where(
            changes_table.c.state == APPROVAL_REQUESTED,
            ~exists().where(jobs_table.c.dedupe_key == first_key),
        )
        async with self.jobs.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        added = 0
        for change_id, requested_at, channel_id in rows:
            requested = requested_at if requested_at.tzinfo else requested_at.replace(tzinfo=UTC)
            job = await self.jobs.add(
                APPROVAL_REMINDER,
                requested + self.settings.flagops_approval_remind_after,
                {"change_id": change_id, "n": 1},
                channel_id=channel_id,
                dedupe_key=f"approval:{change_id}:1",
            )
            added += job is not None
        return added

    async def approval_reminder(self, job: Job, now: datetime) -> str:
        """Remind the thread of a change still waiting for approval, then plan the next reminder."""
        target = job.target
        change = await self.changes.store.get_change(str(target["change_id"]))
        if change is None or change.state != APPROVAL_REQUESTED or not change.approval_request_id:
            return f"no reminder: the change is {change.state if change else 'gone'}"
        assert change.environment is not None  # approval requests exist only for environments
        try:
            request = await self.ld.get_approval_request(
                change.project, change.flag_key, change.environment, change.approval_request_id
            )
        except ld_errors.NotFound:
            return "no reminder: the approval request was deleted"
        except ld_errors.LaunchDarklyError as error:
            # LaunchDarkly is down or refused the read for now: keep the chain alive and try again
            # soon, rather than ending every future reminder of this change on one failed read;
            # after a few tries, wait for the next regular reminder instead of retrying forever.
            retry = int(target.get("retry", 0)) + 1
            n = int(target.get("n", 1))
            if retry > APPROVAL_RETRIES:
                retry, n, wait = 0, n + 1, self.settings.flagops_approval_remind_every
            else:
                wait = APPROVAL_RETRY
            await self.jobs.add(
                APPROVAL_REMINDER,
                now + wait,
                {"change_id": change.id, "n": n, "retry": retry},
                channel_id=change.channel_id,
                dedupe_key=f"approval:{change.id}:{n}" + (f":retry{retry}" if retry else ""),
            )
            return f"no reminder yet: {explain_error(error)}; trying again in {_ago(wait)}"
        if request.status != "pending" or request.review_status != "pending":
            return f"no reminder: the request is {request.review_status} / {request.status}"
        reviewers = await self._member_names(request.notify_member_ids)
        url = (
            f"{self.settings.ld_base_url}/projects/{change.project}/flags/{change.flag_key}"
            f"/approvals/{request.id}?env={change.environment}"
        )
        created = request.creation_date
        waiting = _ago(now - datetime.fromtimestamp(created / 1000, UTC)) if created else "a while"
        who = (
            "Reviewers: " + ", ".join(reviewers)
            if reviewers
            else f"Reviewers: anyone who may approve changes in *{change.environment}*"
        )
        await self._reply(
            change,
            f":alarm_clock: <@{change.requester_id}>'s change to *{change.flag_key}* in "
            f"*{change.environment}* has been waiting for approval for {waiting}. {who}. "
            f"<{url}|Review it in LaunchDarkly>.",
        )
        n = int(target.get("n", 1)) + 1
        await self.jobs.add(
            APPROVAL_REMINDER,
            now + self.settings.flagops_approval_remind_every,
            {"change_id": change.id, "n": n},
            channel_id=change.channel_id,
            dedupe_key=f"approval:{change.id}:{n}",
        )
        return f"reminded ({', '.join(reviewers) or 'no named reviewers'})"

    async def _member_names(self, member_ids: Sequence[str]) -> list[str]:
        names: list[str] = []
        for member_id in member_ids:
            try:
                member = await self.ld.get_member(member_id)
            except ld_errors.NotFound:
                continue
            names.append(member.display_name)
        return names

    # --- digest -----------------------------------------------------------------------------

    async def stale_flags(self, project: str, channel_id: str, now: datetime) -> list[FeatureFlag]:
        """The project's temporary flags that every environment calls launched or inactive, created
        at least ``FLAGOPS_STALE_DAYS`` ago and not last requested within them, minus snoozed ones.

        LaunchDarkly's flag statuses say *what* a flag is, not since when; the flag's age and its
        last evaluation stand in for "for N days".
        """
        cutoff = now - timedelta(days=self.settings.flagops_stale_days)
        flags = [f for f in await self.ld.all_flags(project) if f.temporary and not f.archived]
        if not flags:
            return []
        statuses: dict[str, list[tuple[str, datetime | None]]] = {}
        for env in await self.ld.all_environments(project):
            for status in await self.ld.flag_statuses(project, env.key):
                if status.flag_key:
                    statuses.setdefault(status.flag_key, []).append((status.name, status.last_requested))
        snoozed = {str(j.target.get("flag")) for j in await self.jobs.pending(SNOOZE, channel_id=channel_id)}
        stale: list[FeatureFlag] = []
        for flag in flags:
            seen = statuses.get(flag.key) or []
            created = datetime.fromtimestamp((flag.creation_date or 0) / 1000, UTC)
            if (
                seen
                and all(name in STALE_STATUSES for name, _ in seen)
                and created <= cutoff
                and all(last is None or last <= cutoff for name, last in seen if name == "inactive")
                and flag.key not in snoozed
            ):
                stale.append(flag)
        return sorted(stale, key=lambda f: f.key)

    async def digest(self, job: Job, now: datetime) -> str:
        """Post a channel's stale-flags digest (nothing when no flag is stale)."""
        target = job.target
        channel = str(target["channel"])
        project = str(target.get("project") or self.settings.ld_project)
        stale = await self.stale_flags(project, channel, now)
        if not stale:
            return "nothing stale"
        text, body = render_digest(
            project, stale, days=self.settings.flagops_stale_days, snooze=self.settings.flagops_snooze
        )
        await self.messenger.post(channel, text, body)
        return f"listed {len(stale)} flags"

    async def snooze_over(self, job: Job, now: datetime) -> str:
        """A snooze ends silently: the flag is back in the next digest if still stale."""
        return "snooze over"

    # --- user reminders ---------------------------------------------------------------------

    async def user_reminder(self, job: Job, now: datetime) -> str:
        """Post a ``/flag remind`` reminder in its channel, with the flag's current state."""
        target = job.target
        project, flag_key, env = str(target["project"]), str(target["flag"]), target.get("env")
        text = target.get("text")
        headline = f":alarm_clock: Reminder from <@{job.user_id}> about *{flag_key}*" + (
            f" in *{env}*" if env else ""
        )
        if text:
            headline += f": “{blocks.escape(str(text))}”"
        try:
            flag = await self.flags.flag(project, flag_key, fresh=True)
        except ld_errors.LaunchDarklyError as error:
            # The reminder is the user's own text at the time they chose: post it even when
            # LaunchDarkly cannot be read right now, rather than lose it.
            lines = [f"_I couldn't read the flag's current state: {explain_error(error)}_"]
        except CommandError as error:
            lines = [f"_{blocks.escape(error.message)}_"]
        else:
            facts = environment_facts(flag, env) if env else flag_facts(flag)
            lines = [f"• *{blocks.escape(f.label)}*: {blocks.escape(f.text)}" for f in facts[:12]]
        message, body = blocks.render_notice(headline, lines)
        await self.messenger.post(str(job.channel_id), message, body)
        return "posted"

    # --- scheduled changes ------------------------------------------------------------------

    async def scheduled_check(self, job: Job, now: datetime) -> str:
        """After a scheduled change's time, say in its thread whether the flag now shows it."""
        target = job.target
        change = await self.changes.store.get_change(str(target["change_id"]))
        if change is None or change.environment is None:
            return "the change is gone"
        project, flag_key, env = change.project, change.flag_key, change.environment
        try:
            await self.ld.get_scheduled_change(project, flag_key, env, str(target["scheduled_id"]))
            still_pending = True
        except ld_errors.NotFound:
            still_pending = False
        attempt = int(target.get("attempt", 1))
        if still_pending and attempt < SCHEDULED_RECHECKS:
            await self.jobs.add(
                SCHEDULED_CHECK,
                now + SCHEDULED_RECHECK,
                {**target, "attempt": attempt + 1},
                channel_id=change.channel_id,
                dedupe_key=f"scheduled:{target['scheduled_id']}:{attempt + 1}",
            )
            return "not run yet; checking again"
        proposal = proposal_of(change)
        before = change.flag_before or {}
        current = await self.flags.flag(project, flag_key, fresh=True)
        when = describe_moment(datetime.fromtimestamp(int(target["execute_at_ms"]) / 1000, UTC), "UTC")
        if before and documents_show(before, current, proposal.semantic_patch()):
            lines = [blocks.fact_change_line(c) for c in diff_facts(before, current, env)[:12]]
            await self._reply(
                change,
                f":white_check_mark: The change scheduled for {when} ran: *{flag_key}* in *{env}* now "
                f"shows it (version {current.get('_version')}).",
                lines,
            )
            return "the flag shows the change"
        reason = (
            "LaunchDarkly still lists it as pending"
            if still_pending
            else "it is no longer scheduled (it ran and was changed since, failed, or was deleted)"
        )
        await self._reply(
            change,
            f":warning: The change scheduled for {when} is *not* in *{flag_key}* in *{env}*: {reason}. "
            f"Check the flag with `{self.settings.flagops_command} show {flag_key} {env}`.",
        )
        return "the flag does not show the change"

    async def _reply(self, change: Change, text: str, lines: Sequence[str] = ()) -> None:
        message, body = blocks.render_notice(text, lines)
        await self.messenger.post(
            change.channel_id, message, body, thread_ts=change.thread_ts or change.card_ts
        )


def render_digest(
    project: str, flags: Sequence[FeatureFlag], *, days: int, snooze: timedelta
) -> tuple[str, blocks.Blocks]:
    """The stale-flags digest: one section per flag with **Archive** and **Snooze** buttons."""
    count = len(flags)
    title = (
        f":broom: *{count} temporary flag{'s' if count != 1 else ''}* in project `{blocks.escape(project)}` "
        f"{'have' if count != 1 else 'has'} been launched or inactive for {days}+ days: "
        f"time to remove {'them' if count != 1 else 'it'} from the code and archive "
        f"{'them' if count != 1 else 'it'}."
    )
    body: blocks.Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": title}}]
    for flag in flags[:MAX_DIGEST_FLAGS]:
        value = json.dumps({"project": project, "flag": flag.key})
        created = (
            datetime.fromtimestamp(flag.creation_date / 1000, UTC).strftime("%d %b %Y")
            if flag.creation_date
            else "unknown"
        )
        line = f"*{blocks.escape(flag.name)}* (`{blocks.escape(flag.key)}`) · created {created}"
        if flag.tags:
            line += f" · _{blocks.escape(', '.join(flag.tags))}_"
        body.append({"type": "section", "text": {"type": "mrkdwn", "text": blocks.clip(line, 2900)}})
        body.append(
            {
                "type": "actions",
                "block_id": f"digest:{flag.key}"[:255],
                "elements": [
                    blocks.action_button(DIGEST_ARCHIVE, "Archive", value, style="danger"),
                    blocks.action_button(DIGEST_SNOOZE, f"Snooze {snooze.days} days", value),
                ],
            }
        )
    if count > MAX_DIGEST_FLAGS:
        body.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"…and {count - MAX_DIGEST_FLAGS} more."}],
            }
        )
    text = f"{count} stale temporary flag{'s' if count != 1 else ''} in {project}"
    return text, body
