"""Approvals in the channel: approval requests, their cards, and the Approve / Decline / Apply buttons.

::

    change card ──Request approval (or --approval, or after a 405)──▶ approval request in LaunchDarkly
                                                                     + approval card in the thread
    approval card:  pending ──Approve──▶ approved ──Apply──▶ applying ──▶ applied
                       │                                        └──refused──▶ failed (LD's reason)
                       └──Decline (reason in a modal)──▶ declined

Every click re-reads the request from LaunchDarkly first, so a request reviewed or applied in
LaunchDarkly's UI shows its true state on the next click. Reviews and applies go out with the
clicking user's linked token (``bot.accounts``), else the service token with a comment naming the
Slack user. Apply is a compare-and-set on the card's row (``approved → applying``): of any number
of reviewers clicking at once, one applies. LaunchDarkly's refusals (self-review, missing role)
are shown in LaunchDarkly's words, with the hint to link an account where that would help.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import blocks
from bot.accounts import LINK_HINT, AccountService, Acting
from bot.changes import (
    APPLIED,
    APPLYING,
    APPROVAL_REQUESTED,
    FAILED,
    NEEDS_APPROVAL,
    PROPOSED,
    ChangeService,
    Proposal,
    Who,
    clip_description,
)
from bot.db import approval_cards
from bot.explain import explain_error
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient, approval_filter, flag_resource_id
from bot.launchdarkly.models import ApprovalRequest
from bot.messenger import CannotPost, ReplyTo
from bot.store import Change
from commands import describe, parse
from commands.engine import apply as engine_apply
from commands.errors import CommandError, EngineRefusal
from commands.instructions import SemanticPatch
from commands.intents import ChangeCommand, ReservedCommand
from commands.summary import FactChange, diff_facts

log = logging.getLogger(__name__)

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
BUTTON_TEXT = {APPROVE: "Approve", DECLINE: "Decline", APPLY: "Apply"}
DECLINE_CALLBACK = "approval_decline_reason"
REASON_BLOCK = "reason"
REASON_ACTION = "reason"

_MENTION = re.compile(r"^<@([A-Z0-9_]+)(?:\|[^>]*)?>$")
_MEMBER_ID = re.compile(r"^[0-9a-f]{24}$")
_RESOURCE = re.compile(r"^proj/([^:]+):env/([^:]+):flag/(.+)$")


# --- stored cards ---------------------------------------------------------------------------------


class CardContent(BaseModel):
    """What an approval card shows besides the request's live state (stored as ``content_json``)."""

    project: str
    flag_key: str
    flag_name: str
    environment: str
    requester: str
    """mrkdwn: ``<@U123>`` for a Slack user, else the LaunchDarkly member's email."""
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
        now = datetime.now(UTC)
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
                updated_at=datetime.now(UTC),
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
            .values(request_json=request.model_dump_json(by_alias=True), updated_at=datetime.now(UTC))
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


