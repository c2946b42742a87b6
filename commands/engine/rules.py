"""Environment-scoped instructions: on/off, rules and clauses, fallthrough, off variation, events.

Each handler quotes, in a comment, the sentence of ../shared/seeds/003_6aebeb99eb24c7fc.txt it
implements; where the seed is silent, the comment says what we decided and why.
"""

from __future__ import annotations

from typing import Any

from commands.engine._context import Context, handles
from commands.instructions import (
    AddClauses,
    AddRule,
    AddValuesToClause,
    RemoveClauses,
    RemoveRule,
    RemoveValuesFromClause,
    ReorderRules,
    ReplaceRules,
    TurnFlagOff,
    TurnFlagOn,
    UpdateClause,
    UpdateFallthroughVariationOrRollout,
    UpdateOffVariation,
    UpdateRuleDescription,
    UpdateRuleTrackEvents,
    UpdateRuleVariationOrRollout,
    UpdateTrackEvents,
    UpdateTrackEventsFallthrough,
)


@handles(TurnFlagOn)
def turn_flag_on(ctx: Context, ins: TurnFlagOn) -> None:
    # "Sets the flag's targeting state to On."
    ctx.env["on"] = True


@handles(TurnFlagOff)
def turn_flag_off(ctx: Context, ins: TurnFlagOff) -> None:
    # "Sets the flag's targeting state to Off."
    ctx.env["on"] = False


# --- what a rule or the fallthrough serves ------------------------------------------------------


def _serve(
    ctx: Context,
    target: dict[str, Any],
    variation_id: str | None,
    weights: dict[str, int] | None,
    bucket_by: str | None,
    context_kind: str,
) -> None:
    """Make ``target`` (a rule or the fallthrough) serve one variation or a percentage rollout.

    "The rule can serve either the variation that variationId indicates, or a percent rollout
    that rolloutWeights and rolloutBucketBy indicate." Either key replaces the other, so a rule
    never carries both.
    """
    if weights is not None:
        target.pop("variation", None)
        target["rollout"] = ctx.rollout(weights, bucket_by, context_kind)
    elif variation_id is not None:
        target.pop("rollout", None)
        target["variation"] = ctx.variation_index(variation_id)


def _new_rule(
    ctx: Context,
    *,
    clauses: list[Any],
    variation_id: str | None,
    weights: dict[str, int] | None,
    bucket_by: str | None,
    context_kind: str,
    description: str | None,
    track_events: bool | None,
) -> dict[str, Any]:
    """A rule document in the flag response's shape, with new ``_id``s for it and its clauses."""
    rule: dict[str, Any] = {"_id": ctx.new_id()}
    if description is not None:
        rule["description"] = description
    _serve(ctx, rule, variation_id, weights, bucket_by, context_kind)
    # LaunchDarkly stores trackEvents on every rule (false unless asked), as the demo and seed do.
    rule["trackEvents"] = bool(track_events)
    rule["clauses"] = [ctx.new_clause(clause) for clause in clauses]
    return rule


# --- clauses ------------------------------------------------------------------------------------


@handles(AddClauses)
def add_clauses(ctx: Context, ins: AddClauses) -> None:
    # "Adds the given clauses to the rule indicated by ruleId."
    rule = ctx.rule(ins.ruleId)
    rule.setdefault("clauses", []).extend(ctx.new_clause(clause) for clause in ins.clauses)


@handles(RemoveClauses)
def remove_clauses(ctx: Context, ins: RemoveClauses) -> None:
    # "Removes the clauses specified by clauseIds from the rule indicated by ruleId."
    # Unlike removeRule, the seed does not say "does nothing if absent": an unknown clauseId is
    # refused (ctx.clause), so a typo cannot pass silently.
    rule = ctx.rule(ins.ruleId)
    for clause_id in ins.clauseIds:
        ctx.clause(rule, clause_id)
    doomed = set(ins.clauseIds)
    rule["clauses"] = [c for c in rule.get("clauses", []) if c.get("_id") not in doomed]


