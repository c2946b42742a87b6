"""The engine on environment-scoped instructions: on/off, rules, clauses, fallthrough, targets,
prerequisites; plus versions, refusals of unknown references, and touched_parts.

Helpers here (``run``, ``refusal``, ``vid``, ``rule_id``) are shared by the other engine test files.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from commands.demo import demo_flags
from commands.engine import apply, touched_parts
from commands.errors import EngineRefusal
from commands.instructions import SemanticPatch

NOW = 1_800_000_000_000


def ids() -> Callable[[], str]:
    """A deterministic new_id: id-1, id-2, ..."""
    counter = itertools.count(1)
    return lambda: f"id-{next(counter)}"


def flag(key: str) -> dict[str, Any]:
    """A fresh copy of a demo flag."""
    return demo_flags()[key]


def make_patch(*instructions: dict[str, Any], env: str | None = "test") -> SemanticPatch:
    body: dict[str, Any] = {"instructions": list(instructions)}
    if env is not None:
        body["environmentKey"] = env
    return SemanticPatch.model_validate(body)


def run(
    doc: dict[str, Any] | str,
    *instructions: dict[str, Any],
    env: str | None = "test",
    other_flags: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Apply instructions to a demo flag (by key) or a document, with fixed ids and time."""
    document = flag(doc) if isinstance(doc, str) else doc
    return apply(
        document, make_patch(*instructions, env=env), other_flags=other_flags, new_id=ids(), now_ms=NOW
    )


def refusal(
    doc: dict[str, Any] | str,
    *instructions: dict[str, Any],
    env: str | None = "test",
    other_flags: dict[str, dict[str, Any]] | None = None,
) -> EngineRefusal:
    """The refusal that applying the instructions raises."""
    with pytest.raises(EngineRefusal) as caught:
        run(doc, *instructions, env=env, other_flags=other_flags)
    return caught.value


def vid(doc: dict[str, Any] | str, value: Any) -> str:
    """The _id of the variation with ``value``."""
    document = flag(doc) if isinstance(doc, str) else doc
    for variation in document["variations"]:
        if variation["value"] == value and type(variation["value"]) is type(value):
            return str(variation["_id"])
    raise AssertionError(f"no variation {value!r}")


def rule_id(doc: dict[str, Any] | str, description: str, env: str = "test") -> str:
    document = flag(doc) if isinstance(doc, str) else doc
    for rule in document["environments"][env]["rules"]:
        if rule.get("description") == description:
            return str(rule["_id"])
    raise AssertionError(f"no rule {description!r}")


def env_of(doc: dict[str, Any], env: str = "test") -> dict[str, Any]:
    result: dict[str, Any] = doc["environments"][env]
    return result


TRUE = vid("new-checkout", True)
FALSE = vid("new-checkout", False)
BLUE, GREEN, RED = (vid("banner-color", c) for c in ("blue", "green", "red"))
V2, V1 = vid("pricing-page", "v2"), vid("pricing-page", "v1")
BETA = rule_id("pricing-page", "Beta testers")
EU = rule_id("pricing-page", "EU customers")
STAFF = rule_id("pricing-page", "Internal staff")
EU_COUNTRY = "d015b186-d7ff-533f-8d33-fbc2258cc912"
EU_PLAN = "67c11099-184a-5e6e-81ac-53292e367231"
CLAUSE = {"contextKind": "user", "attribute": "country", "op": "in", "negate": False, "values": ["US", "CA"]}


# --- on / off -----------------------------------------------------------------------------------


def test_turn_flag_off_and_on() -> None:
    assert env_of(run("new-checkout", {"kind": "turnFlagOff"}))["on"] is False
    assert env_of(run("new-checkout", {"kind": "turnFlagOn"}, env="production"), "production")["on"] is True


def test_versions_move_for_the_flag_and_the_patched_environment_only() -> None:
    before = flag("new-checkout")
    after = run(before, {"kind": "turnFlagOff"})
    assert after["_version"] == before["_version"] + 1
    assert env_of(after)["version"] == env_of(before)["version"] + 1
    assert env_of(after)["lastModified"] == NOW
    assert env_of(after, "production") == env_of(before, "production")