def _button(action_id: str, card_id: str) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "value": card_id,
        "text": {"type": "plain_text", "text": BUTTON_TEXT[action_id], "emoji": True},
    }
    if action_id in (APPROVE, APPLY):
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
        f":lock: Approval requested by {content.requester}: change *{blocks.escape(content.flag_key)}* "
        f"in *{blocks.escape(content.environment)}*"
    )
    what = "; ".join(content.sentences) or (content.description or "change the flag")
    text = blocks.clip(f"Approval requested: {what} ({content.flag_key} in {content.environment})", 3000)
    body: blocks.Blocks = [
        _section(title),
        _section("\n".join(f"• {blocks.escape(s)}" for s in content.sentences) or blocks.escape(what)),
    ]
    if content.changes:
        facts = [FactChange(*c) for c in content.changes]
        body.append(_section("*Before → after*\n" + blocks.fact_changes_text(facts)))
    if content.comment:
        body.append(_context(f":memo: {blocks.escape(content.comment)}"))
    reviewers = ", ".join(content.reviewers) or "_anyone allowed to review in LaunchDarkly_"
    reviewer_line = f"*Reviewers*: {reviewers}"
    if content.unmapped:
        reviewer_line += (
            f"\n:grey_question: Not notified (no LaunchDarkly member found): {', '.join(content.unmapped)}"
        )
    body.append(_section(reviewer_line))
    lines = [STATE_LINE.get(card.state, card.state)]
    for review in request.all_reviews if request else []:
        verb = {"approve": "approved", "decline": "declined", "comment": "commented"}.get(
            review.kind, review.kind
        )
        who = names.get(review.member_id or "", review.member_id or "someone")
        line = f"• {verb} by {who}{_when(review.creation_date)}"
        if review.comment:
            line += f": “{blocks.escape(blocks.clip(review.comment, 200))}”"
        lines.append(line)
    if card.outcome:
        lines.append(card.outcome)
    body.append(_section("\n".join(lines)))
    buttons = {PENDING: (APPROVE, DECLINE), APPROVED: (APPLY,)}.get(card.state, ())
    if buttons:
        body.append(
            {
                "type": "actions",
                "block_id": f"approval:{card.id}",
                "elements": [_button(b, card.id) for b in buttons],
            }
        )
    footer = []
    if content.request_url:
        footer.append(f"<{content.request_url}|Open the request in LaunchDarkly>")
    if content.flag_url:
        footer.append(f"<{content.flag_url}|{blocks.escape(content.flag_name)}>")
    footer.append(f"project {blocks.escape(content.project)} · request {card.request_id[:8]}")
    body.append(_context(" · ".join(footer)))
    return text, body


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": blocks.clip(text, blocks.SECTION_LIMIT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": blocks.clip(text, 2000)}]}


def decline_modal(card_id: str, reply: ReplyTo, flag_key: str, environment: str) -> dict[str, Any]:
    """The modal asking why a request is declined."""
    metadata = {"card": card_id, "c": reply.channel_id, "r": reply.response_url, "t": reply.thread_ts}
    return {
        "type": "modal",
        "callback_id": DECLINE_CALLBACK,
        "title": {"type": "plain_text", "text": "Decline the request"},
        "submit": {"type": "plain_text", "text": "Decline"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata),
        "blocks": [
            _section(f"Decline the change to *{blocks.escape(flag_key)}* in *{blocks.escape(environment)}*."),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "placeholder": {"type": "plain_text", "text": "The requester sees this in the thread"},
                },
            },
        ],
    }


