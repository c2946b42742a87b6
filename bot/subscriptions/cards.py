"""Subscription messages as Block Kit: the change notification, the list, the answers.

Pure builders over plain words; every text from LaunchDarkly or a person is escaped here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.history.cards import audit_lines
from bot.slack import blocks
from bot.subscriptions.store import Subscription
from commands.summary import FactChange

UNSUBSCRIBE = "subscription_remove"
MAX_CHANGE_LINES = 8


@dataclass(frozen=True)
class ChangeNotice:
    """One change, in the words a notification uses (plain text; the builder escapes it)."""

    project: str
    flag_key: str
    flag_name: str
    environments: Sequence[str]  # "*" alone: a change to the flag itself (every environment)
    who: str
    what: str
    when: str
    changes: Sequence[FactChange] = ()
    versions: str | None = None  # why there is no before → after
    comment: str | None = None
    flag_url: str | None = None
    requester_id: str | None = None  # a flagops change: who asked for it in Slack
    card_url: str | None = None  # ... and its card
    late: bool = False  # a later change of this flag was received before this one
    matched: str | None = None  # which subscription brought it here ("flags tagged web")


def _where(notice: ChangeNotice) -> str:
    envs = [e for e in notice.environments if e != "*"]
    if not envs:
        return "(the flag itself: every environment)"
    return "in " + ", ".join(f"*{blocks.escape(e)}*" for e in envs)


def _change_lines(notice: ChangeNotice) -> list[str]:
    return audit_lines(notice.changes, notice.versions, notice.comment, limit=MAX_CHANGE_LINES)


def render_notice(notice: ChangeNotice) -> tuple[str, blocks.Blocks]:
    """The card posted in a subscribed channel: who, what, where, before → after, a link, History."""
    name = blocks.escape(blocks.clip(notice.flag_name, 200))
    key = blocks.escape(notice.flag_key)
    who = blocks.escape(blocks.clip(notice.who, 200))
    what = blocks.escape(blocks.clip(notice.what, 200))
    head = f":bell: *{who}* {what}: *{name}* (`{key}`) {_where(notice)}"
    lines = [head, *_change_lines(notice)]
    if notice.requester_id or notice.card_url:
        asked = f" for <@{notice.requester_id}>" if notice.requester_id else ""
        card = f": <{notice.card_url}|the card>" if notice.card_url else ""
        lines.append(f":link: through flagops{asked}{card}")
    body: blocks.Blocks = [_section("\n".join(lines))]
    envs = [e for e in notice.environments if e != "*"]
    buttons: list[dict[str, Any]] = []
    if notice.flag_url:
        buttons.append(
            {
                "type": "button",
                "action_id": "subscription_open_flag",
                "text": {"type": "plain_text", "text": "Open in LaunchDarkly"},
                "url": blocks.clip(notice.flag_url, 3000),
            }
        )
    buttons.append(
        blocks.history_button(notice.project, notice.flag_key, envs[0] if len(envs) == 1 else None)
    )
    body.append({"type": "actions", "elements": buttons})
    context = [blocks.escape(notice.when), f"project {blocks.escape(notice.project)}"]
    if notice.late:
        context.append(":hourglass: arrived after a later change of this flag")
    if notice.matched:
        context.append(f"subscribed: {blocks.escape(notice.matched)}")
    body.append(_context(" · ".join(context)))
    text = blocks.clip(f"{notice.who} {notice.what}: {notice.flag_key}", 3000)
    return text, body


def render_thread_note(notice: ChangeNotice) -> tuple[str, blocks.Blocks]:
    """A flagops change as LaunchDarkly's audit log tells it, for its own card's thread."""
    who = blocks.escape(blocks.clip(notice.who, 200))
    what = blocks.escape(blocks.clip(notice.what, 200))
    head = f":satellite_antenna: LaunchDarkly's audit log: *{who}* {what} {_where(notice)}"
    lines = [head, *_change_lines(notice)]
    body: blocks.Blocks = [_section("\n".join(lines)), _context(blocks.escape(notice.when))]
    return blocks.clip(f"LaunchDarkly: {notice.who} {notice.what}", 3000), body


def unsubscribe_value(sub: Subscription) -> str:
    return json.dumps({"id": sub.id}, separators=(",", ":"))


def subscription_line(sub: Subscription, *, channel: bool = False) -> str:
    where = f"<#{sub.channel_id}> · " if channel else ""
    return f"{where}{blocks.escape(sub.describe())} · project {blocks.escape(sub.project)}"


def render_list(subs: Sequence[Subscription], delivery: str, *, channel_id: str) -> tuple[str, blocks.Blocks]:
    """``/flag subscriptions``: this channel's subscriptions, each with Unsubscribe."""
    if not subs:
        text = "This channel has no subscriptions. `/flag subscribe <flag> | tag:<tag> | env:<env> | all`"
        return text, [_section(text), _context(blocks.escape(delivery))]
    body: blocks.Blocks = [_section(":bell: This channel gets changes of:")]
    for sub in subs[:40]:
        body.append(_section_with_button(subscription_line(sub), sub))
    if len(subs) > 40:
        body.append(_context(f"…and {len(subs) - 40} more"))
    body.append(_context(blocks.escape(delivery)))
    return f"{len(subs)} subscription(s) in this channel", body


def _section_with_button(text: str, sub: Subscription) -> dict[str, Any]:
    section = _section(text)
    section["accessory"] = blocks.action_button(UNSUBSCRIBE, "Unsubscribe", unsubscribe_value(sub))
    return section


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": blocks.clip(text, blocks.SECTION_LIMIT)}}


def _context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": blocks.clip(t, 2000)} for t in texts]}
