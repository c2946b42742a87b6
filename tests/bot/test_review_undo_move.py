"""Undo of a target moved between variations moves it back (an outside review's reproduction)."""

from __future__ import annotations

from typing import Any

from commands.demo import demo_flags
from commands.engine import apply
from commands.engine.inverse import inverse_patch
from commands.instructions import SemanticPatch


def targets(flag: dict[str, Any]) -> list[tuple[str, int, tuple[str, ...]]]:
    env = flag["environments"]["test"]
    entries = (env.get("targets") or []) + (env.get("contextTargets") or [])
    return sorted(
        (t.get("contextKind") or "user", t["variation"], tuple(sorted(t["values"])))
        for t in entries
        if t.get("values")
    )


def test_moving_a_target_between_variations_is_undone() -> None:
    flags = demo_flags()
    before = flags["new-checkout"]
    var = [v["_id"] for v in before["variations"]]
    patch = SemanticPatch.model_validate(
        {
            "environmentKey": "test",
            "instructions": [
                {"kind": "removeTargets", "contextKind": "user", "variationId": var[0], "values": ["alice"]},
                {"kind": "addTargets", "contextKind": "user", "variationId": var[1], "values": ["alice"]},
            ],
        }
    )
    after = apply(before, patch, other_flags=flags)
    inverse = inverse_patch(before, after, patch, other_flags=flags, after=after)
    restored = apply(after, inverse, other_flags=flags)
    assert targets(restored) == targets(before)


def test_undo_of_a_rule_edit_leaves_a_later_edit_of_the_same_part() -> None:
    import pytest

    from commands.errors import CommandError

    flags = demo_flags()
    before = flags["pricing-page"]
    rule = before["environments"]["test"]["rules"][0]
    variations = [v["_id"] for v in before["variations"]]
    ours = SemanticPatch.model_validate(
        {
            "environmentKey": "test",
            "instructions": [
                {
                    "kind": "updateRuleVariationOrRollout",
                    "ruleId": rule["_id"],
                    "variationId": next(v for i, v in enumerate(variations) if i != rule.get("variation")),
                }
            ],
        }
    )
    after = apply(before, ours, other_flags=flags)
    theirs = ours.model_copy(
        update={
            "instructions": [
                ours.instructions[0].model_copy(
                    update={
                        "variationId": None,
                        "rolloutWeights": {variations[0]: 50000, variations[1]: 50000},
                    }
                ),
            ]
        }
    )
    now = apply(after, theirs, other_flags=flags)
    with pytest.raises(CommandError, match="Nothing to undo"):
        inverse_patch(before, now, ours, other_flags=flags, after=after)