def test_an_instruction_that_changes_nothing_still_counts_as_applied() -> None:
    after = run("new-checkout", {"kind": "turnFlagOn"})  # already on in test
    assert env_of(after)["on"] is True
    assert after["_version"] == 2 and env_of(after)["version"] == 2


def test_summary_of_a_touched_environment_is_dropped() -> None:
    doc = flag("new-checkout")
    doc["environments"]["test"]["_summary"] = {"prerequisites": 0, "variations": {}}
    doc["environments"]["production"]["_summary"] = {"prerequisites": 0, "variations": {}}
    after = run(doc, {"kind": "turnFlagOff"})
    assert "_summary" not in env_of(after)
    assert "_summary" in env_of(after, "production")


def test_unknown_environment_is_refused() -> None:
    error = refusal("new-checkout", {"kind": "turnFlagOff"}, env="staging")
    assert error.index == 0 and error.kind == "turnFlagOff"
    assert 'unknown environment "staging"' in error.message
    assert error.message.startswith("instruction 1 (turnFlagOff): ")


# --- clauses ------------------------------------------------------------------------------------


def test_add_clauses_appends_with_new_ids() -> None:
    after = run("pricing-page", {"kind": "addClauses", "ruleId": BETA, "clauses": [CLAUSE]})
    clauses = env_of(after)["rules"][0]["clauses"]
    assert len(clauses) == 2
    assert clauses[1] == {
        "_id": "id-1",
        "attribute": "country",
        "op": "in",
        "values": ["US", "CA"],
        "contextKind": "user",
        "negate": False,
    }


def test_remove_clauses() -> None:
    after = run("pricing-page", {"kind": "removeClauses", "ruleId": EU, "clauseIds": [EU_PLAN]})
    assert [c["_id"] for c in env_of(after)["rules"][1]["clauses"]] == [EU_COUNTRY]


def test_remove_clauses_refuses_an_unknown_clause() -> None:
    error = refusal("pricing-page", {"kind": "removeClauses", "ruleId": EU, "clauseIds": ["nope"]})
    assert 'unknown clauseId "nope"' in error.message


def test_add_values_to_clause_skips_values_already_there() -> None:
    after = run(
        "pricing-page",
        {"kind": "addValuesToClause", "ruleId": EU, "clauseId": EU_COUNTRY, "values": ["BE", "DE"]},
    )
    assert env_of(after)["rules"][1]["clauses"][0]["values"] == ["DE", "FR", "NL", "BE"]
    assert env_of(after)["rules"][1]["clauses"][0]["op"] == "in"


def test_remove_values_from_clause() -> None:
    after = run(
        "pricing-page",
        {"kind": "removeValuesFromClause", "ruleId": EU, "clauseId": EU_COUNTRY, "values": ["FR", "XX"]},
    )
    assert env_of(after)["rules"][1]["clauses"][0]["values"] == ["DE", "NL"]


def test_update_clause_replaces_it_and_keeps_its_id() -> None:
    new = {
        "contextKind": "organization",
        "attribute": "region",
        "op": "startsWith",
        "negate": True,
        "values": ["eu-"],
    }
    after = run("pricing-page", {"kind": "updateClause", "ruleId": EU, "clauseId": EU_COUNTRY, "clause": new})
    assert env_of(after)["rules"][1]["clauses"][0] == {
        "_id": EU_COUNTRY,
        "attribute": "region",
        "op": "startsWith",
        "values": ["eu-"],
        "contextKind": "organization",
        "negate": True,
    }
    assert env_of(after)["rules"][1]["clauses"][1]["_id"] == EU_PLAN


def test_unknown_rule_is_refused() -> None:
    error = refusal("pricing-page", {"kind": "updateRuleDescription", "ruleId": "nope", "description": "x"})
    assert 'unknown ruleId "nope"' in error.message


# --- rules --------------------------------------------------------------------------------------


def test_add_rule_at_the_end_with_a_variation() -> None:
    after = run(
        "pricing-page", {"kind": "addRule", "variationId": V1, "clauses": [CLAUSE], "description": "US"}
    )
    rules = env_of(after)["rules"]
    assert len(rules) == 4
    assert rules[3] == {
        "_id": "id-1",
        "description": "US",
        "variation": 1,
        "trackEvents": False,
        "clauses": [
            {
                "_id": "id-2",
                **{k: CLAUSE[k] for k in ("attribute", "op", "values")},
                "contextKind": "user",
                "negate": False,
            }
        ],
    }


