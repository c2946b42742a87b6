"""The engine on flag-level instructions: variations, defaults, custom properties, tags,
temporary/permanent, maintainer, client-side availability, description, name and lifecycle."""

from __future__ import annotations

from typing import Any

import pytest

from commands.demo import demo_flags
from tests.commands.test_engine import BLUE, GREEN, NOW, RED, TRUE, V1, V2, env_of, flag, refusal, run


def flag_level(doc: dict[str, Any] | str, *instructions: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return run(doc, *instructions, env=None, **kwargs)


def flag_refusal(doc: dict[str, Any] | str, *instructions: dict[str, Any], **kwargs: Any) -> str:
    return refusal(doc, *instructions, env=None, **kwargs).message


def test_flag_level_changes_move_the_flag_version_but_no_environment() -> None:
    before = flag("new-checkout")
    after = flag_level(before, {"kind": "updateName", "value": "Checkout v2"})
    assert after["name"] == "Checkout v2"
    assert after["_version"] == before["_version"] + 1
    assert after["environments"] == before["environments"]


# --- variations ---------------------------------------------------------------------------------


def test_add_variation() -> None:
    after = flag_level(
        "banner-color", {"kind": "addVariation", "value": "yellow", "name": "Yellow", "description": "Sunny"}
    )
    assert after["variations"][-1] == {
        "_id": "id-1",
        "value": "yellow",
        "name": "Yellow",
        "description": "Sunny",
    }
    assert len(after["variations"]) == 4


def test_add_variation_refusals() -> None:
    assert "boolean flag" in flag_refusal("new-checkout", {"kind": "addVariation", "value": True})
    assert "does not fit" in flag_refusal("banner-color", {"kind": "addVariation", "value": 20})
    assert "already has the value" in flag_refusal("banner-color", {"kind": "addVariation", "value": "red"})


def test_added_variation_can_be_served_in_the_same_patch_by_its_new_id() -> None:
    after = run(
        "banner-color",
        {"kind": "addVariation", "value": "yellow"},
        {"kind": "updateFallthroughVariationOrRollout", "variationId": "id-1"},
    )
    assert env_of(after)["fallthrough"] == {"variation": 3}


def _multivariate() -> dict[str, Any]:
    """banner-color with a fourth variation, "purple", used nowhere."""
    doc = flag("banner-color")
    doc["variations"].insert(1, {"_id": "purple-id", "value": "purple"})
    # Shift every index reference of the demo flag past the inserted variation.
    doc["defaults"] = {"onVariation": 0, "offVariation": 3}
    for env in doc["environments"].values():
        env["offVariation"] = 3
    env_of(doc)["fallthrough"]["rollout"]["variations"] = [
        {"variation": 0, "weight": 50000},
        {"variation": 1, "weight": 0},
        {"variation": 2, "weight": 50000},
    ]
    env_of(doc)["targets"] = [{"contextKind": "user", "values": ["zoe"], "variation": 2}]
    env_of(doc)["rules"] = [{"_id": "r1", "variation": 3, "trackEvents": False, "clauses": []}]
    return doc


def test_remove_variation_shifts_every_index_after_it() -> None:
    after = flag_level(_multivariate(), {"kind": "removeVariation", "variationId": "purple-id"})
    assert [v["value"] for v in after["variations"]] == ["blue", "green", "red"]
    assert after["defaults"] == {"onVariation": 0, "offVariation": 2}
    test = env_of(after)
    assert test["offVariation"] == 2 and env_of(after, "production")["offVariation"] == 2
    assert test["fallthrough"]["rollout"]["variations"] == [
        {"variation": 0, "weight": 50000},
        {"variation": 1, "weight": 50000},
    ]
    assert test["targets"] == [{"contextKind": "user", "values": ["zoe"], "variation": 1}]
    assert test["rules"][0]["variation"] == 2
    # Both environments' indices moved, so both record a new version.
    assert test["version"] == 2 and env_of(after, "production")["version"] == 2


def test_remove_variation_in_use_is_refused_naming_the_uses() -> None:
    message = flag_refusal("banner-color", {"kind": "removeVariation", "variationId": GREEN})
    assert message.startswith('instruction 1 (removeVariation): variation "green" is in use: ')
    assert "test: default rule" in message
    message = flag_refusal("banner-color", {"kind": "removeVariation", "variationId": RED})
    assert "the default off variation" in message and "production: off variation" in message
    assert "boolean flag" in flag_refusal("new-checkout", {"kind": "removeVariation", "variationId": TRUE})
    assert "at least two" in flag_refusal("pricing-page", {"kind": "removeVariation", "variationId": V2})


def test_remove_variation_used_by_another_flags_prerequisite_is_refused() -> None:
    doc = _multivariate()
    others = demo_flags()
    others["pricing-page"]["environments"]["test"]["prerequisites"] = [
        {"key": "banner-color", "variation": 1}
    ]
    message = flag_refusal(doc, {"kind": "removeVariation", "variationId": "purple-id"}, other_flags=others)
    assert 'test: prerequisite of "pricing-page"' in message


def test_update_variation_name_value_description() -> None:
    after = flag_level(
        "banner-color",
        {
            "kind": "updateVariation",
            "variationId": BLUE,
            "value": "navy",
            "name": "Navy",
            "description": "Dark",
        },
    )
    assert after["variations"][0] == {"_id": BLUE, "value": "navy", "name": "Navy", "description": "Dark"}
    after = flag_level("new-checkout", {"kind": "updateVariation", "variationId": TRUE, "description": None})
    assert "description" not in after["variations"][0] and after["variations"][0]["name"] == "Enabled"


def test_update_variation_refusals() -> None:
    assert "boolean flag" in flag_refusal(
        "new-checkout", {"kind": "updateVariation", "variationId": TRUE, "value": 1}
    )
    assert "boolean flag" in flag_refusal(
        "new-checkout", {"kind": "updateVariation", "variationId": TRUE, "value": False}
    )
    assert "does not fit" in flag_refusal(
        "banner-color", {"kind": "updateVariation", "variationId": BLUE, "value": 3}
    )
    assert "already has the value" in flag_refusal(
        "banner-color", {"kind": "updateVariation", "variationId": BLUE, "value": "red"}
    )
    # The same value (a boolean flag's own value) is no change, so not refused.
    same = flag_level("new-checkout", {"kind": "updateVariation", "variationId": TRUE, "value": True})
    assert same["variations"][0]["value"] is True


def test_update_default_variation_by_value() -> None:
    after = flag_level("banner-color", {"kind": "updateDefaultVariation", "onVariationValue": "red"})
    assert after["defaults"] == {"onVariation": 2, "offVariation": 2}
    # The seed's capitalised spelling reaches the same fields.
    after = flag_level(
        "new-checkout",
        {"kind": "updateDefaultVariation", "OnVariationValue": False, "OffVariationValue": True},
    )
    assert after["defaults"] == {"onVariation": 1, "offVariation": 0}
    message = flag_refusal("new-checkout", {"kind": "updateDefaultVariation", "onVariationValue": 1})
    assert "no variation has the value 1" in message


# --- custom properties --------------------------------------------------------------------------


def test_add_custom_properties_new_and_existing() -> None:
    after = flag_level(
        "new-checkout",
        {
            "kind": "addCustomProperties",
            "key": "jira.issues",
            "name": "Jira issues",
            "values": ["SHOP-101", "X-2"],
        },
        {"kind": "addCustomProperties", "key": "owner", "name": "Owner", "values": ["payments"]},
    )
    assert after["customProperties"] == {
        "jira.issues": {"name": "Jira issues", "value": ["SHOP-101", "X-2"]},
        "owner": {"name": "Owner", "value": ["payments"]},
    }


def test_replace_custom_properties() -> None:
    after = flag_level(
        "new-checkout",
        {"kind": "replaceCustomProperties", "key": "jira.issues", "name": "Jira", "values": ["A-1"]},
    )
    assert after["customProperties"] == {"jira.issues": {"name": "Jira", "value": ["A-1"]}}
    after = flag_level(
        "new-checkout",
        {"kind": "replaceCustomProperties", "key": "jira.issues", "name": "Jira", "values": []},
    )
    assert after["customProperties"] == {}


def test_remove_custom_properties_removes_the_property_with_its_last_value() -> None:
    doc = flag_level(
        "new-checkout",
        {"kind": "addCustomProperties", "key": "jira.issues", "name": "Jira issues", "values": ["B"]},
    )
    after = flag_level(doc, {"kind": "removeCustomProperties", "key": "jira.issues", "values": ["SHOP-101"]})
    assert after["customProperties"] == {"jira.issues": {"name": "Jira issues", "value": ["B"]}}
    after = flag_level(after, {"kind": "removeCustomProperties", "key": "jira.issues", "values": ["B"]})
    assert after["customProperties"] == {}
    same = flag_level("new-checkout", {"kind": "removeCustomProperties", "key": "nope", "values": ["x"]})
    assert same["customProperties"] == flag("new-checkout")["customProperties"]


# --- tags, temporary ----------------------------------------------------------------------------


def test_add_tags_deduplicates_and_sorts() -> None:
    after = flag_level("banner-color", {"kind": "addTags", "values": ["web", "beta", "beta"]})
    assert after["tags"] == ["beta", "marketing", "web"]


def test_remove_tags() -> None:
    after = flag_level("banner-color", {"kind": "removeTags", "values": ["web", "absent"]})
    assert after["tags"] == ["marketing"]


def test_make_flag_permanent_and_temporary() -> None:
    assert flag_level("holiday-banner", {"kind": "makeFlagPermanent"})["temporary"] is False
    assert flag_level("new-checkout", {"kind": "makeFlagTemporary"})["temporary"] is True


# --- maintainer ---------------------------------------------------------------------------------


def test_update_maintainer_member_clears_the_team() -> None:
    doc = flag("new-checkout")
    doc["maintainerTeamKey"] = "payments"
    after = flag_level(doc, {"kind": "updateMaintainerMember", "value": "5f1b0000000000000000b0b0"})
    assert after["maintainerId"] == "5f1b0000000000000000b0b0"
    assert "maintainerTeamKey" not in after and "_maintainer" not in after


def test_update_maintainer_team_clears_the_member() -> None:
    after = flag_level("new-checkout", {"kind": "updateMaintainerTeam", "value": "payments"})
    assert after["maintainerTeamKey"] == "payments"
    assert "maintainerId" not in after and "_maintainer" not in after


def test_remove_maintainer_clears_both() -> None:
    doc = flag("new-checkout")
    doc["maintainerTeamKey"] = "payments"
    after = flag_level(doc, {"kind": "removeMaintainer"})
    assert not {"maintainerId", "_maintainer", "maintainerTeamKey", "_maintainerTeam"} & set(after)


# --- client-side availability, description, name ------------------------------------------------


def test_client_side_availability_and_include_in_snippet() -> None:
    after = flag_level("new-checkout", {"kind": "turnOnClientSideAvailability", "value": "usingMobileKey"})
    assert after["clientSideAvailability"] == {"usingMobileKey": True, "usingEnvironmentId": True}
    assert after["includeInSnippet"] is True
    after = flag_level(
        "new-checkout", {"kind": "turnOffClientSideAvailability", "value": "usingEnvironmentId"}
    )
    assert after["clientSideAvailability"] == {"usingMobileKey": False, "usingEnvironmentId": False}
    assert after["includeInSnippet"] is False
    after = flag_level(after, {"kind": "turnOnClientSideAvailability", "value": "usingEnvironmentId"})
    assert after["includeInSnippet"] is True


def test_update_description_and_name() -> None:
    after = flag_level(
        "new-checkout",
        {"kind": "updateDescription", "value": "New words"},
        {"kind": "updateName", "value": "NC"},
    )
    assert (after["description"], after["name"]) == ("New words", "NC")


# --- lifecycle ----------------------------------------------------------------------------------


def test_archive_and_restore() -> None:
    after = flag_level("holiday-banner", {"kind": "archiveFlag"})
    assert after["archived"] is True and after["archivedDate"] == NOW
    assert all(env["archived"] is True for env in after["environments"].values())
    restored = flag_level(after, {"kind": "restoreFlag"})
    assert restored["archived"] is False and "archivedDate" not in restored
    assert all(env["archived"] is False for env in restored["environments"].values())


def test_archiving_a_prerequisite_of_other_flags_is_refused() -> None:
    message = flag_refusal("new-checkout", {"kind": "archiveFlag"}, other_flags=demo_flags())
    assert "prerequisite of other flags" in message and '"express-shipping" (production)' in message
    # Without the other flags the check is skipped.
    assert flag_level("new-checkout", {"kind": "archiveFlag"})["archived"] is True


def test_deprecate_and_restore() -> None:
    after = flag_level("holiday-banner", {"kind": "deprecateFlag"})
    assert after["deprecated"] is True and after["deprecatedDate"] == NOW
    restored = flag_level(after, {"kind": "restoreDeprecatedFlag"})
    assert restored["deprecated"] is False and "deprecatedDate" not in restored


def test_delete_flag_marks_the_document() -> None:
    after = flag_level("holiday-banner", {"kind": "deleteFlag"})
    assert after["_deleted"] is True
    assert "prerequisite of other flags" in flag_refusal(
        "new-checkout", {"kind": "deleteFlag"}, other_flags=demo_flags()
    )


def test_nothing_can_follow_delete_flag() -> None:
    message = flag_refusal("holiday-banner", {"kind": "deleteFlag"}, {"kind": "updateName", "value": "x"})
    assert message.startswith("instruction 2 (updateName): the flag is deleted by instruction 1")


@pytest.mark.parametrize("value", ["v3", "v1"])
def test_multivariate_string_flag_values(value: str) -> None:
    # pricing-page's variations are strings: v1 exists, v3 does not.
    instruction = {"kind": "addVariation", "value": value}
    if value == "v1":
        assert "already has the value" in flag_refusal("pricing-page", instruction)
    else:
        after = flag_level("pricing-page", instruction)
        assert [v["value"] for v in after["variations"]] == ["v2", "v1", "v3"]
        assert after["variations"][0]["_id"] == V2 and after["variations"][1]["_id"] == V1


def test_other_flags_may_include_the_flag_itself() -> None:
    # The sandbox passes every flag of the project, the patched one included.
    everything = demo_flags()
    assert flag_level("holiday-banner", {"kind": "archiveFlag"}, other_flags=everything)["archived"] is True
    assert flag_level("holiday-banner", {"kind": "deleteFlag"}, other_flags=everything)["_deleted"] is True
    doc = _multivariate()
    everything["banner-color"] = doc
    after = flag_level(doc, {"kind": "removeVariation", "variationId": "purple-id"}, other_flags=everything)
    assert len(after["variations"]) == 3
