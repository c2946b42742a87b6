"""``commands.patches``: JSON and merge patches applied to LaunchDarkly's documents, pure.

Applying, refusing in words, what a patch amounts to (environments, fields, kinds), the same change
as semantic instructions (checked by the engine), the inverse patch, the project's rules.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import parse
from commands.demo import demo_flag, demo_flags, demo_project
from commands.engine import apply as engine_apply
from commands.errors import CommandError
from commands.patches import (
    PatchRefusal,
    apply_json_patch,
    apply_merge_patch,
    inverse_ops,
    parts_between,
    plan_flag_patch,
    plan_project_patch,
    project_changes,
    project_shows,
    translate,
)
from commands.request import plan_request

TRUE = "903052d7-527c-52b5-b27a-8436463aa644"


def checkout() -> dict[str, Any]:
    flag = demo_flag("new-checkout")
    assert flag is not None
    return flag


def project() -> dict[str, Any]:
    doc = demo_project()
    doc.pop("environments")
    return doc


def test_a_json_patch_applies_and_says_what_it_changes() -> None:
    plan = plan_flag_patch(
        checkout(),
        "json-patch",
        {
            "patch": [
                {"op": "test", "path": "/environments/test/on", "value": True},
                {"op": "replace", "path": "/environments/test/on", "value": False},
                {"op": "add", "path": "/tags/-", "value": "json"},
                {"op": "replace", "path": "/archived", "value": True},
            ]
        },
    )
    assert plan.after["environments"]["test"]["on"] is False and plan.after["tags"][-1] == "json"
    assert plan.environments == ("test",) and plan.flag_fields == ("archived", "tags")
    assert set(plan.kinds) == {"turnFlagOff", "addTags", "archiveFlag"}
    assert plan.sentences[0] == "Check that /environments/test/on is true"


def test_the_document_is_never_changed_in_place() -> None:
    flag = checkout()
    kept = copy.deepcopy(flag)
    plan_flag_patch(flag, "json-patch", [{"op": "remove", "path": "/environments/test/targets/0"}])
    plan_flag_patch(flag, "merge-patch", {"environments": {"test": {"on": False}}})
    assert flag == kept


@pytest.mark.parametrize(
    ("ops", "said"),
    [
        ([{"op": "remove", "path": "/nothing/here"}], "operation 1 (`remove /nothing/here`) does not apply"),
        (
            [{"op": "replace", "path": "/environments/test/onn", "value": 1}],
            "there is no `onn` in `/environments/test`",
        ),
        (
            [{"op": "remove", "path": "/environments/test/rules/0"}],
            "`/environments/test/rules` has no item `0`",
        ),
        ([{"op": "move", "from": "/nope", "path": "/description"}], "`from` there is no `nope` field"),
        (
            [{"op": "test", "path": "/name", "value": "Old checkout"}],
            'has "New checkout" there, not "Old checkout"',
        ),
        ([{"op": "test", "path": "/nope", "value": 1}], "failed: there is no `nope` field"),
        ([{"op": "replace", "path": "", "value": []}], "would replace the whole flag"),
        ([{"op": "replace", "path": "/_version", "value": 9}], "`/_version` is set by LaunchDarkly"),
        ([{"op": "replace", "path": "/environments/test/salt", "value": "x"}], "is set by LaunchDarkly"),
        ([{"op": "add", "path": "/colour", "value": 1}], "`/colour` is not a field of a LaunchDarkly flag"),
        (
            [{"op": "add", "path": "/environments/test/colour", "value": 1}],
            "not a field of a flag's environment",
        ),
        ([{"op": "remove", "path": "/environments/test"}], "cannot be removed from the flag"),
        ([{"op": "remove", "path": "/environments/test/on"}], "cannot be removed: set it instead"),
        ([{"op": "replace", "path": "/name", "value": ""}], "must be a non-empty name"),
        ([{"op": "replace", "path": "/tags", "value": "web"}], "must be a list of tags"),
        (
            [{"op": "replace", "path": "/environments/test/fallthrough", "value": {"variation": 2}}],
            "from 0 to 1",
        ),
        (
            [
                {
                    "op": "replace",
                    "path": "/environments/test/fallthrough",
                    "value": {"rollout": {"variations": [{"variation": 0, "weight": 10}]}},
                }
            ],
            "weights must add up to 100000",
        ),
        ([{"op": "add", "path": "/environments/test/targets/-", "value": {"values": [1]}}], "context keys"),
        ([{"op": "remove", "path": "/variations/1"}], "at least two variations"),
        ([{"op": "test", "path": "/_version", "value": 1}], "changes nothing"),
    ],
)
def test_a_patch_that_does_not_apply_is_refused_in_words(ops: list[dict[str, Any]], said: str) -> None:
    with pytest.raises(PatchRefusal) as refused:
        plan_flag_patch(checkout(), "json-patch", ops)
    assert said in refused.value.message


def test_removing_a_variation_leaves_indices_that_must_still_point_somewhere() -> None:
    flag = demo_flag("banner-color")
    assert flag is not None
    with pytest.raises(PatchRefusal, match="variation index"):
        plan_flag_patch(flag, "json-patch", [{"op": "remove", "path": "/variations/2"}])


def test_merge_patches_follow_rfc_7386() -> None:
    # RFC 7386's own example, section 3.
    target = {"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": ["a", "b"]}
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["c"],
    }
    assert apply_merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["c"],
        "phoneNumber": "+01-123-456-7890",
    }
    plan = plan_flag_patch(checkout(), "merge-patch", {"merge": {"description": None}, "comment": "why"})
    assert "description" not in plan.after and plan.sentences == ("Remove /description",)


def test_a_merge_patch_is_parsed_with_its_comment_in_launchdarklys_shape() -> None:
    typed = parse('merge-patch new-checkout {"description": "New"} -m why')
    assert typed.body == {"merge": {"description": "New"}, "comment": "why"}  # type: ignore[union-attr]
    request = plan_request(typed, None, project="demo")
    assert request.content_type == "application/json" and request.body == typed.body  # type: ignore[union-attr]
    plain = parse('merge-patch new-checkout {"description": "New"}')
    assert plain.body == {"description": "New"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("ops", "kinds"),
    [
        ([{"op": "replace", "path": "/environments/production/on", "value": True}], ["turnFlagOn"]),
        (
            [{"op": "add", "path": "/environments/production/targets/0/values/-", "value": "dana"}],
            ["addTargets"],
        ),
        ([{"op": "remove", "path": "/environments/production/targets/0"}], ["removeTargets"]),
        (
            [{"op": "replace", "path": "/environments/production/fallthrough", "value": {"variation": 0}}],
            ["updateFallthroughVariationOrRollout"],
        ),
        (
            [{"op": "replace", "path": "/environments/production/offVariation", "value": 0}],
            ["updateOffVariation"],
        ),
        (
            [
                {"op": "replace", "path": "/environments/production/trackEvents", "value": True},
                {"op": "replace", "path": "/environments/production/trackEventsFallthrough", "value": True},
            ],
            ["updateTrackEvents", "updateTrackEventsFallthrough"],
        ),
        (
            [
                {
                    "op": "add",
                    "path": "/environments/production/rules/-",
                    "value": {
                        "variation": 0,
                        "clauses": [
                            {"attribute": "country", "op": "in", "values": ["US"], "contextKind": "user"}
                        ],
                    },
                }
            ],
            ["addRule"],
        ),
        (
            [
                {
                    "op": "add",
                    "path": "/environments/production/prerequisites/-",
                    "value": {"key": "banner-color", "variation": 1},
                }
            ],
            ["addPrerequisite"],
        ),
    ],
)
def test_a_change_to_one_environment_translates_into_instructions(
    ops: list[dict[str, Any]], kinds: list[str]
) -> None:
    before = checkout()
    plan = plan_flag_patch(before, "json-patch", ops)
    patch = translate(before, plan.after, "production", other_flags=demo_flags())
    assert [i.kind for i in patch.instructions] == kinds and patch.environmentKey == "production"
    replayed = engine_apply(before, patch, other_flags=demo_flags())["environments"]["production"]
    for field in ("on", "offVariation", "fallthrough", "trackEvents", "prerequisites"):
        assert replayed.get(field) == plan.after["environments"]["production"].get(field)


def test_rules_that_move_are_replaced_as_a_list() -> None:
    before = demo_flag("pricing-page")
    assert before is not None
    plan = plan_flag_patch(
        before,
        "json-patch",
        [
            {
                "op": "move",
                "from": "/environments/production/rules/0",
                "path": "/environments/production/rules/-",
            }
        ],
    )
    patch = translate(before, plan.after, "production")
    assert [i.kind for i in patch.instructions] == ["replaceRules"]


def test_what_no_instruction_does_is_not_translated() -> None:
    before = checkout()
    cleared = plan_flag_patch(
        before, "json-patch", [{"op": "remove", "path": "/environments/production/offVariation"}]
    )
    with pytest.raises(PatchRefusal, match="no instruction clears an environment's off variation"):
        translate(before, cleared.after, "production")
    seeded = plan_flag_patch(
        before,
        "json-patch",
        [
            {
                "op": "replace",
                "path": "/environments/production/fallthrough",
                "value": {
                    "rollout": {
                        "variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}],
                        "seed": 42,
                    }
                },
            }
        ],
    )
    with pytest.raises(PatchRefusal, match="no semantic-patch instructions make the same change"):
        translate(before, seeded.after, "production")


def test_the_inverse_patch_sets_back_only_the_parts_the_change_set() -> None:
    before = checkout()
    plan = plan_flag_patch(
        before,
        "json-patch",
        [
            {"op": "replace", "path": "/environments/test/on", "value": False},
            {"op": "add", "path": "/environments/test/targets/0/values/-", "value": "carol"},
            {"op": "remove", "path": "/description"},
        ],
    )
    after = plan.after
    # Someone else renames the flag since: undo leaves that alone.
    current = {**copy.deepcopy(after), "name": "Renamed since"}
    ops = inverse_ops(before, current, parts_between(before, after))
    undone = apply_json_patch(current, ops)
    assert undone["name"] == "Renamed since"
    assert undone["description"] == before["description"]
    assert undone["environments"]["test"] == before["environments"]["test"]
    with pytest.raises(CommandError, match="Nothing to undo"):
        inverse_ops(before, before, parts_between(before, after))


@settings(max_examples=60, deadline=None)
@given(
    on=st.booleans(),
    tags=st.lists(st.sampled_from(["a", "b", "checkout", "web"]), max_size=4),
    keys=st.lists(st.sampled_from(["alice", "bob", "carol", "dana"]), max_size=4, unique=True),
    description=st.one_of(st.none(), st.text(max_size=20)),
)
def test_the_inverse_of_any_merge_patch_restores_the_flag(
    on: bool, tags: list[str], keys: list[str], description: str | None
) -> None:
    before = checkout()
    merge: dict[str, Any] = {
        "tags": tags,
        "description": description,
        "environments": {
            "test": {"on": on, "targets": [{"contextKind": "user", "variation": 0, "values": keys}]}
        },
    }
    try:
        plan = plan_flag_patch(before, "merge-patch", merge)
    except PatchRefusal:
        return  # it changes nothing
    ops = inverse_ops(before, plan.after, parts_between(before, plan.after))
    assert apply_json_patch(plan.after, ops) == before


def test_a_project_patch_dedupes_and_sorts_tags_as_seed_004_says() -> None:
    before = project()
    plan = plan_project_patch(
        before,
        [
            {"op": "add", "path": "/tags/0", "value": "zeta"},
            {"op": "add", "path": "/tags/-", "value": "alpha"},
            {"op": "add", "path": "/tags/-", "value": "zeta"},
        ],
    )
    assert plan.after["tags"] == ["alpha", "demo", "zeta"] and plan.fields == ("tags",)
    (change,) = project_changes(before, plan.after)
    assert (change.label, change.before, change.after) == ("Project tags", "demo", "alpha, demo, zeta")


@pytest.mark.parametrize(
    ("ops", "said"),
    [
        ([{"op": "replace", "path": "/key", "value": "x"}], "is set by LaunchDarkly"),
        ([{"op": "add", "path": "/environments", "value": []}], "is set by LaunchDarkly"),
        ([{"op": "add", "path": "/colour", "value": 1}], "is not a field a project patch changes"),
        ([{"op": "replace", "path": "/includeInSnippetByDefault", "value": "yes"}], "must be true or false"),
        (
            [{"op": "replace", "path": "/defaultClientSideAvailability", "value": {"usingMobileKey": 1}}],
            "usingMobileKey",
        ),
        ([{"op": "add", "path": "/tags/0", "value": None}], "must be a list of tags"),
        ([{"op": "add", "path": "/tags/-", "value": "demo"}], "changes nothing"),
    ],
)
def test_a_bad_project_patch_is_refused(ops: list[dict[str, Any]], said: str) -> None:
    with pytest.raises(PatchRefusal) as refused:
        plan_project_patch(project(), ops)
    assert said in refused.value.message


def test_whether_a_project_shows_a_patch() -> None:
    before = project()
    ops = [{"op": "add", "path": "/tags/-", "value": "x"}]
    after = plan_project_patch(before, ops).after
    assert project_shows(before, after, ops)
    assert not project_shows(before, before, ops)
    # Someone added another tag since: the change is still there.
    assert project_shows(before, {**after, "tags": ["another", "demo", "x"]}, ops)
    assert not project_shows(before, {**after, "tags": ["demo"], "name": "Renamed"}, ops)
