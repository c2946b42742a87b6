"""Every one of the 53 instruction kinds: a readable command and the exact instruction JSON it makes,
optional parameters included, resolved against the demo flags."""

from __future__ import annotations

from typing import Any

import pytest

from commands import ChangeCommand, parse, resolve
from commands.demo import demo_flags, demo_members
from commands.instructions import INSTRUCTION_MODELS

FLAGS = demo_flags()
MEMBERS = {m["email"]: m["_id"] for m in demo_members()}


def var(flag: str, value: Any) -> str:
    return next(
        v["_id"] for v in FLAGS[flag]["variations"] if v["value"] == value and type(v["value"]) is type(value)
    )


def rule(flag: str, env: str, n: int) -> str:
    return str(FLAGS[flag]["environments"][env]["rules"][n - 1]["_id"])


def clause(flag: str, env: str, n: int, c: int) -> str:
    return str(FLAGS[flag]["environments"][env]["rules"][n - 1]["clauses"][c - 1]["_id"])


NC_TRUE, NC_FALSE = var("new-checkout", True), var("new-checkout", False)
BLUE, GREEN, RED = var("banner-color", "blue"), var("banner-color", "green"), var("banner-color", "red")
V2, V1 = var("pricing-page", "v2"), var("pricing-page", "v1")


def c(
    attribute: str, op: str, values: list[Any], *, kind: str = "user", negate: bool = False
) -> dict[str, Any]:
    return {"contextKind": kind, "attribute": attribute, "op": op, "negate": negate, "values": values}