@handles(AddValuesToClause)
def add_values_to_clause(ctx: Context, ins: AddValuesToClause) -> None:
    # "Adds values to the values of the clause that ruleId and clauseId indicate. Does not update
    # the context kind, attribute, or operator." A value already present is not added twice: a
    # clause matches a set of values, and a duplicate would change nothing but the display.
    clause = ctx.clause(ctx.rule(ins.ruleId), ins.clauseId)
    values: list[Any] = clause.setdefault("values", [])
    for value in ins.values:
        if not any(_same(value, existing) for existing in values):
            values.append(value)


@handles(RemoveValuesFromClause)
def remove_values_from_clause(ctx: Context, ins: RemoveValuesFromClause) -> None:
    # "Removes values from the values of the clause indicated by ruleId and clauseId. Does not
    # update the context kind, attribute, or operator." Values the clause lacks are ignored.
    clause = ctx.clause(ctx.rule(ins.ruleId), ins.clauseId)
    clause["values"] = [
        value for value in clause.get("values", []) if not any(_same(value, gone) for gone in ins.values)
    ]


def _same(left: Any, right: Any) -> bool:
    # Clause values are case sensitive ("The contextKind, attribute, and values are case
    # sensitive") and typed: the string "1" is not the number 1, and true is not 1.
    return type(left) is type(right) and bool(left == right)


@handles(UpdateClause)
def update_clause(ctx: Context, ins: UpdateClause) -> None:
    # "Replaces the clause indicated by ruleId and clauseId with clause." The clause keeps its
    # _id (decision: the seed is silent; keeping it lets later instructions and pending approval
    # requests keep naming the same clause).
    rule = ctx.rule(ins.ruleId)
    old = ctx.clause(rule, ins.clauseId)
    rule["clauses"] = [
        ctx.new_clause(ins.clause, ins.clauseId) if clause is old else clause for clause in rule["clauses"]
    ]


# --- rules --------------------------------------------------------------------------------------


@handles(AddRule)
def add_rule(ctx: Context, ins: AddRule) -> None:
    # "Adds a new targeting rule to the flag. The rule may contain clauses and serve the variation
    # that variationId indicates, or serve a percentage rollout that rolloutWeights,
    # rolloutBucketBy, and rolloutContextKind indicate. If you set beforeRuleId, this adds the new
    # rule before the indicated rule. Otherwise, adds the new rule to the end of the list."
    rules = ctx.rules()
    position = len(rules)
    if ins.beforeRuleId is not None:
        position = rules.index(ctx.rule(ins.beforeRuleId))
    rule = _new_rule(
        ctx,
        clauses=ins.clauses,
        variation_id=ins.variationId,
        weights=ins.rolloutWeights,
        bucket_by=ins.rolloutBucketBy,
        context_kind=ins.rolloutContextKind,
        description=ins.description,
        track_events=ins.trackEvents,
    )
    rules.insert(position, rule)


@handles(RemoveRule)
def remove_rule(ctx: Context, ins: RemoveRule) -> None:
    # "Removes the targeting rule specified by ruleId. Does nothing if the rule does not exist."
    ctx.env["rules"] = [rule for rule in ctx.rules() if rule.get("_id") != ins.ruleId]


@handles(ReorderRules)
def reorder_rules(ctx: Context, ins: ReorderRules) -> None:
    # "Rearranges the rules to match the order given in ruleIds. Returns an error if ruleIds does
    # not match the current set of rules on the flag."
    rules = ctx.rules()
    by_id = {rule.get("_id"): rule for rule in rules}
    given = list(ins.ruleIds)
    if len(given) != len(set(given)) or set(given) != set(by_id):
        missing = [rid for rid in by_id if rid not in given]
        unknown = [rid for rid in given if rid not in by_id]
        details = []
        if missing:
            details.append("missing " + ", ".join(f'"{rid}"' for rid in missing))
        if unknown:
            details.append("unknown " + ", ".join(f'"{rid}"' for rid in unknown))
        if len(given) != len(set(given)):
            details.append("a rule is listed twice")
        ctx.refuse(f"ruleIds must list every rule of the environment exactly once ({'; '.join(details)})")
    ctx.env["rules"] = [by_id[rid] for rid in given]


