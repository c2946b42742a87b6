"""What a change is made of, shared by every part of the lifecycle and the features around it:
the stored proposal, a draft ready to preview, who is acting, the states (``State``, re-exported
by name), and the interfaces the lifecycle asks of the approvals and guardrails features."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from bot.persistence.store import Change, State
from bot.scheduling.schedule_time import When
from bot.slack.messenger import ReplyTo
from commands.errors import CommandError
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


class RawPatch(BaseModel):
    """A ``json-patch``, ``merge-patch`` or ``project-patch`` as a card proposes it (stored)."""

    shape: Literal["json-patch", "merge-patch", "project-patch"]
    body: Any
    """The operations (JSON patch) or the object (merge patch), without a comment."""
    environments: list[str] = []
    """The environments whose targeting it changes."""
    fields: list[str] = []
    """The flag-level (or project) fields it changes."""
    kinds: list[str] = []
    """The semantic-patch kinds it amounts to (``/archived`` true is ``archiveFlag``), for the policy."""
    translated: bool = False
    """The proposal's ``patch`` holds the same change as instructions (approval requests)."""
    why_not: str | None = None
    """Why there are no such instructions, when there are none."""

    @property
    def on_project(self) -> bool:
        return self.shape == "project-patch"

    def scopes(self) -> list[str | None]:
        """What the policy checks: each environment it changes, and None for flag-level or
        project fields (the project's section)."""
        scopes: list[str | None] = list(self.environments)
        if self.fields or not scopes:
            scopes.append(None)
        return scopes


class RampStep(BaseModel):
    """One step of a ramp: the rollout it sets and when (stored with the proposal)."""

    percent: float
    at_ms: int
    """When LaunchDarkly runs it (epoch milliseconds), fixed when the card is made."""
    patch: dict[str, Any]
    """Its semantic patch (``environmentKey`` and ``instructions``)."""
    sentence: str
    """What it serves, in short (``25% Enabled (true)``); its instructions say the whole rollout."""


class RampPlan(BaseModel):
    """A ramp (``ramp new-checkout production 5% 25% 100% every 30m``): steps that LaunchDarkly
    runs as scheduled changes (or, where approval is required, approval requests with an
    ``executionDate``), created by one Apply. What exists of it is the change's ``outcome_json``
    (``bot.lifecycle.ramps``)."""

    every_seconds: int
    steps: list[RampStep]
    summary: str = ""
    """The ramp in one sentence (the card's): ``Ramp the default rule to Enabled (true): 5% → …``."""


class Proposal(BaseModel):
    """What a card proposed, stored with the change (``request_json``) so any instance can act."""

    command_text: str
    canonical: str
    patch: dict[str, Any]
    sentences: list[str]
    changes: list[tuple[str, str | None, str | None]]
    flag_name: str
    approval_required: bool = False
    # Asked for with `--approval` where the environment does not require it (the card says which).
    approval_asked: bool = False
    critical: bool = False  # the environment is critical in LaunchDarkly (production): the card says so
    dangerous: bool = False
    flag_url: str | None = None
    notes: list[str] = []  # card lines about the policy and undo
    # A scheduled change (``at``/``in``): Apply creates a LaunchDarkly scheduled change.
    execute_at_ms: int | None = None
    when_text: str | None = None
    # A ramp: the steps (the first one is ``patch``); Apply creates them all (``bot.lifecycle.ramps``).
    ramp: RampPlan | None = None

    # A JSON patch, merge patch or project patch (``json-patch``...): sent as it is; ``patch`` then
    # holds its equivalent instructions when there are any (an approval request carries those).
    raw: RawPatch | None = None

    def semantic_patch(self) -> SemanticPatch:
        """The semantic patch the card proposes (for a raw patch, its equivalent instructions).

        Raises:
            CommandError: a raw patch with no equivalent instructions.
        """
        if self.raw is not None and not self.raw.translated:
            raise CommandError(
                f"This {self.raw.shape} has no equivalent semantic-patch instructions"
                + (f": {self.raw.why_not}" if self.raw.why_not else ".")
            )
        return SemanticPatch.model_validate(self.patch)

    @property
    def read_as(self) -> bool:
        """Whether the person typed the change otherwise than its canonical command (a natural
        phrasing, a synonym): the card then says how it was read."""
        if self.raw is not None or not self.canonical:
            return False
        typed = " ".join(self.command_text.split())
        typed = typed.split(" ", 1)[1] if typed.startswith("/") and " " in typed else typed
        return typed != " ".join(self.canonical.split()) and not typed.lower().startswith("undo")

    def kinds(self) -> set[str]:
        """The instruction kinds the change amounts to (what the policy and the card judge)."""
        if self.raw is not None:
            return set(self.raw.kinds)
        return {i.kind for i in self.semantic_patch().instructions}

    def request_text(self) -> str:
        """What the card shows of the request: the instructions, or the raw patch as sent (without
        the comment); a raw patch sent for approval shows the instructions it is sent as."""
        if self.raw is None or (self.raw.translated and self.approval_required):
            return json.dumps([i.body() for i in self.semantic_patch().instructions])
        return json.dumps(self.raw.body)

    def fact_changes(self) -> list[FactChange]:
        return [FactChange(*c) for c in self.changes]


