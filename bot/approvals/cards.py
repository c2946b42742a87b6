"""Approval cards: their stored rows (the ``approval_cards`` table, moved by compare-and-set), the
states LaunchDarkly's request implies, and the pure Block Kit of the card and the decline modal.

The flow that moves them (requests, clicks, Apply once) is ``bot.approvals.service``; this module holds what
a card *is* and how it looks, so the two can be read (and changed) apart.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import utcnow
from bot.launchdarkly.models import ApprovalRequest
from bot.persistence.db import approval_cards
from bot.slack import blocks
from bot.slack.messenger import ReplyTo
from bot.slack.metadata import ModalMetadata
from commands.summary import FactChange

# Card states (the compare-and-set column of ``approval_cards``).
PENDING = "pending"
APPROVED = "approved"
DECLINED = "declined"
CARD_APPLYING = "applying"
CARD_APPLIED = "applied"
CARD_FAILED = "failed"
CARD_STATES = frozenset({PENDING, APPROVED, DECLINED, CARD_APPLYING, CARD_APPLIED, CARD_FAILED})

APPROVE = "approval_approve"
DECLINE = "approval_decline"
APPLY = "approval_apply"
APPROVE_APPLY = "approval_approve_apply"  # one click: approve, then apply where the reviewer may
COMMENT = "approval_comment"  # a review of kind "comment": a question for the requester, no verdict
BUTTON_TEXT = {
    APPROVE_APPLY: "Approve and apply",
    APPROVE: "Approve",
    DECLINE: "Decline",
    COMMENT: "Comment",
    APPLY: "Apply",
}
DECLINE_CALLBACK = "approval_decline_reason"
COMMENT_CALLBACK = "approval_comment_text"
REASON_BLOCK = "reason"
REASON_ACTION = "reason"

# --- stored cards ---------------------------------------------------------------------------------


class CardContent(BaseModel):
    """What an approval card shows besides the request's live state (stored as ``content_json``)."""

    project: str
    flag_key: str
    flag_name: str
    environment: str
    requester: str
    """mrkdwn: ``<@U123>`` for a Slack user, else the LaunchDarkly member's email."""
    requested_as: str = ""
    """mrkdwn: how it was requested (`` as alice@example.com``, `` through the flagops service token``)."""
    sentences: list[str]
    changes: list[tuple[str, str | None, str | None]] = []
    instructions_json: str = "[]"
    description: str | None = None
    comment: str | None = None
    reviewers: list[str] = []
    unmapped: list[str] = []
    request_url: str | None = None
    flag_url: str | None = None


class ApprovalCard(BaseModel):
    """One approval request as shown in Slack (a row of ``approval_cards``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    request_id: str
    change_id: str | None
    state: str
    project: str
    flag_key: str
    environment: str
    requester_id: str | None
    channel_id: str
    thread_ts: str | None
    cards_json: str
    content_json: str
    request_json: str | None
    outcome: str | None
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def content(self) -> CardContent:
        return CardContent.model_validate_json(self.content_json)

    @property
    def locations(self) -> list[tuple[str, str]]:
        """Every (channel, ts) where this card is posted."""
        return [(str(c), str(t)) for c, t in json.loads(self.cards_json)]

    @property
    def request(self) -> ApprovalRequest | None:
        """The request as last read from LaunchDarkly."""
        return ApprovalRequest.model_validate_json(self.request_json) if self.request_json else None


class ApprovalCardStore:
    """The ``approval_cards`` table; :meth:`transition` is the compare-and-set."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(
        self,
        *,
        request: ApprovalRequest,
        change_id: str | None,
        content: CardContent,
        requester_id: str | None,
        channel_id: str,
        thread_ts: str | None,
    ) -> ApprovalCard:
        """Store the card of a request (state from the request as read)."""
        now = utcnow()
        row: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "request_id": request.id,
            "change_id": change_id,
            "state": state_of(request),
            "project": content.project,
            "flag_key": content.flag_key,
            "environment": content.environment,
            "requester_id": requester_id,
            "channel_id": channel_id,
            "thread_ts": thread_ts,
            "cards_json": "[]",
            "content_json": content.model_dump_json(),
            "request_json": request.model_dump_json(by_alias=True),
            "outcome": None,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        async with self.engine.begin() as connection:
            await connection.execute(insert(approval_cards).values(row))
        return ApprovalCard.model_validate(row)

    async def get(self, card_id: str) -> ApprovalCard | None:
        return await self._one(approval_cards.c.id == card_id)

    async def by_request(self, request_id: str) -> ApprovalCard | None:
        return await self._one(approval_cards.c.request_id == request_id)

    async def _one(self, condition: Any) -> ApprovalCard | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(approval_cards).where(condition))).mappings().first()
        return ApprovalCard.model_validate(dict(row)) if row is not None else None

    async def transition(
        self, card_id: str, from_states: Collection[str], to_state: str, **fields: Any
    ) -> ApprovalCard | None:
        """Move the card to ``to_state`` only if it is in ``from_states`` (one conditional UPDATE).

        Returns:
            The card after the move, or None for the loser of a race (who must change nothing).
        """
        if to_state not in CARD_STATES:
            raise ValueError(f"unknown approval card state {to_state!r}")
        statement = (
            update(approval_cards)
            .where(approval_cards.c.id == card_id, approval_cards.c.state.in_(list(from_states)))
            .values(
                state=to_state,
                updated_at=utcnow(),
                version=approval_cards.c.version + 1,
                **fields,
            )
            .returning(*approval_cards.c)
        )
        async with self.engine.begin() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return ApprovalCard.model_validate(dict(row)) if row is not None else None

    async def remember(self, card_id: str, request: ApprovalRequest) -> ApprovalCard | None:
        """Keep the request as last read (not a state move)."""
        statement = (
            update(approval_cards)
            .where(approval_cards.c.id == card_id)
            .values(request_json=request.model_dump_json(by_alias=True), updated_at=utcnow())
            .returning(*approval_cards.c)
        )
        async with self.engine.begin() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return ApprovalCard.model_validate(dict(row)) if row is not None else None

    async def add_location(self, card_id: str, channel: str, ts: str) -> ApprovalCard | None:
        """Record one more place the card is posted (the thread, the approvals channel, a listing)."""
        async with self.engine.begin() as connection:
            row = (
                (await connection.execute(select(approval_cards).where(approval_cards.c.id == card_id)))
                .mappings()
                .first()
            )
            if row is None:
                return None
            locations = [*json.loads(row["cards_json"]), [channel, ts]]
            done = (
                (
                    await connection.execute(
                        update(approval_cards)
                        .where(approval_cards.c.id == card_id)
                        .values(cards_json=json.dumps(locations))
                        .returning(*approval_cards.c)
                    )
                )
                .mappings()
                .first()
            )
        return ApprovalCard.model_validate(dict(done)) if done is not None else None


