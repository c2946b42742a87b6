"""Flag-level instructions on variations and the default (new-environment) variations.

Variations are flag-level and referenced by ``_id``; every environment (and ``defaults``, and other
flags' prerequisites) references them by *index*, so removing one shifts the indices after it.
"""

from __future__ import annotations

import copy
from typing import Any

from commands.engine._context import Context, canonical, handles, label, serves, value_type
from commands.instructions import AddVariation, RemoveVariation, UpdateDefaultVariation, UpdateVariation


def _check_value(ctx: Context, value: Any, *, replacing: int | None = None) -> None:
    """Refuse a value of the wrong type for the flag, or one another variation already has.

    "After a feature flag has been created, you cannot change the type of its variations"
    (LaunchDarkly docs, "Creating flag variations"), so a new value must have the type of the
    others. Two variations with one value could never be told apart by an SDK, and LaunchDarkly's
    UI refuses them; so do we.
    """
    others = [v for i, v in enumerate(ctx.variations) if i != replacing]
    expected = {value_type(v.get("value")) for v in others}
    if expected and value_type(value) not in expected:
        ctx.refuse(
            f"a {value_type(value)} value ({label({'value': value})}) does not fit this flag's "
            f"{'/'.join(sorted(expected))} variations"
        )
    for variation in others:
        if canonical(variation.get("value")) == canonical(value):
            ctx.refuse(f'another variation already has the value "{label(variation)}"')


@handles(AddVariation)
def add_variation(ctx: Context, ins: AddVariation) -> None:
    # "Adds a variation to the flag." Boolean flags "have two variations: true or false" (docs,
    # "Creating flag variations"), so a boolean flag cannot take a third.
    if ctx.flag.get("kind") == "boolean":
        ctx.refuse("a boolean flag has exactly two variations, true and false; it cannot take another")
    _check_value(ctx, ins.value)
    variation: dict[str, Any] = {"_id": ctx.new_id(), "value": copy.deepcopy(ins.value)}
    if ins.name is not None:
        variation["name"] = ins.name
    if ins.description is not None:
        variation["description"] = ins.description
    ctx.variations.append(variation)


def _uses(ctx: Context, index: int) -> list[str]:
    """Where variation ``index`` is served or referenced, as short phrases for a refusal."""
    uses: list[str] = []
    defaults = ctx.flag.get("defaults") or {}
    if defaults.get("onVariation") == index:
        uses.append("the default on variation")
    if defaults.get("offVariation") == index:
        uses.append("the default off variation")
    for env_key, env in ctx.environments():
        if env.get("offVariation") == index:
            uses.append(f"{env_key}: off variation")
        if serves(env.get("fallthrough") or {}, index):
            uses.append(f"{env_key}: default rule")
        for position, rule in enumerate(env.get("rules", []), start=1):
            if serves(rule, index):
                uses.append(f'{env_key}: rule {position} ("{rule.get("description") or rule.get("_id")}")')
        for key in ("targets", "contextTargets"):
            if any(t.get("variation") == index and t.get("values") for t in env.get(key, [])):
                uses.append(f"{env_key}: individual targets")
                break
    for other_key, other in (ctx.other_flags or {}).items():
        for env_key, env in other.get("environments", {}).items():
            for prerequisite in env.get("prerequisites", []):
                if prerequisite.get("key") == ctx.flag.get("key") and prerequisite.get("variation") == index:
                    uses.append(f'{env_key}: prerequisite of "{other_key}"')
    return uses


def _shift(value: Any, removed: int) -> Any:
    """An index after the removal of variation ``removed`` (indices after it move down by one)."""
    return value - 1 if isinstance(value, int) and value > removed else value


def _reindex_served(served: dict[str, Any], removed: int) -> None:
    if "variation" in served:
        served["variation"] = _shift(served["variation"], removed)
    rollout = served.get("rollout")
    if rollout:
        # Only a 0% entry can still name the removed variation (a served one was refused).
        rollout["variations"] = [
            {**entry, "variation": _shift(entry["variation"], removed)}
            for entry in rollout.get("variations", [])
            if entry.get("variation") != removed
        ]


