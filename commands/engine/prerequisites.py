"""Environment-scoped instructions on prerequisites.

A prerequisite is stored as the flag response shows it: ``{"key": <flag key>, "variation": idx}``,
the index into the *prerequisite flag's* variations. The instruction names that variation by
``_id``, so turning it into an index needs the prerequisite flag: ``other_flags``. Without it the
engine cannot write a faithful document and refuses, saying so (it does not guess an index).
"""

from __future__ import annotations

from typing import Any

from commands.engine._context import Context, handles, label
from commands.instructions import (
    AddPrerequisite,
    RemovePrerequisite,
    ReplacePrerequisites,
    UpdatePrerequisite,
)


def _prerequisites(ctx: Context) -> list[dict[str, Any]]:
    prerequisites: list[dict[str, Any]] = ctx.env.setdefault("prerequisites", [])
    return prerequisites


def _resolve(ctx: Context, key: str, variation_id: str) -> int:
    """The index of ``variation_id`` among the variations of prerequisite flag ``key``."""
    if key == ctx.flag.get("key"):
        ctx.refuse(f'a flag cannot be its own prerequisite ("{key}")')
    if ctx.other_flags is None:
        ctx.refuse(
            f'cannot resolve variationId "{variation_id}" of prerequisite flag "{key}" '
            "without the project's other flags"
        )
    other = ctx.other_flags.get(key)
    if other is None or other.get("_deleted"):
        ctx.refuse(f'unknown prerequisite flag "{key}"')
    variations = other.get("variations", [])
    for index, variation in enumerate(variations):
        if variation.get("_id") == variation_id:
            _refuse_cycle(ctx, key)
            return index
    known = ", ".join(f'"{v.get("_id")}" ({label(v)})' for v in variations)
    ctx.refuse(
        f'unknown variationId "{variation_id}" of prerequisite flag "{key}"; its variations are {known}'
    )


def _refuse_cycle(ctx: Context, key: str) -> None:
    """Refuse a prerequisite that (through other flags, in this environment) leads back here.

    The seed is silent; LaunchDarkly's evaluation treats a prerequisite cycle as a malformed flag,
    so a change that would create one is refused rather than stored.
    """
    assert ctx.other_flags is not None  # _resolve checked it
    me = ctx.flag.get("key")
    seen: set[str] = set()
    pending = [key]
    while pending:
        current = pending.pop()
        if current == me:
            ctx.refuse(f'prerequisite "{key}" would create a cycle: "{key}" depends on "{me}"')
        if current in seen:
            continue
        seen.add(current)
        flag = ctx.other_flags.get(current) or {}
        env = flag.get("environments", {}).get(ctx.environment_key, {})
        pending.extend(p.get("key") for p in env.get("prerequisites", []) if p.get("key"))


@handles(AddPrerequisite)
def add_prerequisite(ctx: Context, ins: AddPrerequisite) -> None:
    # "Adds the flag indicated by key with variation variationId as a prerequisite to the flag in
    # the path parameter." Adding a key that already is a prerequisite is refused (decision: the
    # seed is silent; updatePrerequisite is the instruction that changes its variation).
    prerequisites = _prerequisites(ctx)
    if any(p.get("key") == ins.key for p in prerequisites):
        ctx.refuse(f'"{ins.key}" is already a prerequisite; use updatePrerequisite to change its variation')
    prerequisites.append({"key": ins.key, "variation": _resolve(ctx, ins.key, ins.variationId)})


@handles(RemovePrerequisite)
def remove_prerequisite(ctx: Context, ins: RemovePrerequisite) -> None:
    # "Removes the prerequisite flag indicated by key. Does nothing if this prerequisite does not
    # exist."
    ctx.env["prerequisites"] = [p for p in _prerequisites(ctx) if p.get("key") != ins.key]


@handles(UpdatePrerequisite)
def update_prerequisite(ctx: Context, ins: UpdatePrerequisite) -> None:
    # "Changes the prerequisite flag that key indicates to use the variation that variationId
    # indicates. Returns an error if this prerequisite does not exist."
    for prerequisite in _prerequisites(ctx):
        if prerequisite.get("key") == ins.key:
            prerequisite["variation"] = _resolve(ctx, ins.key, ins.variationId)
            return
    ctx.refuse(f'"{ins.key}" is not a prerequisite of this flag in environment "{ctx.environment_key}"')


@handles(ReplacePrerequisites)
def replace_prerequisites(ctx: Context, ins: ReplacePrerequisites) -> None:
    # "Removes all existing prerequisites and replaces them with the list you provide. Each item
    # in the list must include a flag key and variationId." One flag listed twice is refused: a
    # flag has one prerequisite per key.
    keys = [spec.key for spec in ins.prerequisites]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        ctx.refuse("a prerequisite flag is listed twice: " + ", ".join(f'"{key}"' for key in duplicates))
    ctx.env["prerequisites"] = [
        {"key": spec.key, "variation": _resolve(ctx, spec.key, spec.variationId)}
        for spec in ins.prerequisites
    ]