def decline_metadata(metadata: str, user_id: str) -> tuple[str, ReplyTo]:
    """The card id and reply target a decline modal carried."""
    try:
        data = json.loads(metadata or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    reply = ReplyTo(str(data.get("c") or ""), user_id, data.get("r") or None, data.get("t") or None)
    return str(data.get("card") or ""), reply


# --- reviewers ------------------------------------------------------------------------------------


@dataclass
class Reviewers:
    """Who an approval request notifies, and who could not be found."""

    member_ids: list[str] = field(default_factory=list)
    team_keys: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def add_member(self, member_id: str, shown: str) -> None:
        if member_id not in self.member_ids:
            self.member_ids.append(member_id)
            self.shown.append(shown)


# --- the service ----------------------------------------------------------------------------------


class ApprovalService:
    """Approval requests from change cards, approval cards, and their buttons."""

    def __init__(
        self,
        *,
        changes: ChangeService,
        accounts: AccountService,
        cards: ApprovalCardStore,
        slack: AsyncWebClient,
    ) -> None:
        self.changes = changes
        self.settings = changes.settings
        self.ld: LaunchDarklyClient = changes.ld
        self.messenger = changes.messenger
        self.accounts = accounts
        self.cards = cards
        self.slack = slack

    # --- hooks the change lifecycle calls ------------------------------------------------------

    async def token_for(self, user_id: str) -> str | None:
        """The linked token of a Slack user, or None for the service token."""
        return (await self.accounts.acting(user_id)).token

    async def request_approval(self, change: Change, who: Who) -> None:
        """Create the approval request for a change card and post its approval card in the thread.

        Called by the change lifecycle for Request approval and for ``--approval``.
        """
        acting = await self.accounts.require(who.user_id, who.reply, "request approval")
        if acting is None:
            return
        won = await self.changes.store.transition(
            change.id, [PROPOSED, NEEDS_APPROVAL], APPLYING, who.user_id, detail="Request approval"
        )
        if won is None:
            await self.changes.tell(who, "This change is already on its way.")
            return
        if won.environment is None:
            await self.changes._finish(
                won, FAILED, who, None, ":x: Approval requests exist only for a flag in an environment."
            )
            return
        proposal = Proposal.model_validate_json(won.request_json)
        try:
            reviewers = await self.reviewers(won.environment, _command_reviewers(won.command_text))
            request = await self.ld.create_approval_request(
                won.project,
                won.flag_key,
                won.environment,
                description=clip_description(
                    f"{who.user_name} (via Slack) asks to: " + "; ".join(proposal.sentences)
                ),
                instructions=proposal.semantic_patch().instructions,
                comment=self._comment(won.comment or None, who, acting, "requested"),
                notify_member_ids=reviewers.member_ids,
                notify_team_keys=reviewers.team_keys,
                execution_date=proposal.execute_at_ms,  # issue 6: a scheduled change applies at its time
                token=acting.token,
            )
        except ld_errors.LaunchDarklyError as error:
            await self.changes._finish(
                won,
                FAILED,
                who,
                error.status,
                f":x: Could not request approval: {self.refusal(error, acting)}",
            )
            return
        await self.changes.store.transition(
            won.id,
            [APPLYING],
            APPROVAL_REQUESTED,
            who.user_id,
            ld_status=201,
            detail=f"approval request {request.id}",
            approval_request_id=request.id,
        )
        await self.changes._update_card(
            won, f":lock: Approval requested by <@{who.user_id}>: the approval card is in the thread."
        )
        content = CardContent(
            project=won.project,
            flag_key=won.flag_key,
            flag_name=proposal.flag_name,
            environment=won.environment,
            requester=f"<@{who.user_id}>",
            sentences=proposal.sentences,
            changes=proposal.changes,
            instructions_json=json.dumps([i.body() for i in proposal.semantic_patch().instructions]),
            description=request.description,
            comment=won.comment or None,
            reviewers=reviewers.shown,
            unmapped=reviewers.unmapped,
            request_url=self.request_url(won.project, won.flag_key, won.environment, request.id),
            flag_url=proposal.flag_url,
        )
        thread = won.thread_ts or won.card_ts
        card = await self.cards.create(
            request=request,
            change_id=won.id,
            content=content,
            requester_id=who.user_id,
            channel_id=won.channel_id,
            thread_ts=thread,
        )
        await self._post_card(card, won.channel_id, thread)
        approvals_channel = self.settings.flagops_approvals_channel
        if approvals_channel and approvals_channel != won.channel_id:
            try:
                await self._post_card(card, approvals_channel, None)
            except CannotPost as error:
                await self._reply(
                    card, f":warning: The approvals channel did not take the card: {error.message}"
                )
        notified = ", ".join(reviewers.shown) or "LaunchDarkly's default reviewers"
        lines = [f"Reviewers notified: {notified}."]
        if reviewers.unmapped:
            lines.append(f"Not notified (no LaunchDarkly member found): {', '.join(reviewers.unmapped)}.")
        await self._reply(
            card,
            f":lock: <@{who.user_id}> requested approval for *{won.flag_key}* in *{won.environment}*"
            f"{self._as(acting)}.",
            lines,
        )

    # --- reviewers -----------------------------------------------------------------------------

    async def reviewers(self, environment: str, named: Sequence[str]) -> Reviewers:
        """Reviewers to notify: configured ones for the environment, then the command's.

        Slack mentions are mapped to LaunchDarkly members by email (``users.info``); emails and
        member ids are taken as they are; a name that maps to no member is reported, not dropped.
        """
        found = Reviewers()
        configured = [
            *self.settings.flagops_approval_reviewers.get("*", []),
            *self.settings.flagops_approval_reviewers.get(environment, []),
        ]
        for entry in configured:
            if "@" in entry:
                await self._add_email(found, entry, entry)
            elif entry not in found.team_keys:
                found.team_keys.append(entry.removeprefix("team:"))
                found.shown.append(f"team `{entry.removeprefix('team:')}`")
        for name in named:
            mention = _MENTION.match(name)
            if mention:
                email = await self._slack_email(mention[1])
                if email is None:
                    found.unmapped.append(f"<@{mention[1]}> (no email in Slack)")
                else:
                    await self._add_email(found, email, f"<@{mention[1]}>")
            elif "@" in name and not name.startswith("@"):
                await self._add_email(found, name, name)
            elif _MEMBER_ID.match(name):
                found.add_member(name, f"member `{name}`")
            else:
                found.unmapped.append(f"{blocks.escape(name)} (write a Slack mention or an email)")
        return found

    async def _add_email(self, found: Reviewers, email: str, shown: str) -> None:
        member = await self.ld.find_member_by_email(email)
        if member is None:
            found.unmapped.append(shown)
        else:
            found.add_member(member.id, shown)

    async def _slack_email(self, user_id: str) -> str | None:
        try:
            response = await self.slack.users_info(user=user_id)
        except SlackApiError as error:
            log.info("users.info %s failed: %s", user_id, error.response.get("error"))
            return None
        profile = (response.get("user") or {}).get("profile") or {}
        email = profile.get("email")
        return str(email) if email else None

    # --- clicks --------------------------------------------------------------------------------

    async def click(self, action_id: str, card_id: str, who: Who, trigger_id: str | None) -> None:
        """Handle an approval card button (after the ack)."""
        if action_id == DECLINE:
            # The modal first: the trigger expires in about 3 seconds.
            await self._open_decline(card_id, who, trigger_id)
            return
        card = await self.cards.get(card_id)
        if card is None:
            await self.changes.tell(who, ":grey_question: I don't know this approval request any more.")
            return
        if action_id == APPROVE:
            await self._approve(card, who)
        elif action_id == APPLY:
            await self._apply(card, who)
        else:
            await self.changes.tell(who, ":grey_question: That button is not for me.")

    async def _open_decline(self, card_id: str, who: Who, trigger_id: str | None) -> None:
        if not trigger_id:
            await self.changes.tell(who, ":warning: Slack sent no trigger to open the form; click again.")
            return
        card = await self.cards.get(card_id)
        if card is None:
            await self.changes.tell(who, ":grey_question: I don't know this approval request any more.")
            return
        await self.slack.views_open(
            trigger_id=trigger_id, view=decline_modal(card.id, who.reply, card.flag_key, card.environment)
        )

    async def _fresh(self, card: ApprovalCard, who: Who, acting: Acting) -> ApprovalCard | None:
        """Re-read the request and bring the card's state in line with it (None: could not read)."""
        try:
            request = await self.ld.get_approval_request(
                card.project, card.flag_key, card.environment, card.request_id, token=acting.token
            )
        except ld_errors.LaunchDarklyError as error:
            await self.changes.tell(
                who, f":warning: Could not read the request: {self.refusal(error, acting)}"
            )
            return None
        return await self._sync(card, request)

    async def _sync(self, card: ApprovalCard, request: ApprovalRequest) -> ApprovalCard:
        remembered = await self.cards.remember(card.id, request) or card
        target = state_of(request)
        if remembered.state in (target, CARD_APPLYING):
            return remembered
        moved = await self.cards.transition(card.id, [remembered.state], target)
        if moved is not None and target == CARD_APPLIED:
            await self._change_applied(moved, "flagops", "applied in LaunchDarkly")
        return moved or await self.cards.get(card.id) or remembered

    async def _approve(self, card: ApprovalCard, who: Who) -> None:
        acting = await self.accounts.require(who.user_id, who.reply, "approve")
        if acting is None:
            return
        fresh = await self._fresh(card, who, acting)
        if fresh is None:
            return
        if fresh.state != PENDING:
            await self.changes.tell(who, f"This request is already {fresh.state}.")
            await self.refresh(fresh)
            return
        try:
            request = await self.ld.review_approval_request(
                card.project,
                card.flag_key,
                card.environment,
                card.request_id,
                "approve",
                self._comment(None, who, acting, "approved"),
                token=acting.token,
            )
        except ld_errors.LaunchDarklyError as error:
            await self.changes.tell(who, f":no_entry: {self.refusal(error, acting)}")
            return
        done = await self._sync(fresh, request)
        ready = " It can be applied now: *Apply* on the card." if done.state == APPROVED else ""
        await self._reply(done, f":white_check_mark: <@{who.user_id}> approved{self._as(acting)}.{ready}")
        await self.refresh(done)

    async def decline(self, card_id: str, who: Who, reason: str) -> None:
        """Decline a request with the reason typed in the modal (after the view submission's ack)."""
        card = await self.cards.get(card_id)
        if card is None:
            await self.changes.tell(who, ":grey_question: I don't know this approval request any more.")
            return
        acting = await self.accounts.require(who.user_id, who.reply, "decline")
        if acting is None:
            return
        fresh = await self._fresh(card, who, acting)
        if fresh is None:
            return
        if fresh.state not in (PENDING, APPROVED):
            await self.changes.tell(who, f"This request is already {fresh.state}.")
            await self.refresh(fresh)
            return
        try:
            request = await self.ld.review_approval_request(
                card.project,
                card.flag_key,
                card.environment,
                card.request_id,
                "decline",
                reason.strip() or self._comment(None, who, acting, "declined"),
                token=acting.token,
            )
        except ld_errors.LaunchDarklyError as error:
            await self.changes.tell(who, f":no_entry: {self.refusal(error, acting)}")
            return
        done = await self._sync(fresh, request)
        why = f": “{blocks.escape(reason.strip())}”" if reason.strip() else "."
        await self._reply(done, f":x: <@{who.user_id}> declined{self._as(acting)}{why}")
        await self.refresh(done)

    async def _apply(self, card: ApprovalCard, who: Who) -> None:
        acting = await self.accounts.require(who.user_id, who.reply, "apply")
        if acting is None:
            return
        fresh = await self._fresh(card, who, acting)
        if fresh is None:
            return
        if fresh.state != APPROVED:
            messages = {
                CARD_APPLYING: "is already being applied.",
                CARD_APPLIED: "was already applied.",
                PENDING: "is not approved yet.",
                DECLINED: "was declined.",
                CARD_FAILED: "failed; see the thread.",
            }
            await self.changes.tell(who, f"This request {messages.get(fresh.state, fresh.state)}")
            await self.refresh(fresh)
            return
        won = await self.cards.transition(fresh.id, [APPROVED], CARD_APPLYING)
        if won is None:
            await self.changes.tell(who, "This request is already being applied.")
            return
        await self.refresh(won)
        try:
            request = await self.ld.apply_approval_request(
                card.project,
                card.flag_key,
                card.environment,
                card.request_id,
                self._comment(None, who, acting, "applied"),
                token=acting.token,
            )
        except ld_errors.LaunchDarklyError as error:
            await self._apply_failed(won, who, acting, error)
            return
        await self._applied(won, who, acting, request)

    async def _applied(self, card: ApprovalCard, who: Who, acting: Acting, request: ApprovalRequest) -> None:
        await self.cards.remember(card.id, request)
        try:
            flag = await self.changes.flags.flag(card.project, card.flag_key, fresh=True)
            version = f" · flag version {flag.get('_version')}"
        except (CommandError, ld_errors.LaunchDarklyError):
            version = ""
        status = "scheduled" if request.status == "scheduled" else "applied"
        outcome = f":rocket: {status.capitalize()} by <@{who.user_id}>{self._as(acting)}{version}."
        final = await self.cards.transition(card.id, [CARD_APPLYING], CARD_APPLIED, outcome=outcome) or card
        await self._change_applied(final, who.user_id, f"approval request {card.request_id} {status}")
        await self._reply(final, f":white_check_mark: {outcome.removeprefix(':rocket: ')}")
        await self.refresh(final)

    async def _apply_failed(
        self, card: ApprovalCard, who: Who, acting: Acting, error: ld_errors.LaunchDarklyError
    ) -> None:
        # Whatever the error, LaunchDarkly's request tells what happened: read it, never resend.
        try:
            request = await self.ld.get_approval_request(
                card.project, card.flag_key, card.environment, card.request_id, token=acting.token
            )
        except ld_errors.LaunchDarklyError:
            request = None
        if request is not None and state_of(request) == CARD_APPLIED:
            await self._applied(card, who, acting, request)
            return
        if request is not None and state_of(request) == CARD_FAILED:
            outcome = f":warning: Apply failed: {self.refusal(error, acting)}"
            final = (
                await self.cards.transition(card.id, [CARD_APPLYING], CARD_FAILED, outcome=outcome) or card
            )
            await self.cards.remember(card.id, request)
            await self._reply(final, outcome)
            await self.refresh(final)
            return
        back = await self.cards.transition(card.id, [CARD_APPLYING], APPROVED) or card
        if request is not None:
            back = await self.cards.remember(card.id, request) or back
        await self.changes.tell(
            who, f":no_entry: Not applied: {self.refusal(error, acting)} The request is still approved."
        )
        await self.refresh(back)

    async def _change_applied(self, card: ApprovalCard, actor: str, detail: str) -> None:
        """Close the change card this request came from, if any."""
        if card.change_id is None:
            return
        moved = await self.changes.store.transition(
            card.change_id, [APPROVAL_REQUESTED], APPLIED, actor, ld_status=200, detail=detail
        )
        if moved is not None:
            await self.changes._update_card(moved, f":white_check_mark: Applied through {detail}.")

    # --- /flag approvals -----------------------------------------------------------------------

    async def list_pending(self, who: Who, command: ReservedCommand) -> None:
        """``/flag approvals [flag] [env]``: pending requests, each with its card, in a thread."""
        project = command.project or self.settings.ld_project
        acting = await self.accounts.acting(who.user_id)
        resource = (
            flag_resource_id(project, command.environment, command.flag)
            if command.flag and command.environment
            else None
        )
        try:
            page = await self.ld.list_all_approval_requests(
                filter=approval_filter(status=["pending"], project_key=project, resource_id=resource),
                limit=20,
                token=acting.token,
            )
        except ld_errors.LaunchDarklyError as error:
            await self.changes.tell(who, f":warning: {self.refusal(error, acting)}")
            return
        requests = [
            r
            for r in page.items
            if (where := _resource(r)) is not None and (not command.flag or where[2] == command.flag)
        ]
        scope = f" for *{command.flag}*" if command.flag else ""
        scope += f" in *{command.environment}*" if command.environment else ""
        if not requests:
            await self.changes.tell(who, f"No pending approval requests{scope} in project `{project}`.")
            return
        more = (page.total_count or len(requests)) - len(page.items)
        headline = (
            f":lock: {len(requests)} pending approval request{'s' if len(requests) != 1 else ''}{scope}"
        )
        text, body = blocks.render_notice(
            headline + (f" (and {more} more)" if more > 0 else "") + f", asked for by <@{who.user_id}>:",
            ["Each card is in the thread."],
        )
        ts = await self.messenger.post(who.reply.channel_id, text, body)
        for request in requests:
            card = await self.cards.by_request(request.id) or await self._card_for(request, who, ts)
            card = await self._sync(card, request)
            await self._post_card(card, who.reply.channel_id, ts)

    async def _card_for(self, request: ApprovalRequest, who: Who, thread_ts: str) -> ApprovalCard:
        project, env, flag_key = _resource(request) or ("", "", "")
        requester_id = (
            await self.accounts.store.slack_user_for_member(request.requestor_id)
            if request.requestor_id
            else None
        )
        requester = f"<@{requester_id}>" if requester_id else await self._member_name(request.requestor_id)
        sentences: list[str] = []
        changes: list[tuple[str, str | None, str | None]] = []
        flag_name, flag_url = flag_key, None
        try:
            flag = await self.changes.flags.flag(project, flag_key, fresh=True)
            patch = SemanticPatch.model_validate(
                {"environmentKey": env, "instructions": request.instructions}
            )
            sentences = describe(patch, flag)
            after = engine_apply(flag, patch)
            changes = [(c.label, c.before, c.after) for c in diff_facts(flag, after, env)]
            flag_name, flag_url = str(flag.get("name") or flag_key), self.changes.flags.flag_url(flag, env)
        except (CommandError, EngineRefusal, ld_errors.LaunchDarklyError, ValueError) as error:
            # A request we cannot preview still gets a card: its description says what it does.
            log.info("approval request %s: no preview (%s)", request.id, type(error).__name__)
        content = CardContent(
            project=project,
            flag_key=flag_key,
            flag_name=flag_name,
            environment=env,
            requester=requester,
            sentences=sentences,
            changes=changes,
            instructions_json=json.dumps(request.instructions),
            description=request.description,
            reviewers=[await self._member_name(m) for m in request.notify_member_ids],
            request_url=self.request_url(project, flag_key, env, request.id),
            flag_url=flag_url,
        )
        return await self.cards.create(
            request=request,
            change_id=None,
            content=content,
            requester_id=requester_id,
            channel_id=who.reply.channel_id,
            thread_ts=thread_ts,
        )

    # --- posting -------------------------------------------------------------------------------

    async def _names(self, card: ApprovalCard) -> dict[str, str]:
        names: dict[str, str] = {}
        request = card.request
        for review in request.all_reviews if request else []:
            if review.member_id and review.member_id not in names:
                names[review.member_id] = await self._member_name(review.member_id)
        return names

    async def _member_name(self, member_id: str | None) -> str:
        if not member_id:
            return "someone"
        slack_user = await self.accounts.store.slack_user_for_member(member_id)
        if slack_user:
            return f"<@{slack_user}>"
        try:
            member = await self.ld.get_member(member_id)
        except ld_errors.LaunchDarklyError:
            return f"member `{member_id}`"
        return blocks.escape(member.email)

    async def _post_card(self, card: ApprovalCard, channel: str, thread_ts: str | None) -> None:
        text, body = render_approval_card(card, await self._names(card))
        ts = await self.messenger.post(channel, text, body, thread_ts=thread_ts)
        await self.cards.add_location(card.id, channel, ts)

    async def refresh(self, card: ApprovalCard) -> None:
        """Redraw the card wherever it is posted."""
        current = await self.cards.get(card.id) or card
        text, body = render_approval_card(current, await self._names(current))
        for channel, ts in current.locations:
            await self.messenger.update(channel, ts, text, body)

    async def _reply(self, card: ApprovalCard, text: str, lines: Sequence[str] = ()) -> None:
        message, body = blocks.render_notice(text, lines)
        await self.messenger.post(card.channel_id, message, body, thread_ts=card.thread_ts)

    # --- words ---------------------------------------------------------------------------------

    def request_url(self, project: str, flag: str, env: str, request_id: str) -> str:
        return f"{self.settings.ld_base_url}/projects/{project}/flags/{flag}/approvals/{request_id}?env={env}"

    @staticmethod
    def _as(acting: Acting) -> str:
        if acting.linked:
            return f" as {blocks.escape(acting.member_email or 'their LaunchDarkly member')}"
        return " through the flagops service token"

    @staticmethod
    def _comment(comment: str | None, who: Who, acting: Acting, verb: str) -> str:
        """The comment LaunchDarkly records: with the service token, it names the Slack user."""
        text = f"{verb.capitalize()} via Slack (flagops)"
        if not acting.linked:
            text += f" by Slack user @{who.user_name} ({who.user_id})"
        return f"{text}: {comment}" if comment else text

    @staticmethod
    def refusal(error: ld_errors.LaunchDarklyError, acting: Acting) -> str:
        """LaunchDarkly's refusal in its own words, with the link hint where linking would help."""
        if isinstance(error, ld_errors.Unauthorized) and acting.linked:
            return (
                "LaunchDarkly no longer accepts your linked token (401). Run `/flag link-account` "
                "again with a valid personal access token."
            )
        text = f"LaunchDarkly said: “{error.message}”" if error.status else explain_error(error)
        own_review = "own" in error.message.lower() and "review" in error.message.lower()
        if not acting.linked and (isinstance(error, ld_errors.Forbidden) or own_review):
            text += f" {LINK_HINT}"
        return text


def _command_reviewers(command_text: str) -> tuple[str, ...]:
    """The ``--reviewers`` of a stored command (the text is parsed again: parsing is pure)."""
    try:
        command = parse(command_text)
    except CommandError:
        return ()
    return command.reviewers if isinstance(command, ChangeCommand) else ()


def _resource(request: ApprovalRequest) -> tuple[str, str, str] | None:
    """(project, environment, flag) of a request from the generic list."""
    match = _RESOURCE.match(request.resource_id or "")
    return (match[1], match[2], match[3]) if match else None