@dataclass(frozen=True)
class Draft:
    """A change ready to preview: the resolved patch and how to show it."""

    project: str
    flag_key: str
    environment: str | None
    patch: SemanticPatch | None  # None: a raw patch with no equivalent instructions
    canonical: str
    comment: str | None
    approval: bool
    related: dict[str, dict[str, Any]] = field(default_factory=dict)  # prerequisite flags, by key
    when: When | None = None  # when a scheduled change should apply
    notes: tuple[str, ...] = ()  # card lines under before → after (undo)
    raw: RawPatch | None = None  # a JSON, merge or project patch (sent as it is)
    ramp: RampPlan | None = None  # a ramp: its steps (``patch`` is the first one's)

    def scopes(self) -> list[str | None]:
        """The environments the policy checks (None: flag-level, or the project)."""
        if self.raw is not None:
            return self.raw.scopes()
        scoped = self.patch is not None and self.patch.environment_scoped
        return [self.environment if scoped else None]

    def kinds(self) -> list[str]:
        """The instruction kinds the change amounts to."""
        if self.raw is not None:
            return list(self.raw.kinds)
        return [i.kind for i in self.patch.instructions] if self.patch is not None else []


@dataclass(frozen=True)
class Who:
    """The Slack user acting, and where to answer them alone."""

    user_id: str
    user_name: str
    reply: ReplyTo
    trigger_id: str | None = None  # opens a modal; valid ~3 s after the request (approvals, accounts)
    team_id: str = ""  # the workspace (a Connect button's authorization is bound to user and team)


class ApprovalFlow(Protocol):
    """The approvals feature (``bot.approvals.service``): who acts, and Request approval's whole flow."""

    async def token_for(self, user_id: str) -> str | None: ...

    async def request_approval(self, change: Change, who: Who) -> None: ...

    async def notify_for(self, change: Change) -> tuple[list[str], list[str], list[str]]:
        """Who approval requests for ``change`` notify: member ids, team keys, their names."""
        ...

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


class RoleRefused(str):
    """A refusal by the person's LaunchDarkly roles (answered with Connect where OAuth is set up)."""


class RoleCheck(Protocol):
    """LaunchDarkly's roles (``bot.identity.roles``): whoever acts through the service token acts
    within their own member's roles. Each check returns None, or the refusal (nothing is sent)."""

    async def check_propose(self, who: Who, draft: Draft, flag: dict[str, Any]) -> RoleRefused | None: ...

    async def check_apply(self, who: Who, change: Change) -> RoleRefused | None: ...

    async def check_action(
        self, who: Who, action: str, project: str, flag: str, environment: str
    ) -> RoleRefused | None:
        """An approval or scheduled-change action on a flag in one environment."""
        ...

    async def answer(self, who: Who, refusal: str) -> None:
        """Tell ``who`` the refusal, with the Connect button where OAuth is configured."""
        ...

    async def offer_connect(self, who: Who) -> None:
        """The Connect button alone, where OAuth is configured (a refusal at propose is answered as
        an error, like every refusal of a command)."""
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
