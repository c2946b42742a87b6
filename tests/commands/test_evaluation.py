"""The evaluator against LaunchDarkly's own SDK test data, not against itself.

Vendored numbers (no file of theirs is read at test time):

* Bucket values: launchdarkly/python-server-sdk, ``ldclient/testing/impl/test_evaluator_bucketing.py``
  (commit 8a98583): flag key ``hashKey``, salt ``saltyA``; with seed 61; an integer attribute and
  its string; a float attribute buckets at 0.
* A segment rule's bucket: launchdarkly/sdk-test-harness,
  ``data/data-files/server-side-eval/segment-match.yml`` (v2.41.0): segment ``segment3``, salt
  ``salty``: ``user-key`` at 14950 of 100000 (the rule's weight 14955 is "+ 5"), ``unmatching-key``
  at 36563.
* Operators: python-server-sdk, ``ldclient/testing/impl/test_operators.py`` (the same commit).
* Rollouts and experiments: sdk-test-harness, ``server-side-eval/rollout-or-experiment.yml``.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from commands.contexts import ContextError
from commands.demo import demo_flags, demo_segments
from commands.evaluation import evaluate
from commands.evaluation.bucketing import bucket
from commands.evaluation.operators import OPERATORS

# --- bucketing ----------------------------------------------------------------------------------

SDK_BUCKETS = [
    ("userKeyA", None, 0.42157587),
    ("userKeyB", None, 0.6708485),
    ("userKeyC", None, 0.10343106),
    ("userKeyA", 61, 0.09801207),
    ("userKeyB", 61, 0.14483777),
    ("userKeyC", 61, 0.9242641),
]


@pytest.mark.parametrize(("key", "seed", "expected"), SDK_BUCKETS)
def test_bucket_values_are_the_sdks(key: str, seed: int | None, expected: float) -> None:
    assert bucket(key, key="hashKey", salt="saltyA", seed=seed) == pytest.approx(expected, abs=1e-7)


def test_bucket_by_attributes_as_the_sdks_do() -> None:
    assert bucket(33333, key="hashKey", salt="saltyA") == pytest.approx(0.54771423, abs=1e-7)
    assert bucket("33333", key="hashKey", salt="saltyA") == bucket(33333, key="hashKey", salt="saltyA")
    assert bucket(33.5, key="hashKey", salt="saltyA") == 0.0
    assert bucket(True, key="hashKey", salt="saltyA") == 0.0
    # The seed replaces key and salt.
    assert bucket("userKeyA", key="other", salt="saltyB", seed=61) == pytest.approx(0.09801207, abs=1e-7)


def test_segment_rule_bucket_is_the_harness_s() -> None:
    assert int(bucket("user-key", key="segment3", salt="salty") * 100_000) == 14950
    assert int(bucket("unmatching-key", key="segment3", salt="salty") * 100_000) == 36563


def _flag(serve: dict[str, Any], *, key: str = "hashKey", salt: str = "saltyA") -> dict[str, Any]:
    return {
        "key": key,
        "variations": [{"value": "off"}, {"value": "fallthrough"}, {"value": "a"}, {"value": "b"}],
        "environments": {"test": {"on": True, "salt": salt, "offVariation": 0, "fallthrough": serve}},
    }


def test_a_rollout_puts_each_sdk_key_in_the_slice_its_bucket_falls_in() -> None:
    # userKeyA 42157, userKeyB 67084, userKeyC 10343 (of 100000): slices 0-20000 a, 20000-60000 b,
    # 60000-100000 fallthrough.
    rollout = {
        "rollout": {
            "variations": [
                {"variation": 2, "weight": 20000},
                {"variation": 3, "weight": 40000},
                {"variation": 1, "weight": 40000},
            ]
        }
    }
    served = {
        k: evaluate(_flag(rollout), "test", {"key": k}).value for k in ("userKeyA", "userKeyB", "userKeyC")
    }
    assert served == {"userKeyA": "b", "userKeyB": "fallthrough", "userKeyC": "a"}
    seeded = copy.deepcopy(rollout)
    seeded["rollout"]["seed"] = 61  # 9801, 14483, 92426
    served = {
        k: evaluate(_flag(seeded), "test", {"key": k}).value for k in ("userKeyA", "userKeyB", "userKeyC")
    }
    assert served == {"userKeyA": "a", "userKeyB": "a", "userKeyC": "fallthrough"}
    result = evaluate(_flag(rollout), "test", {"key": "userKeyA"})
    assert result.bucket is not None and result.bucket.value == pytest.approx(0.42157587, abs=1e-7)
    assert result.bucket.position == 1 and result.reason == {"kind": "FALLTHROUGH"}


def test_bucket_by_an_attribute_and_a_context_kind() -> None:
    rollout = {
        "rollout": {
            "contextKind": "org",
            "bucketBy": "tier",
            "variations": [{"variation": 2, "weight": 54000}, {"variation": 3, "weight": 46000}],
        }
    }
    # tier 33333 buckets at 0.5477 → b; the user key plays no part.
    context = {"kind": "multi", "user": {"key": "userKeyC"}, "org": {"key": "acme", "tier": 33333}}
    assert evaluate(_flag(rollout), "test", context).value == "b"
    # A context without the rollout's kind gets the first slice.
    assert evaluate(_flag(rollout), "test", {"key": "userKeyC"}).value == "a"


# sdk-test-harness rollout-or-experiment.yml, for the fallthrough and a rule: (rollout, value, in experiment)
HARNESS_ROLLOUTS = [
    ({"variations": [{"variation": 2, "weight": 99999}, {"variation": 3, "weight": 1}]}, "a", False),
    ({"variations": [{"variation": 2, "weight": 1}, {"variation": 3, "weight": 99999}]}, "b", False),
    ({"variations": [{"variation": 2, "weight": 1}, {"variation": 3, "weight": 1}]}, "b", False),
    (
        {
            "kind": "experiment",
            "variations": [{"variation": 2, "weight": 99999}, {"variation": 3, "weight": 1}],
        },
        "a",
        True,
    ),
    (
        {
            "kind": "experiment",
            "variations": [
                {"variation": 2, "weight": 99999, "_untracked": True},
                {"variation": 3, "weight": 1},
            ],
        },
        "a",
        False,
    ),
    (
        {"kind": "experiment", "variations": [{"variation": 2, "weight": 1}, {"variation": 3, "weight": 1}]},
        "b",
        True,
    ),
]


@pytest.mark.parametrize(("rollout", "value", "experiment"), HARNESS_ROLLOUTS)
def test_rollouts_and_experiments_as_the_harness_expects(
    rollout: dict[str, Any], value: str, experiment: bool
) -> None:
    fallthrough = evaluate(_flag({"rollout": rollout}, salt=""), "test", {"key": "user-key"})
    assert fallthrough.value == value
    assert fallthrough.reason == {"kind": "FALLTHROUGH", **({"inExperiment": True} if experiment else {})}
    flag = _flag({"variation": 1}, salt="")
    always = {"attribute": "key", "op": "in", "values": [""], "negate": True}
    flag["environments"]["test"]["rules"] = [{"_id": "rule-id", "rollout": rollout, "clauses": [always]}]
    rule = evaluate(flag, "test", {"key": "user-key"})
    assert rule.value == value
    expected = {"kind": "RULE_MATCH", "ruleIndex": 0, "ruleID": "rule-id"}
    assert rule.reason == {**expected, **({"inExperiment": True} if experiment else {})}


def test_an_empty_rollout_is_a_malformed_flag() -> None:
    result = evaluate(_flag({"rollout": {"variations": []}}), "test", {"key": "user-key"})
    assert result.value is None and result.reason == {"kind": "ERROR", "errorKind": "MALFORMED_FLAG"}


# --- operators ----------------------------------------------------------------------------------

SDK_OPERATORS: list[tuple[str, Any, Any, bool]] = [
    ("in", 99, 99, True),
    ("in", 99.0001, 99.0001, True),
    ("in", 99, 99.0001, False),
    ("lessThan", 99, 99.0001, True),
    ("lessThan", 99.0001, 99, False),
    ("lessThan", 99, 99, False),
    ("lessThanOrEqual", 99, 99, True),
    ("greaterThan", 99.0001, 99, True),
    ("greaterThan", 99, 99, False),
    ("greaterThanOrEqual", 99, 99, True),
    ("greaterThanOrEqual", 99, 99.0001, False),
    ("in", "x", "x", True),
    ("in", "x", "xyz", False),
    ("startsWith", "xyz", "x", True),
    ("startsWith", "x", "xyz", False),
    ("endsWith", "xyz", "z", True),
    ("endsWith", "z", "xyz", False),
    ("contains", "xyz", "y", True),
    ("contains", "y", "xyz", False),
    ("in", True, True, True),
    ("in", True, 1, False),
    ("in", 1, True, False),
    ("in", False, 0, False),
    ("in", 0.0, False, False),
    ("in", "99", 99, False),
    ("in", 99, "99", False),
    ("contains", "99", 99, False),
    ("startsWith", "99", 99, False),
    ("lessThanOrEqual", "99", 99, False),
    ("greaterThanOrEqual", 99, "99", False),
    ("matches", "hello world", "hello.*rld", True),
    ("matches", "hello world", "l+", True),
    ("matches", "hello world", "(world|planet)", True),
    ("matches", "hello world", "aloha", False),
    ("before", 0, 1, True),
    ("before", -100, 0, True),
    ("before", "1970-01-01T00:00:00Z", 1000, True),
    ("before", "1970-01-01T00:00:00.500Z", 1000, True),
    ("before", True, 1000, False),
    ("after", "1970-01-01T00:00:02.500Z", 1000, True),
    ("after", "1970-01-01 00:00:02.500Z", 1000, True),
    ("after", "1970-01-01T00:00:02+01:00", None, False),
    ("after", None, "1970-01-01T00:00:02+01:00", False),
    ("before", "1970-01-01T00:00:02+01:00", 1000, True),
    ("before", -1000, 1000, True),
    ("after", "1970-01-01T00:00:01.001Z", 1000, True),
    ("after", "1970-01-01T00:00:00-01:00", 1000, True),
    ("semVerEqual", "2.0.1", "2.0.1", True),
    ("semVerEqual", "2.0", "2.0.0", True),
    ("semVerEqual", "2", "2.0.0", True),
    ("semVerEqual", 2, "2.0.0", False),
    ("semVerEqual", "2.0.0", 2, False),
    ("semVerEqual", "2.0-rc1", "2.0.0-rc1", True),
    ("semVerLessThan", "2.0.0", "2.0.1", True),
    ("semVerLessThan", "2.0", "2.0.1", True),
    ("semVerLessThan", "2.0.1", "2.0.0", False),
    ("semVerLessThan", "2.0.1", "2.0", False),
    ("semVerGreaterThan", "2.0.1", "2.0.0", True),
    ("semVerGreaterThan", "2.0.1", "2.0", True),
    ("semVerGreaterThan", "2.0.0", "2.0.1", False),
    ("semVerGreaterThan", "2.0", "2.0.1", False),
    ("semVerLessThan", "2.0.1", "xbad%ver", False),
    ("semVerGreaterThan", "2.0.1", "xbad%ver", False),
]


@pytest.mark.parametrize(("op", "context_value", "clause_value", "expected"), SDK_OPERATORS)
def test_operators_are_the_sdks(op: str, context_value: Any, clause_value: Any, expected: bool) -> None:
    assert OPERATORS[op](context_value, clause_value) is expected


def test_semver_prereleases_rank_as_semver_says() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
    ]
    ordered += ["1.0.0-rc.1", "1.0.0"]
    for lower, higher in itertools.pairwise(ordered):
        assert OPERATORS["semVerLessThan"](lower, higher), (lower, higher)
        assert not OPERATORS["semVerLessThan"](higher, lower), (higher, lower)
    assert OPERATORS["semVerEqual"]("1.0.0+build.1", "1.0.0")


# --- the flag: off, prerequisites, targets, rules, segments -------------------------------------

FLAGS = demo_flags()
SEGMENTS = demo_segments()


def run(flag: str, env: str, context: dict[str, Any], flags: dict[str, Any] | None = None) -> Any:
    return evaluate(FLAGS[flag], env, context, flags=flags or FLAGS, segments=SEGMENTS[env])


def test_off_serves_the_off_variation() -> None:
    result = run("new-checkout", "production", {"kind": "user", "key": "qa-bot"})
    assert (result.value, result.variation, result.reason) == (False, 1, {"kind": "OFF"})


def test_individual_targets_per_context_kind() -> None:
    user = run("new-checkout", "test", {"kind": "user", "key": "alice"})
    assert (user.value, user.reason, user.target) == (True, {"kind": "TARGET_MATCH"}, ("user", "alice"))
    device = run("new-checkout", "test", {"kind": "device", "key": "ios-qa-1"})
    assert device.reason == {"kind": "TARGET_MATCH"} and device.target == ("device", "ios-qa-1")
    # The same key as another kind is not a target.
    assert run("new-checkout", "test", {"kind": "device", "key": "alice"}).reason == {"kind": "FALLTHROUGH"}


def test_user_targets_behind_a_context_targets_placeholder() -> None:
    flag = copy.deepcopy(FLAGS["new-checkout"])
    env = flag["environments"]["test"]
    env["fallthrough"] = {"variation": 1}
    env["contextTargets"] = [
        {"contextKind": "device", "values": ["d1"], "variation": 1},
        {"contextKind": "user", "values": [], "variation": 0},
    ]
    both = {"kind": "multi", "user": {"key": "alice"}, "device": {"key": "d1"}}
    # The placeholder puts user targets after the device's: d1's variation wins.
    assert evaluate(flag, "test", both).value is False
    assert evaluate(flag, "test", {"key": "alice"}).value is True


def test_rules_in_order_with_segments_negation_and_kinds() -> None:
    beta = run("pricing-page", "test", {"kind": "user", "key": "ann"})
    assert beta.reason["kind"] == "RULE_MATCH" and beta.reason["ruleIndex"] == 0 and beta.value == "v2"
    by_email = run("pricing-page", "test", {"kind": "user", "key": "zed", "email": "zed@beta.example.com"})
    assert by_email.reason["ruleIndex"] == 0
    eu = run("pricing-page", "test", {"kind": "user", "key": "jo", "country": "DE", "plan": "pro"})
    assert eu.reason["ruleIndex"] == 1 and eu.bucket is not None
    (segment, rule_eu) = eu.rules
    assert not segment.matched and rule_eu.matched
    assert [c.matched for c in rule_eu.clauses] == [True, True]
    # `plan not in free`: a free plan fails the negated clause; no plan at all fails it too.
    free = run("pricing-page", "test", {"kind": "user", "key": "jo", "country": "DE", "plan": "free"})
    assert free.reason == {"kind": "FALLTHROUGH"}
    no_plan = run("pricing-page", "test", {"kind": "user", "key": "jo", "country": "DE"})
    assert no_plan.reason == {"kind": "FALLTHROUGH"}
    assert no_plan.rules[1].clauses[1].absent == "no attribute plan"
    staff = {
        "kind": "multi",
        "user": {"key": "sam", "email": "sam@example.com"},
        "organization": {"key": "acme", "tier": 3},
    }
    assert run("pricing-page", "test", staff).reason["ruleIndex"] == 2
    # Without the organization context the clause on it fails.
    alone = run("pricing-page", "test", {"kind": "user", "key": "sam", "email": "sam@example.com"})
    assert alone.reason == {"kind": "FALLTHROUGH"}
    assert alone.rules[2].clauses[1].absent == "no organization context"
    # A list attribute matches when any element does.
    listed = run(
        "pricing-page", "test", {"kind": "user", "key": "jo", "country": ["US", "FR"], "plan": "pro"}
    )
    assert listed.reason["ruleIndex"] == 1


def test_kind_attribute_and_missing_kind() -> None:
    flag = _flag({"variation": 1})
    flag["environments"]["test"]["rules"] = [
        {"_id": "r", "variation": 2, "clauses": [{"attribute": "kind", "op": "in", "values": ["org"]}]}
    ]
    assert evaluate(flag, "test", {"kind": "org", "key": "o"}).value == "a"
    assert evaluate(flag, "test", {"kind": "multi", "user": {"key": "u"}, "org": {"key": "o"}}).value == "a"
    assert evaluate(flag, "test", {"key": "u"}).value == "fallthrough"


def test_prerequisites() -> None:
    flags = copy.deepcopy(FLAGS)
    assert run("express-shipping", "test", {"key": "anyone"}, flags).reason == {"kind": "FALLTHROUGH"}
    flags["new-checkout"]["environments"]["test"]["on"] = False
    failed = run("express-shipping", "test", {"key": "anyone"}, flags)
    assert failed.reason == {"kind": "PREREQUISITE_FAILED", "prerequisiteKey": "new-checkout"}
    assert failed.value is False and failed.prerequisite is not None and failed.prerequisite.kind == "OFF"
    # A prerequisite that serves another variation fails too.
    flags["new-checkout"]["environments"]["test"]["on"] = True
    flags["new-checkout"]["environments"]["test"]["fallthrough"] = {"variation": 1}
    assert run("express-shipping", "test", {"key": "anyone"}, flags).kind == "PREREQUISITE_FAILED"
    assert run("express-shipping", "test", {"key": "alice"}, flags).kind == "FALLTHROUGH"  # alice is a target
    # A cycle is a malformed flag.
    flags["new-checkout"]["environments"]["test"]["prerequisites"] = [
        {"key": "express-shipping", "variation": 0}
    ]
    assert run("express-shipping", "test", {"key": "x"}, flags).reason == {
        "kind": "ERROR",
        "errorKind": "MALFORMED_FLAG",
    }


def test_weighted_segment_rule_buckets_by_the_segment() -> None:
    segment = {
        "key": "segment3",
        "salt": "salty",
        "rules": [{"clauses": [{"attribute": "ok", "op": "in", "values": [True]}], "weight": 14955}],
    }
    flag = _flag({"variation": 1})
    clause = {"attribute": "segmentMatch", "op": "segmentMatch", "values": ["segment3"]}
    flag["environments"]["test"]["rules"] = [{"_id": "r", "variation": 2, "clauses": [clause]}]
    inside = evaluate(flag, "test", {"key": "user-key", "ok": True}, segments={"segment3": segment})
    outside = evaluate(flag, "test", {"key": "unmatching-key", "ok": True}, segments={"segment3": segment})
    assert (inside.value, outside.value) == ("a", "fallthrough")


def test_a_context_that_is_not_one_is_refused() -> None:
    for body in [
        None,
        [],
        {"kind": "user"},
        {"kind": "user", "key": ""},
        {"kind": "multi"},
        {"kind": 3, "key": "a"},
    ]:
        with pytest.raises(ContextError):
            evaluate(FLAGS["new-checkout"], "test", body)


def test_a_document_of_the_wrong_shape_is_a_malformed_flag() -> None:
    for env in [
        {"on": True, "rules": ["not a rule"]},
        {"on": True, "fallthrough": "blue"},
        {
            "on": True,
            "prerequisites": [{"key": "new-checkout", "variation": 0}],
            "fallthrough": {"variation": 9},
        },
        {"on": True, "targets": [{"values": 3, "variation": 0}], "fallthrough": {"variation": 0}},
    ]:
        flag = {"key": "odd", "variations": [{"value": 1}], "environments": {"test": env}}
        result = evaluate(flag, "test", {"key": "alice"}, flags=FLAGS)
        assert result.reason == {"kind": "ERROR", "errorKind": "MALFORMED_FLAG"}, env
