"""What a change needs from LaunchDarkly's roles: each instruction kind, JSON-patch path, project
field and approval step mapped to the role *action* LaunchDarkly checks, on which resource.

Pure data and small functions (no I/O): ``commands.roles`` decides whether a person's roles allow
what this module says a change needs; ``bot.identity.roles`` asks both before anything is sent
through the bot's service token.

Resources (LaunchDarkly's resource specifiers):

- an environment's targeting: ``proj/<p>:env/<e>:flag/<key>``;
- a flag-level setting (name, tags, variations, archive...): ``proj/<p>:env/*:flag/<key>``, the
  form LaunchDarkly's documentation and roles use for actions that affect every environment (a
  statement naming one environment does not grant them);
- a project's settings: ``proj/<p>``.

Action names are LaunchDarkly's "Using actions" page (flag, project and approval actions), checked
against the custom roles published with Terraform and the audit log's ``accesses``.
"""

from __future__ import annotations

from dataclasses import dataclass

from commands.instructions import ENVIRONMENT_SCOPED_KINDS, INSTRUCTION_MODELS

# --- flag actions, by instruction kind ------------------------------------------------------------

#: The role action each of the 53 semantic-patch instruction kinds needs.
KIND_ACTIONS: dict[str, str] = {
    # targeting on/off
    "turnFlagOn": "updateOn",
    "turnFlagOff": "updateOn",
    # rules and clauses
    "addClauses": "updateRules",
    "removeClauses": "updateRules",
    "addValuesToClause": "updateRules",
    "removeValuesFromClause": "updateRules",
    "updateClause": "updateRules",
    "addRule": "updateRules",
    "removeRule": "updateRules",
    "reorderRules": "updateRules",
    "replaceRules": "updateRules",
    "updateRuleVariationOrRollout": "updateRules",
    "updateRuleDescription": "updateFlagRuleDescription",
    "updateRuleTrackEvents": "updateTrackEvents",
    # default rule, off variation, events
    "updateFallthroughVariationOrRollout": "updateFallthrough",
    "updateOffVariation": "updateOffVariation",
    "updateTrackEvents": "updateTrackEvents",
    "updateTrackEventsFallthrough": "updateFlagFallthroughTrackEvents",
    # individual targets (contexts and legacy users)
    "addTargets": "updateTargets",
    "removeTargets": "updateTargets",
    "clearTargets": "updateTargets",
    "replaceTargets": "updateTargets",
    "addUserTargets": "updateTargets",
    "removeUserTargets": "updateTargets",
    "clearUserTargets": "updateTargets",
    "replaceUserTargets": "updateTargets",
    # prerequisites
    "addPrerequisite": "updatePrerequisites",
    "removePrerequisite": "updatePrerequisites",
    "updatePrerequisite": "updatePrerequisites",
    "replacePrerequisites": "updatePrerequisites",
    # variations (flag-level)
    "addVariation": "updateFlagVariations",
    "removeVariation": "updateFlagVariations",
    "updateVariation": "updateFlagVariations",
    "updateDefaultVariation": "updateFlagDefaultVariations",
    # settings (flag-level)
    "addCustomProperties": "updateFlagCustomProperties",
    "replaceCustomProperties": "updateFlagCustomProperties",
    "removeCustomProperties": "updateFlagCustomProperties",
    "addTags": "updateTags",
    "removeTags": "updateTags",
    "makeFlagPermanent": "updateTemporary",
    "makeFlagTemporary": "updateTemporary",
    "removeMaintainer": "updateMaintainer",
    "updateMaintainerMember": "updateMaintainer",
    "updateMaintainerTeam": "updateMaintainer",
    "turnOnClientSideAvailability": "updateClientSideFlagAvailability",
    "turnOffClientSideAvailability": "updateClientSideFlagAvailability",
    "updateDescription": "updateDescription",
    "updateName": "updateName",
    # lifecycle (flag-level)
    "archiveFlag": "updateGlobalArchived",
    "restoreFlag": "updateGlobalArchived",
    "deprecateFlag": "updateDeprecated",
    "restoreDeprecatedFlag": "updateDeprecated",
    "deleteFlag": "deleteFlag",
}

# --- JSON patch paths -----------------------------------------------------------------------------

#: ``/environments/<e>/<field>``: the action a change of an environment's field needs.
ENV_FIELD_ACTIONS: dict[str, str] = {
    "on": "updateOn",
    "offVariation": "updateOffVariation",
    "fallthrough": "updateFallthrough",
    "targets": "updateTargets",
    "contextTargets": "updateTargets",
    "rules": "updateRules",
    "prerequisites": "updatePrerequisites",
    "trackEvents": "updateTrackEvents",
    "trackEventsFallthrough": "updateFlagFallthroughTrackEvents",
    "migrationSettings": "updateFlagConfigMigrationSettings",
}

