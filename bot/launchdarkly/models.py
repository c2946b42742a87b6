"""LaunchDarkly's response shapes, as pydantic models: the boundary where JSON becomes objects.

Field names are pythonic; aliases are LaunchDarkly's own (``_id``, ``_version``, camelCase).
Every model keeps the fields it does not name (``extra="allow"``), so ``document()`` gives back
the JSON exactly as LaunchDarkly sent it: the engine (``commands.engine``) works on that document,
and nothing the API adds later is lost on the way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, JsonValue, field_validator


class LDModel(BaseModel):
    """Base of every response model: LaunchDarkly's aliases, unknown fields kept, immutable."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    def document(self) -> dict[str, Any]:
        """The JSON document as LaunchDarkly sent it (only the fields it had, by their API names)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class Link(LDModel):
    href: str
    type: str | None = None


Links = dict[str, Link]


# --- Flags ------------------------------------------------------------------------------------


class Variation(LDModel):
    id: str | None = Field(default=None, alias="_id")
    value: JsonValue
    name: str | None = None
    description: str | None = None


class Target(LDModel):
    """Individual targets: ``targets`` (user context kind) and ``contextTargets`` (other kinds)."""

    values: list[str]
    variation: int
    context_kind: str | None = Field(default=None, alias="contextKind")


class Clause(LDModel):
    id: str | None = Field(default=None, alias="_id")
    context_kind: str | None = Field(default=None, alias="contextKind")
    attribute: str
    op: str
    values: list[JsonValue]
    negate: bool = False


class WeightedVariation(LDModel):
    variation: int
    weight: int
    untracked: bool | None = Field(default=None, alias="_untracked")


class Rollout(LDModel):
    variations: list[WeightedVariation]
    bucket_by: str | None = Field(default=None, alias="bucketBy")
    context_kind: str | None = Field(default=None, alias="contextKind")
    seed: int | None = None


class VariationOrRollout(LDModel):
    """What a rule or the fallthrough serves: one variation (by index) or a percentage rollout."""

    variation: int | None = None
    rollout: Rollout | None = None


class Rule(VariationOrRollout):
    id: str | None = Field(default=None, alias="_id")
    clauses: list[Clause] = []
    track_events: bool = Field(default=False, alias="trackEvents")
    description: str | None = None


class Prerequisite(LDModel):
    key: str
    variation: int


class FlagEnvironment(LDModel):
    """A flag's configuration in one environment (LaunchDarkly's ``FeatureFlagConfig``)."""

    on: bool
    archived: bool = False
    version: int = 0
    last_modified: int | None = Field(default=None, alias="lastModified")
    environment_name: str | None = Field(default=None, alias="_environmentName")
    off_variation: int | None = Field(default=None, alias="offVariation")
    fallthrough: VariationOrRollout | None = None
    targets: list[Target] = []
    context_targets: list[Target] = Field(default=[], alias="contextTargets")
    rules: list[Rule] = []
    prerequisites: list[Prerequisite] = []
    track_events: bool = Field(default=False, alias="trackEvents")
    track_events_fallthrough: bool = Field(default=False, alias="trackEventsFallthrough")


class CustomProperty(LDModel):
    name: str
    value: list[str]


class ClientSideAvailability(LDModel):
    using_mobile_key: bool = Field(default=False, alias="usingMobileKey")
    using_environment_id: bool = Field(default=False, alias="usingEnvironmentId")


class FlagDefaults(LDModel):
    on_variation: int = Field(alias="onVariation")
    off_variation: int = Field(alias="offVariation")


class FeatureFlag(LDModel):
    """A feature flag, in LaunchDarkly's flag response shape (seed 003)."""

    key: str
    name: str
    kind: str
    version: int = Field(alias="_version")
    description: str | None = None
    creation_date: int | None = Field(default=None, alias="creationDate")
    variations: list[Variation]
    temporary: bool = False
    tags: list[str] = []
    archived: bool = False
    deprecated: bool = False
    maintainer_id: str | None = Field(default=None, alias="maintainerId")
    maintainer_team_key: str | None = Field(default=None, alias="maintainerTeamKey")
    custom_properties: dict[str, CustomProperty] = Field(default={}, alias="customProperties")
    client_side_availability: ClientSideAvailability | None = Field(
        default=None, alias="clientSideAvailability"
    )
    defaults: FlagDefaults | None = None
    environments: dict[str, FlagEnvironment] = {}
    links: Links = Field(default={}, alias="_links")

    def environment(self, key: str) -> FlagEnvironment | None:
        """The flag's configuration in environment ``key``, or None when absent."""
        return self.environments.get(key)

    def variation_index(self, variation_id: str) -> int | None:
        """The index of the variation with ``_id`` ``variation_id``, or None."""
        for index, variation in enumerate(self.variations):
            if variation.id == variation_id:
                return index
        return None


# --- Projects, environments, members ------------------------------------------------------------