def _reindex(ctx: Context, removed: int) -> None:
    """Move every index reference after ``removed`` down by one, across all environments."""
    defaults = ctx.flag.get("defaults")
    if isinstance(defaults, dict):
        for key in ("onVariation", "offVariation"):
            if key in defaults:
                defaults[key] = _shift(defaults[key], removed)
    for _, env in ctx.environments():
        if "offVariation" in env:
            env["offVariation"] = _shift(env["offVariation"], removed)
        if isinstance(env.get("fallthrough"), dict):
            _reindex_served(env["fallthrough"], removed)
        for rule in env.get("rules", []):
            _reindex_served(rule, removed)
        for key in ("targets", "contextTargets"):
            if key in env:
                env[key] = [
                    {**t, "variation": _shift(t["variation"], removed)}
                    for t in env[key]
                    if t.get("variation") != removed
                ]


@handles(RemoveVariation)
def remove_variation(ctx: Context, ins: RemoveVariation) -> None:
    # "Removes a variation from the flag." Decision for a variation still in use: refuse, naming
    # every use. LaunchDarkly's API answers "Cannot delete the default on variation" for the flag
    # defaults (seen in launchdarkly-labs/ld-migration-scripts#11); its UI, before deleting,
    # rewrites rules and targets that serve the variation ("individual targeting and custom rules
    # that return that variation are also deleted", docs). A chat command must not silently delete
    # rules in every environment, so the user is told what to change first. Boolean flags keep
    # both variations, and a multivariate flag keeps at least two.
    index = ctx.variation_index(ins.variationId)
    if ctx.flag.get("kind") == "boolean":
        ctx.refuse("a boolean flag has exactly two variations, true and false; neither can be removed")
    if len(ctx.variations) <= 2:
        ctx.refuse("a flag needs at least two variations")
    uses = _uses(ctx, index)
    if uses:
        ctx.refuse(f'variation "{ctx.variation_label(index)}" is in use: ' + "; ".join(uses))
    del ctx.variations[index]
    _reindex(ctx, index)


@handles(UpdateVariation)
def update_variation(ctx: Context, ins: UpdateVariation) -> None:
    # "Updates a variation of the flag." "name: (Optional) The updated variation name. value:
    # (Optional) The updated variation value. description: (Optional) The updated variation
    # description." A field given as null removes it (name and description are optional).
    index = ctx.variation_index(ins.variationId)
    variation = ctx.variations[index]
    given = ins.model_fields_set
    if "value" in given and canonical(ins.value) != canonical(variation.get("value")):
        # "For boolean flags, you can edit a variation's name and description, but not the value"
        # (LaunchDarkly, "Launched: Feature Flag Variation Editing").
        if ctx.flag.get("kind") == "boolean":
            ctx.refuse("a boolean flag's values are true and false; only name and description can change")
        _check_value(ctx, ins.value, replacing=index)
        variation["value"] = copy.deepcopy(ins.value)
    for field in ("name", "description"):
        if field in given:
            new = getattr(ins, field)
            if new is None:
                variation.pop(field, None)
            else:
                variation[field] = new


@handles(UpdateDefaultVariation)
def update_default_variation(ctx: Context, ins: UpdateDefaultVariation) -> None:
    # "Updates the default on or off variation of the flag. onVariationValue: (Optional) The value
    # of the variation of the new on variation. offVariationValue: (Optional) The value of the
    # variation of the new off variation". Stored as indices, like the flag response's
    # "defaults": {"onVariation": 0, "offVariation": 1}.
    defaults = ctx.flag.get("defaults")
    if not isinstance(defaults, dict):
        defaults = {}
        ctx.flag["defaults"] = defaults
    for field, key in (("onVariationValue", "onVariation"), ("offVariationValue", "offVariation")):
        if field in ins.model_fields_set:
            defaults[key] = _index_of_value(ctx, getattr(ins, field))


def _index_of_value(ctx: Context, value: Any) -> int:
    wanted = canonical(value)
    for index, variation in enumerate(ctx.variations):
        if canonical(variation.get("value")) == wanted:
            return index
    values = ", ".join(label(v) for v in ctx.variations)
    ctx.refuse(f"no variation has the value {label({'value': value})}; the values are {values}")
