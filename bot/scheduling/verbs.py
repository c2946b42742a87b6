"""Reminders and scheduled changes as verbs: ``remind``, ``reminders``, ``scheduled`` (with
``cancel``), deleting a scheduled change by the rule of Apply, and what the digest's buttons do
(Archive, Snooze). Slack-free: ``bot.scheduling.listeners`` acks and hands over to these.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from bot.errors import explain_error
from bot.launchdarkly import errors as ld_errors
from bot.lifecycle.models import Who
from bot.lifecycle.service import ChangeService
from bot.scheduling.jobs import CANCELLED, PENDING, SCHEDULED_CHECK, SNOOZE, USER_REMINDER, Job, JobStore
from bot.scheduling.schedule_time import describe_moment, resolve_when, user_timezone
from bot.slack import blocks
from bot.slack.router import CommandRouter
from commands import describe
from commands.errors import CommandError
from commands.instructions import SemanticPatch
from commands.intents import ReservedCommand

REMINDER_CANCEL = "reminder_cancel"
SCHEDULED_DELETE = "scheduled_delete"
MAX_LISTED = 20


def _row(text: str, button: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": blocks.clip(text, 2900)},
        "accessory": button,
    }


class ReminderCommands:
    """The verbs and buttons of reminders and scheduled changes."""

    def __init__(self, changes: ChangeService, jobs: JobStore, router: CommandRouter) -> None:
        self.changes = changes
        self.jobs = jobs
        self.router = router
        self.settings = changes.settings
        self.ld = changes.ld

    async def tell(self, who: Who, text: str, body: blocks.Blocks | None = None) -> None:
        if body is None:
            await self.changes.tell(who, text)
        else:
            await self.changes.messenger.ephemeral(who.reply, text, body)

    # --- /flag remind -----------------------------------------------------------------------

    async def remind(self, who: Who, command: ReservedCommand, _text: str) -> None:
        """``remind <flag> [<env>] in <duration> | at <time> ["text"]``: store a reminder job."""
        kind, when_text, *rest = command.args
        note = rest[0] if rest else None
        assert command.flag is not None  # the parser requires it
        project = command.project or await self.changes.project_for(who)
        flag = await self.changes.flags.flag(project, command.flag)
        await self.changes.flags.check_environment(project, command.environment, flag)
        tz = await user_timezone(self.changes.messenger, who.user_id)
        when = resolve_when(kind, when_text, now=self.changes.clock(), tz=tz)
        job = await self.jobs.add(
            USER_REMINDER,
            when.at,
            {"project": project, "flag": command.flag, "env": command.environment, "text": note},
            channel_id=who.reply.channel_id,
            user_id=who.user_id,
        )
        assert job is not None  # no dedupe key: always added
        about = f"*{command.flag}*" + (f" in *{command.environment}*" if command.environment else "")
        await self.tell(
            who,
            f":alarm_clock: I'll remind <#{who.reply.channel_id}> about {about} on {when.describe()}"
            + (f": “{blocks.escape(note)}”" if note else "")
            + f" (reminder `{job.id}`). `{self.settings.flagops_command} reminders` lists yours.",
        )

    # --- /flag reminders --------------------------------------------------------------------

    async def reminders(self, who: Who, command: ReservedCommand, _text: str) -> None:
        """``reminders``: the user's pending reminders with Cancel; ``reminders cancel <id>``."""
        if command.args[:1] == ("cancel",):
            await self.cancel(who, command.args[1])
            return
        pending = await self.jobs.pending(USER_REMINDER, user_id=who.user_id)
        if not pending:
            await self.tell(
                who,
                "You have no pending reminders. Set one with "
                f'`{self.settings.flagops_command} remind <flag> in 2 weeks "remove the old path"`.',
            )
            return
        tz = await user_timezone(self.changes.messenger, who.user_id)
        title = f":alarm_clock: Your reminders ({len(pending)}):"
        body: blocks.Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": title}}]
        for job in pending[:MAX_LISTED]:
            body.append(
                _row(_reminder_line(job, tz), blocks.action_button(REMINDER_CANCEL, "Cancel", job.id))
            )
        await self.tell(who, title, body)

    async def cancel(self, who: Who, job_id: str) -> None:
        """Cancel one of the user's pending reminders (Cancel button or ``reminders cancel <id>``)."""
        job = await self.jobs.get(job_id)
        if job is None or job.kind != USER_REMINDER:
            await self.tell(who, f":grey_question: There is no reminder `{blocks.quoted(job_id)}`.")
            return
        if job.user_id != who.user_id:
            await self.tell(
                who, f":no_entry: Reminder `{job_id}` is <@{job.user_id}>'s; only they can cancel it."
            )
            return
        if (
            await self.jobs.transition(job.id, [PENDING], CANCELLED, detail=f"cancelled by {who.user_id}")
            is None
        ):
            await self.tell(who, f"Reminder `{blocks.quoted(job_id)}` is no longer pending ({job.state}).")
            return
        await self.tell(who, f":wastebasket: Cancelled reminder `{job_id}` about *{job.target.get('flag')}*.")

    # --- /flag scheduled --------------------------------------------------------------------

    async def scheduled(self, who: Who, command: ReservedCommand, _text: str) -> None:
        """``scheduled <flag> [<env>]``: LaunchDarkly's scheduled changes with Delete;
        ``scheduled``: the ones scheduled from this channel; ``scheduled cancel <id>``."""
        if command.args[:1] == ("cancel",):
            await self._delete_by_id(who, command.args[1])
            return
        tz = await user_timezone(self.changes.messenger, who.user_id)
        if command.flag is None:
            await self._list_ours(who, tz)
            return
        project = command.project or await self.changes.project_for(who)
        flag = await self.changes.flags.flag(project, command.flag, fresh=True)
        await self.changes.flags.check_environment(project, command.environment, flag)
        envs = [command.environment] if command.environment else sorted(flag.get("environments") or {})
        rows: blocks.Blocks = []
        for env in envs:
            for item in await self.ld.list_scheduled_changes(project, command.flag, env):
                when = describe_moment(datetime.fromtimestamp(item.execution_date / 1000, UTC), tz)
                what = _describe(env, item.instructions, flag)
                value = json.dumps({"project": project, "flag": command.flag, "env": env, "id": item.id})
                rows.append(
                    _row(
                        f"*{blocks.escape(env)}* · {when}\n{what} · `{item.id}`",
                        blocks.action_button(SCHEDULED_DELETE, "Delete", value, style="danger"),
                    )
                )
        where = f"*{command.flag}*" + (f" in *{command.environment}*" if command.environment else "")
        if not rows:
            await self.tell(who, f"No scheduled changes for {where}.")
            return
        title = f":calendar: Scheduled changes for {where} ({len(rows)}):"
        head: blocks.Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": title}}]
        await self.tell(who, title, head + rows[:MAX_LISTED])

    async def _list_ours(self, who: Who, tz: str) -> None:
        pending = await self.jobs.pending(SCHEDULED_CHECK, channel_id=who.reply.channel_id)
        if not pending:
            await self.tell(
                who,
                "Nothing scheduled from this channel is pending. "
                f"`{self.settings.flagops_command} scheduled <flag> [<env>]` lists a flag's scheduled "
                "changes.",
            )
            return
        title = f":calendar: Changes scheduled from this channel ({len(pending)}):"
        body: blocks.Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": title}}]
        for job in pending[:MAX_LISTED]:
            target = job.target
            when = describe_moment(datetime.fromtimestamp(int(target["execute_at_ms"]) / 1000, UTC), tz)
            value = json.dumps(
                {
                    "project": target["project"],
                    "flag": target["flag"],
                    "env": target["env"],
                    "id": target["scheduled_id"],
                }
            )
            body.append(
                _row(
                    f"*{target['flag']}* in *{target['env']}* · {when} · `{target['scheduled_id']}`",
                    blocks.action_button(SCHEDULED_DELETE, "Delete", value, style="danger"),
                )
            )
        await self.tell(who, title, body)

    async def _delete_by_id(self, who: Who, scheduled_id: str) -> None:
        for job in await self.jobs.pending(SCHEDULED_CHECK):
            target = job.target
            if target.get("scheduled_id") == scheduled_id:
                await self.delete(
                    who, str(target["project"]), str(target["flag"]), str(target["env"]), scheduled_id
                )
                return
        await self.tell(
            who,
            f":grey_question: I did not schedule `{blocks.quoted(scheduled_id)}`. Use "
            f"`{self.settings.flagops_command} scheduled <flag> <env>` and its Delete button.",
        )

    async def _may_delete(self, who: Who, scheduled_id: str) -> tuple[bool, str | None]:
        """Whether ``who`` may delete this scheduled change, and the LaunchDarkly token to use.

        Made through flagops: the same rule as Apply on its change (its requester, or whoever the
        policy lets apply there). Made elsewhere: flagops knows no requester, so only through the
        clicker's own linked LaunchDarkly account (LaunchDarkly's permissions decide).
        """
        approvals = self.changes.approvals
        if approvals is not None and not await approvals.may_act(who, "delete this scheduled change"):
            return False, None
        token = await approvals.token_for(who.user_id) if approvals is not None else None
        change = None
        for job in await self.jobs.pending(SCHEDULED_CHECK):
            if job.target.get("scheduled_id") == scheduled_id:
                change = await self.changes.store.get_change(str(job.target["change_id"]))
                break
        if change is None:
            if token is None:
                await self.tell(
                    who,
                    f":no_entry: Scheduled change `{scheduled_id}` was not made through flagops, so I "
                    "cannot tell who may delete it. Delete it in LaunchDarkly, or link your account "
                    f"(`{self.settings.flagops_command} link-account`) so LaunchDarkly checks your own "
                    "permissions. Nothing was deleted.",
                )
                return False, None
            return True, token
        refusal = await self.changes.apply_refusal(change, who)
        if refusal is not None:
            await self.tell(
                who,
                f"{refusal.replace(' Nothing was changed.', '')} Deleting a scheduled change follows "
                f"the rule of Apply: scheduled change `{scheduled_id}` was not deleted.",
            )
            return False, None
        return True, token

    async def delete(self, who: Who, project: str, flag: str, env: str, scheduled_id: str) -> None:
        """Delete a LaunchDarkly scheduled change, and our check of it (if ``who`` may)."""
        allowed, token = await self._may_delete(who, scheduled_id)
        if not allowed:
            return
        try:
            await self.ld.delete_scheduled_change(project, flag, env, scheduled_id, token=token)
        except ld_errors.NotFound:
            await self.tell(
                who, f"Scheduled change `{scheduled_id}` is already gone (it ran or was deleted)."
            )
            return
        except ld_errors.LaunchDarklyError as error:
            await self.tell(who, f":x: Could not delete it: {explain_error(error)}")
            return
        for job in await self.jobs.pending(SCHEDULED_CHECK):
            if job.target.get("scheduled_id") == scheduled_id:
                await self.jobs.transition(job.id, [PENDING], CANCELLED, detail=f"deleted by {who.user_id}")
                change = await self.changes.store.get_change(str(job.target["change_id"]))
                if change is not None:
                    await self.changes.reply(
                        change,
                        f":wastebasket: <@{who.user_id}> deleted this scheduled change from LaunchDarkly.",
                    )
        await self.tell(
            who, f":wastebasket: Deleted scheduled change `{scheduled_id}` of *{flag}* in *{env}*."
        )

    # --- digest buttons ---------------------------------------------------------------------

    async def archive(self, who: Who, value: dict[str, Any]) -> None:
        """Archive from the digest: the normal confirm card, as if the clicker had typed it."""
        await self.router.run_command(who, f"archive {value['flag']} --project {value['project']}")

    async def snooze(self, who: Who, value: dict[str, Any], thread_ts: str | None) -> None:
        """Keep a flag out of this channel's digest for ``FLAGOPS_SNOOZE``."""
        now = self.changes.clock()
        until = now + self.settings.flagops_snooze
        channel = who.reply.channel_id
        added = await self.jobs.add(
            SNOOZE,
            until,
            {"project": value["project"], "flag": value["flag"]},
            channel_id=channel,
            user_id=who.user_id,
            dedupe_key=f"snooze:{channel}:{value['flag']}:{now.date().isoformat()}",
        )
        if added is None:
            await self.tell(who, f"*{blocks.quoted(value['flag'])}* is already snoozed.")
            return
        text = (
            f":zzz: <@{who.user_id}> snoozed *{value['flag']}*: it stays out of this channel's digest "
            f"until {until.strftime('%d %b %Y')}."
        )
        message, body = blocks.render_notice(text)
        await self.changes.messenger.post(channel, message, body, thread_ts=thread_ts)


def _reminder_line(job: Job, tz: str) -> str:
    target = job.target
    about = f"*{target.get('flag')}*" + (f" in *{target['env']}*" if target.get("env") else "")
    note = f": “{blocks.escape(str(target['text']))}”" if target.get("text") else ""
    return f"{describe_moment(job.due_at, tz)} · {about}{note} · `{job.id}` in <#{job.channel_id}>"


def _describe(env: str, instructions: list[dict[str, Any]], flag: dict[str, Any]) -> str:
    try:
        patch = SemanticPatch.model_validate({"environmentKey": env, "instructions": instructions})
        return blocks.escape("; ".join(describe(patch, flag)))
    except (ValidationError, CommandError):
        # A kind flagops does not model (LaunchDarkly has more): show the raw kinds instead.
        return ", ".join(f"`{i.get('kind')}`" for i in instructions)
