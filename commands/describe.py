"""Semantic patch + flag document → plain sentences, one per instruction, for every kind.

IDs become what people recognise: variations by name and value (``Enabled (true)``), rules by
position and description (``rule 2 (EU customers)``), clauses as conditions
(``country is one of DE, FR``). The flag document is the flag *before* the patch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, assert_never

from commands import instructions as ins
from commands.resolve import Flag, render_value

_OPS: dict[str, tuple[str, str]] = {
    "in": ("is one of", "is not one of"),
    "endsWith": ("ends with", "does not end with"),
    "startsWith": ("starts with", "does not start with"),
    "matches": ("matches", "does not match"),
    "contains": ("contains", "does not contain"),
    "lessThan": ("is less than", "is not less than"),
    "lessThanOrEqual": ("is at most", "is not at most"),
    "greaterThan": ("is greater than", "is not greater than"),
    "greaterThanOrEqual": ("is at least", "is not at least"),
    "before": ("is before", "is not before"),
    "after": ("is after", "is not after"),
    "segmentMatch": ("is in segment", "is not in segment"),
    "semVerEqual": ("is version", "is not version"),
    "semVerLessThan": ("is a version before", "is not a version before"),
    "semVerGreaterThan": ("is a version after", "is not a version after"),
}
_SDKS = {"usingMobileKey": "mobile SDKs", "usingEnvironmentId": "client-side (JavaScript) SDKs"}


def _join(items: list[str]) -> str:
    return ", ".join(items)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _percent(weight: int) -> str:
    return f"{weight / 1000:.3f}".rstrip("0").rstrip(".") + "%"


def clause_text(clause: ins.Clause | Mapping[str, Any]) -> str:
    """A clause as a condition: ``country is one of DE, FR``."""
    data = clause.model_dump() if isinstance(clause, ins.Clause) else clause
    op = str(data.get("op"))
    values = [render_value(v) for v in data.get("values") or []]
    positive, negative = _OPS.get(op, (op, f"not {op}"))
    phrase = negative if data.get("negate") else positive
    if op == "in" and len(values) == 1:
        phrase = "is not" if data.get("negate") else "is"
    if op == "segmentMatch":
        return f"context {phrase} {_join(values)}"
    kind = data.get("contextKind") or "user"
    subject = str(data.get("attribute")) if kind == "user" else f"{kind}.{data.get('attribute')}"
    return f"{subject} {phrase} {_join(values)}"


class _Describer:
    def __init__(self, patch: ins.SemanticPatch, flag: Flag, flags: Mapping[str, Flag]) -> None:
        self.flag = flag
        self.flags = flags
        self.key = str(flag.get("key", "the flag"))
        self.env_key = patch.environmentKey
        environments: Mapping[str, Any] = flag.get("environments") or {}
        self.env: Mapping[str, Any] = environments.get(patch.environmentKey or "", {}) or {}

    def variation(self, variation_id: str, flag: Flag | None = None) -> str:
        for v in (flag or self.flag).get("variations") or []:
            if v.get("_id") == variation_id:
                value = render_value(v.get("value"))
                return f"{v['name']} ({value})" if v.get("name") else value
        return f"variation {variation_id}"

    def rule(self, rule_id: str) -> str:
        for position, rule in enumerate(self.env.get("rules") or [], 1):
            if rule.get("_id") == rule_id:
                description = rule.get("description")
                return f"rule {position} ({description})" if description else f"rule {position}"
        return f"rule {rule_id}"

    def clause(self, rule_id: str, clause_id: str) -> str:
        for rule in self.env.get("rules") or []:
            if rule.get("_id") == rule_id:
                for clause in rule.get("clauses") or []:
                    if clause.get("_id") == clause_id:
                        return clause_text(clause)
        return f"clause {clause_id}"

    def serving(self, item: ins.AnyInstruction | ins.RuleSpec) -> str:
        variation_id = getattr(item, "variationId", None)
        if variation_id is not None:
            return self.variation(variation_id)
        weights: dict[str, int] = getattr(item, "rolloutWeights", None) or {}
        slices = _and([f"{self.variation(vid)} to {_percent(w)}" for vid, w in weights.items()])
        kind = getattr(item, "rolloutContextKind", "user") or "user"
        who = "users" if kind == "user" else f"{kind} contexts"
        return f"{slices} of {who}, by {getattr(item, 'rolloutBucketBy', None) or 'key'}"

    def rule_body(self, clauses: list[ins.Clause], serve: str) -> str:
        condition = " and ".join(clause_text(c) for c in clauses) if clauses else "always"
        return f"if {condition}, serve {serve}"

    def targets(self, kind: str, values: list[str]) -> str:
        return f"{kind} target{'s' if len(values) > 1 else ''} {_join(values)}"

    def sentence(self, i: ins.AnyInstruction) -> str:
        env = self.env_key
        match i:
            case ins.TurnFlagOn():
                return f"Turn targeting ON in {env}"
            case ins.TurnFlagOff():
                return f"Turn targeting OFF in {env}"
            case ins.AddTargets():
                return f"Add {self.targets(i.contextKind, i.values)} to {self.variation(i.variationId)}"
            case ins.RemoveTargets():
                return f"Remove {self.targets(i.contextKind, i.values)} from {self.variation(i.variationId)}"
            case ins.ClearTargets():
                return f"Remove every individual target from {self.variation(i.variationId)}"
            case ins.ReplaceTargets():
                groups = [
                    f"{t.contextKind} {_join(t.values)} → {self.variation(t.variationId)}" for t in i.targets
                ]
                return (
                    f"Replace all individual targets with: {'; '.join(groups)}"
                    if groups
                    else ("Remove all individual targets")
                )
            case ins.AddUserTargets():
                return f"Add {self.targets('user', i.values)} to {self.variation(i.variationId)}"
            case ins.RemoveUserTargets():
                return f"Remove {self.targets('user', i.values)} from {self.variation(i.variationId)}"
            case ins.ClearUserTargets():
                return f"Remove every user target from {self.variation(i.variationId)}"
            case ins.ReplaceUserTargets():
                groups = [f"{_join(t.values)} → {self.variation(t.variationId)}" for t in i.targets]
                return (
                    f"Replace all user targets with: {'; '.join(groups)}"
                    if groups
                    else ("Remove all user targets")
                )
            case ins.UpdateFallthroughVariationOrRollout():
                if i.variationId is not None:
                    return f"Serve {self.variation(i.variationId)} by default"
                return f"Serve {self.serving(i)}"
            case ins.UpdateRuleVariationOrRollout():
                rule = self.rule(i.ruleId)
                return f"{rule[0].upper()}{rule[1:]}: serve {self.serving(i)}"
            case ins.UpdateOffVariation():
                return f"Serve {self.variation(i.variationId)} while targeting is off"
            case ins.AddRule():
                named = f' "{i.description}"' if i.description else ""
                where = f"before {self.rule(i.beforeRuleId)}" if i.beforeRuleId else "at the end"
                tracking = "; track its events" if i.trackEvents else ""
                return f"Add a rule{named} {where}: {self.rule_body(i.clauses, self.serving(i))}{tracking}"
            case ins.RemoveRule():
                return f"Remove {self.rule(i.ruleId)}"
            case ins.ReorderRules():
                return f"Reorder the rules: {_join([self.rule(r) for r in i.ruleIds])}"
            case ins.ReplaceRules():
                rules = [
                    f"{n}. {(r.description + ': ') if r.description else ''}"
                    f"{self.rule_body(r.clauses, self.serving(r))}"
                    for n, r in enumerate(i.rules, 1)
                ]
                return f"Replace all rules with: {' '.join(rules)}" if rules else "Remove all rules"
            case ins.UpdateRuleDescription():
                return f'Rename {self.rule(i.ruleId)} to "{i.description}"'
            case ins.UpdateRuleTrackEvents():
                verb = "Track" if i.trackEvents else "Stop tracking"
                return f"{verb} events for {self.rule(i.ruleId)}"
            case ins.UpdateTrackEvents():
                return f"{'Track' if i.trackEvents else 'Stop tracking'} events for every rule"
            case ins.UpdateTrackEventsFallthrough():
                return f"{'Track' if i.trackEvents else 'Stop tracking'} events for the default rule"
            case ins.AddClauses():
                return f"Add to {self.rule(i.ruleId)}: {' and '.join(clause_text(c) for c in i.clauses)}"
            case ins.RemoveClauses():
                removed = _and([self.clause(i.ruleId, c) for c in i.clauseIds])
                return f"Remove from {self.rule(i.ruleId)}: {removed}"
            case ins.AddValuesToClause():
                values, where = _join([render_value(v) for v in i.values]), self.clause(i.ruleId, i.clauseId)
                return f'Add {values} to the clause "{where}" in {self.rule(i.ruleId)}'
            case ins.RemoveValuesFromClause():
                values, where = _join([render_value(v) for v in i.values]), self.clause(i.ruleId, i.clauseId)
                return f'Remove {values} from the clause "{where}" in {self.rule(i.ruleId)}'
            case ins.UpdateClause():
                before = self.clause(i.ruleId, i.clauseId)
                return f"In {self.rule(i.ruleId)}, change {before} to {clause_text(i.clause)}"
            case ins.AddPrerequisite():
                return f"Require {i.key} to serve {self.variation(i.variationId, self.flags.get(i.key))}"
            case ins.RemovePrerequisite():
                return f"Stop requiring {i.key} (remove the prerequisite)"
            case ins.UpdatePrerequisite():
                return (
                    f"Require {i.key} to serve {self.variation(i.variationId, self.flags.get(i.key))} instead"
                )
            case ins.ReplacePrerequisites():
                items = [
                    f"{p.key} serving {self.variation(p.variationId, self.flags.get(p.key))}"
                    for p in i.prerequisites
                ]
                return (
                    f"Replace the prerequisites with: {_join(items)}" if items else "Remove all prerequisites"
                )
            case ins.AddVariation():
                named = f" named {i.name}" if i.name else ""
                about = f' ("{i.description}")' if i.description else ""
                return f"Add variation {render_value(i.value)}{named}{about}"
            case ins.RemoveVariation():
                return f"Remove variation {self.variation(i.variationId)}"
            case ins.UpdateVariation():
                changes = [
                    f"{name} → {render_value(getattr(i, name))}"
                    for name in ("value", "name", "description")
                    if name in i.model_fields_set
                ]
                return f"Change variation {self.variation(i.variationId)}: {_join(changes)}"
            case ins.UpdateDefaultVariation():
                parts = []
                if "onVariationValue" in i.model_fields_set:
                    parts.append(f"{render_value(i.onVariationValue)} when on")
                if "offVariationValue" in i.model_fields_set:
                    parts.append(f"{render_value(i.offVariationValue)} when off")
                return f"New environments serve {_and(parts)}"
            case ins.AddCustomProperties():
                return f"Add {_join(i.values)} to custom property {i.name} ({i.key})"
            case ins.ReplaceCustomProperties():
                return f"Set custom property {i.name} ({i.key}) to {_join(i.values) or 'nothing'}"
            case ins.RemoveCustomProperties():
                return f"Remove {_join(i.values)} from custom property {i.key}"
            case ins.AddTags():
                return f"Add tag{'s' if len(i.values) > 1 else ''} {_join(i.values)}"
            case ins.RemoveTags():
                return f"Remove tag{'s' if len(i.values) > 1 else ''} {_join(i.values)}"
            case ins.MakeFlagPermanent():
                return f"Mark {self.key} permanent"
            case ins.MakeFlagTemporary():
                return f"Mark {self.key} temporary"
            case ins.RemoveMaintainer():
                return f"Remove the maintainer of {self.key}"
            case ins.UpdateMaintainerMember():
                return f"Make member {i.value} the maintainer of {self.key}"
            case ins.UpdateMaintainerTeam():
                return f"Make team {i.value} the maintainer of {self.key}"
            case ins.TurnOnClientSideAvailability():
                return f"Make {self.key} available to {_SDKS[i.value]}"
            case ins.TurnOffClientSideAvailability():
                return f"Make {self.key} unavailable to {_SDKS[i.value]}"
            case ins.UpdateDescription():
                return f'Set the description of {self.key} to "{i.value}"'
            case ins.UpdateName():
                return f'Rename {self.key} to "{i.value}"'
            case ins.ArchiveFlag():
                return f"Archive {self.key}"
            case ins.DeleteFlag():
                return f"Delete {self.key} for good (this cannot be undone)"
            case ins.DeprecateFlag():
                return f"Deprecate {self.key}"
            case ins.RestoreDeprecatedFlag():
                return f"Restore {self.key} from deprecation"
            case ins.RestoreFlag():
                return f"Restore {self.key} from the archive"
            case _:
                assert_never(i)


def describe(patch: ins.SemanticPatch, flag: Flag, *, flags: Mapping[str, Flag] | None = None) -> list[str]:
    """Plain sentences for a semantic patch, one per instruction, in order.

    Args:
        patch: the semantic patch.
        flag: the flag document before the patch.
        flags: other flags by key, to name prerequisites' variations.

    Returns:
        One sentence per instruction (no trailing period).
    """
    describer = _Describer(patch, flag, flags or {})
    return [describer.sentence(i) for i in patch.instructions]