def state_of(request: ApprovalRequest) -> str:
    """The card state LaunchDarkly's request implies."""
    if request.status in ("completed", "scheduled"):
        return CARD_APPLIED
    if request.status == "failed":
        return CARD_FAILED
    if request.review_status == "declined":
        return DECLINED
    if request.review_status == "approved":
        return APPROVED
    return PENDING


# --- the card -------------------------------------------------------------------------------------


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    fallback = f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"
    return f" at <!date^{ms // 1000}^{{date_short_pretty}} {{time}}|{fallback}>"


def approval_button(action_id: str, card_id: str) -> dict[str, Any]:
    """One approval button (its value: the card id): Approve and apply and Apply are primary."""
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "value": card_id,
        "text": {"type": "plain_text", "text": BUTTON_TEXT[action_id], "emoji": True},
    }
    if action_id in (APPROVE_APPLY, APPLY):
        element["style"] = "primary"
    if action_id == DECLINE:
        element["style"] = "danger"
    return element


STATE_LINE = {
    PENDING: ":hourglass_flowing_sand: *Waiting for review*",
    APPROVED: ":white_check_mark: *Approved*: ready to apply",
    DECLINED: ":x: *Declined*",
    CARD_APPLYING: ":hourglass_flowing_sand: *Applying…*",
    CARD_APPLIED: ":rocket: *Applied*",
    CARD_FAILED: ":warning: *Failed*",
}


