"""``touched_parts``: which parts of which environment a semantic patch changes.

The sandbox compares these with the parts pending approval requests and scheduled changes touch,
to answer 400 on a conflict ("If a flag configuration change made through this endpoint would
cause a pending scheduled change or approval request to fail, this endpoint will return a 400",
seed 003).
"""

from __future__ import annotations

from commands.instructions import Instruction, SemanticPatch

_FIXED_PARTS: dict[str, str] = {
    "turnFlagOn": "on",
    "turnFlagOff": "on",
    "addRule": "rules",
    "reorderRules": "rules",
    "replaceRules": "rules",
    "replaceTargets": "targets",
    "replaceUserTargets": "targets",
    "updateFallthroughVariationOrRollout": "fallthrough",
    "updateOffVariation": "offVariation",
    "addPrerequisite": "prerequisites",
    "removePrerequisite": "prerequisites",
    "updatePrerequisite": "prerequisites",
    "replacePrerequisites": "prerequisites",
    "updateTrackEvents": "trackEvents",
    "updateTrackEventsFallthrough": "trackEvents",
}
_RULE_KINDS = frozenset(
    {
        "addClauses",
        "removeClauses",
        "addValuesToClause",
        "removeValuesFromClause",
        "updateClause",
        "removeRule",
        "updateRuleDescription",
        "updateRuleTrackEvents",
        "updateRuleVariationOrRollout",
    }
)
_TARGET_KINDS = frozenset(
    {"addTargets", "removeTargets", "clearTargets", "addUserTargets", "removeUserTargets", "clearUserTargets"}
)


def part_of(instruction: Instruction) -> str | None:
    """The part of an environment one instruction changes, or None for a flag-level instruction."""
    kind = instruction.kind
    if kind in _FIXED_PARTS:
        return _FIXED_PARTS[kind]
    if kind in _RULE_KINDS:
        return f"rule:{getattr(instruction, 'ruleId')}"  # noqa: B009 - every rule kind has ruleId
    if kind in _TARGET_KINDS:
        return f"targets:{getattr(instruction, 'variationId')}"  # noqa: B009 - every target kind has it
    return None


def touched_parts(patch: SemanticPatch) -> set[tuple[str, str]]:
    """``(environmentKey, part)`` for each environment-scoped instruction of ``patch``.

    ``part`` is one of "on", "rule:<ruleId>", "rules" (addRule, reorderRules, replaceRules),
    "targets:<variationId>", "targets" (replaceTargets, replaceUserTargets), "fallthrough",
    "offVariation", "prerequisites", "trackEvents". Flag-level instructions touch no environment
    part and add nothing.

    Args:
        patch: the semantic patch.

    Returns:
        The set of touched parts (empty for a flag-level-only patch).
    """
    env = patch.environmentKey
    if env is None:
        return set()
    return {(env, part) for ins in patch.instructions if (part := part_of(ins)) is not None}