def test_add_rule_before_another_with_a_rollout() -> None:
    after = run(
        "pricing-page",
        {
            "kind": "addRule",
            "beforeRuleId": EU,
            "clauses": [CLAUSE],
            "rolloutWeights": {V1: 85000, V2: 15000},
            "rolloutBucketBy": "orgId",
            "rolloutContextKind": "organization",
        },
    )
    rules = env_of(after)["rules"]
    assert [r["_id"] for r in rules] == [BETA, "id-1", EU, STAFF]
    assert rules[1]["rollout"] == {
        "variations": [{"variation": 0, "weight": 15000}, {"variation": 1, "weight": 85000}],
        "contextKind": "organization",
        "bucketBy": "orgId",
    }
    assert "variation" not in rules[1]


def test_add_rule_refuses_a_rollout_naming_an_unknown_variation() -> None:
    error = refusal("pricing-page", {"kind": "addRule", "rolloutWeights": {V1: 50000, "ghost": 50000}})
    assert 'unknown variationId "ghost"' in error.message


def test_add_rule_refuses_an_unknown_before_rule() -> None:
    assert (
        "unknown ruleId"
        in refusal("pricing-page", {"kind": "addRule", "variationId": V1, "beforeRuleId": "nope"}).message
    )


def test_remove_rule_and_absent_rule_does_nothing() -> None:
    after = run("pricing-page", {"kind": "removeRule", "ruleId": EU})
    assert [r["_id"] for r in env_of(after)["rules"]] == [BETA, STAFF]
    same = run("pricing-page", {"kind": "removeRule", "ruleId": "not-there"})
    assert env_of(same)["rules"] == env_of(flag("pricing-page"))["rules"]


def test_reorder_rules() -> None:
    after = run("pricing-page", {"kind": "reorderRules", "ruleIds": [STAFF, BETA, EU]})
    assert [r["_id"] for r in env_of(after)["rules"]] == [STAFF, BETA, EU]
    assert env_of(after)["rules"][0]["description"] == "Internal staff"


@pytest.mark.parametrize("rule_ids", [[STAFF, BETA], [STAFF, BETA, EU, "x"], [STAFF, BETA, BETA]])
def test_reorder_rules_refuses_a_set_that_differs_from_the_rules(rule_ids: list[str]) -> None:
    error = refusal("pricing-page", {"kind": "reorderRules", "ruleIds": rule_ids})
    assert "ruleIds must list every rule" in error.message


def test_replace_rules_gives_new_ids() -> None:
    after = run(
        "pricing-page",
        {
            "kind": "replaceRules",
            "rules": [
                {
                    "variationId": V2,
                    "description": "My new rule",
                    "trackEvents": True,
                    "clauses": [
                        {
                            "contextKind": "user",
                            "attribute": "segmentMatch",
                            "op": "segmentMatch",
                            "values": ["test"],
                        }
                    ],
                },
                {"rolloutWeights": {V2: 100000}},
            ],
        },
    )
    rules = env_of(after)["rules"]
    assert [r["_id"] for r in rules] == ["id-1", "id-3"]
    assert rules[0]["variation"] == 0 and rules[0]["trackEvents"] is True
    assert rules[0]["clauses"][0]["_id"] == "id-2"
    assert rules[1]["rollout"] == {"variations": [{"variation": 0, "weight": 100000}], "contextKind": "user"}
    assert rules[1]["clauses"] == [] and rules[1]["trackEvents"] is False


def test_update_rule_description_and_track_events() -> None:
    after = run(
        "pricing-page",
        {"kind": "updateRuleDescription", "ruleId": BETA, "description": "Testers"},
        {"kind": "updateRuleTrackEvents", "ruleId": BETA, "trackEvents": True},
    )
    assert env_of(after)["rules"][0]["description"] == "Testers"
    assert env_of(after)["rules"][0]["trackEvents"] is True