class ApprovalSettings(LDModel):
    """An environment's approval settings (what decides whether a change needs a request)."""

    required: bool = False
    required_approval_tags: list[str] = Field(default=[], alias="requiredApprovalTags")
    min_num_approvals: int = Field(default=1, alias="minNumApprovals")
    can_review_own_request: bool = Field(default=False, alias="canReviewOwnRequest")
    can_apply_declined_changes: bool = Field(default=False, alias="canApplyDeclinedChanges")
    bypass_approvals_for_pending_changes: bool = Field(
        default=False, alias="bypassApprovalsForPendingChanges"
    )
    service_kind: str = Field(default="launchdarkly", alias="serviceKind")

    def required_for(self, flag_tags: list[str]) -> bool:
        """Whether a change to a flag with ``flag_tags`` needs approval in this environment.

        ``required`` with no ``requiredApprovalTags`` means every flag; with tags, only flags
        carrying one of them.
        """
        tagged = bool(set(self.required_approval_tags) & set(flag_tags))
        return (self.required and not self.required_approval_tags) or tagged


class Environment(LDModel):
    key: str
    name: str
    id: str | None = Field(default=None, alias="_id")
    color: str | None = None
    critical: bool = False
    tags: list[str] = []
    approval_settings: ApprovalSettings | None = Field(default=None, alias="approvalSettings")

    def approval_required_for(self, flag_tags: list[str]) -> bool:
        """Whether changing a flag with ``flag_tags`` in this environment needs an approval."""
        return self.approval_settings is not None and self.approval_settings.required_for(flag_tags)


class Project(LDModel):
    key: str
    name: str
    id: str | None = Field(default=None, alias="_id")
    tags: list[str] = []
    environments: list[Environment] | None = None

    @field_validator("environments", mode="before")
    @classmethod
    def _environments_collection(cls, value: Any) -> Any:
        # Seed 004 shows a bare array; API version 20240415 (and the generated client) sends an
        # expandable collection {"items": [...], "totalCount": n}. Accept both.
        if isinstance(value, dict) and "items" in value:
            return value["items"]
        return value


class MemberTeam(LDModel):
    """A team a member is on (``MemberTeamSummaryRep``): its key and custom roles' keys."""

    key: str
    name: str | None = None
    custom_role_keys: list[str] | None = Field(default=None, alias="customRoleKeys")


class Member(LDModel):
    id: str = Field(alias="_id")
    email: str | None = None  # required by the spec; a member shown without one is still a member
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    role: str | None = None
    # What the role check reads (``expand=customRoles,roleAttributes``): custom role keys (or ids),
    # the attributes their assignment gives, and the member's teams.
    custom_roles: list[str] = Field(default_factory=list, alias="customRoles")
    role_attributes: dict[str, list[str]] | None = Field(default=None, alias="roleAttributes")
    teams: list[MemberTeam] = Field(default_factory=list)

    @property
    def display_name(self) -> str:
        """ "First Last", or the email when the member has no name."""
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.email or self.id


class CallerIdentity(LDModel):
    """Who a token belongs to (``GET /api/v2/caller-identity``)."""

    account_id: str | None = Field(default=None, alias="accountId")
    auth_kind: str | None = Field(default=None, alias="authKind")
    token_kind: str | None = Field(default=None, alias="tokenKind")
    token_id: str | None = Field(default=None, alias="tokenId")
    token_name: str | None = Field(default=None, alias="tokenName")
    member_id: str | None = Field(default=None, alias="memberId")
    service_token: bool | None = Field(default=None, alias="serviceToken")


class FlagStatus(LDModel):
    """A flag's status in one environment: new, active, inactive or launched."""

    name: str
    last_requested: datetime | None = Field(default=None, alias="lastRequested")
    default: JsonValue = None
    links: Links = Field(default={}, alias="_links")

    @property
    def flag_key(self) -> str | None:
        """The flag's key, read from the ``self`` link (the item itself does not carry it)."""
        link = self.links.get("self")
        return link.href.rstrip("/").rsplit("/", 1)[-1] if link else None


# --- Approvals, scheduled changes, links ----------------------------------------------------------


class Review(LDModel):
    id: str = Field(alias="_id")
    kind: str
    creation_date: int | None = Field(default=None, alias="creationDate")
    comment: str | None = None
    member_id: str | None = Field(default=None, alias="memberId")


class Conflict(LDModel):
    instruction: dict[str, Any] | None = None
    reason: str | None = None