@handles(ReplaceRules)
def replace_rules(ctx: Context, ins: ReplaceRules) -> None:
    # "Removes all targeting rules for the flag and replaces them with the list you provide."
    # Every new rule gets a new _id ("new rules and clauses get _ids").
    ctx.env["rules"] = [
        _new_rule(
            ctx,
            clauses=spec.clauses,
            variation_id=spec.variationId,
            weights=spec.rolloutWeights,
            bucket_by=spec.rolloutBucketBy,
            context_kind=spec.rolloutContextKind,
            description=spec.description,
            track_events=spec.trackEvents,
        )
        for spec in ins.rules
    ]


@handles(UpdateRuleDescription)
def update_rule_description(ctx: Context, ins: UpdateRuleDescription) -> None:
    # "Updates the description of the feature flag rule."
    ctx.rule(ins.ruleId)["description"] = ins.description


@handles(UpdateRuleTrackEvents)
def update_rule_track_events(ctx: Context, ins: UpdateRuleTrackEvents) -> None:
    # "Updates whether or not LaunchDarkly tracks events for the feature flag associated with
    # this rule."
    ctx.rule(ins.ruleId)["trackEvents"] = ins.trackEvents


@handles(UpdateRuleVariationOrRollout)
def update_rule_variation_or_rollout(ctx: Context, ins: UpdateRuleVariationOrRollout) -> None:
    # "Updates what ruleId serves when its clauses evaluate to true. The rule can serve either the
    # variation that variationId indicates, or a percent rollout that rolloutWeights and
    # rolloutBucketBy indicate."
    rule = ctx.rule(ins.ruleId)
    _serve(ctx, rule, ins.variationId, ins.rolloutWeights, ins.rolloutBucketBy, ins.rolloutContextKind)


# --- fallthrough, off variation, events ---------------------------------------------------------


@handles(UpdateFallthroughVariationOrRollout)
def update_fallthrough(ctx: Context, ins: UpdateFallthroughVariationOrRollout) -> None:
    # "Updates the default or "fallthrough" rule for the flag, which the flag serves when a
    # context matches none of the targeting rules. The rule can serve either the variation that
    # variationId indicates, or a percentage rollout that rolloutWeights and rolloutBucketBy
    # indicate."
    fallthrough: dict[str, Any] = {}
    _serve(ctx, fallthrough, ins.variationId, ins.rolloutWeights, ins.rolloutBucketBy, ins.rolloutContextKind)
    ctx.env["fallthrough"] = fallthrough


@handles(UpdateOffVariation)
def update_off_variation(ctx: Context, ins: UpdateOffVariation) -> None:
    # "Updates the default off variation to variationId. The flag serves the default off
    # variation when the flag's targeting is Off."
    ctx.env["offVariation"] = ctx.variation_index(ins.variationId)


@handles(UpdateTrackEvents)
def update_track_events(ctx: Context, ins: UpdateTrackEvents) -> None:
    # "Updates whether or not LaunchDarkly tracks events for the feature flag, for all rules."
    # Decision: this is the environment's own trackEvents switch (events for every evaluation);
    # the rules' individual trackEvents stay as they are, as updateRuleTrackEvents owns those.
    ctx.env["trackEvents"] = ins.trackEvents


@handles(UpdateTrackEventsFallthrough)
def update_track_events_fallthrough(ctx: Context, ins: UpdateTrackEventsFallthrough) -> None:
    # "Updates whether or not LaunchDarkly tracks events for the feature flag, for the default
    # rule."
    ctx.env["trackEventsFallthrough"] = ins.trackEvents