def test_update_rule_variation_or_rollout_swaps_one_for_the_other() -> None:
    after = run("pricing-page", {"kind": "updateRuleVariationOrRollout", "ruleId": EU, "variationId": V2})
    assert env_of(after)["rules"][1]["variation"] == 0 and "rollout" not in env_of(after)["rules"][1]
    after = run(
        "pricing-page",
        {"kind": "updateRuleVariationOrRollout", "ruleId": BETA, "rolloutWeights": {V2: 10000, V1: 90000}},
    )
    assert "variation" not in env_of(after)["rules"][0]
    assert env_of(after)["rules"][0]["rollout"]["variations"] == [
        {"variation": 0, "weight": 10000},
        {"variation": 1, "weight": 90000},
    ]


# --- fallthrough, off variation, events ---------------------------------------------------------


def test_update_fallthrough_to_a_variation_and_to_a_rollout() -> None:
    after = run("banner-color", {"kind": "updateFallthroughVariationOrRollout", "variationId": RED})
    assert env_of(after)["fallthrough"] == {"variation": 2}
    after = run(
        "banner-color",
        {"kind": "updateFallthroughVariationOrRollout", "rolloutWeights": {GREEN: 15000, BLUE: 85000}},
        env="production",
    )
    assert env_of(after, "production")["fallthrough"] == {
        "rollout": {
            "variations": [{"variation": 0, "weight": 85000}, {"variation": 1, "weight": 15000}],
            "contextKind": "user",
        }
    }


def test_update_off_variation() -> None:
    assert (
        env_of(run("banner-color", {"kind": "updateOffVariation", "variationId": BLUE}))["offVariation"] == 0
    )
    assert (
        "unknown variationId"
        in refusal("banner-color", {"kind": "updateOffVariation", "variationId": TRUE}).message
    )


def test_update_track_events_and_fallthrough_track_events() -> None:
    after = run(
        "pricing-page",
        {"kind": "updateTrackEvents", "trackEvents": True},
        {"kind": "updateTrackEventsFallthrough", "trackEvents": True},
    )
    assert env_of(after)["trackEvents"] is True
    assert env_of(after)["trackEventsFallthrough"] is True
    assert env_of(after)["rules"][0]["trackEvents"] is False


# --- individual targets -------------------------------------------------------------------------


def test_add_targets_for_users_go_to_targets() -> None:
    after = run("new-checkout", {"kind": "addTargets", "variationId": FALSE, "values": ["carol", "dan"]})
    assert env_of(after)["targets"] == [
        {"contextKind": "user", "values": ["alice", "bob"], "variation": 0},
        {"contextKind": "user", "values": ["carol", "dan"], "variation": 1},
    ]
    assert env_of(after)["contextTargets"] == env_of(flag("new-checkout"))["contextTargets"]


def test_add_targets_of_another_kind_go_to_context_targets() -> None:
    after = run(
        "new-checkout",
        {
            "kind": "addTargets",
            "contextKind": "device",
            "variationId": TRUE,
            "values": ["ios-qa-2", "ios-qa-1"],
        },
    )
    assert env_of(after)["contextTargets"] == [
        {"contextKind": "device", "values": ["ios-qa-1", "ios-qa-2"], "variation": 0}
    ]


def test_add_targets_refuses_a_key_targeted_by_another_variation() -> None:
    error = refusal(
        "new-checkout",
        {"kind": "turnFlagOn"},
        {"kind": "addTargets", "variationId": FALSE, "values": ["zed", "alice"]},
    )
    assert error.message == 'instruction 2 (addTargets): "alice" is already targeted by variation "true"'
    assert (error.index, error.kind) == (1, "addTargets")


def test_the_same_key_of_another_context_kind_is_no_conflict() -> None:
    after = run(
        "new-checkout",
        {"kind": "addTargets", "contextKind": "device", "variationId": FALSE, "values": ["alice"]},
    )
    assert {"contextKind": "device", "values": ["alice"], "variation": 1} in env_of(after)["contextTargets"]


def test_add_user_targets_refuses_a_key_targeted_by_another_variation() -> None:
    error = refusal("new-checkout", {"kind": "addUserTargets", "variationId": FALSE, "values": ["bob"]})
    assert '"bob" is already targeted by variation "true"' in error.message
    after = run("new-checkout", {"kind": "addUserTargets", "variationId": TRUE, "values": ["bob", "eve"]})
    assert env_of(after)["targets"] == [
        {"contextKind": "user", "values": ["alice", "bob", "eve"], "variation": 0}
    ]


