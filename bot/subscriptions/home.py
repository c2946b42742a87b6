"""The App Home tab: my open cards, approvals waiting for me, my reminders and scheduled changes,
and this workspace's subscriptions, each with the buttons it has elsewhere.

Published with ``views.publish`` on ``app_home_opened`` and after a click in it. The buttons are the
ones the cards carry (same ``action_id`` and value), so they act through the same listeners and the
same loop; a click from Home comes from a view, with no channel and no ``response_url``, and the
answer then goes to the person's DM with the app (``Messenger.ephemeral``). Slack allows 100 blocks:
each part lists at most a few items and says how many more there are.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bot.approvals.cards import APPLY as APPROVAL_APPLY
from bot.approvals.cards import APPROVE, APPROVE_APPLY, APPROVED, DECLINE, PENDING, ApprovalCard
from bot.persistence.db import approval_cards, changes
from bot.persistence.store import State
from bot.scheduling.jobs import SCHEDULED_CHECK, USER_REMINDER, JobStore
from bot.scheduling.schedule_time import describe_moment
from bot.scheduling.verbs import REMINDER_CANCEL, SCHEDULED_DELETE
from bot.slack import blocks
from bot.slack.messenger import SlackFailure
from bot.subscriptions.cards import UNSUBSCRIBE, subscription_line, unsubscribe_value
from bot.subscriptions.service import SubscriptionService

log = logging.getLogger("flagops.home")

MAX_BLOCKS = 100
PER_PART = 8
SUBSCRIPTIONS_SHOWN = 15
OPEN = (State.PROPOSED, State.NEEDS_APPROVAL, State.OUTCOME_UNKNOWN)


class HomeTab:
    """Builds and publishes a person's Home tab."""

    def __init__(self, subscriptions: SubscriptionService, jobs: JobStore) -> None:
        self.subscriptions = subscriptions
        self.changes = subscriptions.changes
        self.jobs = jobs
        self.engine = subscriptions.store.engine

    async def publish(self, user_id: str) -> None:
        """Publish ``user_id``'s Home tab (logged, not raised, when Slack refuses it)."""
        try:
            await self.changes.messenger.publish_view(user_id, await self.view(user_id))
        except SlackFailure as error:
            log.warning("the Home tab of %s could not be published: %s", user_id, error.reason)

    async def view(self, user_id: str) -> dict[str, Any]:
        """The ``home`` view (at most 100 blocks)."""
        tz = "UTC"
        with contextlib.suppress(SlackFailure):
            tz = str((await self.changes.messenger.user(user_id)).get("tz") or "UTC")
        body: blocks.Blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": "flagops"}},
            _context(
                "Your cards, approvals, reminders and scheduled changes; this workspace's subscriptions."
            ),
        ]
        body += await self._open_cards(user_id)
        body += await self._approvals(user_id)
        body += await self._reminders(user_id, tz)
        body += await self._scheduled(user_id, tz)
        body += await self._subscriptions()
        if len(body) > MAX_BLOCKS:
            body = [
                *body[: MAX_BLOCKS - 1],
                _context("…more than a Home tab can show: see `/flag` in a channel."),
            ]
        return {"type": "home", "blocks": body}

    async def _open_cards(self, user_id: str) -> blocks.Blocks:
        query = (
            select(changes)
            .where(changes.c.requester_id == user_id, changes.c.state.in_([s.value for s in OPEN]))
            .order_by(changes.c.created_at.desc())
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        items: blocks.Blocks = []
        for row in rows[:PER_PART]:
            where = f" in *{blocks.escape(row['environment'])}*" if row["environment"] else ""
            line = (
                f"`{blocks.escape(blocks.clip(row['command_text'], 120))}` · "
                f"*{blocks.escape(row['flag_key'])}*{where} · {row['state'].replace('_', ' ')} · "
                f"<#{row['channel_id']}>"
            )
            buttons = []
            if row["state"] == State.PROPOSED:
                # Away from its card, Apply always asks again (the card's text is not beside it).
                apply = {**blocks.button(blocks.APPLY, row["id"]), "confirm": _confirm(row["command_text"])}
                buttons = [apply, blocks.button(blocks.CANCEL, row["id"])]
            elif row["state"] == State.NEEDS_APPROVAL:
                buttons = [
                    blocks.button(blocks.REQUEST_APPROVAL, row["id"]),
                    blocks.button(blocks.CANCEL, row["id"]),
                ]
            items.append(_section(line))
            if buttons:
                items.append({"type": "actions", "elements": buttons})
        return _part("Your open cards", items, len(rows), "No cards waiting for you.")

    async def _approvals(self, user_id: str) -> blocks.Blocks:
        query = select(approval_cards).where(approval_cards.c.state.in_([PENDING, APPROVED]))
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.order_by(approval_cards.c.created_at))).mappings().all()
        mine: list[ApprovalCard] = []
        for row in rows:
            card = ApprovalCard.model_validate(dict(row))
            reviewers = card.content.reviewers
            asked = any(f"<@{user_id}>" in r for r in reviewers)
            if card.requester_id != user_id and (asked or not reviewers):
                mine.append(card)
        items: blocks.Blocks = []
        for card in mine[:PER_PART]:
            content = card.content
            line = (
                f"*{blocks.escape(content.flag_name)}* in *{blocks.escape(content.environment)}* · "
                f"asked by {content.requester} · {card.state}"
            )
            items.append(_section(line))
            actions = (
                [(APPROVE_APPLY, "Approve and apply"), (APPROVE, "Approve"), (DECLINE, "Decline")]
                if card.state == PENDING
                else [(APPROVAL_APPLY, "Apply")]
            )
            elements = [blocks.action_button(a, t, card.id) for a, t in actions]
            items.append({"type": "actions", "block_id": f"approval:{card.id}", "elements": elements})
        return _part("Approvals waiting for you", items, len(mine), "No approvals waiting for you.")

    async def _reminders(self, user_id: str, tz: str) -> blocks.Blocks:
        jobs = await self.jobs.pending(USER_REMINDER, user_id=user_id)
        items: blocks.Blocks = []
        for job in jobs[:PER_PART]:
            target = job.target
            about = f"*{blocks.escape(str(target.get('flag')))}*"
            note = f": “{blocks.escape(blocks.clip(str(target['text']), 200))}”" if target.get("text") else ""
            line = f"{describe_moment(job.due_at, tz)} · {about}{note} · <#{job.channel_id}>"
            items.append(_row(line, blocks.action_button(REMINDER_CANCEL, "Cancel", job.id)))
        return _part("Your reminders", items, len(jobs), "No reminders.")

    async def _scheduled(self, user_id: str, tz: str) -> blocks.Blocks:
        jobs = await self.jobs.pending(SCHEDULED_CHECK, user_id=user_id)
        items: blocks.Blocks = []
        for job in jobs[:PER_PART]:
            t = job.target
            value = json.dumps(
                {
                    "project": t.get("project"),
                    "flag": t.get("flag"),
                    "env": t.get("env"),
                    "id": t.get("scheduled_id"),
                }
            )
            when = describe_moment(datetime.fromtimestamp(int(t.get("execute_at_ms") or 0) / 1000, UTC), tz)
            line = f"{when} · *{blocks.escape(str(t.get('flag')))}* in *{blocks.escape(str(t.get('env')))}*"
            items.append(_row(line, blocks.action_button(SCHEDULED_DELETE, "Delete", value, style="danger")))
        return _part("Your scheduled changes", items, len(jobs), "No scheduled changes.")

    async def _subscriptions(self) -> blocks.Blocks:
        subs = await self.subscriptions.store.every()
        items = [
            _row(
                subscription_line(s, channel=True),
                blocks.action_button(UNSUBSCRIBE, "Unsubscribe", unsubscribe_value(s)),
            )
            for s in subs[:SUBSCRIPTIONS_SHOWN]
        ]
        part = _part(
            "Subscriptions in this workspace", items, len(subs), "No channel subscribes to flag changes."
        )
        part.append(_context(blocks.escape(await self.subscriptions.delivery())))
        return part


def _part(title: str, items: blocks.Blocks, total: int, empty: str) -> blocks.Blocks:
    part: blocks.Blocks = [{"type": "divider"}, _section(f"*{title}*")]
    if not items:
        return [*part, _context(empty)]
    part += items
    shown = sum(1 for b in items if b["type"] == "section")
    if total > shown:
        part.append(_context(f"…and {total - shown} more"))
    return part


def _confirm(command: str) -> dict[str, Any]:
    return {
        "title": {"type": "plain_text", "text": "Apply this change?"},
        "text": {"type": "plain_text", "text": blocks.clip(command, 300)},
        "confirm": {"type": "plain_text", "text": "Apply"},
        "deny": {"type": "plain_text", "text": "Not now"},
    }


def _row(text: str, button: dict[str, Any]) -> dict[str, Any]:
    return {**_section(text), "accessory": button}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": blocks.clip(text, blocks.SECTION_LIMIT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": blocks.clip(text, 2000)}]}
