"""Instruction models: every seed example validates and round-trips; bad bodies are refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from commands.instructions import (
    ENVIRONMENT_SCOPED_KINDS,
    FLAG_LEVEL_KINDS,
    INSTRUCTION_MODELS,
    AddTargets,
    FlagJsonPatch,
    JsonPatch,
    MergePatch,
    SemanticPatch,
)
from tests.seeds import json_patch_examples, semantic_patch_examples

EXAMPLES = semantic_patch_examples()

# Doc mistakes in the seed, each with the normalised output we emit (README, "Seed exemptions").
EXEMPT = {"removeCustomProperties", "updateDefaultVariation"}


def test_the_seed_documents_all_53_kinds_and_so_do_we() -> None:
    assert {e.section for e in EXAMPLES} == set(INSTRUCTION_MODELS)
    assert len(INSTRUCTION_MODELS) == 53
    assert len(ENVIRONMENT_SCOPED_KINDS) == 30 and len(FLAG_LEVEL_KINDS) == 23


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.section not in EXEMPT], ids=lambda e: e.section)
def test_seed_example_round_trips(example: Any) -> None:
    patch = SemanticPatch.model_validate(example.body)
    assert patch.body() == example.body
    assert {i.kind for i in patch.instructions} == {example.section}


def test_remove_custom_properties_example_is_labelled_replace_and_is_read_as_remove() -> None:
    (example,) = [e for e in EXAMPLES if e.section == "removeCustomProperties"]
    body = copy.deepcopy(example.body)
    assert body["instructions"][0]["kind"] == "replaceCustomProperties"
    # As printed it is an invalid replaceCustomProperties: replace needs the property's name.
    with pytest.raises(ValidationError, match="name"):
        SemanticPatch.model_validate(body)
    body["instructions"][0]["kind"] = "removeCustomProperties"
    assert SemanticPatch.model_validate(body).body() == body


def test_update_default_variation_capitalised_parameters_are_normalised() -> None:
    (example,) = [e for e in EXAMPLES if e.section == "updateDefaultVariation"]
    assert example.body["instructions"][0] == {
        "kind": "updateDefaultVariation",
        "OnVariationValue": True,
        "OffVariationValue": False,
    }
    patch = SemanticPatch.model_validate(example.body)
    assert patch.body() == {
        "instructions": [
            {"kind": "updateDefaultVariation", "onVariationValue": True, "offVariationValue": False}
        ]
    }


def test_rollout_examples_had_comments_stripped() -> None:
    raws = [e for e in EXAMPLES if "rolloutWeights" in e.raw]
    assert len(raws) == 2 and all("//" in e.raw for e in raws)
    for e in raws:
        SemanticPatch.model_validate(e.body)


def _body(*instructions: dict[str, Any], env: str | None = "production") -> dict[str, Any]:
    body: dict[str, Any] = {"instructions": list(instructions)}
    if env:
        body["environmentKey"] = env
    return body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_body({"kind": "turnFlagSideways"}), "turnFlagSideways"),
        (_body({"kind": "addTargets", "values": ["a"]}), "variationId"),
        (
            _body({"kind": "updateFallthroughVariationOrRollout", "rolloutWeights": {"a": 10, "b": 20}}),
            "sum to 30; they must sum to 100000",
        ),
        (
            _body({"kind": "updateFallthroughVariationOrRollout", "rolloutWeights": {"a": 100001}}),
            "each weight is 0..100000",
        ),
        (_body({"kind": "turnFlagOn"}, env=None), "environmentKey is required"),
        (
            _body(
                {
                    "kind": "addRule",
                    "clauses": [{"attribute": "c", "op": "IN", "values": ["x"]}],
                    "variationId": "v",
                }
            ),
            "op",
        ),
        (
            _body({"kind": "addRule", "variationId": "v", "rolloutWeights": {"v": 100000}}),
            "either variationId or rolloutWeights, not both",
        ),
        (
            _body({"kind": "updateRuleVariationOrRollout", "ruleId": "r"}),
            "needs variationId or rolloutWeights",
        ),
        (_body(), "instructions"),
        (_body({"kind": "turnOnClientSideAvailability", "value": "usingSdkKey"}, env=None), "value"),
        (_body({"kind": "addTags", "values": []}, env=None), "values"),
        (_body({"kind": "turnFlagOn", "surprise": 1}), "surprise"),
    ],
)
def test_invalid_bodies_are_refused_with_a_reason(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SemanticPatch.model_validate(body)
    assert reason in str(caught.value)


def test_segment_match_passes_and_operators_are_case_sensitive() -> None:
    ok = _body(
        {
            "kind": "addRule",
            "variationId": "v",
            "clauses": [{"attribute": "segmentMatch", "op": "segmentMatch", "values": ["beta"]}],
        }
    )
    SemanticPatch.model_validate(ok)
    bad = copy.deepcopy(ok)
    bad["instructions"][0]["clauses"][0]["op"] = "SegmentMatch"
    with pytest.raises(ValidationError):
        SemanticPatch.model_validate(bad)


def test_context_kind_defaults_to_user_without_being_emitted() -> None:
    patch = SemanticPatch.model_validate(_body({"kind": "addTargets", "values": ["a"], "variationId": "v"}))
    target = patch.instructions[0]
    assert isinstance(target, AddTargets) and target.contextKind == "user"
    assert "contextKind" not in patch.body()["instructions"][0]


def test_flag_level_patch_may_carry_an_environment() -> None:
    SemanticPatch.model_validate(_body({"kind": "addTags", "values": ["x"]}))


def test_clause_values_keep_their_json_types() -> None:
    body = _body({"kind": "addValuesToClause", "ruleId": "r", "clauseId": "c", "values": [1, 2.5, "3", True]})
    assert SemanticPatch.model_validate(body).body() == body


def test_json_patch_examples_of_the_flag_page() -> None:
    for example in json_patch_examples():
        assert JsonPatch.model_validate(example).body() == example
        wrapped = {"patch": example, "comment": "via Slack"}
        assert FlagJsonPatch.model_validate(wrapped).body() == wrapped


def test_json_patch_operations_need_their_operands() -> None:
    with pytest.raises(ValidationError, match="needs a value"):
        JsonPatch.model_validate([{"op": "replace", "path": "/name"}])
    with pytest.raises(ValidationError, match="needs 'from'"):
        JsonPatch.model_validate([{"op": "move", "path": "/name"}])
    moved = [{"op": "move", "from": "/a", "path": "/b"}]
    assert JsonPatch.model_validate(moved).body() == moved


def test_merge_patch() -> None:
    body = {"description": "New flag description"}
    assert MergePatch.model_validate(body).body() == body


def test_flag_link_and_project_patch_examples_of_the_seeds() -> None:
    # Seed 000 (flag link, Python sample) and seed 004 (project, curl sample), as printed.
    link_example = [{"op": "replace", "path": "/title", "value": None}]
    project_example = [{"op": "add", "path": "/tags/0", "value": None}]
    for example in (link_example, project_example):
        assert JsonPatch.model_validate(example).body() == example


def test_seed_001_link_example_without_a_value_is_refused() -> None:
    # Seed 001's samples send {"op": "replace", "path": "/title"} with no value; RFC 6902 requires
    # one for replace (seed 000's own sample sends "value": null). README, "Seed exemptions".
    with pytest.raises(ValidationError, match="needs a value"):
        JsonPatch.model_validate([{"op": "replace", "path": "/title"}])
