"""Approvals in the channel: approval requests, their cards, and the Approve / Decline / Apply buttons.

::

    change card ──Request approval (or --approval, or after a 405)──▶ approval request in LaunchDarkly
                                                                     + approval card in the thread
    approval card:  pending ──Approve──▶ approved ──Apply──▶ applying ──▶ applied
                       │                                        └──refused──▶ failed (LD's reason)
                       └──Decline (reason in a modal)──▶ declined

Every click re-reads the request from LaunchDarkly first, so a request reviewed or applied in
LaunchDarkly's UI shows its true state on the next click. Reviews and applies go out with the
clicking user's linked token (``bot.identity.accounts``), else the service token with a comment naming the
Slack user. Apply is a compare-and-set on the card's row (``approved → applying``): of any number
of reviewers clicking at once, one applies. LaunchDarkly's refusals (self-review, missing role)
are shown in LaunchDarkly's words, with the hint to link an account where that would help.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

from pydantic import ValidationError

from bot.approvals.cards import (
    APPLY,
    APPROVE,
    APPROVE_APPLY,
    APPROVED,
    BUTTON_TEXT,
    CARD_APPLIED,
    CARD_APPLYING,
    CARD_FAILED,
    CARD_STATES,
    COMMENT,
    COMMENT_CALLBACK,
    DECLINE,
    DECLINE_CALLBACK,
    DECLINED,
    PENDING,
    REASON_ACTION,
    REASON_BLOCK,
    STATE_LINE,
    ApprovalCard,
    ApprovalCardStore,
    CardContent,
    approval_button,
    comment_modal,
    decline_metadata,
    decline_modal,
    render_approval_card,
    state_of,
)
from bot.approvals.reviewers import ReviewerFinder, Reviewers, command_reviewers
from bot.clock import utcnow
from bot.config import ConfigError
from bot.errors import error_text, explain_error, quote_launchdarkly, technical
from bot.guardrails.channel_config import ChannelConfig
from bot.guardrails.policy import PolicyGuard
from bot.identity.accounts import LINK_HINT, AccountService, Acting
from bot.identity.oauth import PendingConnect
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient, approval_filter, flag_resource_id
from bot.launchdarkly.models import ApprovalRequest
from bot.lifecycle.models import (
    APPLIED,
    APPLYING,
    APPROVAL_REQUESTED,
    FAILED,
    NEEDS_APPROVAL,
    PROPOSED,
    Proposal,
    Who,
    proposal_of,
)
from bot.lifecycle.service import ChangeService, clip_description
from bot.persistence.store import Change
from bot.slack import blocks
from bot.slack.messenger import CannotPost, SlackFailure
from commands import describe
from commands.engine import apply as engine_apply
from commands.errors import CommandError, EngineRefusal
from commands.instructions import SemanticPatch
from commands.intents import ReservedCommand
from commands.permissions import APPLY_APPROVAL_REQUEST, CREATE_APPROVAL_REQUEST, REVIEW_APPROVAL_REQUEST
from commands.summary import diff_facts

log = logging.getLogger(__name__)
_SLACK_USER = re.compile(r"^[UW][A-Z0-9_]+$")  # a Slack user id, as /flag config reviewers stores it

# The card's states, buttons and modal live in bot.approvals.cards, the reviewer lookup in
# bot.approvals.reviewers; they are re-exported here because this module is the feature's entry point.
__all__ = [
    "APPLY",
    "APPROVE",
    "APPROVED",
    "BUTTON_TEXT",
    "CARD_APPLIED",
    "CARD_APPLYING",
    "CARD_FAILED",
    "CARD_STATES",
    "COMMENT_CALLBACK",
    "DECLINE",
    "DECLINED",
    "DECLINE_CALLBACK",
    "PENDING",
    "REASON_ACTION",
    "REASON_BLOCK",
    "STATE_LINE",
    "ApprovalCard",
    "ApprovalCardStore",
    "ApprovalService",
    "CardContent",
    "Reviewers",
    "decline_metadata",
    "decline_modal",
    "render_approval_card",
    "state_of",
]

_RESOURCE = re.compile(r"^proj/([^:]+):env/([^:]+):flag/(.+)$")


# --- the service ----------------------------------------------------------------------------------


# How far along a card is. LaunchDarkly's request only moves forward; a card follows it forward.
_RANK = {PENDING: 0, APPROVED: 1, CARD_APPLYING: 2, DECLINED: 3, CARD_APPLIED: 3, CARD_FAILED: 3}
_DONE = frozenset({DECLINED, CARD_APPLIED, CARD_FAILED})


class ApprovalService:
    """Approval requests from change cards, approval cards, and their buttons."""

    def __init__(
        self,
        *,
        changes: ChangeService,
        accounts: AccountService,
        cards: ApprovalCardStore,
        channel_config: ChannelConfig,
    ) -> None:
        self.changes = changes
        self.settings = changes.settings
        self.ld: LaunchDarklyClient = changes.ld
        self.messenger = changes.messenger
        self.accounts = accounts
        self.cards = cards
        self._reviewers = ReviewerFinder(self.settings, self.ld, self.messenger)
        self.channel_config = channel_config

    # --- hooks the change lifecycle calls ------------------------------------------------------

    async def token_for(self, user_id: str) -> str | None:
        """The linked token of a Slack user, or None for the service token."""
        return (await self.accounts.acting(user_id)).token

    async def may_act(self, who: Who, what: str) -> bool:
        """Whether ``who`` may act in LaunchDarkly through the bot now.

        With ``FLAGOPS_REQUIRE_LINKED_ACCOUNTS`` an unlinked user is told to link first (and False is
        returned); otherwise everyone may (an unlinked user acts through the service token).

        Args:
            who: the Slack user.
            what: what they tried, in words (``"apply this change"``).
        """
        return await self.accounts.require(who.user_id, who.reply, what) is not None

    async def request_approval(self, change: Change, who: Who) -> None:
        """Create the approval request for a change card and post its approval card in the thread.

        Called by the change lifecycle for Request approval and for ``--approval``.
        """
        acting = await self.accounts.require(who.user_id, who.reply, "request approval")
        if acting is None:
            return
        # The propose rule ran when the card was made; the policy may have changed since (an
        # environment made read-only): asking LaunchDarkly for a change Slack may not make is refused.
        refusal = self._request_refusal(change)
        if refusal is not None:
            await self.changes.tell(who, refusal)
            return
        if change.environment is not None and await self._role_refused(
            who, CREATE_APPROVAL_REQUEST, change.project, change.flag_key, change.environment
        ):
            return
        won = await self.changes.store.transition(
            change.id, [PROPOSED, NEEDS_APPROVAL], APPLYING, who.user_id, detail="Request approval"
        )
        if won is None:
            await self.changes.tell(who, "This change is already on its way.")
            return
        if won.environment is None:
            await self.changes.finish(
                won, FAILED, who, None, ":x: Approval requests exist only for a flag in an environment."
            )
            return
        proposal = proposal_of(won)
        try:
            channel = await self.channel_config.get(won.channel_id)
            # The channel's own reviewers (`/flag config reviewers`) are Slack users: mapped by email
            # like the command's; the environment variables' (emails, team keys) come from `find`.
            own = [f"<@{u}>" for u in channel.reviewers_for(won.environment) if _SLACK_USER.match(u)]
            reviewers = await self.reviewers(won.environment, [*own, *command_reviewers(won.command_text)])
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
                execution_date=proposal.execute_at_ms,  # a scheduled change applies at its time
                token=acting.token,
            )
        except ld_errors.LaunchDarklyError as error:
            said = (
                ":grey_question: LaunchDarkly did not answer, so I cannot tell whether the approval request "
                "was created. Look at the flag's approval requests in LaunchDarkly before asking again."
                if isinstance(error, ld_errors.OutcomeUnknown)
                else f":x: Could not request approval: {await self._refused(error, acting)} Nothing was "
                "requested or changed."
            )
            await self.changes.finish(won, FAILED, who, error.status, said)
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
        content = CardContent(
            project=won.project,
            flag_key=won.flag_key,
            flag_name=proposal.flag_name,
            environment=won.environment,
            requester=f"<@{who.user_id}>",
            requested_as=self._as(acting),
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
        try:
            # The approval card is the thread's one message for this event: it says who asked, as
            # whom, and who was notified. The change card says where it is once it is there.
            await self._post_card(card, won.channel_id, thread)
            posted = True
        except (CannotPost, SlackFailure) as error:
            posted = False
            # The request exists in LaunchDarkly: say so, with its link, wherever the person can read.
            log.warning("approval card %s: could not post it (%s)", card.id, type(error).__name__)
            await self.changes.tell(
                who,
                f":lock: The approval request for *{won.flag_key}* in *{won.environment}* was created in "
                f"LaunchDarkly, but Slack refused its card here. <{content.request_url}|Open the request in "
                "LaunchDarkly> to review it.",
            )
            await self.changes.update_card(
                won,
                f":lock: Approval requested by <@{who.user_id}> in LaunchDarkly (Slack refused the approval "
                f"card here): <{content.request_url}|open the request in LaunchDarkly> to review it.",
            )
        if posted:
            await self.changes.update_card(
                won, f":lock: Approval requested by <@{who.user_id}>: the approval card is in the thread."
            )
        approvals_channel = channel.approvals_channel  # `/flag config approvals-channel`, else the setting
        if approvals_channel and approvals_channel != won.channel_id:
            try:
                await self._post_card(card, approvals_channel, None)
            except CannotPost as error:
                await self._reply(
                    card, f":warning: The approvals channel did not take the card: {error_text(error)}"
                )

    # --- reviewers -----------------------------------------------------------------------------

    async def reviewers(self, environment: str, named: Sequence[str]) -> Reviewers:
        """Reviewers to notify for ``environment`` and the command's ``named`` ones (see
        :meth:`bot.approvals.reviewers.ReviewerFinder.find`)."""
        return await self._reviewers.find(environment, named)

    async def notify_for(self, change: Change) -> tuple[list[str], list[str], list[str]]:
        """Who approval requests for ``change`` notify, as Request approval does (the channel's
        reviewers, the command's, the environment's): member ids, team keys, and their names."""
        assert change.environment is not None
        channel = await self.channel_config.get(change.channel_id)
        own = [f"<@{u}>" for u in channel.reviewers_for(change.environment) if _SLACK_USER.match(u)]
        found = await self.reviewers(change.environment, [*own, *command_reviewers(change.command_text)])
        return found.member_ids, found.team_keys, found.shown

    # --- clicks --------------------------------------------------------------------------------

    async def click(self, action_id: str, card_id: str, who: Who, trigger_id: str | None) -> None:
        """Handle an approval card button (after the ack)."""
        if action_id in (DECLINE, COMMENT):
            # The modal first: the trigger expires in about 3 seconds.
            await self._open_review_modal(action_id, card_id, who, trigger_id)
            return
        card = await self.cards.get(card_id)
        if card is None:
            await self.changes.tell(who, ":grey_question: I don't know this approval request any more.")
            return
        if action_id == APPROVE:
            await self._approve(card, who)
        elif action_id == APPROVE_APPLY:
            if await self._approve(card, who, then_apply=True):
                current = await self.cards.get(card.id) or card
                if not await self._apply(current, who, approved=True):
                    # Approved, and the apply said nothing in the thread (refused before LaunchDarkly
                    # applied anything, or not applied): the thread's one message says who approved.
                    await self._approved(current, who, await self.accounts.acting(who.user_id), ready=True)
        elif action_id == APPLY:
            await self._apply(card, who)
        else:
            await self.changes.tell(who, ":grey_question: That button is not for me.")

    async def _open_review_modal(
        self, action_id: str, card_id: str, who: Who, trigger_id: str | None
    ) -> None:
        if not trigger_id:
            await self.changes.tell(who, ":warning: Slack sent no trigger to open the form; click again.")
            return
        card = await self.cards.get(card_id)
        if card is None:
            await self.changes.tell(who, ":grey_question: I don't know this approval request any more.")
            return
        modal = decline_modal if action_id == DECLINE else comment_modal
        await self.messenger.open_view(trigger_id, modal(card.id, who.reply, card.flag_key, card.environment))

    async def _fresh(self, card: ApprovalCard, who: Who, acting: Acting) -> ApprovalCard | None:
        """Re-read the request and bring the card's state in line with it (None: could not read)."""
        try:
            request = await self.ld.get_approval_request(
                card.project, card.flag_key, card.environment, card.request_id, token=acting.token
            )
        except ld_errors.NotFound:
            await self._request_deleted(card, who)
            return None
        except ld_errors.LaunchDarklyError as error:
            await self.changes.tell(
                who, f":warning: Could not read the request: {await self._refused(error, acting)}"
            )
            return None
        return await self._sync(card, request)

    async def _sync(self, card: ApprovalCard, request: ApprovalRequest) -> ApprovalCard:
        target = state_of(request)
        current = await self.cards.get(card.id) or card
        if _RANK[target] < _RANK[current.state] or (current.state in _DONE and target != current.state):
            # A read older than what the card already knows (taken before another click applied,
            # say) never moves it back, nor is it remembered: an applied card offering Apply again
            # would send the apply twice.
            return current
        remembered = await self.cards.remember(card.id, request) or current
        if target == DECLINED:
            # Wherever the decline happened (Slack, LaunchDarkly's UI), the change card it came
            # from will never apply: close it (idempotent: only a change still waiting moves).
            await self._change_declined(remembered, request)
        if remembered.state in (target, CARD_APPLYING):
            return remembered
        # Only forward, whatever moved since ``current`` was read (another click may have applied
        # the card meanwhile): the compare-and-set accepts only the states before ``target``.
        earlier = [state for state in (PENDING, APPROVED) if _RANK[state] < _RANK[target]]
        moved = await self.cards.transition(card.id, earlier, target)
        if moved is not None and target == CARD_APPLIED:
            await self._change_applied(moved, "flagops", "applied in LaunchDarkly")
        return moved or await self.cards.get(card.id) or remembered

    async def _change_declined(self, card: ApprovalCard, request: ApprovalRequest) -> None:
        """Close the change card of a declined request: FAILED, saying who declined and why."""
        if card.change_id is None:
            return
        change = await self.changes.store.get_change(card.change_id)
        if change is None or change.state != APPROVAL_REQUESTED:
            return
        review = next((r for r in reversed(request.all_reviews) if r.kind == "decline"), None)
        member = review.member_id if review else None
        by = await self._member_name(member) if member else "a reviewer"
        actor = (await self.accounts.store.slack_user_for_member(member) if member else None) or "flagops"
        reason = (review.comment or "").strip() if review else ""
        detail = f"declined by {by}" + (f": {reason}" if reason else "")
        await self._close_change(
            card.change_id,
            actor,
            detail,
            f":x: Not applied: the approval request was declined by {by}"
            + (f": “{blocks.escape(reason)}”" if reason else "."),
        )

    async def _request_deleted(self, card: ApprovalCard, who: Who) -> None:
        """The request is gone from LaunchDarkly: the card and its change card say so, for good."""
        outcome = ":wastebasket: The approval request was deleted in LaunchDarkly; nothing was applied."
        if card.state not in (CARD_APPLIED, CARD_FAILED):
            moved = await self.cards.transition(card.id, [card.state], CARD_FAILED, outcome=outcome)
            if moved is not None:
                await self.refresh(moved)
        if card.change_id is not None:
            await self._close_change(
                card.change_id,
                who.user_id,
                "approval request deleted in LaunchDarkly",
                ":x: Not applied: the approval request was deleted in LaunchDarkly.",
            )
        await self.changes.tell(who, outcome)

    async def _close_change(self, change_id: str, actor: str, detail: str, status: str) -> None:
        """Move a change waiting for approval to FAILED (a final state) and redraw its card."""
        moved = await self.changes.store.transition(
            change_id, [APPROVAL_REQUESTED], FAILED, actor, detail=detail
        )
        if moved is not None:
            await self.changes.update_card(moved, status)

    async def resume(self, pending: PendingConnect) -> None:
        """Carry out the approval card click that waited for ``pending``'s connection."""
        resume = pending.resume or {}
        card_id, action = resume.get("approval_card"), resume.get("action")
        if not isinstance(card_id, str) or action not in (APPROVE, APPROVE_APPLY, APPLY):
            return
        who = Who(pending.slack_user_id, pending.slack_user_id, pending.reply, None, pending.team_id)
        await self.click(str(action), card_id, who, None)

    async def _role_refused(self, who: Who, action: str, project: str, flag: str, environment: str) -> bool:
        """Whether ``who``'s LaunchDarkly roles refuse ``action`` through the service token (they
        are told, with Connect where OAuth is set up); a connected reviewer is LaunchDarkly's to check."""
        roles = self.changes.roles
        if roles is None:
            return False
        refusal = await roles.check_action(who, action, project, flag, environment)
        if refusal is None:
            return False
        await roles.answer(who, refusal)
        return True

    async def _card_role_refused(self, card: ApprovalCard, who: Who, action: str) -> bool:
        return await self._role_refused(who, action, card.project, card.flag_key, card.environment)

    async def _reviewer(self, card: ApprovalCard, who: Who, what: str, action: str) -> Acting | None:
        """How ``who`` acts to ``what`` on this card, or None (after telling them). Where people
        connect with OAuth, a reviewer must be connected: through the service token LaunchDarkly
        would record the bot (and refuse a review of "its own" request). The Connect button comes
        in the same answer, and the click is carried out once they are connected."""
        acting = await self.accounts.acting(who.user_id)
        if not acting.linked and self.accounts.oauth is not None:
            await self.accounts.connect_prompt(
                who.user_id,
                who.team_id,
                who.reply,
                f":closed_lock_with_key: To {what} as yourself, connect your LaunchDarkly account: "
                f"I'll {what} as soon as you are connected. Nothing was changed yet.",
                resume={"approval_card": card.id, "action": action},
            )
            return None
        return await self.accounts.require(who.user_id, who.reply, what, who.team_id)

    async def _approve(self, card: ApprovalCard, who: Who, *, then_apply: bool = False) -> bool:
        """Approve (True when the request is approved afterwards, so Apply may follow)."""
        action = APPROVE_APPLY if then_apply else APPROVE
        acting = await self._reviewer(card, who, "approve and apply" if then_apply else "approve", action)
        if acting is None or await self._card_role_refused(card, who, REVIEW_APPROVAL_REQUEST):
            return False
        fresh = await self._fresh(card, who, acting)
        if fresh is None:
            return False
        if fresh.state != PENDING:
            if then_apply and fresh.state == APPROVED:
                return True
            await self.changes.tell(who, f"This request is already {fresh.state}.")
            await self.refresh(fresh)
            return False
        request = await self._review(
            card, who, acting, "approve", self._comment(None, who, acting, "approved")
        )
        if request is None:
            return False
        done = await self._sync(fresh, request)
        if then_apply and done.state == APPROVED:
            await self.refresh(done)  # the apply follows: its one reply says approved and applied
            return True
        await self._approved(done, who, acting, ready=done.state == APPROVED)
        return done.state == APPROVED

    async def _approved(self, card: ApprovalCard, who: Who, acting: Acting, *, ready: bool) -> None:
        """The thread's one message for an approval, and the change card it came from says so."""
        fresh = await self.cards.get(card.id) or card
        then = " It can be applied now: *Apply* on the card." if ready and fresh.state == APPROVED else ""
        await self._reply(
            fresh, f":white_check_mark: <@{who.user_id}> approved{self._as(acting)}.{then}", who=who
        )
        await self.refresh(fresh)
        if fresh.state == APPROVED and fresh.change_id is not None:
            change = await self.changes.store.get_change(fresh.change_id)
            if change is not None and change.state == APPROVAL_REQUESTED:
                await self.changes.update_card(
                    change,
                    f":white_check_mark: Approved by <@{who.user_id}>: *Apply* on the approval card in the "
                    "thread applies it.",
                )

    async def _review(
        self,
        card: ApprovalCard,
        who: Who,
        acting: Acting,
        kind: Literal["approve", "decline", "comment"],
        comment: str,
    ) -> ApprovalRequest | None:
        """Post a review as ``acting``; None after telling ``who`` LaunchDarkly's refusal."""
        try:
            return await self.ld.review_approval_request(
                card.project,
                card.flag_key,
                card.environment,
                card.request_id,
                kind,
                comment,
                token=acting.token,
            )
        except ld_errors.OutcomeUnknown as error:
            # The review may have been recorded: LaunchDarkly's request says, never a resend.
            return await self._review_read_back(card, who, acting, kind, comment, error)
        except ld_errors.LaunchDarklyError as error:
            await self.changes.tell(who, f":no_entry: {await self._refused(error, acting)}")
            return None

    async def _review_read_back(
        self,
        card: ApprovalCard,
        who: Who,
        acting: Acting,
        kind: Literal["approve", "decline", "comment"],
        comment: str,
        error: ld_errors.LaunchDarklyError,
    ) -> ApprovalRequest | None:
        """After a review LaunchDarkly did not answer: the request read back, when it holds one
        more review of this kind with this comment than the card last knew (the review was
        recorded), else None after telling ``who`` what is known."""
        log.info("approval card %s: review answer lost: %s", card.id, technical(error))

        def ours(request: ApprovalRequest | None) -> int:
            reviews = request.all_reviews if request is not None else []
            return sum(r.kind == kind and (r.comment or "") == comment for r in reviews)

        try:
            request = await self.ld.get_approval_request(
                card.project, card.flag_key, card.environment, card.request_id, token=acting.token
            )
        except ld_errors.LaunchDarklyError as reread:
            log.info("approval card %s: could not re-read the request: %s", card.id, technical(reread))
            link = card.content.request_url
            where = (
                f"<{link}|Open the request in LaunchDarkly>" if link else "Open the request in LaunchDarkly"
            )
            await self.changes.tell(
                who,
                ":grey_question: LaunchDarkly did not answer, and I could not read the request back, so I "
                f"cannot tell whether your review was recorded. {where} to check.",
            )
            return None
        if ours(request) > ours(card.request):
            return request
        await self.refresh(await self._sync(card, request))
        await self.changes.tell(
            who,
            ":warning: LaunchDarkly did not answer, and the request does not show your review: it was "
            "not recorded. Try again.",
        )
        return None

    async def comment(self, card_id: str, who: Who, text: str) -> None:
        """Comment on a request (a review of kind ``comment``) with the text typed in the modal."""
        card = await self.cards.get(card_id)
        if card is None:
            await self.changes.tell(who, ":grey_question: I don't know this approval request any more.")
            return
        if not text.strip():
            await self.changes.tell(who, ":warning: The comment was empty: nothing was sent.")
            return
        acting = await self._reviewer(card, who, "comment", COMMENT)
        if acting is None or await self._card_role_refused(card, who, REVIEW_APPROVAL_REQUEST):
            return
        request = await self._review(card, who, acting, "comment", text.strip())
        if request is None:
            return
        done = await self._sync(card, request)
        said = blocks.escape(blocks.clip(text.strip(), 500))
        await self._reply(
            done, f":speech_balloon: <@{who.user_id}> commented{self._as(acting)}: “{said}”", who=who
        )
        await self.refresh(done)

    async def decline(self, card_id: str, who: Who, reason: str) -> None:
        """Decline a request with the reason typed in the modal (after the view submission's ack)."""
        card = await self.cards.get(card_id)
        if card is None:
            await self.changes.tell(who, ":grey_question: I don't know this approval request any more.")
            return
        acting = await self.accounts.require(who.user_id, who.reply, "decline")
        if acting is None or await self._card_role_refused(card, who, REVIEW_APPROVAL_REQUEST):
            return
        fresh = await self._fresh(card, who, acting)
        if fresh is None:
            return
        if fresh.state not in (PENDING, APPROVED):
            await self.changes.tell(who, f"This request is already {fresh.state}.")
            await self.refresh(fresh)
            return
        request = await self._review(
            card, who, acting, "decline", reason.strip() or self._comment(None, who, acting, "declined")
        )
        if request is None:
            return
        done = await self._sync(fresh, request)
        why = f": “{blocks.escape(reason.strip())}”" if reason.strip() else "."
        await self._reply(done, f":x: <@{who.user_id}> declined{self._as(acting)}{why}", who=who)
        await self.refresh(done)

    async def _apply(self, card: ApprovalCard, who: Who, *, approved: bool = False) -> bool:
        """Apply an approved request; True when this click's outcome was said in the thread
        (applied, or failed in LaunchDarkly), so nothing more may be posted for it. ``approved``:
        the same click approved it (Approve and apply), so the one thread reply says both."""
        acting = await self._reviewer(card, who, "apply", APPLY)
        if acting is None or await self._card_role_refused(card, who, APPLY_APPROVAL_REQUEST):
            return False
        fresh = await self._fresh(card, who, acting)
        if fresh is None:
            return False
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
            return False
        # The policy decides who may apply, as on a change card (it may have changed since the
        # request: an environment made read-only refuses); nothing is claimed before it agrees.
        refusal = await self._apply_refusal(fresh, who)
        if refusal is not None:
            await self.changes.tell(who, refusal)
            return False
        won = await self.cards.transition(fresh.id, [APPROVED], CARD_APPLYING)
        if won is None:
            await self.changes.tell(who, "This request is already being applied.")
            return False
        try:
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
                return await self._apply_failed(won, who, acting, error, approved=approved)
            await self._applied(won, who, acting, request, approved=approved)
            return True
        except Exception:
            # Not a catch-all: whatever broke after the claim is logged and re-raised (the app's
            # error handler answers the user); the card must not stay "Applying…" for ever.
            log.exception("approval card %s: Apply failed unexpectedly; settling the card", won.id)
            await self._settle(won, acting)
            raise

    async def _settle(self, card: ApprovalCard, acting: Acting) -> None:
        """Move a card stuck in ``applying`` to its real state: LaunchDarkly's, else approved."""
        try:
            request: ApprovalRequest | None = await self.ld.get_approval_request(
                card.project, card.flag_key, card.environment, card.request_id, token=acting.token
            )
        except ld_errors.LaunchDarklyError:
            request = None
        target = state_of(request) if request is not None else APPROVED
        settled = await self.cards.transition(card.id, [CARD_APPLYING], target)
        if request is not None:
            settled = await self.cards.remember(card.id, request) or settled
        if settled is not None and target == CARD_APPLIED:
            await self._change_applied(settled, "flagops", "applied in LaunchDarkly")
        await self.refresh(settled or card)

    def _request_refusal(self, change: Change) -> str | None:
        """Whether the policy lets a change card ask for approval now: None, or why not.

        Only the environment's ``read_only`` is checked here: ``propose`` ran when the card was
        made, and ``apply`` is checked when someone presses Apply on the approval card.
        """
        guard = self.changes.guard
        if not isinstance(guard, PolicyGuard) or change.environment is None:
            return None
        try:
            policy = guard.policy
        except ConfigError as exc:
            return (
                f":no_entry: The policy file is invalid, so every change is refused until an admin fixes "
                f"it ({error_text(exc)}). Nothing was changed."
            )
        read_only = policy.scope(change.project, change.environment).read_only
        if read_only is None:
            return None
        return (
            f":lock: *{change.environment}* in project *{change.project}* is read-only from Slack now "
            f"(policy rule `{read_only}`). Nothing was changed."
        )

    async def _apply_refusal(self, card: ApprovalCard, who: Who) -> str | None:
        """Whether the policy lets ``who`` press Apply on this approval card now: None, or why not.

        Without a policy file LaunchDarkly alone decides (it refuses members who may not apply).
        With one, the change card's rules apply (:meth:`bot.guardrails.policy.PolicyGuard.check_apply`); a
        request made outside Slack is checked as a change its requester proposed.
        """
        guard = self.changes.guard
        if guard is None:
            return None
        if isinstance(guard, PolicyGuard):
            try:
                if guard.policy.open:
                    return None
            except ConfigError:
                pass  # a broken file: check_apply refuses with what is wrong (fail closed)
        change = await self.changes.store.get_change(card.change_id) if card.change_id else None
        if change is None:
            change = _change_for(card)
            if change is None:
                return (
                    ":no_entry: The policy cannot be checked for this request (its instructions are not "
                    "ones flagops knows), so it is not applied from Slack. Apply it in LaunchDarkly."
                )
        refusal = await guard.check_apply(who, change)
        if refusal is not None and card.requester_id is None:
            # Requested in LaunchDarkly by someone with no linked Slack user: say so, not "<@>".
            refusal = refusal.replace("<@>", "its requester (in LaunchDarkly)")
        return refusal

    async def _applied(
        self,
        card: ApprovalCard,
        who: Who,
        acting: Acting,
        request: ApprovalRequest,
        *,
        approved: bool = False,
    ) -> None:
        await self.cards.remember(card.id, request)
        try:
            flag = await self.changes.flags.flag(card.project, card.flag_key, fresh=True)
            version = f" · flag version {flag.get('_version')}"
        except (CommandError, ld_errors.LaunchDarklyError):
            version = ""
        status = "scheduled" if request.status == "scheduled" else "applied"
        said = f"Approved and {status}" if approved else status.capitalize()
        outcome = f":rocket: {said} by <@{who.user_id}>{self._as(acting)}{version}."
        final = await self.cards.transition(card.id, [CARD_APPLYING], CARD_APPLIED, outcome=outcome) or card
        await self._change_applied(final, who.user_id, f"approval request {card.request_id} {status}")
        await self._reply(final, f":white_check_mark: {outcome.removeprefix(':rocket: ')}", who=who)
        await self.refresh(final)

    async def _apply_failed(
        self,
        card: ApprovalCard,
        who: Who,
        acting: Acting,
        error: ld_errors.LaunchDarklyError,
        *,
        approved: bool = False,
    ) -> bool:
        """Say what a failed apply left (True when it was said in the thread). ``approved``: the
        same click approved the request, and the one thread message says that too."""
        # Whatever the error, LaunchDarkly's request tells what happened: read it, never resend.
        try:
            request = await self.ld.get_approval_request(
                card.project, card.flag_key, card.environment, card.request_id, token=acting.token
            )
        except ld_errors.LaunchDarklyError as reread:
            log.info("approval card %s: could not re-read the request: %s", card.id, technical(reread))
            request = None
        if request is not None and state_of(request) == CARD_APPLIED:
            await self._applied(card, who, acting, request, approved=approved)
            return True
        if request is not None and state_of(request) == CARD_FAILED:
            by = (
                f"Approved by <@{who.user_id}>{self._as(acting)}, but the apply failed"
                if approved
                else "Apply failed"
            )
            outcome = (
                f":warning: {by}: {await self._refused(error, acting)} LaunchDarkly marked the request "
                "failed: it cannot be applied any more; propose the change again to ask anew."
            )
            final = (
                await self.cards.transition(card.id, [CARD_APPLYING], CARD_FAILED, outcome=outcome) or card
            )
            await self.cards.remember(card.id, request)
            await self._reply(final, outcome, who=who)
            await self.refresh(final)
            return True
        back = await self.cards.transition(card.id, [CARD_APPLYING], APPROVED) or card
        if request is not None:
            back = await self.cards.remember(card.id, request) or back
        if request is None and isinstance(error, ld_errors.OutcomeUnknown):
            # Neither the apply nor the read-back answered: whether it was applied is not known,
            # and "not applied" would be untrue. Apply on the card reads the request first.
            link = back.content.request_url
            where = (
                f"<{link}|Open the request in LaunchDarkly>" if link else "Open the request in LaunchDarkly"
            )
            await self.changes.tell(
                who,
                ":grey_question: LaunchDarkly did not answer the apply, and I could not read the request "
                f"back, so I cannot tell whether it was applied. {where} to check; *Apply* on the card "
                "reads it again first and never applies it twice.",
            )
        elif isinstance(error, ld_errors.OutcomeUnknown):
            await self.changes.tell(
                who,
                ":no_entry: Not applied: LaunchDarkly did not answer the apply, and the request, read back, "
                "is still approved and not applied. Press *Apply* to try again.",
            )
        else:
            await self.changes.tell(
                who,
                f":no_entry: Not applied: {await self._refused(error, acting)} "
                "The request is still approved.",
            )
        await self.refresh(back)
        return False

    async def _change_applied(self, card: ApprovalCard, actor: str, detail: str) -> None:
        """Close the change card this request came from, if any."""
        if card.change_id is None:
            return
        moved = await self.changes.store.transition(
            card.change_id, [APPROVAL_REQUESTED], APPLIED, actor, ld_status=200, detail=detail
        )
        if moved is not None:
            by = f"by <@{actor}> " if actor != "flagops" else "in LaunchDarkly "
            await self.changes.update_card(
                moved, f":white_check_mark: Applied {by}through the approval request."
            )

    # --- /flag approvals -----------------------------------------------------------------------

    async def list_pending(self, who: Who, command: ReservedCommand) -> None:
        """``/flag approvals [flag] [env]``: the open requests, to the asker alone: those waiting
        for review (with their buttons), apart from those already decided (approved and not yet
        applied, with Apply; declined, with who declined). LaunchDarkly's ``pending`` status
        covers all three until a request is applied or deleted."""
        project = command.project or await self.changes.project_for(who)  # the channel's project
        acting = await self.accounts.acting(who.user_id)
        resource = (
            flag_resource_id(project, command.environment, command.flag)
            if command.flag and command.environment
            else None
        )
        # Every page (up to LIST_PAGES): a flag named without an environment is filtered here,
        # after the read, so one page of the whole project could hide its requests.
        found: list[ApprovalRequest] = []
        unread: int | None = 0  # requests not read (None: some, how many not known)
        try:
            offset = 0
            for _ in range(LIST_PAGES):
                page = await self.ld.list_all_approval_requests(
                    filter=approval_filter(status=["pending"], project_key=project, resource_id=resource),
                    limit=LIST_PAGE,
                    offset=offset,
                    token=acting.token,
                )
                found.extend(page.items)
                offset += len(page.items)
                more = page.has_next if page.total_count is None else offset < page.total_count
                if not more or not page.items:
                    unread = 0
                    break
                unread = None if page.total_count is None else page.total_count - offset
        except ld_errors.LaunchDarklyError as error:
            await self.changes.tell(who, f":warning: {await self._refused(error, acting)}")
            return
        requests = [
            r
            for r in found
            if (where := _resource(r)) is not None
            and (not command.flag or where[2] == command.flag)
            and (not command.environment or where[1] == command.environment)
        ]
        scope = f" for *{blocks.escape(command.flag)}*" if command.flag else ""
        scope += f" in *{blocks.escape(command.environment)}*" if command.environment else ""
        # Requests not read count as "more" only when LaunchDarkly filtered them (the unread ones
        # of other flags or environments are not this list's).
        if unread and resource is None and (command.flag or command.environment):
            unread = None
        narrow = "name a flag and its environment to narrow the list"
        beyond = (
            f" (+{unread} more in LaunchDarkly, not read: {narrow})"
            if unread
            else f" (LaunchDarkly holds more than the {LIST_PAGE * LIST_PAGES} I read: {narrow})"
            if unread is None
            else ""
        )
        if not requests:
            await self.changes.tell(
                who, f"No pending approval requests{scope} in project `{blocks.escape(project)}`{beyond}."
            )
            return
        waiting = [r for r in requests if state_of(r) == PENDING]
        decided = [r for r in requests if state_of(r) != PENDING]
        body: blocks.Blocks = [
            _listing_section(
                f":lock: *Approval requests{scope}* in project `{blocks.escape(project)}`: "
                f"{len(waiting)} waiting for review, {len(decided)} decided and not applied{beyond}."
            )
        ]
        for title, group in (("*Waiting for review*", waiting), ("*Decided, not applied*", decided)):
            if not group:
                continue
            body.append(_listing_section(title))
            for request in group[:LISTED_REQUESTS]:
                # Cards only for the requests shown (each may read the flag and its members).
                card = await self.cards.by_request(request.id) or await self._card_for(request, who, None)
                body.extend(await self._listing_entry(await self._sync(card, request)))
            if len(group) > LISTED_REQUESTS:
                left = len(group) - LISTED_REQUESTS
                body.append(_listing_section(f"_+{left} more: name a flag to narrow the list_"))
        headline = f"Approval requests{scope}: {len(waiting)} waiting for review, {len(decided)} decided"
        await self.messenger.ephemeral(who.reply, blocks.clip(headline, 3000), body[:50])

    async def _listing_entry(self, card: ApprovalCard) -> blocks.Blocks:
        """One request in ``/flag approvals``: who asks what where, its state, and its buttons."""
        content = card.content
        what = "; ".join(content.sentences) or content.description or "change the flag"
        what = what[0].lower() + what[1:] if content.sentences else what
        line = (
            f"• *{blocks.escape(card.flag_key)}* in *{blocks.escape(card.environment)}*: "
            f"{content.requester} asks to {blocks.escape(blocks.clip(blocks.shorten_lists(what), 300))}"
        )
        request = card.request
        if card.state == DECLINED and request is not None:
            review = next((r for r in reversed(request.all_reviews) if r.kind == "decline"), None)
            by = await self._member_name(review.member_id) if review and review.member_id else "a reviewer"
            line += f"\n   :x: Declined by {by}" + (
                f": “{blocks.escape(blocks.clip(review.comment, 200))}”" if review and review.comment else ""
            )
        elif card.state != PENDING:
            line += f"\n   {STATE_LINE.get(card.state, card.state)}"
        if content.request_url:
            line += f" · <{content.request_url}|in LaunchDarkly>"
        entry: blocks.Blocks = [_listing_section(line)]
        pending = (APPROVE_APPLY, APPROVE, DECLINE, COMMENT)
        buttons = {PENDING: pending, APPROVED: (APPLY,)}.get(card.state, ())
        if buttons:
            entry.append(
                {
                    "type": "actions",
                    "block_id": f"approval:{card.id}",
                    "elements": [approval_button(b, card.id) for b in buttons],
                }
            )
        return entry

    async def _card_for(self, request: ApprovalRequest, who: Who, thread_ts: str | None) -> ApprovalCard:
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
        return blocks.escape(member.email or member.display_name)

    async def _post_card(self, card: ApprovalCard, channel: str, thread_ts: str | None) -> None:
        text, body = render_approval_card(card, await self._names(card))
        ts = await self.messenger.post(channel, text, body, thread_ts=thread_ts)
        await self.cards.add_location(card.id, channel, ts)

    async def refresh(self, card: ApprovalCard) -> None:
        """Redraw the card wherever it is posted."""
        current = await self.cards.get(card.id) or card
        text, body = render_approval_card(current, await self._names(current))
        for channel, ts in current.locations:
            # Best effort per copy: a copy Slack will not update (the bot left that channel, the
            # message was deleted) must not stop the others, nor the click that redraws them.
            try:
                await self.messenger.update(channel, ts, text, body)
            except SlackFailure as error:
                log.warning(
                    "approval card %s: could not update the copy %s/%s (%s)",
                    current.id,
                    channel,
                    ts,
                    error.reason,
                )

    async def _reply(
        self, card: ApprovalCard, text: str, lines: Sequence[str] = (), *, who: Who | None = None
    ) -> None:
        """Say what happened in the card's thread. LaunchDarkly has already acted when this is
        called: a thread Slack refuses (the bot left the channel) must not turn that into an error,
        so the person who acted (``who``) is told instead."""
        message, body = blocks.render_notice(text, lines)
        if card.thread_ts is None and not card.locations:
            # A request from LaunchDarkly acted on from `/flag approvals` (an answer to one person):
            # it has no card nor thread in the channel, so the person who acted is told alone.
            if who is not None:
                await self.changes.tell(who, text, lines)
            return
        try:
            await self.messenger.post(card.channel_id, message, body, thread_ts=card.thread_ts)
            return
        except (CannotPost, SlackFailure) as error:
            log.warning("approval card %s: could not reply in its thread (%s)", card.id, error.reason)
        if who is not None:
            note = "I could not post this in the approval card's thread (Slack refused it)."
            await self.changes.tell(who, text, [*lines, note])

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

    async def _refused(self, error: ld_errors.LaunchDarklyError, acting: Acting) -> str:
        """:meth:`refusal`, and a linked token LaunchDarkly answered 401 to is forgotten (the
        person is told how to connect again)."""
        if isinstance(error, ld_errors.Unauthorized):
            await self.accounts.revoked(acting)
        return self.refusal(error, acting)

    @staticmethod
    def refusal(error: ld_errors.LaunchDarklyError, acting: Acting) -> str:
        """LaunchDarkly's refusal as one plain sentence in our words, with its own words short and
        inert (:func:`bot.errors.quote_launchdarkly`), then the next step (the link hint where
        linking would help). Its code, route, request id and whole message go to the log."""
        log.info("LaunchDarkly refused an approval action: %s", technical(error))
        if isinstance(error, ld_errors.Unauthorized) and acting.linked:
            return (
                "LaunchDarkly no longer accepts your linked account (401: revoked or expired), so I "
                "forgot it. Run `/flag link-account` to connect again."
            )
        if not error.status or isinstance(
            error,
            ld_errors.Unauthorized
            | ld_errors.RateLimited
            | ld_errors.ServerError
            | ld_errors.ConflictError
            | ld_errors.OptimisticLockError,
        ):
            text = explain_error(error)
            if isinstance(error, ld_errors.RateLimited | ld_errors.ServerError):
                text += " Nothing changed; try again in a minute."
            return text
        quoted = f" LaunchDarkly said {quote_launchdarkly(error.message)}." if error.message.strip() else ""
        own_review = "own" in error.message.lower() and "review" in error.message.lower()
        if own_review:
            step = f" {LINK_HINT}" if not acting.linked else " Ask another reviewer."
            return f"LaunchDarkly does not let the requester review their own request here.{quoted}{step}"
        if isinstance(error, ld_errors.Forbidden):
            whom = "your LaunchDarkly account" if acting.linked else "the flagops service token"
            step = (
                " Ask a LaunchDarkly admin for a role that allows it." if acting.linked else f" {LINK_HINT}"
            )
            return f"LaunchDarkly does not allow {whom} to do this (403).{quoted}{step}"
        if isinstance(error, ld_errors.NotFound):
            return f"LaunchDarkly could not find it (404).{quoted} Check the request in LaunchDarkly."
        return f"LaunchDarkly refused it ({error.status}).{quoted}"