def render_approval_card(card: ApprovalCard, names: dict[str, str]) -> tuple[str, blocks.Blocks]:
    """The approval card: requester, flag, environment, the change, reviewers, reviews, link, buttons.

    Args:
        card: the stored card (its state and the request as last read).
        names: LaunchDarkly member ids → how to name them (a Slack mention or an email).

    Returns:
        ``(text, blocks)``.
    """
    content = card.content
    request = card.request
    title = (
        f":lock: Approval requested by {content.requester}{content.requested_as}: change "
        f"*{blocks.escape(content.flag_key)}* in *{blocks.escape(content.environment)}*"
    )
    what = "; ".join(content.sentences) or (content.description or "change the flag")
    text = blocks.clip(
        blocks.shorten_lists(f"Approval requested: {what} ({content.flag_key} in {content.environment})"),
        3000,
    )
    body: blocks.Blocks = [
        _section(title),
        _section(blocks.sentences_text(content.sentences) if content.sentences else blocks.escape(what)),
    ]
    if content.changes:
        facts = [FactChange(*c) for c in content.changes]
        body.append(_section("*Before → after*\n" + blocks.fact_changes_text(facts)))
    if content.comment:
        body.append(_context(f":memo: {blocks.escape(content.comment)}"))
    reviewer_line = (
        f"Reviewers notified: {_listed(content.reviewers)}"
        if content.reviewers
        else "Reviewers: _anyone allowed to review in LaunchDarkly (its default reviewers are notified)_"
    )
    if content.unmapped:
        reviewer_line += (
            f"\n:grey_question: Not notified (no LaunchDarkly member found): {_listed(content.unmapped)}"
        )
    body.append(_section(reviewer_line))
    # The state and the outcome first: whatever else the section cannot hold, they are kept.
    lines = [STATE_LINE.get(card.state, card.state)]
    if card.outcome:
        lines.append(blocks.clip(card.outcome, 1000))
    if request is not None and request.execution_date:
        # A scheduled change: approving and applying it schedules it; LaunchDarkly runs it then.
        at = _when(request.execution_date)
        if request.status == "scheduled":
            lines.append(f":calendar: Scheduled: LaunchDarkly runs it{at}")
        else:
            lines.append(f":calendar: A scheduled change: once applied, LaunchDarkly runs it{at}")
    reviews: list[str] = []
    for review in request.all_reviews if request else []:
        verb = {"approve": "approved", "decline": "declined", "comment": "commented"}.get(
            review.kind, review.kind
        )
        who = names.get(review.member_id or "", review.member_id or "someone")
        line = f"• {verb} by {who}{_when(review.creation_date)}"
        if review.comment:
            line += f": “{blocks.escape(blocks.clip(review.comment, 200))}”"
        reviews.append(line)
    body.append(_section("\n".join(_latest_fitting(lines, reviews))))
    buttons = {PENDING: (APPROVE_APPLY, APPROVE, DECLINE, COMMENT), APPROVED: (APPLY,)}.get(card.state, ())
    if buttons:
        body.append(
            {
                "type": "actions",
                "block_id": f"approval:{card.id}",
                "elements": [approval_button(b, card.id) for b in buttons],
            }
        )
    footer = []
    if content.request_url:
        footer.append(f"<{content.request_url}|Open the request in LaunchDarkly>")
    if content.flag_url:
        # A flag's name is LaunchDarkly data of any length: clipped before it is escaped, so the
        # link is never cut open (and the request's link before it always survives).
        footer.append(f"<{content.flag_url}|{blocks.escape(blocks.clip(content.flag_name, 80))}>")
    footer.append(f"project {blocks.escape(content.project)}")  # the request's id: behind its link
    body.append(_context(" · ".join(footer)))
    return text, body


def _listed(items: list[str], limit: int = blocks.MAX_LISTED) -> str:
    """The first ``limit`` of ``items`` (each whole: a mention is never split), then ``+N more``."""
    shown = ", ".join(items[:limit])
    return shown + (f", +{len(items) - limit} more" if len(items) > limit else "")


def _latest_fitting(head: list[str], reviews: list[str], limit: int = blocks.MAX_LISTED) -> list[str]:
    """``head`` (the state and the outcome: always kept), then the latest reviews, at most
    ``limit`` of them and as many whole lines as fit in a section, after a line saying how many
    earlier ones are only in LaunchDarkly."""
    room = blocks.SECTION_LIMIT - len("\n".join(head)) - 80  # 80: the "+N more" line
    kept: list[str] = []
    for line in reversed(reviews[-limit:]):
        if len(line) + 1 > room:
            break
        kept.insert(0, line)
        room -= len(line) + 1
    left = len(reviews) - len(kept)
    more = [f"_+{left} more reviews, earlier: see the request in LaunchDarkly_"] if left else []
    return [*head, *more, *kept]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": blocks.clip(text, blocks.SECTION_LIMIT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": blocks.clip(text, 2000)}]}


def decline_modal(card_id: str, reply: ReplyTo, flag_key: str, environment: str) -> dict[str, Any]:
    """The modal asking why a request is declined."""
    return _review_modal(
        DECLINE_CALLBACK,
        "Decline the request",
        "Decline",
        "Decline",
        "Why?",
        card_id,
        reply,
        flag_key,
        environment,
        optional=True,
    )


def comment_modal(card_id: str, reply: ReplyTo, flag_key: str, environment: str) -> dict[str, Any]:
    """The modal for a comment on a request (a review of kind ``comment``: no verdict)."""
    return _review_modal(
        COMMENT_CALLBACK,
        "Comment on the request",
        "Comment",
        "Comment on",
        "Your comment",
        card_id,
        reply,
        flag_key,
        environment,
        optional=False,
    )


def _review_modal(
    callback: str,
    title: str,
    submit: str,
    verb: str,
    label: str,
    card_id: str,
    reply: ReplyTo,
    flag_key: str,
    environment: str,
    *,
    optional: bool,
) -> dict[str, Any]:
    return blocks.modal(
        callback,
        title,
        submit,
        ModalMetadata.of(reply, card_id=card_id).encode(),
        [
            _section(f"{verb} the change to *{blocks.escape(flag_key)}* in *{blocks.escape(environment)}*."),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": label},
                "optional": optional,
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "max_length": 2000,
                    "placeholder": {
                        "type": "plain_text",
                        "text": "LaunchDarkly keeps it; the requester sees it in the thread",
                    },
                },
            },
        ],
    )


def decline_metadata(metadata: str, user_id: str) -> tuple[str, ReplyTo]:
    """The card id and reply target a decline modal carried."""
    read = ModalMetadata.decode(metadata)
    return read.card_id, read.reply(user_id)
