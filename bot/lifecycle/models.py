"""What a change is made of, shared by every part of the lifecycle and the features around it:
the stored proposal, a draft ready to preview, who is acting, the states (``State``, re-exported
by name), and the interfaces the lifecycle asks of the approvals and guardrails features."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from bot.persistence.store import Change, State
from bot.scheduling.schedule_time import When
from bot.slack.messenger import ReplyTo
from commands.instructions import SemanticPatch
from commands.intents import ReservedCommand
from commands.summary import FactChange

# The change states, by name (the one definition is ``State`` in the store, which enforces them).
PROPOSED = State.PROPOSED
APPLYING = State.APPLYING
APPLIED = State.APPLIED
FAILED = State.FAILED
NEEDS_APPROVAL = State.NEEDS_APPROVAL
APPROVAL_REQUESTED = State.APPROVAL_REQUESTED
CANCELLED = State.CANCELLED
EXPIRED = State.EXPIRED
OUTCOME_UNKNOWN = State.OUTCOME_UNKNOWN
SUPERSEDED = State.SUPERSEDED

DANGEROUS_KINDS = frozenset({"deleteFlag", "archiveFlag"})
FLAG_CACHE_SECONDS = 5.0


class Proposal(BaseModel):
    """What a card proposed, stored with the change (``request_json``) so any instance can act."""

    command_text: str
    canonical: str
    patch: dict[str, Any]
    sentences: list[str]
    changes: list[tuple[str, str | None, str | None]]
    flag_name: str
    approval_required: bool = False
    dangerous: bool = False
    flag_url: str | None = None
    notes: list[str] = []  # card lines about the policy and undo
    # A scheduled change (``at``/``in``): Apply creates a LaunchDarkly scheduled change.
    execute_at_ms: int | None = None
    when_text: str | None = None

    def semantic_patch(self) -> SemanticPatch:
        return SemanticPatch.model_validate(self.patch)

    def fact_changes(self) -> list[FactChange]:
        return [FactChange(*c) for c in self.changes]


@dataclass(frozen=True)
class Draft:
    """A change ready to preview: the resolved patch and how to show it."""

    project: str
    flag_key: str
    environment: str | None
    patch: SemanticPatch
    canonical: str
    comment: str | None
    approval: bool
    related: dict[str, dict[str, Any]] = field(default_factory=dict)  # prerequisite flags, by key
    when: When | None = None  # when a scheduled change should apply
    notes: tuple[str, ...] = ()  # card lines under before → after (undo)


@dataclass(frozen=True)
class Who:
    """The Slack user acting, and where to answer them alone."""

    user_id: str
    user_name: str
    reply: ReplyTo
    trigger_id: str | None = None  # opens a modal; valid ~3 s after the request (approvals, accounts)


class ApprovalFlow(Protocol):
    """The approvals feature (``bot.approvals.service``): who acts, and Request approval's whole flow."""

    async def token_for(self, user_id: str) -> str | None: ...

    async def request_approval(self, change: Change, who: Who) -> None: ...

    async def may_act(self, who: Who, what: str) -> bool:
        """False (the user told to link first) when linked accounts are required and ``who`` has none."""
        ...


class ChangeGuard(Protocol):
    """The policy (``bot.guardrails.policy``): who may propose a change and who may press Apply."""

    async def check_propose(self, who: Who, draft: Draft, flag: dict[str, Any]) -> list[str]:
        """Lines the card shows about the rules; raises ``CommandError`` naming a refusing rule."""
        ...

    async def check_apply(self, who: Who, change: Change) -> str | None:
        """None when ``who`` may press Apply now, else the refusal to show them."""
        ...


#: A feature's handler for one reserved verb (``undo``, ``remind``...): ``(who, command, text)``.
VerbHandler = Callable[["Who", ReservedCommand, str], Awaitable[None]]


class ChannelDefaults(Protocol):
    """A channel's project and environment (``bot.guardrails.channel_config``, ``/flag config``)."""

    async def project(self, channel_id: str) -> str: ...

    async def environment(self, channel_id: str) -> str | None: ...


def proposal_of(change: Change) -> Proposal:
    """What the change's card proposed (its ``request_json``)."""
    return Proposal.model_validate_json(change.request_json)