def _change_for(card: ApprovalCard) -> Change | None:
    """The change a request made outside Slack amounts to, for the policy's Apply check.

    Returns:
        The change (its requester the card's Slack requester, "" when none is known), or None
        when the request's instructions are not ones flagops models (the policy cannot judge them).
    """
    content = card.content
    try:
        patch = SemanticPatch.model_validate(
            {"environmentKey": card.environment, "instructions": json.loads(content.instructions_json)}
        )
    except (ValidationError, ValueError):
        return None
    proposal = Proposal(
        command_text=content.description or "",
        canonical="",
        patch=patch.body(),
        sentences=content.sentences,
        changes=content.changes,
        flag_name=content.flag_name,
    )
    now = utcnow()
    return Change(
        id=f"approval-card-{card.id}",
        state=APPROVAL_REQUESTED,
        previous_state=None,
        requester_id=card.requester_id or "",
        requester_name=card.requester_id or "",
        channel_id=card.channel_id,
        card_ts=None,
        thread_ts=card.thread_ts,
        project=card.project,
        flag_key=card.flag_key,
        environment=card.environment,
        command_text=content.description or "",
        request_json=proposal.model_dump_json(),
        preview_version=0,
        env_version=None,
        flag_before_json=None,
        comment="",
        ignore_conflicts=False,
        approval_request_id=card.request_id,
        outcome_json=None,
        ld_status=None,
        created_at=card.created_at,
        updated_at=now,
        expires_at=now + timedelta(days=1),
        version=0,
    )


#: Requests of each group ``/flag approvals`` shows (two blocks each: within a message's 50).
LISTED_REQUESTS = 10
#: ``/flag approvals`` reads pending requests in pages of LaunchDarkly's largest size, at most this
#: many pages (1,000 requests) for one answer; beyond, it says LaunchDarkly holds more.
LIST_PAGE = 200
LIST_PAGES = 5


def _listing_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": blocks.clip(text, blocks.SECTION_LIMIT)}}


def _resource(request: ApprovalRequest) -> tuple[str, str, str] | None:
    """(project, environment, flag) of a request from the generic list."""
    match = _RESOURCE.match(request.resource_id or "")
    return (match[1], match[2], match[3]) if match else None