def test_remove_targets_removes_keys_and_empty_entries() -> None:
    after = run("new-checkout", {"kind": "removeTargets", "variationId": TRUE, "values": ["alice", "nobody"]})
    assert env_of(after)["targets"] == [{"contextKind": "user", "values": ["bob"], "variation": 0}]
    after = run(
        "new-checkout",
        {"kind": "removeTargets", "contextKind": "device", "variationId": TRUE, "values": ["ios-qa-1"]},
    )
    assert env_of(after)["contextTargets"] == []


def test_remove_targets_of_keys_not_targeted_does_nothing() -> None:
    after = run("new-checkout", {"kind": "removeTargets", "variationId": FALSE, "values": ["alice"]})
    assert env_of(after)["targets"] == env_of(flag("new-checkout"))["targets"]


def test_remove_user_targets() -> None:
    after = run(
        "new-checkout", {"kind": "removeUserTargets", "variationId": TRUE, "values": ["alice", "bob"]}
    )
    assert env_of(after)["targets"] == []
    assert env_of(after)["contextTargets"] != []


def test_clear_targets_removes_user_and_other_kinds() -> None:
    after = run("new-checkout", {"kind": "clearTargets", "variationId": TRUE})
    assert env_of(after)["targets"] == [] and env_of(after)["contextTargets"] == []


def test_clear_user_targets_keeps_other_kinds() -> None:
    after = run("new-checkout", {"kind": "clearUserTargets", "variationId": TRUE})
    assert env_of(after)["targets"] == []
    assert env_of(after)["contextTargets"] == env_of(flag("new-checkout"))["contextTargets"]


def test_replace_targets() -> None:
    after = run(
        "new-checkout",
        {
            "kind": "replaceTargets",
            "targets": [
                {"contextKind": "user", "variationId": FALSE, "values": ["alice"]},
                {"contextKind": "device", "variationId": TRUE, "values": ["pixel-1"]},
                {"contextKind": "user", "variationId": TRUE, "values": []},
            ],
        },
    )
    assert env_of(after)["targets"] == [{"contextKind": "user", "values": ["alice"], "variation": 1}]
    assert env_of(after)["contextTargets"] == [
        {"contextKind": "device", "values": ["pixel-1"], "variation": 0}
    ]


def test_replace_targets_refuses_one_key_in_two_variations() -> None:
    error = refusal(
        "new-checkout",
        {
            "kind": "replaceTargets",
            "targets": [
                {"variationId": FALSE, "values": ["alice"]},
                {"variationId": TRUE, "values": ["alice"]},
            ],
        },
    )
    assert '"alice" is already targeted by variation "false"' in error.message


def test_replace_user_targets_needs_every_variation_and_keeps_context_targets() -> None:
    after = run(
        "new-checkout",
        {
            "kind": "replaceUserTargets",
            "targets": [{"variationId": TRUE, "values": ["x"]}, {"variationId": FALSE, "values": ["y", "z"]}],
        },
    )
    assert env_of(after)["targets"] == [
        {"contextKind": "user", "values": ["x"], "variation": 0},
        {"contextKind": "user", "values": ["y", "z"], "variation": 1},
    ]
    assert env_of(after)["contextTargets"] == env_of(flag("new-checkout"))["contextTargets"]
    error = refusal(
        "new-checkout", {"kind": "replaceUserTargets", "targets": [{"variationId": TRUE, "values": ["x"]}]}
    )
    assert "must include each of the flag's variations" in error.message and FALSE in error.message


# --- prerequisites ------------------------------------------------------------------------------


def test_add_prerequisite_resolves_the_other_flags_variation_index() -> None:
    others = demo_flags()
    after = run(
        "pricing-page",
        {"kind": "addPrerequisite", "key": "banner-color", "variationId": GREEN},
        other_flags=others,
    )
    assert env_of(after)["prerequisites"] == [{"key": "banner-color", "variation": 1}]


