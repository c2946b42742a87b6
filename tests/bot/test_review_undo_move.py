"""Undo of a target moved between variations moves it back (an outside review's reproduction)."""

from __future__ import annotations

from typing import Any

from bot.undo import inverse_patch
from commands.demo import demo_flags
from commands.engine import apply
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
