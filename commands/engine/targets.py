"""Environment-scoped instructions on individual targets (context and user targets).

Where targets live (decision, consistent with the demo data and the seed's flag response): targets
of context kind ``user`` are in the environment's ``targets`` list, entries ``{"contextKind":
"user", "values": [...], "variation": idx}``; every other kind is in ``contextTargets``, entries
``{"contextKind": kind, "values": [...], "variation": idx}``. LaunchDarkly itself sometimes keeps an
empty user-kind placeholder in ``contextTargets``; the engine never writes one, and ignores one it
finds (it holds no keys). An entry left with no values is removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from commands.engine._context import Context, handles
from commands.instructions import (
    AddTargets,
    AddUserTargets,
    ClearTargets,
    ClearUserTargets,
    RemoveTargets,
    RemoveUserTargets,
    ReplaceTargets,
    ReplaceUserTargets,
)

USER = "user"


def _list_for(ctx: Context, context_kind: str) -> list[dict[str, Any]]:
    """The environment's list that holds targets of ``context_kind``."""
    key = "targets" if context_kind == USER else "contextTargets"
    entries: list[dict[str, Any]] = ctx.env.setdefault(key, [])
    return entries


def _entries(ctx: Context, context_kind: str) -> list[dict[str, Any]]:
    """The target entries of one context kind (user entries carry contextKind "user" or none)."""
    return [entry for entry in _list_for(ctx, context_kind) if entry.get("contextKind", USER) == context_kind]


def _prune(ctx: Context) -> None:
    """Drop entries left without values (no key to target, so nothing to keep)."""
    env = ctx.env
    for key in ("targets", "contextTargets"):
        if key in env:
            env[key] = [entry for entry in env[key] if entry.get("values")]


def _add(ctx: Context, context_kind: str, variation_id: str, values: Iterable[str]) -> None:
    index = ctx.variation_index(variation_id)
    entries = _entries(ctx, context_kind)
    # "Returns an error if this causes the flag to target the same context key in multiple
    # variations." Only keys of the same context kind can collide: a user "alice" and a device
    # "alice" are different contexts.
    for value in values:
        for entry in entries:
            if entry.get("variation") != index and value in entry.get("values", []):
                ctx.refuse(
                    f'"{value}" is already targeted by variation "{ctx.variation_label(entry["variation"])}"'
                    + ("" if context_kind == USER else f' (context kind "{context_kind}")')
                )
    target = next((entry for entry in entries if entry.get("variation") == index), None)
    if target is None:
        target = {"contextKind": context_kind, "values": [], "variation": index}
        _list_for(ctx, context_kind).append(target)
    for value in values:
        # Adding a key the variation already targets changes nothing (no duplicate keys).
        if value not in target["values"]:
            target["values"].append(value)
    _prune(ctx)


def _remove(ctx: Context, context_kind: str, variation_id: str, values: Iterable[str]) -> None:
    index = ctx.variation_index(variation_id)
    doomed = set(values)
    for entry in _entries(ctx, context_kind):
        if entry.get("variation") == index:
            entry["values"] = [value for value in entry.get("values", []) if value not in doomed]
    _prune(ctx)


def _replace(ctx: Context, specs: Iterable[tuple[str, str, list[str]]], keys: tuple[str, ...]) -> None:
    """Rebuild the lists named in ``keys`` from (contextKind, variationId, values) specs."""
    env = ctx.env
    for key in keys:
        env[key] = []
    for context_kind, variation_id, values in specs:
        _add(ctx, context_kind, variation_id, values)
    _prune(ctx)


@handles(AddTargets)
def add_targets(ctx: Context, ins: AddTargets) -> None:
    # "Adds context keys to the individual context targets for the context kind that contextKind
    # specifies and the variation that variationId specifies."
    _add(ctx, ins.contextKind, ins.variationId, ins.values)


@handles(AddUserTargets)
def add_user_targets(ctx: Context, ins: AddUserTargets) -> None:
    # "Adds user keys to the individual user targets for the variation that variationId
    # specifies. Returns an error if this causes the flag to target the same user key in multiple
    # variations."
    _add(ctx, USER, ins.variationId, ins.values)


@handles(RemoveTargets)
def remove_targets(ctx: Context, ins: RemoveTargets) -> None:
    # "Removes context keys from the individual context targets for the context kind that
    # contextKind specifies and the variation that variationId specifies. Does nothing if the
    # flag does not target the context keys."
    _remove(ctx, ins.contextKind, ins.variationId, ins.values)


@handles(RemoveUserTargets)
def remove_user_targets(ctx: Context, ins: RemoveUserTargets) -> None:
    # "Removes user keys from the individual user targets for the variation that variationId
    # specifies. Does nothing if the flag does not target the user keys."
    _remove(ctx, USER, ins.variationId, ins.values)


@handles(ClearTargets)
def clear_targets(ctx: Context, ins: ClearTargets) -> None:
    # "Removes all individual targets from the variation that variationId specifies. This
    # includes both user and non-user targets."
    index = ctx.variation_index(ins.variationId)
    env = ctx.env
    for key in ("targets", "contextTargets"):
        if key in env:
            env[key] = [entry for entry in env[key] if entry.get("variation") != index]


@handles(ClearUserTargets)
def clear_user_targets(ctx: Context, ins: ClearUserTargets) -> None:
    # "Removes all individual user targets from the variation that variationId specifies."
    index = ctx.variation_index(ins.variationId)
    env = ctx.env
    env["targets"] = [entry for entry in env.get("targets", []) if entry.get("variation") != index]


@handles(ReplaceTargets)
def replace_targets(ctx: Context, ins: ReplaceTargets) -> None:
    # "Removes all existing targeting and replaces it with the list of targets you provide."
    # "All existing targeting" here is individual targeting of every context kind (rules have
    # replaceRules). A key given to two variations of one kind is refused, as addTargets refuses it.
    _replace(
        ctx,
        ((spec.contextKind, spec.variationId, list(spec.values)) for spec in ins.targets),
        ("targets", "contextTargets"),
    )


@handles(ReplaceUserTargets)
def replace_user_targets(ctx: Context, ins: ReplaceUserTargets) -> None:
    # "Removes all existing user targeting and replaces it with the list of targets you provide.
    # In the list of targets, you must include a target for each of the flag's variations."
    given = {spec.variationId for spec in ins.targets}
    for spec in ins.targets:
        ctx.variation_index(spec.variationId)
    missing = [
        f'"{v.get("_id")}" ({ctx.variation_label(i)})'
        for i, v in enumerate(ctx.variations)
        if v.get("_id") not in given
    ]
    if missing:
        ctx.refuse(f"targets must include each of the flag's variations; missing {', '.join(missing)}")
    _replace(ctx, ((USER, spec.variationId, list(spec.values)) for spec in ins.targets), ("targets",))
