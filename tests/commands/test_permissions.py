"""The permission table: every instruction kind, patch path and approval step names LaunchDarkly's
role action, on the right resource."""

from __future__ import annotations

from commands import permissions
from commands.instructions import ENVIRONMENT_SCOPED_KINDS, INSTRUCTION_MODELS
from commands.patches.documents import ENV_FIELDS, FLAG_FIELDS, PROJECT_FIELDS
from commands.permissions import KIND_ACTIONS, Need

# Action names as LaunchDarkly's "Using actions" page lists them for flags (checked with the
# search tool against LaunchDarkly's documentation and published custom roles).
DOCUMENTED_FLAG_ACTIONS = {
    "updateOn",
    "updateTargets",
    "updateRules",
    "updateFlagRuleDescription",
    "updateFallthrough",
    "updateOffVariation",
    "updatePrerequisites",
    "updateTrackEvents",
    "updateFlagFallthroughTrackEvents",
    "updateName",
    "updateDescription",
    "updateTags",
    "updateTemporary",
    "updateMaintainer",
    "updateClientSideFlagAvailability",
    "updateIncludeInSnippet",
    "updateFlagVariations",
    "updateFlagDefaultVariations",
    "updateFlagCustomProperties",
    "updateDeprecated",
    "updateGlobalArchived",
    "deleteFlag",
    "updateFlagConfigMigrationSettings",
    "updateReleasePhaseStatus",
}


def test_every_one_of_the_53_kinds_is_mapped_to_a_documented_action() -> None:
    assert len(INSTRUCTION_MODELS) == 53
    assert set(KIND_ACTIONS) == set(INSTRUCTION_MODELS)
    assert set(KIND_ACTIONS.values()) <= DOCUMENTED_FLAG_ACTIONS


def test_the_issue_examples() -> None:
    expected = {
        "turnFlagOn": "updateOn",
        "addTargets": "updateTargets",
        "addRule": "updateRules",
        "updateFallthroughVariationOrRollout": "updateFallthrough",
        "makeFlagPermanent": "updateTemporary",
        "archiveFlag": "updateGlobalArchived",
        "addVariation": "updateFlagVariations",
        "deleteFlag": "deleteFlag",
    }
    assert {k: KIND_ACTIONS[k] for k in expected} == expected
    assert permissions.CREATE_APPROVAL_REQUEST == "createApprovalRequest"
    assert permissions.REVIEW_APPROVAL_REQUEST == "reviewApprovalRequest"
    assert permissions.APPLY_APPROVAL_REQUEST == "applyApprovalRequest"
    assert permissions.BYPASS_REQUIRED_APPROVAL == "bypassRequiredApproval"
    assert permissions.UPDATE_SCHEDULED_CHANGES == "updateScheduledChanges"


def test_every_patchable_path_is_mapped() -> None:
    assert FLAG_FIELDS - {"environments"} <= set(permissions.FLAG_FIELD_ACTIONS)
    assert set(permissions.ENV_FIELD_ACTIONS) >= ENV_FIELDS
    assert set(permissions.PROJECT_FIELD_ACTIONS) >= PROJECT_FIELDS
    assert set(permissions.ENV_FIELD_ACTIONS.values()) <= DOCUMENTED_FLAG_ACTIONS
    assert set(permissions.FLAG_FIELD_ACTIONS.values()) <= DOCUMENTED_FLAG_ACTIONS


def test_resources_environment_scoped_flag_level_and_project() -> None:
    needs = permissions.instruction_needs(
        "demo", "new-checkout", "test", ["turnFlagOff", "addTags", "turnFlagOn"]
    )
    assert needs == [
        Need("updateOn", "demo", "new-checkout", "test"),
        Need("updateTags", "demo", "new-checkout", None),
    ]
    assert needs[0].resource == "proj/demo:env/test:flag/new-checkout"
    assert needs[1].resource == "proj/demo:env/*:flag/new-checkout"
    assert needs[0].describe() == "on test for new-checkout"
    (project,) = permissions.project_patch_needs("demo", ["name"])
    assert project.resource == "proj/demo" and project.action == "updateProjectName"
    assert all(
        (k in ENVIRONMENT_SCOPED_KINDS) == (n.environment is not None)
        for k in KIND_ACTIONS
        for n in permissions.instruction_needs("p", "f", "e", [k])
    )


def test_a_patch_needs_its_fields_and_each_environments_kinds() -> None:
    needs = permissions.flag_patch_needs(
        "demo", "f", ["production", "test"], ["archived"], ["turnFlagOn", "archiveFlag", "replaceRules"]
    )
    assert Need("updateGlobalArchived", "demo", "f", None) in needs
    assert {(n.action, n.environment) for n in needs if n.environment} == {
        ("updateOn", "production"),
        ("updateOn", "test"),
        ("updateRules", "production"),
        ("updateRules", "test"),
    }