CASES: list[tuple[str, list[dict[str, Any]]]] = [
    ("on new-checkout production", [{"kind": "turnFlagOn"}]),
    ("off new-checkout in production", [{"kind": "turnFlagOff"}]),
    (
        "target new-checkout test user:carol,dave device:ios-qa-2 -> true",
        [
            {
                "kind": "addTargets",
                "contextKind": "user",
                "variationId": NC_TRUE,
                "values": ["carol", "dave"],
            },
            {"kind": "addTargets", "contextKind": "device", "variationId": NC_TRUE, "values": ["ios-qa-2"]},
        ],
    ),
    (
        "untarget new-checkout test alice,device:ios-qa-1",
        [
            {"kind": "removeTargets", "contextKind": "user", "variationId": NC_TRUE, "values": ["alice"]},
            {
                "kind": "removeTargets",
                "contextKind": "device",
                "variationId": NC_TRUE,
                "values": ["ios-qa-1"],
            },
        ],
    ),
    ("clear targets new-checkout test #1", [{"kind": "clearTargets", "variationId": NC_TRUE}]),
    (
        "replace targets new-checkout test alice -> Enabled device:d1 -> Disabled",
        [
            {
                "kind": "replaceTargets",
                "targets": [
                    {"contextKind": "user", "variationId": NC_TRUE, "values": ["alice"]},
                    {"contextKind": "device", "variationId": NC_FALSE, "values": ["d1"]},
                ],
            }
        ],
    ),
    (
        "target-users new-checkout test carol -> false",
        [{"kind": "addUserTargets", "variationId": NC_FALSE, "values": ["carol"]}],
    ),
    (
        "untarget-users new-checkout test bob",
        [{"kind": "removeUserTargets", "variationId": NC_TRUE, "values": ["bob"]}],
    ),
    (
        "clear user-targets new-checkout production true",
        [{"kind": "clearUserTargets", "variationId": NC_TRUE}],
    ),
    (
        "replace user-targets new-checkout test alice,bob -> true carol -> false",
        [
            {
                "kind": "replaceUserTargets",
                "targets": [
                    {"variationId": NC_TRUE, "values": ["alice", "bob"]},
                    {"variationId": NC_FALSE, "values": ["carol"]},
                ],
            }
        ],
    ),
    (
        "rollout banner-color test 10% blue 90% green by email kind organization",
        [
            {
                "kind": "updateFallthroughVariationOrRollout",
                "rolloutWeights": {BLUE: 10000, GREEN: 90000},
                "rolloutBucketBy": "email",
                "rolloutContextKind": "organization",
            }
        ],
    ),
    (
        "serve banner-color production Green",
        [{"kind": "updateFallthroughVariationOrRollout", "variationId": GREEN}],
    ),
    (
        'rollout pricing-page test rule "EU customers" 33.333% v2 66.667% v1',
        [
            {
                "kind": "updateRuleVariationOrRollout",
                "ruleId": rule("pricing-page", "test", 2),
                "rolloutWeights": {V2: 33333, V1: 66667},
            }
        ],
    ),
    ("off-variation banner-color production red", [{"kind": "updateOffVariation", "variationId": RED}]),
    (
        'add rule pricing-page test named "Canada" if country in CA,US and organization.tier not >= 3 '
        'and in segment beta serve 50% v2 50% v1 by key kind organization before rule "Beta testers" '
        "track-events on",
        [
            {
                "kind": "addRule",
                "clauses": [
                    c("country", "in", ["CA", "US"]),
                    c("tier", "greaterThanOrEqual", [3], kind="organization", negate=True),
                    c("segmentMatch", "segmentMatch", ["beta"]),
                ],
                "rolloutWeights": {V2: 50000, V1: 50000},
                "rolloutBucketBy": "key",
                "rolloutContextKind": "organization",
                "beforeRuleId": rule("pricing-page", "test", 1),
                "description": "Canada",
                "trackEvents": True,
            }
        ],
    ),
    ("remove rule pricing-page test 3", [{"kind": "removeRule", "ruleId": rule("pricing-page", "test", 3)}]),
    (
        'reorder rules pricing-page test 3,"beta testers",2',
        [{"kind": "reorderRules", "ruleIds": [rule("pricing-page", "test", n) for n in (3, 1, 2)]}],
    ),
    (
        'replace rules pricing-page test rule named "Staff" if email ends-with @example.com serve v2 '
        "track-events off rule serve 25% v2 75% v1 by country",
        [
            {
                "kind": "replaceRules",
                "rules": [
                    {
                        "variationId": V2,
                        "description": "Staff",
                        "clauses": [c("email", "endsWith", ["@example.com"])],
                        "trackEvents": False,
                    },
                    {"rolloutWeights": {V2: 25000, V1: 75000}, "rolloutBucketBy": "country", "clauses": []},
                ],
            }
        ],
    ),
    (
        'rename rule pricing-page production 2 to "EU and UK customers"',
        [
            {
                "kind": "updateRuleDescription",
                "ruleId": rule("pricing-page", "production", 2),
                "description": "EU and UK customers",
            }
        ],
    ),
    (
        "track-events pricing-page test rule 3 off",
        [{"kind": "updateRuleTrackEvents", "ruleId": rule("pricing-page", "test", 3), "trackEvents": False}],
    ),
    ("track-events pricing-page test on", [{"kind": "updateTrackEvents", "trackEvents": True}]),
    (
        "track-events pricing-page test default on",
        [{"kind": "updateTrackEventsFallthrough", "trackEvents": True}],
    ),
    (
        "add clause pricing-page test rule 2 plan not in trial,free and signup after 1735689600000",
        [
            {
                "kind": "addClauses",
                "ruleId": rule("pricing-page", "test", 2),
                "clauses": [
                    c("plan", "in", ["trial", "free"], negate=True),
                    c("signup", "after", [1735689600000]),
                ],
            }
        ],
    ),
    (
        'remove clause pricing-page test rule "EU customers" clause plan,1',
        [
            {
                "kind": "removeClauses",
                "ruleId": rule("pricing-page", "test", 2),
                "clauseIds": [clause("pricing-page", "test", 2, 2), clause("pricing-page", "test", 2, 1)],
            }
        ],
    ),
    (
        "add values pricing-page test rule 2 clause country ES,IT",
        [
            {
                "kind": "addValuesToClause",
                "ruleId": rule("pricing-page", "test", 2),
                "clauseId": clause("pricing-page", "test", 2, 1),
                "values": ["ES", "IT"],
            }
        ],
    ),
    (
        "remove values pricing-page test rule 2 clause country NL",
        [
            {
                "kind": "removeValuesFromClause",
                "ruleId": rule("pricing-page", "test", 2),
                "clauseId": clause("pricing-page", "test", 2, 1),
                "values": ["NL"],
            }
        ],
    ),
    (
        "update clause pricing-page test rule 3 clause tier to organization.tier > 2.5",
        [
            {
                "kind": "updateClause",
                "ruleId": rule("pricing-page", "test", 3),
                "clauseId": clause("pricing-page", "test", 3, 2),
                "clause": c("tier", "greaterThan", [2.5], kind="organization"),
            }
        ],
    ),
    (
        "add prereq banner-color test new-checkout true",
        [{"kind": "addPrerequisite", "key": "new-checkout", "variationId": NC_TRUE}],
    ),
    (
        "remove prereq express-shipping test new-checkout",
        [{"kind": "removePrerequisite", "key": "new-checkout"}],
    ),
    (
        "update prereq express-shipping test new-checkout Disabled",
        [{"kind": "updatePrerequisite", "key": "new-checkout", "variationId": NC_FALSE}],
    ),
    (
        "replace prereqs express-shipping test new-checkout true, holiday-banner false",
        [
            {
                "kind": "replacePrerequisites",
                "prerequisites": [
                    {"key": "new-checkout", "variationId": NC_TRUE},
                    {"key": "holiday-banner", "variationId": var("holiday-banner", False)},
                ],
            }
        ],
    ),
    (
        'add variation banner-color purple named Purple description "Spring sale"',
        [{"kind": "addVariation", "value": "purple", "name": "Purple", "description": "Spring sale"}],
    ),
    ("remove variation banner-color #3", [{"kind": "removeVariation", "variationId": RED}]),
    (
        'update variation banner-color red value crimson named Crimson description "Darker"',
        [
            {
                "kind": "updateVariation",
                "variationId": RED,
                "value": "crimson",
                "name": "Crimson",
                "description": "Darker",
            }
        ],
    ),
    (
        "default-variations new-checkout on Enabled off false",
        [{"kind": "updateDefaultVariation", "onVariationValue": True, "offVariationValue": False}],
    ),
    (
        'add property banner-color owner.team growth,ads named "Owning team"',
        [
            {
                "kind": "addCustomProperties",
                "key": "owner.team",
                "name": "Owning team",
                "values": ["growth", "ads"],
            }
        ],
    ),
    (
        "replace property new-checkout jira.issues SHOP-200",
        [
            {
                "kind": "replaceCustomProperties",
                "key": "jira.issues",
                "name": "Jira issues",
                "values": ["SHOP-200"],
            }
        ],
    ),
    (
        "remove property new-checkout jira.issues SHOP-101",
        [{"kind": "removeCustomProperties", "key": "jira.issues", "values": ["SHOP-101"]}],
    ),
    ("add tags new-checkout beta, q3", [{"kind": "addTags", "values": ["beta", "q3"]}]),
    ("remove tags new-checkout web", [{"kind": "removeTags", "values": ["web"]}]),
    ("make permanent holiday-banner", [{"kind": "makeFlagPermanent"}]),
    ("make temporary banner-color", [{"kind": "makeFlagTemporary"}]),
    ("remove maintainer holiday-banner", [{"kind": "removeMaintainer"}]),
    (
        "maintainer new-checkout bob@example.com",
        [{"kind": "updateMaintainerMember", "value": MEMBERS["bob@example.com"]}],
    ),
    ("maintainer banner-color team:growth", [{"kind": "updateMaintainerTeam", "value": "growth"}]),
    ("expose new-checkout mobile", [{"kind": "turnOnClientSideAvailability", "value": "usingMobileKey"}]),
    (
        "hide new-checkout client-side",
        [{"kind": "turnOffClientSideAvailability", "value": "usingEnvironmentId"}],
    ),
    (
        'describe banner-color "Sitewide banner color"',
        [{"kind": "updateDescription", "value": "Sitewide banner color"}],
    ),
    ('rename new-checkout "New checkout (2025)"', [{"kind": "updateName", "value": "New checkout (2025)"}]),
    ("archive holiday-banner", [{"kind": "archiveFlag"}]),
    ("delete holiday-banner confirm holiday-banner", [{"kind": "deleteFlag"}]),
    ("deprecate holiday-banner", [{"kind": "deprecateFlag"}]),
    ("undeprecate holiday-banner", [{"kind": "restoreDeprecatedFlag"}]),
    ("restore holiday-banner", [{"kind": "restoreFlag"}]),
]


def test_every_kind_is_reached() -> None:
    reached = {instruction["kind"] for _, instructions in CASES for instruction in instructions}
    assert reached == set(INSTRUCTION_MODELS)
    assert len(reached) == 53


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[text[:50] for text, _ in CASES])
def test_command_makes_exactly_this_instruction(text: str, expected: list[dict[str, Any]]) -> None:
    cmd = parse(text)
    assert isinstance(cmd, ChangeCommand)
    patch = resolve(cmd, FLAGS[cmd.flag], members=MEMBERS, flags=FLAGS)
    assert patch.body()["instructions"] == expected
    assert ("environmentKey" in patch.body()) == cmd.environment_scoped
