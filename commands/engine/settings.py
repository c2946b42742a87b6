"""Flag-level instructions on the flag's settings: custom properties, tags, temporary/permanent,
maintainer, client-side availability, description and name.
"""

from __future__ import annotations

from typing import Any

from commands.engine._context import Context, handles
from commands.instructions import (
    AddCustomProperties,
    AddTags,
    MakeFlagPermanent,
    MakeFlagTemporary,
    RemoveCustomProperties,
    RemoveMaintainer,
    RemoveTags,
    ReplaceCustomProperties,
    TurnOffClientSideAvailability,
    TurnOnClientSideAvailability,
    UpdateDescription,
    UpdateMaintainerMember,
    UpdateMaintainerTeam,
    UpdateName,
)

# --- custom properties: {"<key>": {"name": ..., "value": [...]}} as in the flag response ----------


def _custom_properties(ctx: Context) -> dict[str, Any]:
    properties = ctx.flag.get("customProperties")
    if not isinstance(properties, dict):
        properties = {}
        ctx.flag["customProperties"] = properties
    return properties


@handles(AddCustomProperties)
def add_custom_properties(ctx: Context, ins: AddCustomProperties) -> None:
    # "Adds a new custom property to the feature flag." Decision for a key that already exists:
    # its values gain the new ones (no duplicates) and it takes the given name, so "add" never
    # loses values (replaceCustomProperties is the instruction that drops them).
    properties = _custom_properties(ctx)
    existing = properties.get(ins.key) or {}
    values = list(existing.get("value", []))
    values.extend(value for value in ins.values if value not in values)
    properties[ins.key] = {"name": ins.name, "value": _dedupe(values)}


@handles(ReplaceCustomProperties)
def replace_custom_properties(ctx: Context, ins: ReplaceCustomProperties) -> None:
    # "Replaces the existing associated values for a custom property with the new values."
    # Decision: an empty list removes the property, as removeCustomProperties does when its last
    # value goes ("If all the associated values are removed, this instruction also removes the
    # custom property").
    properties = _custom_properties(ctx)
    if ins.values:
        properties[ins.key] = {"name": ins.name, "value": _dedupe(ins.values)}
    else:
        properties.pop(ins.key, None)


@handles(RemoveCustomProperties)
def remove_custom_properties(ctx: Context, ins: RemoveCustomProperties) -> None:
    # "Removes the associated values from a custom property. If all the associated values are
    # removed, this instruction also removes the custom property." An unknown key changes nothing.
    properties = _custom_properties(ctx)
    prop = properties.get(ins.key)
    if prop is None:
        return
    remaining = [value for value in prop.get("value", []) if value not in ins.values]
    if remaining:
        prop["value"] = remaining
    else:
        del properties[ins.key]


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# --- tags ---------------------------------------------------------------------------------------


@handles(AddTags)
def add_tags(ctx: Context, ins: AddTags) -> None:
    # "Adds tags to the feature flag." Decision: the result is deduplicated and sorted, as
    # LaunchDarkly does for project tags ("tags are always deduplicated and returned in
    # alphabetical order", seed 004); flags share the same tag system.
    ctx.flag["tags"] = sorted(set(ctx.flag.get("tags", [])) | set(ins.values))


@handles(RemoveTags)
def remove_tags(ctx: Context, ins: RemoveTags) -> None:
    # "Removes tags from the feature flag." Tags the flag lacks are ignored; the rest keep their
    # order.
    doomed = set(ins.values)
    ctx.flag["tags"] = [tag for tag in ctx.flag.get("tags", []) if tag not in doomed]


# --- temporary / permanent ----------------------------------------------------------------------


@handles(MakeFlagPermanent)
def make_flag_permanent(ctx: Context, ins: MakeFlagPermanent) -> None:
    # "Marks the feature flag as permanent."
    ctx.flag["temporary"] = False


@handles(MakeFlagTemporary)
def make_flag_temporary(ctx: Context, ins: MakeFlagTemporary) -> None:
    # "Marks the feature flag as temporary."
    ctx.flag["temporary"] = True


# --- maintainer ---------------------------------------------------------------------------------
# The flag response carries maintainerId / maintainerTeamKey plus their expansions _maintainer /
# _maintainerTeam. The engine knows no members or teams, so a changed maintainer drops the stale
# expansion; the sandbox (which knows the members) may expand it again.


@handles(RemoveMaintainer)
def remove_maintainer(ctx: Context, ins: RemoveMaintainer) -> None:
    # "Removes the flag's maintainer."
    for key in ("maintainerId", "_maintainer", "maintainerTeamKey", "_maintainerTeam"):
        ctx.flag.pop(key, None)


@handles(UpdateMaintainerMember)
def update_maintainer_member(ctx: Context, ins: UpdateMaintainerMember) -> None:
    # "Updates the maintainer of the flag to an existing member and removes the existing
    # maintainer."
    if ctx.flag.get("maintainerId") != ins.value:
        ctx.flag.pop("_maintainer", None)
    ctx.flag["maintainerId"] = ins.value
    ctx.flag.pop("maintainerTeamKey", None)
    ctx.flag.pop("_maintainerTeam", None)


@handles(UpdateMaintainerTeam)
def update_maintainer_team(ctx: Context, ins: UpdateMaintainerTeam) -> None:
    # "Updates the maintainer of the flag to an existing team and removes the existing
    # maintainer."
    if ctx.flag.get("maintainerTeamKey") != ins.value:
        ctx.flag.pop("_maintainerTeam", None)
    ctx.flag["maintainerTeamKey"] = ins.value
    ctx.flag.pop("maintainerId", None)
    ctx.flag.pop("_maintainer", None)


# --- client-side availability -------------------------------------------------------------------


def _set_client_side(ctx: Context, sdk: str, available: bool) -> None:
    availability = ctx.flag.get("clientSideAvailability")
    if not isinstance(availability, dict):
        availability = {"usingMobileKey": False, "usingEnvironmentId": bool(ctx.flag.get("includeInSnippet"))}
        ctx.flag["clientSideAvailability"] = availability
    availability[sdk] = available
    if sdk == "usingEnvironmentId":
        # includeInSnippet is "Deprecated, use clientSideAvailability. Whether this flag should be
        # made available to the client-side JavaScript SDK" (seed 003): the same switch.
        ctx.flag["includeInSnippet"] = available


@handles(TurnOnClientSideAvailability)
def turn_on_client_side_availability(ctx: Context, ins: TurnOnClientSideAvailability) -> None:
    # "Turns on client-side SDK availability for the flag. This is equivalent to checking the SDKs
    # using Mobile key and/or SDKs using Client-side ID boxes for the flag."
    _set_client_side(ctx, ins.value, True)


@handles(TurnOffClientSideAvailability)
def turn_off_client_side_availability(ctx: Context, ins: TurnOffClientSideAvailability) -> None:
    # "Turns off client-side SDK availability for the flag. This is equivalent to unchecking the
    # SDKs using Mobile key and/or SDKs using Client-side ID boxes for the flag." (The seed's
    # "usingEnvironmentId ... turn on" under this instruction is read as "turn off"; README.)
    _set_client_side(ctx, ins.value, False)


# --- description and name -----------------------------------------------------------------------


@handles(UpdateDescription)
def update_description(ctx: Context, ins: UpdateDescription) -> None:
    # "Updates the feature flag description."
    ctx.flag["description"] = ins.value


@handles(UpdateName)
def update_name(ctx: Context, ins: UpdateName) -> None:
    # "Updates the feature flag name."
    ctx.flag["name"] = ins.value
