"""Semantic-patch instruction models: one pydantic model per LaunchDarkly instruction kind.

The 53 kinds come from LaunchDarkly's "Update feature flag" reference
(../shared/seeds/003_6aebeb99eb24c7fc.txt). Field names are the API's own camelCase names so that
``model_dump(exclude_unset=True)`` of a parsed body is the body itself (the round-trip property the
tests check against every example in the seeds).

Doc mistakes in the seed, handled deliberately (see README, "Seed exemptions"):

* ``updateDefaultVariation``: the example writes ``OnVariationValue`` / ``OffVariationValue``; the
  parameter list says ``onVariationValue`` / ``offVariationValue``. Both spellings are accepted;
  the lower-camel one is what we emit.
* ``removeCustomProperties``: its example is labelled ``replaceCustomProperties``. The example is
  validated as the ``removeCustomProperties`` it documents.
* ``turnOffClientSideAvailability``: "usingEnvironmentId ... turn on" is read as "turn off".
* ``rolloutWeights`` examples carry ``//`` comments, which are not JSON; they are stripped before
  validation.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    RootModel,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

# Clause operators, case-sensitive, exactly as LaunchDarkly spells them.
ClauseOp = Literal[
    "in",
    "endsWith",
    "startsWith",
    "matches",
    "contains",
    "lessThan",
    "lessThanOrEqual",
    "greaterThan",
    "greaterThanOrEqual",
    "before",
    "after",
    "segmentMatch",
    "semVerEqual",
    "semVerLessThan",
    "semVerGreaterThan",
]
CLAUSE_OPS: tuple[str, ...] = typing.get_args(ClauseOp)

# Clause values: "array of strings, numbers, or dates" (dates are strings or epoch-ms numbers).
# Strict types keep 1 an int, 1.5 a float and true a bool through a round trip.
ClauseValue = StrictStr | StrictBool | StrictInt | StrictFloat

ClientSideSdk = Literal["usingMobileKey", "usingEnvironmentId"]

TOTAL_WEIGHT = 100_000  # rolloutWeights are thousandths of a percent and must sum to 100%.

NonEmptyStr = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Clause(_Model):
    """A clause of a targeting rule."""

    contextKind: str = "user"
    attribute: NonEmptyStr
    op: ClauseOp
    negate: bool = False
    values: list[ClauseValue]


def _check_variation_or_rollout(
    variation_id: str | None,
    weights: dict[str, int] | None,
    bucket_by: str | None,
    what: str,
) -> None:
    """A rule or the fallthrough serves one variation or one percentage rollout, never both."""
    if variation_id is not None and weights is not None:
        raise ValueError(f"{what} serves either variationId or rolloutWeights, not both")
    if variation_id is None and weights is None:
        raise ValueError(f"{what} needs variationId or rolloutWeights")
    if weights is not None:
        if not weights:
            raise ValueError("rolloutWeights must name at least one variation")
        for variation, weight in weights.items():
            if not 0 <= weight <= TOTAL_WEIGHT:
                raise ValueError(
                    f"rolloutWeights[{variation!r}] is {weight}; each weight is 0..{TOTAL_WEIGHT}"
                )
        total = sum(weights.values())
        if total != TOTAL_WEIGHT:
            raise ValueError(f"rolloutWeights sum to {total}; they must sum to {TOTAL_WEIGHT} (100%)")
    elif bucket_by is not None:
        raise ValueError("rolloutBucketBy only applies to a percentage rollout (rolloutWeights)")


class _ServesVariationOrRollout(_Model):
    variationId: str | None = None
    rolloutWeights: dict[str, StrictInt] | None = None
    rolloutBucketBy: str | None = None
    rolloutContextKind: str = "user"

    @model_validator(mode="after")
    def _serves_one(self) -> _ServesVariationOrRollout:
        _check_variation_or_rollout(self.variationId, self.rolloutWeights, self.rolloutBucketBy, _what(self))
        return self


def _what(model: BaseModel) -> str:
    kind = getattr(model, "kind", None)
    return str(kind) if kind else "a rule"


class RuleSpec(_ServesVariationOrRollout):
    """A rule as ``replaceRules`` takes it."""

    description: str | None = None
    clauses: list[Clause] = Field(default_factory=list)
    trackEvents: bool | None = None


class TargetSpec(_Model):
    """A context target as ``replaceTargets`` takes it."""

    contextKind: str = "user"
    variationId: NonEmptyStr
    values: list[str]


class UserTargetSpec(_Model):
    """A user target as ``replaceUserTargets`` takes it."""

    variationId: NonEmptyStr
    values: list[str]


class PrerequisiteSpec(_Model):
    key: NonEmptyStr
    variationId: NonEmptyStr


class Instruction(_Model):
    """Base of every instruction; ``kind`` is always dumped, even when set by default."""

    environment_scoped: ClassVar[bool] = True
    kind: str

    def model_post_init(self, context: Any, /) -> None:
        # exclude_unset must never drop the discriminator of a model built in code.
        self.__pydantic_fields_set__.add("kind")

    def body(self) -> dict[str, Any]:
        """The instruction as JSON: ``kind`` first, then exactly the parameters that were given."""
        dumped = self.model_dump(mode="json", exclude_unset=True, by_alias=True)
        return {"kind": dumped.pop("kind"), **dumped}


class _FlagLevel(Instruction):
    environment_scoped: ClassVar[bool] = False


# --- environment-scoped: on/off ---------------------------------------------------------------


class TurnFlagOn(Instruction):
    kind: Literal["turnFlagOn"] = "turnFlagOn"


class TurnFlagOff(Instruction):
    kind: Literal["turnFlagOff"] = "turnFlagOff"


# --- environment-scoped: rules and clauses -----------------------------------------------------


class AddClauses(Instruction):
    kind: Literal["addClauses"] = "addClauses"
    ruleId: NonEmptyStr
    clauses: Annotated[list[Clause], Field(min_length=1)]


class RemoveClauses(Instruction):
    kind: Literal["removeClauses"] = "removeClauses"
    ruleId: NonEmptyStr
    clauseIds: Annotated[list[str], Field(min_length=1)]


class AddValuesToClause(Instruction):
    kind: Literal["addValuesToClause"] = "addValuesToClause"
    ruleId: NonEmptyStr
    clauseId: NonEmptyStr
    values: Annotated[list[ClauseValue], Field(min_length=1)]


class RemoveValuesFromClause(Instruction):
    kind: Literal["removeValuesFromClause"] = "removeValuesFromClause"
    ruleId: NonEmptyStr
    clauseId: NonEmptyStr
    values: Annotated[list[ClauseValue], Field(min_length=1)]


class UpdateClause(Instruction):
    kind: Literal["updateClause"] = "updateClause"
    ruleId: NonEmptyStr
    clauseId: NonEmptyStr
    clause: Clause


class AddRule(Instruction, _ServesVariationOrRollout):
    kind: Literal["addRule"] = "addRule"
    clauses: list[Clause] = Field(default_factory=list)
    beforeRuleId: str | None = None
    description: str | None = None
    trackEvents: bool | None = None


class RemoveRule(Instruction):
    kind: Literal["removeRule"] = "removeRule"
    ruleId: NonEmptyStr


class ReorderRules(Instruction):
    kind: Literal["reorderRules"] = "reorderRules"
    ruleIds: list[str]


class ReplaceRules(Instruction):
    kind: Literal["replaceRules"] = "replaceRules"
    rules: list[RuleSpec]


class UpdateRuleDescription(Instruction):
    kind: Literal["updateRuleDescription"] = "updateRuleDescription"
    ruleId: NonEmptyStr
    description: str


class UpdateRuleTrackEvents(Instruction):
    kind: Literal["updateRuleTrackEvents"] = "updateRuleTrackEvents"
    ruleId: NonEmptyStr
    trackEvents: bool


class UpdateRuleVariationOrRollout(Instruction, _ServesVariationOrRollout):
    kind: Literal["updateRuleVariationOrRollout"] = "updateRuleVariationOrRollout"
    ruleId: NonEmptyStr


class UpdateFallthroughVariationOrRollout(Instruction, _ServesVariationOrRollout):
    kind: Literal["updateFallthroughVariationOrRollout"] = "updateFallthroughVariationOrRollout"


class UpdateOffVariation(Instruction):
    kind: Literal["updateOffVariation"] = "updateOffVariation"
    variationId: NonEmptyStr


class UpdateTrackEvents(Instruction):
    kind: Literal["updateTrackEvents"] = "updateTrackEvents"
    trackEvents: bool


class UpdateTrackEventsFallthrough(Instruction):
    kind: Literal["updateTrackEventsFallthrough"] = "updateTrackEventsFallthrough"
    trackEvents: bool


# --- environment-scoped: individual targets ----------------------------------------------------


class AddTargets(Instruction):
    kind: Literal["addTargets"] = "addTargets"
    contextKind: str = "user"
    variationId: NonEmptyStr
    values: Annotated[list[str], Field(min_length=1)]


class RemoveTargets(Instruction):
    kind: Literal["removeTargets"] = "removeTargets"
    contextKind: str = "user"
    variationId: NonEmptyStr
    values: Annotated[list[str], Field(min_length=1)]


class ClearTargets(Instruction):
    kind: Literal["clearTargets"] = "clearTargets"
    variationId: NonEmptyStr


class ReplaceTargets(Instruction):
    kind: Literal["replaceTargets"] = "replaceTargets"
    targets: list[TargetSpec]


class AddUserTargets(Instruction):
    kind: Literal["addUserTargets"] = "addUserTargets"
    variationId: NonEmptyStr
    values: Annotated[list[str], Field(min_length=1)]


class RemoveUserTargets(Instruction):
    kind: Literal["removeUserTargets"] = "removeUserTargets"
    variationId: NonEmptyStr
    values: Annotated[list[str], Field(min_length=1)]


class ClearUserTargets(Instruction):
    kind: Literal["clearUserTargets"] = "clearUserTargets"
    variationId: NonEmptyStr


class ReplaceUserTargets(Instruction):
    kind: Literal["replaceUserTargets"] = "replaceUserTargets"
    targets: list[UserTargetSpec]


# --- environment-scoped: prerequisites ---------------------------------------------------------


class AddPrerequisite(Instruction):
    kind: Literal["addPrerequisite"] = "addPrerequisite"
    key: NonEmptyStr
    variationId: NonEmptyStr


class RemovePrerequisite(Instruction):
    kind: Literal["removePrerequisite"] = "removePrerequisite"
    key: NonEmptyStr


class UpdatePrerequisite(Instruction):
    kind: Literal["updatePrerequisite"] = "updatePrerequisite"
    key: NonEmptyStr
    variationId: NonEmptyStr


class ReplacePrerequisites(Instruction):
    kind: Literal["replacePrerequisites"] = "replacePrerequisites"
    prerequisites: list[PrerequisiteSpec]


# --- flag-level: variations --------------------------------------------------------------------


class AddVariation(_FlagLevel):
    kind: Literal["addVariation"] = "addVariation"
    value: JsonValue
    name: str | None = None
    description: str | None = None


class RemoveVariation(_FlagLevel):
    kind: Literal["removeVariation"] = "removeVariation"
    variationId: NonEmptyStr


class UpdateVariation(_FlagLevel):
    kind: Literal["updateVariation"] = "updateVariation"
    variationId: NonEmptyStr
    name: str | None = None
    value: JsonValue = None
    description: str | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> UpdateVariation:
        if not {"name", "value", "description"} & self.model_fields_set:
            raise ValueError("updateVariation needs at least one of name, value, description")
        return self


class UpdateDefaultVariation(_FlagLevel):
    kind: Literal["updateDefaultVariation"] = "updateDefaultVariation"
    # The seed's example capitalises these (OnVariationValue); LaunchDarkly's Go backend matches
    # JSON keys case-insensitively, so both reach the same field. We emit the documented spelling.
    onVariationValue: JsonValue = Field(
        default=None, validation_alias=AliasChoices("onVariationValue", "OnVariationValue")
    )
    offVariationValue: JsonValue = Field(
        default=None, validation_alias=AliasChoices("offVariationValue", "OffVariationValue")
    )

    @model_validator(mode="after")
    def _changes_something(self) -> UpdateDefaultVariation:
        if not {"onVariationValue", "offVariationValue"} & self.model_fields_set:
            raise ValueError("updateDefaultVariation needs onVariationValue or offVariationValue")
        return self


# --- flag-level: settings ----------------------------------------------------------------------


class AddCustomProperties(_FlagLevel):
    kind: Literal["addCustomProperties"] = "addCustomProperties"
    key: NonEmptyStr
    name: NonEmptyStr
    values: Annotated[list[str], Field(min_length=1)]


class ReplaceCustomProperties(_FlagLevel):
    kind: Literal["replaceCustomProperties"] = "replaceCustomProperties"
    key: NonEmptyStr
    name: NonEmptyStr
    values: list[str]


class RemoveCustomProperties(_FlagLevel):
    kind: Literal["removeCustomProperties"] = "removeCustomProperties"
    key: NonEmptyStr
    values: Annotated[list[str], Field(min_length=1)]


class AddTags(_FlagLevel):
    kind: Literal["addTags"] = "addTags"
    values: Annotated[list[NonEmptyStr], Field(min_length=1)]


class RemoveTags(_FlagLevel):
    kind: Literal["removeTags"] = "removeTags"
    values: Annotated[list[NonEmptyStr], Field(min_length=1)]


class MakeFlagPermanent(_FlagLevel):
    kind: Literal["makeFlagPermanent"] = "makeFlagPermanent"


class MakeFlagTemporary(_FlagLevel):
    kind: Literal["makeFlagTemporary"] = "makeFlagTemporary"


class RemoveMaintainer(_FlagLevel):
    kind: Literal["removeMaintainer"] = "removeMaintainer"


class UpdateMaintainerMember(_FlagLevel):
    kind: Literal["updateMaintainerMember"] = "updateMaintainerMember"
    value: NonEmptyStr


class UpdateMaintainerTeam(_FlagLevel):
    kind: Literal["updateMaintainerTeam"] = "updateMaintainerTeam"
    value: NonEmptyStr


class TurnOnClientSideAvailability(_FlagLevel):
    kind: Literal["turnOnClientSideAvailability"] = "turnOnClientSideAvailability"
    value: ClientSideSdk


class TurnOffClientSideAvailability(_FlagLevel):
    kind: Literal["turnOffClientSideAvailability"] = "turnOffClientSideAvailability"
    value: ClientSideSdk


class UpdateDescription(_FlagLevel):
    kind: Literal["updateDescription"] = "updateDescription"
    value: str


class UpdateName(_FlagLevel):
    kind: Literal["updateName"] = "updateName"
    value: NonEmptyStr


# --- flag-level: lifecycle ---------------------------------------------------------------------


class ArchiveFlag(_FlagLevel):
    kind: Literal["archiveFlag"] = "archiveFlag"


class DeleteFlag(_FlagLevel):
    kind: Literal["deleteFlag"] = "deleteFlag"


class DeprecateFlag(_FlagLevel):
    kind: Literal["deprecateFlag"] = "deprecateFlag"


class RestoreDeprecatedFlag(_FlagLevel):
    kind: Literal["restoreDeprecatedFlag"] = "restoreDeprecatedFlag"


class RestoreFlag(_FlagLevel):
    kind: Literal["restoreFlag"] = "restoreFlag"


AnyInstruction = Annotated[
    TurnFlagOn
    | TurnFlagOff
    | AddClauses
    | RemoveClauses
    | AddValuesToClause
    | RemoveValuesFromClause
    | UpdateClause
    | AddRule
    | RemoveRule
    | ReorderRules
    | ReplaceRules
    | UpdateRuleDescription
    | UpdateRuleTrackEvents
    | UpdateRuleVariationOrRollout
    | UpdateFallthroughVariationOrRollout
    | UpdateOffVariation
    | UpdateTrackEvents
    | UpdateTrackEventsFallthrough
    | AddTargets
    | RemoveTargets
    | ClearTargets
    | ReplaceTargets
    | AddUserTargets
    | RemoveUserTargets
    | ClearUserTargets
    | ReplaceUserTargets
    | AddPrerequisite
    | RemovePrerequisite
    | UpdatePrerequisite
    | ReplacePrerequisites
    | AddVariation
    | RemoveVariation
    | UpdateVariation
    | UpdateDefaultVariation
    | AddCustomProperties
    | ReplaceCustomProperties
    | RemoveCustomProperties
    | AddTags
    | RemoveTags
    | MakeFlagPermanent
    | MakeFlagTemporary
    | RemoveMaintainer
    | UpdateMaintainerMember
    | UpdateMaintainerTeam
    | TurnOnClientSideAvailability
    | TurnOffClientSideAvailability
    | UpdateDescription
    | UpdateName
    | ArchiveFlag
    | DeleteFlag
    | DeprecateFlag
    | RestoreDeprecatedFlag
    | RestoreFlag,
    Field(discriminator="kind"),
]

#: kind -> model class, for all 53 kinds.
INSTRUCTION_MODELS: dict[str, type[Instruction]] = {
    cls.model_fields["kind"].default: cls
    for cls in AnyInstruction.__origin__.__args__  # type: ignore[attr-defined]
}
ENVIRONMENT_SCOPED_KINDS: frozenset[str] = frozenset(
    kind for kind, cls in INSTRUCTION_MODELS.items() if cls.environment_scoped
)
FLAG_LEVEL_KINDS: frozenset[str] = frozenset(INSTRUCTION_MODELS) - ENVIRONMENT_SCOPED_KINDS


class SemanticPatch(BaseModel):
    """The body of a semantic-patch request on a flag (``domain-model=launchdarkly.semanticpatch``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environmentKey: str | None = None
    comment: str | None = None
    instructions: Annotated[list[AnyInstruction], Field(min_length=1)]

    @model_validator(mode="after")
    def _environment_when_needed(self) -> SemanticPatch:
        scoped = [i.kind for i in self.instructions if i.environment_scoped]
        if scoped and not self.environmentKey:
            raise ValueError(
                f"environmentKey is required for environment-scoped instruction(s): {', '.join(scoped)}"
            )
        return self

    @property
    def environment_scoped(self) -> bool:
        """Whether any instruction changes an environment's targeting."""
        return any(i.environment_scoped for i in self.instructions)

    def body(self) -> dict[str, Any]:
        """The JSON body to send: exactly the fields that were given and have a value (an absent
        comment is left out, never sent as ``null``: LaunchDarkly's ``comment`` is a string)."""
        body = self.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        body["instructions"] = [instruction.body() for instruction in self.instructions]
        return body


# --- JSON patch (RFC 6902) and JSON merge patch (RFC 7386) -------------------------------------


class PatchOperation(BaseModel):
    """One RFC 6902 operation."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: str = Field(pattern=r"^(/.*)?$")
    value: JsonValue = None
    from_: str | None = Field(default=None, alias="from", pattern=r"^(/.*)?$")

    @model_validator(mode="after")
    def _operands(self) -> PatchOperation:
        if self.op in ("add", "replace", "test") and "value" not in self.model_fields_set:
            raise ValueError(f"JSON patch op {self.op!r} needs a value")
        if self.op in ("move", "copy") and self.from_ is None:
            raise ValueError(f"JSON patch op {self.op!r} needs 'from'")
        return self


class JsonPatch(RootModel[list[PatchOperation]]):
    """A bare array of operations: the body for flag links and projects."""

    def body(self) -> list[dict[str, Any]]:
        return [op.model_dump(mode="json", by_alias=True, exclude_unset=True) for op in self.root]


class FlagJsonPatch(BaseModel):
    """A JSON patch on a flag: ``{"patch": [...], "comment": "..."}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patch: list[PatchOperation]
    comment: str | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class MergePatch(RootModel[dict[str, JsonValue]]):
    """An RFC 7386 merge patch: a plain object with the fields to change."""

    def body(self) -> dict[str, JsonValue]:
        return dict(self.root)


class FlagMergePatch(BaseModel):
    """A merge patch on a flag with a comment: ``{"merge": {...}, "comment": "..."}``
    (LaunchDarkly's "updates with comments"; sent as ``application/json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    merge: dict[str, JsonValue]
    comment: str | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True, exclude_none=True)