def test_add_prerequisite_refusals() -> None:
    others = demo_flags()
    ins = {"kind": "addPrerequisite", "key": "banner-color", "variationId": GREEN}
    assert "without the project's other flags" in refusal("pricing-page", ins).message
    assert (
        "unknown prerequisite flag"
        in refusal("pricing-page", {**ins, "key": "nope"}, other_flags=others).message
    )
    assert (
        "unknown variationId"
        in refusal("pricing-page", {**ins, "variationId": TRUE}, other_flags=others).message
    )
    assert (
        "already a prerequisite"
        in refusal(
            "express-shipping",
            {"kind": "addPrerequisite", "key": "new-checkout", "variationId": FALSE},
            other_flags=others,
        ).message
    )
    assert "its own prerequisite" in refusal("banner-color", {**ins}, other_flags=others).message
    # new-checkout -> express-shipping -> new-checkout would be a cycle.
    cycle = refusal(
        "new-checkout",
        {"kind": "addPrerequisite", "key": "express-shipping", "variationId": vid("express-shipping", True)},
        other_flags=others,
    )
    assert "cycle" in cycle.message


def test_remove_prerequisite_and_absent_one_does_nothing() -> None:
    after = run("express-shipping", {"kind": "removePrerequisite", "key": "new-checkout"})
    assert env_of(after)["prerequisites"] == []
    same = run("express-shipping", {"kind": "removePrerequisite", "key": "banner-color"})
    assert env_of(same)["prerequisites"] == [{"key": "new-checkout", "variation": 0}]


def test_update_prerequisite_and_missing_one_is_refused() -> None:
    others = demo_flags()
    after = run(
        "express-shipping",
        {"kind": "updatePrerequisite", "key": "new-checkout", "variationId": FALSE},
        other_flags=others,
    )
    assert env_of(after)["prerequisites"] == [{"key": "new-checkout", "variation": 1}]
    error = refusal(
        "express-shipping",
        {"kind": "updatePrerequisite", "key": "banner-color", "variationId": BLUE},
        other_flags=others,
    )
    assert '"banner-color" is not a prerequisite' in error.message


def test_replace_prerequisites() -> None:
    others = demo_flags()
    after = run(
        "express-shipping",
        {
            "kind": "replacePrerequisites",
            "prerequisites": [
                {"key": "banner-color", "variationId": RED},
                {"key": "new-checkout", "variationId": FALSE},
            ],
        },
        other_flags=others,
    )
    assert env_of(after)["prerequisites"] == [
        {"key": "banner-color", "variation": 2},
        {"key": "new-checkout", "variation": 1},
    ]
    error = refusal(
        "express-shipping",
        {
            "kind": "replacePrerequisites",
            "prerequisites": [
                {"key": "banner-color", "variationId": RED},
                {"key": "banner-color", "variationId": BLUE},
            ],
        },
        other_flags=others,
    )
    assert "listed twice" in error.message


# --- touched_parts ------------------------------------------------------------------------------


def test_touched_parts_names_each_environment_part() -> None:
    patch = make_patch(
        {"kind": "turnFlagOn"},
        {"kind": "addClauses", "ruleId": BETA, "clauses": [CLAUSE]},
        {"kind": "updateRuleVariationOrRollout", "ruleId": EU, "variationId": V1},
        {"kind": "addRule", "variationId": V1},
        {"kind": "addTargets", "variationId": V1, "values": ["a"]},
        {"kind": "clearUserTargets", "variationId": V2},
        {"kind": "replaceTargets", "targets": []},
        {"kind": "updateFallthroughVariationOrRollout", "variationId": V1},
        {"kind": "updateOffVariation", "variationId": V1},
        {"kind": "removePrerequisite", "key": "x"},
        {"kind": "updateTrackEventsFallthrough", "trackEvents": True},
        {"kind": "updateName", "value": "flag-level, no part"},
        env="production",
    )
    assert touched_parts(patch) == {
        ("production", "on"),
        ("production", f"rule:{BETA}"),
        ("production", f"rule:{EU}"),
        ("production", "rules"),
        ("production", f"targets:{V1}"),
        ("production", f"targets:{V2}"),
        ("production", "targets"),
        ("production", "fallthrough"),
        ("production", "offVariation"),
        ("production", "prerequisites"),
        ("production", "trackEvents"),
    }


def test_touched_parts_of_a_flag_level_patch_is_empty() -> None:
    assert touched_parts(make_patch({"kind": "addTags", "values": ["x"]}, env=None)) == set()
