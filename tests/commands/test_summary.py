"""Facts and before → after differences, as cards show them."""

from __future__ import annotations

import copy

from commands.demo import demo_flag
from commands.summary import (
    FactChange,
    all_facts,
    diff_facts,
    diff_facts_everywhere,
    serve_text,
    variation_label,
)


def test_facts_of_a_flag_with_rules_rollouts_and_targets() -> None:
    flag = demo_flag("pricing-page")
    assert flag is not None
    facts = {f.label: f.text for f in all_facts(flag, "production")}
    assert facts["Targeting in production"] == "ON"
    assert facts["Rule 2 (EU customers)"] == (
        "if user country in DE, FR, NL and user plan not in free → 25% New pricing (v2), 75% Old pricing (v1)"
    )
    assert facts["Rule 1 (Beta testers)"] == "if in segment beta-testers → New pricing (v2)"


def test_targets_and_variation_labels() -> None:
    flag = demo_flag("new-checkout")
    assert flag is not None
    facts = {f.label: f.text for f in all_facts(flag, "test")}
    assert facts["Individual targets → Enabled (true)"] == "user alice, bob; device ios-qa-1"
    assert variation_label(flag, 1) == "Disabled (false)"
    banner = demo_flag("banner-color")
    assert banner is not None
    assert (
        serve_text(banner, banner["environments"]["test"]["fallthrough"])
        == "50% Blue (blue), 50% Green (green)"
    )


def test_diff_ignores_renumbering_and_shows_what_moved() -> None:
    before = demo_flag("pricing-page")
    assert before is not None
    after = copy.deepcopy(before)
    env = after["environments"]["production"]
    env["on"] = False
    env["rules"].insert(0, {"_id": "r0", "description": "VIPs", "variation": 0, "clauses": []})
    assert diff_facts(before, after, "production") == [
        FactChange("Targeting in production", "ON", "OFF"),
        FactChange("Rule 1 (VIPs)", None, "if everyone → New pricing (v2)"),
    ]


def test_diff_shows_a_new_rule_order() -> None:
    before = demo_flag("pricing-page")
    assert before is not None
    after = copy.deepcopy(before)
    after["environments"]["test"]["rules"].reverse()
    assert diff_facts(before, after, "test") == [
        FactChange(
            "Rule order",
            "Beta testers, EU customers, Internal staff",
            "Internal staff, EU customers, Beta testers",
        )
    ]


def test_diff_of_a_rule_description_and_a_deleted_flag() -> None:
    before = demo_flag("pricing-page")
    assert before is not None
    after = copy.deepcopy(before)
    after["environments"]["test"]["rules"][0]["description"] = "Beta crew"
    changes = diff_facts(before, after, "test")
    assert (
        FactChange(
            "Rule 1 (Beta crew)",
            "if in segment beta-testers → New pricing (v2)",
            "if in segment beta-testers → New pricing (v2)",
        )
        in changes
    )
    assert diff_facts(before, {**before, "_deleted": True}, None) == [FactChange("State", "live", "deleted")]


def test_differences_in_every_environment_say_which() -> None:
    before = demo_flag("pricing-page")
    assert before is not None
    after = copy.deepcopy(before)
    after["name"] = "Pricing"
    after["environments"]["production"]["on"] = False
    after["environments"]["test"]["fallthrough"] = {"variation": 0}
    assert diff_facts_everywhere(before, after) == [
        FactChange("Name", "Pricing page", "Pricing"),
        FactChange("Targeting in production", "ON", "OFF"),
        FactChange("Default rule in test", "Old pricing (v1)", "New pricing (v2)"),
    ]
    assert diff_facts_everywhere(before, {**before, "_deleted": True}) == [
        FactChange("State", "live", "deleted")
    ]