class ApprovalRequest(LDModel):
    """An approval request on a flag in one environment."""

    id: str = Field(alias="_id")
    # Required by LaunchDarkly's spec, but nothing the bot decides hangs on them: a sparse answer
    # to a request that was created must not make the bot say it was not.
    version: int | None = Field(default=None, alias="_version")
    creation_date: int | None = Field(default=None, alias="creationDate")
    requestor_id: str | None = Field(default=None, alias="requestorId")
    description: str | None = None
    review_status: str = Field(default="pending", alias="reviewStatus")
    status: str = "pending"
    all_reviews: list[Review] = Field(default=[], alias="allReviews")
    notify_member_ids: list[str] = Field(default=[], alias="notifyMemberIds")
    notify_team_keys: list[str] | None = Field(default=None, alias="notifyTeamKeys")
    applied_date: int | None = Field(default=None, alias="appliedDate")
    applied_by_member_id: str | None = Field(default=None, alias="appliedByMemberId")
    instructions: list[dict[str, Any]] = []
    conflicts: list[Conflict] = []
    execution_date: int | None = Field(default=None, alias="executionDate")
    operating_on_id: str | None = Field(default=None, alias="operatingOnId")
    resource_id: str | None = Field(default=None, alias="resourceId")
    links: dict[str, Any] = Field(default={}, alias="_links")


class ScheduledChange(LDModel):
    id: str = Field(alias="_id")
    creation_date: int = Field(alias="_creationDate")
    maintainer_id: str = Field(alias="_maintainerId")
    version: int = Field(alias="_version")
    execution_date: int = Field(alias="executionDate")
    instructions: list[dict[str, Any]]
    conflicts: Any = None
    links: Links = Field(default={}, alias="_links")


class LinkTimestamp(LDModel):
    milliseconds: int | None = None
    seconds: int | None = None
    rfc3339: str | None = None
    simple: str | None = None


class FlagLinkMember(LDModel):
    id: str = Field(alias="_id")
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")


class FlagLink(LDModel):
    """A link from a flag to an external resource (flagops links Slack threads this way)."""

    id: str = Field(alias="_id")
    key: str | None = Field(default=None, alias="_key")
    deep_link: str = Field(alias="_deepLink")
    title: str | None = None
    description: str | None = None
    created_at: int = Field(alias="_createdAt")
    timestamp: LinkTimestamp | None = Field(default=None, alias="_timestamp")
    member: FlagLinkMember | None = Field(default=None, alias="_member")
    links: Links = Field(default={}, alias="_links")


# --- Collections ------------------------------------------------------------------------------

# --- Audit log --------------------------------------------------------------------------------


class AuditAccess(LDModel):
    action: str | None = None
    resource: str | None = None


class AuditEntry(LDModel):
    """One audit log entry (``AuditLogEntryListingRep``; ``AuditLogEntryRep`` adds the versions).

    Only ``_id`` and ``date`` are required here: whether a change landed is decided from the
    entry's ``comment`` and resource, and everything else (member, title) is enrichment that a
    sparse answer may lack.
    """

    id: str = Field(alias="_id")
    date: int
    kind: str | None = None
    name: str | None = None
    description: str | None = None
    comment: str | None = None
    title: str | None = None
    accesses: list[AuditAccess] = []
    member: dict[str, Any] | None = None
    token: dict[str, Any] | None = None
    previous_version: dict[str, Any] | None = Field(default=None, alias="previousVersion")
    current_version: dict[str, Any] | None = Field(default=None, alias="currentVersion")


# --- Segments and evaluation --------------------------------------------------------------------


class Segment(LDModel):
    """A segment of one environment (``UserSegment``); the evaluator reads it as a document."""

    key: str
    name: str | None = None
    unbounded: bool = False


class EvaluationReason(LDModel):
    """Why a context got its value (``ContextInstanceEvaluationReason``). LaunchDarkly's spec spells
    the rule's id ``ruleID``; the SDKs ``ruleId``: both are read."""

    kind: str
    rule_index: int | None = Field(default=None, alias="ruleIndex")
    rule_id: str | None = Field(
        default=None, validation_alias=AliasChoices("ruleID", "ruleId"), serialization_alias="ruleID"
    )
    prerequisite_key: str | None = Field(default=None, alias="prerequisiteKey")
    in_experiment: bool | None = Field(default=None, alias="inExperiment")
    error_kind: str | None = Field(default=None, alias="errorKind")


class ContextEvaluation(LDModel):
    """What one flag serves a context (``ContextInstanceEvaluation``); ``value`` is ``_value``."""

    key: str
    name: str | None = None
    value: JsonValue = Field(default=None, alias="_value")
    reason: EvaluationReason | None = None


ItemT = TypeVar("ItemT", bound=LDModel)


class Page(LDModel, Generic[ItemT]):
    """One page of a collection. ``total_count`` is the size of the whole collection, when sent."""

    items: list[ItemT]
    total_count: int | None = Field(default=None, alias="totalCount")
    links: dict[str, Any] = Field(default={}, alias="_links")

    @property
    def has_next(self) -> bool:
        """Whether LaunchDarkly links a next page."""
        return isinstance(self.links.get("next"), dict)


# --- Webhooks -----------------------------------------------------------------------------------


class Webhook(LDModel):
    """A webhook (``Webhook``). ``secret`` is LaunchDarkly's answer to a signed webhook's creation:
    read once by ``python -m bot webhook-setup`` and stored encrypted, never logged or shown."""

    id: str = Field(alias="_id")
    url: str
    on: bool = True
    name: str | None = None
    secret: str | None = Field(default=None, repr=False)
