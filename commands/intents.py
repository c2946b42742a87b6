"""Commands and intents: what a person asked for, with symbolic references.

``parse`` produces these from text; ``resolve`` turns a :class:`ChangeCommand`'s intents into a
:class:`~commands.instructions.SemanticPatch` against a flag document; ``canonical`` prints one
back as text. There is one intent class per semantic-patch instruction kind (``Intent.kind`` *is*
the instruction kind), so all 53 kinds are reachable and nothing else is.

References stay symbolic until ``resolve`` sees the flag:

* :class:`VariationRef`: a variation by value or name (``true``, ``"New pricing"``) or by 1-based
  position (``#2``; the first variation is ``#1``, as people count and as ``show`` lists them).
* :class:`RuleRef`: a rule by 1-based position (``rule 2``) or by description (``rule "Beta testers"``).
* :class:`ClauseRef`: a clause of a rule by 1-based position or by attribute (``clause country``).
* :class:`ValueLiteral`: a new variation value, typed against the flag's variations at resolve.

Every model is a frozen pydantic model: equal when their fields are equal, hashable, and
serialisable (the bot stores a change's command with it).
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from commands.instructions import INSTRUCTION_MODELS, TOTAL_WEIGHT, ClauseOp, ClientSideSdk

ClauseValue = StrictStr | StrictBool | StrictInt | StrictFloat
Text = Annotated[str, Field(min_length=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- references ---------------------------------------------------------------------------------


class VariationRef(_Frozen):
    """A variation as written: ``text`` (a value or a name) or ``index`` (1-based, from ``#n``).

    ``quoted`` records that the text was written in quotes: it then matches only string values and
    names (``"true"`` is the string, ``true`` the boolean).
    """

    text: str | None = None
    index: Annotated[int, Field(ge=1)] | None = None
    quoted: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> VariationRef:
        if (self.text is None) == (self.index is None):
            raise ValueError("a variation is named by text or by index, exactly one")
        return self


class RuleRef(_Frozen):
    """A targeting rule by 1-based ``position`` or by ``description`` (or its ``_id``)."""

    position: Annotated[int, Field(ge=1)] | None = None
    description: Text | None = None

    @model_validator(mode="after")
    def _one_way(self) -> RuleRef:
        if (self.position is None) == (self.description is None):
            raise ValueError("a rule is named by position or by description, exactly one")
        return self


class ClauseRef(_Frozen):
    """A clause of a rule by 1-based ``position`` or by ``attribute`` (or its ``_id``)."""

    position: Annotated[int, Field(ge=1)] | None = None
    attribute: Text | None = None

    @model_validator(mode="after")
    def _one_way(self) -> ClauseRef:
        if (self.position is None) == (self.attribute is None):
            raise ValueError("a clause is named by position or by attribute, exactly one")
        return self


class ValueLiteral(_Frozen):
    """A variation value as written. ``form``: an unquoted ``word`` (a JSON literal such as ``20``
    or ``true`` when it is one, else a string), a quoted ``string``, or a ``json`` object/array."""

    text: str
    form: Literal["word", "string", "json"] = "word"


class ClauseSpec(_Frozen):
    """A clause to add or write. ``context_kind`` None means "not given" (LaunchDarkly: user)."""

    attribute: Text
    op: ClauseOp
    values: Annotated[tuple[ClauseValue, ...], Field(min_length=1)]
    negate: bool = False
    context_kind: Text | None = None


class ServeVariation(_Frozen):
    """Serve one variation."""

    variation: VariationRef


class Weight(_Frozen):
    """One slice of a percentage rollout; ``weight`` in thousandths of a percent."""

    variation: VariationRef
    weight: Annotated[int, Field(ge=0, le=TOTAL_WEIGHT)]


class Rollout(_Frozen):
    """Serve a percentage rollout, optionally bucketed by an attribute of a context kind."""

    weights: Annotated[tuple[Weight, ...], Field(min_length=1)]
    bucket_by: Text | None = None
    context_kind: Text | None = None

    @model_validator(mode="after")
    def _whole(self) -> Rollout:
        total = sum(w.weight for w in self.weights)
        if total != TOTAL_WEIGHT:
            raise ValueError(f"a rollout must add up to exactly 100%, not {total / 1000:g}%")
        return self


Serving = ServeVariation | Rollout


class TargetGroup(_Frozen):
    """Keys of one context kind served one variation (``replace targets``)."""

    context_kind: Text = "user"
    keys: Annotated[tuple[Text, ...], Field(min_length=1)]
    variation: VariationRef


class UserTargetGroup(_Frozen):
    """User keys served one variation (legacy ``replace user-targets``)."""

    keys: Annotated[tuple[Text, ...], Field(min_length=1)]
    variation: VariationRef


class RuleDraft(_Frozen):
    """A whole rule, as ``replace rules`` writes it."""

    clauses: tuple[ClauseSpec, ...] = ()
    serve: Serving
    description: str | None = None
    track_events: bool | None = None


class Prerequisite(_Frozen):
    """A prerequisite: flag ``key`` must serve ``variation`` (a variation of *that* flag)."""

    key: Text
    variation: VariationRef


class Schedule(_Frozen):
    """When to apply, kept as written: ``at <time>`` or ``in <duration>`` (the bot parses it)."""

    kind: Literal["at", "in"]
    text: Text


# --- intents: one per instruction kind ----------------------------------------------------------


class Intent(_Frozen):
    """Base of the intents; ``kind`` is the semantic-patch instruction kind it becomes."""

    kind: str

    @property
    def environment_scoped(self) -> bool:
        """Whether the instruction needs an environment."""
        return INSTRUCTION_MODELS[self.kind].environment_scoped


class TurnOn(Intent):
    kind: Literal["turnFlagOn"] = "turnFlagOn"


class TurnOff(Intent):
    kind: Literal["turnFlagOff"] = "turnFlagOff"


class AddTargets(Intent):
    kind: Literal["addTargets"] = "addTargets"
    context_kind: Text = "user"
    keys: Annotated[tuple[Text, ...], Field(min_length=1)]
    variation: VariationRef


class RemoveTargets(Intent):
    """``variation`` None: from whichever variation targets each key now."""

    kind: Literal["removeTargets"] = "removeTargets"
    context_kind: Text = "user"
    keys: Annotated[tuple[Text, ...], Field(min_length=1)]
    variation: VariationRef | None = None


class ClearTargets(Intent):
    kind: Literal["clearTargets"] = "clearTargets"
    variation: VariationRef


class ReplaceTargets(Intent):
    kind: Literal["replaceTargets"] = "replaceTargets"
    targets: tuple[TargetGroup, ...]


class AddUserTargets(Intent):
    kind: Literal["addUserTargets"] = "addUserTargets"
    keys: Annotated[tuple[Text, ...], Field(min_length=1)]
    variation: VariationRef


class RemoveUserTargets(Intent):
    kind: Literal["removeUserTargets"] = "removeUserTargets"
    keys: Annotated[tuple[Text, ...], Field(min_length=1)]
    variation: VariationRef | None = None


class ClearUserTargets(Intent):
    kind: Literal["clearUserTargets"] = "clearUserTargets"
    variation: VariationRef


class ReplaceUserTargets(Intent):
    kind: Literal["replaceUserTargets"] = "replaceUserTargets"
    targets: tuple[UserTargetGroup, ...]


class SetFallthrough(Intent):
    kind: Literal["updateFallthroughVariationOrRollout"] = "updateFallthroughVariationOrRollout"
    serve: Serving


class SetRuleServe(Intent):
    kind: Literal["updateRuleVariationOrRollout"] = "updateRuleVariationOrRollout"
    rule: RuleRef
    serve: Serving


class SetOffVariation(Intent):
    kind: Literal["updateOffVariation"] = "updateOffVariation"
    variation: VariationRef


class AddRule(Intent):
    kind: Literal["addRule"] = "addRule"
    clauses: tuple[ClauseSpec, ...] = ()
    serve: Serving
    before: RuleRef | None = None
    description: str | None = None
    track_events: bool | None = None


class RemoveRule(Intent):
    kind: Literal["removeRule"] = "removeRule"
    rule: RuleRef


class ReorderRules(Intent):
    kind: Literal["reorderRules"] = "reorderRules"
    rules: Annotated[tuple[RuleRef, ...], Field(min_length=1)]


class ReplaceRules(Intent):
    kind: Literal["replaceRules"] = "replaceRules"
    rules: tuple[RuleDraft, ...]


class RenameRule(Intent):
    kind: Literal["updateRuleDescription"] = "updateRuleDescription"
    rule: RuleRef
    description: str


class SetRuleTrackEvents(Intent):
    kind: Literal["updateRuleTrackEvents"] = "updateRuleTrackEvents"
    rule: RuleRef
    track_events: bool


class SetTrackEvents(Intent):
    kind: Literal["updateTrackEvents"] = "updateTrackEvents"
    track_events: bool


class SetFallthroughTrackEvents(Intent):
    kind: Literal["updateTrackEventsFallthrough"] = "updateTrackEventsFallthrough"
    track_events: bool


class AddClauses(Intent):
    kind: Literal["addClauses"] = "addClauses"
    rule: RuleRef
    clauses: Annotated[tuple[ClauseSpec, ...], Field(min_length=1)]


class RemoveClauses(Intent):
    kind: Literal["removeClauses"] = "removeClauses"
    rule: RuleRef
    clauses: Annotated[tuple[ClauseRef, ...], Field(min_length=1)]


class AddClauseValues(Intent):
    kind: Literal["addValuesToClause"] = "addValuesToClause"
    rule: RuleRef
    clause: ClauseRef
    values: Annotated[tuple[ClauseValue, ...], Field(min_length=1)]


class RemoveClauseValues(Intent):
    kind: Literal["removeValuesFromClause"] = "removeValuesFromClause"
    rule: RuleRef
    clause: ClauseRef
    values: Annotated[tuple[ClauseValue, ...], Field(min_length=1)]


class UpdateClause(Intent):
    kind: Literal["updateClause"] = "updateClause"
    rule: RuleRef
    clause: ClauseRef
    new: ClauseSpec


class AddPrerequisite(Intent):
    kind: Literal["addPrerequisite"] = "addPrerequisite"
    key: Text
    variation: VariationRef


class RemovePrerequisite(Intent):
    kind: Literal["removePrerequisite"] = "removePrerequisite"
    key: Text


class UpdatePrerequisite(Intent):
    kind: Literal["updatePrerequisite"] = "updatePrerequisite"
    key: Text
    variation: VariationRef


class ReplacePrerequisites(Intent):
    kind: Literal["replacePrerequisites"] = "replacePrerequisites"
    prerequisites: tuple[Prerequisite, ...]


class AddVariation(Intent):
    kind: Literal["addVariation"] = "addVariation"
    value: ValueLiteral
    name: str | None = None
    description: str | None = None


class RemoveVariation(Intent):
    kind: Literal["removeVariation"] = "removeVariation"
    variation: VariationRef


class UpdateVariation(Intent):
    kind: Literal["updateVariation"] = "updateVariation"
    variation: VariationRef
    value: ValueLiteral | None = None
    name: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> UpdateVariation:
        if self.value is None and self.name is None and self.description is None:
            raise ValueError("update variation needs a new value, name or description")
        return self


class SetDefaultVariations(Intent):
    kind: Literal["updateDefaultVariation"] = "updateDefaultVariation"
    on: VariationRef | None = None
    off: VariationRef | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> SetDefaultVariations:
        if self.on is None and self.off is None:
            raise ValueError("default variations needs `on <variation>` or `off <variation>`")
        return self


class AddCustomProperty(Intent):
    """``name`` None: keep the property's current name, or use its key for a new property."""

    kind: Literal["addCustomProperties"] = "addCustomProperties"
    key: Text
    values: Annotated[tuple[Text, ...], Field(min_length=1)]
    name: Text | None = None


class ReplaceCustomProperty(Intent):
    kind: Literal["replaceCustomProperties"] = "replaceCustomProperties"
    key: Text
    values: tuple[Text, ...]
    name: Text | None = None


class RemoveCustomPropertyValues(Intent):
    kind: Literal["removeCustomProperties"] = "removeCustomProperties"
    key: Text
    values: Annotated[tuple[Text, ...], Field(min_length=1)]


class AddTags(Intent):
    kind: Literal["addTags"] = "addTags"
    tags: Annotated[tuple[Text, ...], Field(min_length=1)]


class RemoveTags(Intent):
    kind: Literal["removeTags"] = "removeTags"
    tags: Annotated[tuple[Text, ...], Field(min_length=1)]


class MakePermanent(Intent):
    kind: Literal["makeFlagPermanent"] = "makeFlagPermanent"


class MakeTemporary(Intent):
    kind: Literal["makeFlagTemporary"] = "makeFlagTemporary"


class RemoveMaintainer(Intent):
    kind: Literal["removeMaintainer"] = "removeMaintainer"


class MaintainerMember(Intent):
    """``member``: a LaunchDarkly member id, or an email that ``resolve(members=...)`` maps to one."""

    kind: Literal["updateMaintainerMember"] = "updateMaintainerMember"
    member: Text


class MaintainerTeam(Intent):
    kind: Literal["updateMaintainerTeam"] = "updateMaintainerTeam"
    team: Text


class ExposeClientSide(Intent):
    kind: Literal["turnOnClientSideAvailability"] = "turnOnClientSideAvailability"
    sdk: ClientSideSdk


class HideClientSide(Intent):
    kind: Literal["turnOffClientSideAvailability"] = "turnOffClientSideAvailability"
    sdk: ClientSideSdk


class SetDescription(Intent):
    kind: Literal["updateDescription"] = "updateDescription"
    description: str


class Rename(Intent):
    kind: Literal["updateName"] = "updateName"
    name: Text


class Archive(Intent):
    kind: Literal["archiveFlag"] = "archiveFlag"


class Delete(Intent):
    kind: Literal["deleteFlag"] = "deleteFlag"


class Deprecate(Intent):
    kind: Literal["deprecateFlag"] = "deprecateFlag"


class Undeprecate(Intent):
    kind: Literal["restoreDeprecatedFlag"] = "restoreDeprecatedFlag"


class Restore(Intent):
    kind: Literal["restoreFlag"] = "restoreFlag"


AnyIntent = Annotated[
    TurnOn
    | TurnOff
    | AddTargets
    | RemoveTargets
    | ClearTargets
    | ReplaceTargets
    | AddUserTargets
    | RemoveUserTargets
    | ClearUserTargets
    | ReplaceUserTargets
    | SetFallthrough
    | SetRuleServe
    | SetOffVariation
    | AddRule
    | RemoveRule
    | ReorderRules
    | ReplaceRules
    | RenameRule
    | SetRuleTrackEvents
    | SetTrackEvents
    | SetFallthroughTrackEvents
    | AddClauses
    | RemoveClauses
    | AddClauseValues
    | RemoveClauseValues
    | UpdateClause
    | AddPrerequisite
    | RemovePrerequisite
    | UpdatePrerequisite
    | ReplacePrerequisites
    | AddVariation
    | RemoveVariation
    | UpdateVariation
    | SetDefaultVariations
    | AddCustomProperty
    | ReplaceCustomProperty
    | RemoveCustomPropertyValues
    | AddTags
    | RemoveTags
    | MakePermanent
    | MakeTemporary
    | RemoveMaintainer
    | MaintainerMember
    | MaintainerTeam
    | ExposeClientSide
    | HideClientSide
    | SetDescription
    | Rename
    | Archive
    | Delete
    | Deprecate
    | Undeprecate
    | Restore,
    Field(discriminator="kind"),
]

#: instruction kind -> intent class, for all 53 kinds.
INTENT_MODELS: dict[str, type[Intent]] = {
    cls.model_fields["kind"].default: cls for cls in typing.get_args(typing.get_args(AnyIntent)[0])
}


# --- commands -----------------------------------------------------------------------------------


class ChangeCommand(_Frozen):
    """Changes to one flag (in one environment when any change needs one), applied atomically."""

    flag: Text
    environment: Text | None = None
    project: Text | None = None
    changes: Annotated[tuple[AnyIntent, ...], Field(min_length=1)]
    comment: str | None = None
    approval: bool = False
    reviewers: tuple[Text, ...] = ()
    schedule: Schedule | None = None

    @property
    def environment_scoped(self) -> bool:
        """Whether any change needs an environment."""
        return any(c.environment_scoped for c in self.changes)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The instruction kinds, in order."""
        return tuple(c.kind for c in self.changes)


class ShowCommand(_Frozen):
    """Show a flag (in one environment, or all)."""

    flag: Text
    environment: Text | None = None
    project: Text | None = None


class ListCommand(_Frozen):
    """List flags, optionally matching a text query and/or a tag."""

    query: Text | None = None
    tag: Text | None = None
    project: Text | None = None


class HelpCommand(_Frozen):
    """Help, on a topic (a verb, an instruction kind, or a group) or overall."""

    topic: Text | None = None


RawShape = Literal["semantic", "json-patch", "merge-patch", "link-patch", "project-patch"]


class RawCommand(_Frozen):
    """An expert escape hatch: a request body written as JSON, validated, sent as is.

    ``body`` is the exact JSON body (already validated against the models of
    ``commands.instructions``); ``link_id`` names the flag link of a ``link-patch``.
    """

    flag: Text | None = None
    environment: Text | None = None
    project: Text | None = None
    shape: RawShape
    body: Any
    link_id: Text | None = None


class ReservedCommand(_Frozen):
    """A verb the core reserves and parses but later parts of the bot execute.

    ``verb`` is the registry name (``history``, ``eval``, ``approvals``, ``remind``, ``reminders``,
    ``scheduled``, ``link``, ``link edit``, ``link-account``, ``unlink-account``, ``config``, ``undo``);
    ``args`` holds the remaining arguments as documented per verb in the help (``eval``: the context
    as LaunchDarkly's JSON, ``commands.contexts``).
    """

    verb: Text
    args: tuple[str, ...] = ()
    flag: Text | None = None
    environment: Text | None = None
    project: Text | None = None


Command = ChangeCommand | ShowCommand | ListCommand | HelpCommand | RawCommand | ReservedCommand