#: ``/<field>`` of a flag: the action a change of a flag-level field needs.
FLAG_FIELD_ACTIONS: dict[str, str] = {
    "name": "updateName",
    "description": "updateDescription",
    "tags": "updateTags",
    "temporary": "updateTemporary",
    "archived": "updateGlobalArchived",
    "deprecated": "updateDeprecated",
    "variations": "updateFlagVariations",
    "defaults": "updateFlagDefaultVariations",
    "clientSideAvailability": "updateClientSideFlagAvailability",
    "includeInSnippet": "updateIncludeInSnippet",
    "customProperties": "updateFlagCustomProperties",
    "maintainerId": "updateMaintainer",
    "maintainerTeamKey": "updateMaintainer",
    "migrationSettings": "updateFlagConfigMigrationSettings",
    "releasePipelineKey": "updateReleasePhaseStatus",
}

#: ``/<field>`` of a project (``project-patch``): the action on ``proj/<p>``.
PROJECT_FIELD_ACTIONS: dict[str, str] = {
    "name": "updateProjectName",
    "tags": "updateTags",
    "includeInSnippetByDefault": "updateIncludeInSnippetByDefault",
    "defaultClientSideAvailability": "updateDefaultClientSideAvailability",
    "defaultReleasePipelineKey": "updateDefaultReleasePipeline",
}

# --- approvals and scheduled changes (on the flag in one environment) -----------------------------

CREATE_APPROVAL_REQUEST = "createApprovalRequest"
REVIEW_APPROVAL_REQUEST = "reviewApprovalRequest"
APPLY_APPROVAL_REQUEST = "applyApprovalRequest"
BYPASS_REQUIRED_APPROVAL = "bypassRequiredApproval"  # flagops never bypasses; named for completeness
UPDATE_SCHEDULED_CHANGES = "updateScheduledChanges"


@dataclass(frozen=True)
class Need:
    """One action a change needs: on a flag in ``environment`` (None: the flag-level resource,
    ``env/*``), or on the project when ``flag`` is None."""

    action: str
    project: str
    flag: str | None
    environment: str | None

    @property
    def resource(self) -> str:
        """The resource, as LaunchDarkly writes it (``proj/demo:env/test:flag/new-checkout``)."""
        if self.flag is None:
            return f"proj/{self.project}"
        return f"proj/{self.project}:env/{self.environment or '*'}:flag/{self.flag}"

    def describe(self) -> str:
        """Where, in words: ``on test for new-checkout``, ``for new-checkout (every environment)``."""
        if self.flag is None:
            return f"on project {self.project}"
        if self.environment is None:
            return f"for {self.flag} (a flag-level setting, every environment)"
        return f"on {self.environment} for {self.flag}"


def _dedupe(needs: list[Need]) -> list[Need]:
    seen: list[Need] = []
    for need in needs:
        if need not in seen:
            seen.append(need)
    return seen


def instruction_needs(project: str, flag: str, environment: str | None, kinds: list[str]) -> list[Need]:
    """What applying these instruction kinds needs: environment-scoped kinds on ``environment``,
    flag-level kinds on the flag-level resource.

    Raises:
        KeyError: a kind that is not one of the 53 (a bug: ``KIND_ACTIONS`` covers them all).
    """
    return _dedupe(
        [
            Need(KIND_ACTIONS[kind], project, flag, environment if kind in ENVIRONMENT_SCOPED_KINDS else None)
            for kind in kinds
        ]
    )


def flag_patch_needs(
    project: str, flag: str, environments: list[str], fields: list[str], kinds: list[str]
) -> list[Need]:
    """What a JSON or merge patch on a flag needs: each flag-level ``field`` it changes (by path),
    and the environment-scoped ``kinds`` it amounts to in each environment it changes (the kinds do
    not say which environment each came from, so each is checked in all of them: stricter, never
    looser)."""
    needs = [Need(FLAG_FIELD_ACTIONS[field], project, flag, None) for field in fields]
    for env in environments:
        needs += [Need(KIND_ACTIONS[k], project, flag, env) for k in kinds if k in ENVIRONMENT_SCOPED_KINDS]
    return _dedupe(needs)


def project_patch_needs(project: str, fields: list[str]) -> list[Need]:
    """What a JSON patch on a project needs (``proj/<p>``)."""
    return _dedupe([Need(PROJECT_FIELD_ACTIONS[f], project, None, None) for f in fields])


def approval_need(action: str, project: str, flag: str, environment: str) -> Need:
    """An approval or scheduled-change action on the flag in one environment."""
    return Need(action, project, flag, environment)


def _check_complete() -> None:
    missing = set(INSTRUCTION_MODELS) - set(KIND_ACTIONS)
    extra = set(KIND_ACTIONS) - set(INSTRUCTION_MODELS)
    assert not missing and not extra, (missing, extra)


_check_complete()
