"""The inverse of an applied change: the smallest semantic patch that sets back what a change set,
part by part, and only the parts still as the change left them (pure: flag documents in,
instructions out; the undo service in ``bot.lifecycle.undo`` reads the flags and proposes it).

Targets, rules, clauses and prerequisites are set back minimally (the targets or the rule the
change added are removed, not the whole list replaced), so someone else's edit made since
survives; ``replaceRules`` is used only to undo a reorder. Kinds whose effect cannot be restored
(``deleteFlag``, ``removeVariation``) are refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from commands.engine.parts import part_of
from commands.errors import CommandError
from commands.instructions import (
    AddClauses,
    AddPrerequisite,
    AddRule,
    AddTags,
    AddTargets,
    ArchiveFlag,
    DeprecateFlag,
    Instruction,
    MakeFlagPermanent,
    MakeFlagTemporary,
    RemoveClauses,
    RemoveCustomProperties,
    RemoveMaintainer,
    RemovePrerequisite,
    RemoveRule,
    RemoveTags,
    RemoveTargets,
    RemoveVariation,
    ReplaceCustomProperties,
    ReplaceRules,
    RestoreDeprecatedFlag,
    RestoreFlag,
    RuleSpec,
    SemanticPatch,
    TurnFlagOff,
    TurnFlagOn,
    TurnOffClientSideAvailability,
    TurnOnClientSideAvailability,
    UpdateClause,
    UpdateDefaultVariation,
    UpdateDescription,
    UpdateFallthroughVariationOrRollout,
    UpdateMaintainerMember,
    UpdateMaintainerTeam,
    UpdateName,
    UpdateOffVariation,
    UpdatePrerequisite,
    UpdateRuleDescription,
    UpdateRuleTrackEvents,
    UpdateRuleVariationOrRollout,
    UpdateTrackEvents,
    UpdateTrackEventsFallthrough,
    UpdateVariation,
)

#: Flag-level kinds → the aspect of the flag they change.
_FLAG_ASPECTS = {
    "addTags": "tags",
    "removeTags": "tags",
    "updateName": "name",
    "updateDescription": "description",
    "makeFlagTemporary": "temporary",
    "makeFlagPermanent": "temporary",
    "turnOnClientSideAvailability": "clientSideAvailability",
    "turnOffClientSideAvailability": "clientSideAvailability",
    "removeMaintainer": "maintainer",
    "updateMaintainerMember": "maintainer",
    "updateMaintainerTeam": "maintainer",
    "addCustomProperties": "customProperties",
    "replaceCustomProperties": "customProperties",
    "removeCustomProperties": "customProperties",
    "updateVariation": "variations",
    "addVariation": "variations",
    "updateDefaultVariation": "defaults",
    "archiveFlag": "archived",
    "restoreFlag": "archived",
    "deprecateFlag": "deprecated",
    "restoreDeprecatedFlag": "deprecated",
}
_IRREVERSIBLE = {
    "deleteFlag": "A deleted flag cannot be undone: LaunchDarkly keeps no deleted flags. "
    "Create it again (same key and variations) in LaunchDarkly if you need it back.",
    "removeVariation": "Removing a variation cannot be undone: a variation added back gets a new id, "
    "and the targeting that served the old one is gone. Add it back with `/flag add variation`.",
}


def aspects_of(patch: SemanticPatch) -> list[str]:
    """The parts of the flag ``patch`` changes (``env:on``, ``env:rules``..., ``tags``...), in order.

    Raises:
        CommandError: the patch holds a kind that cannot be undone (delete, remove variation).
    """
    seen: list[str] = []
    for instruction in patch.instructions:
        if instruction.kind in _IRREVERSIBLE:
            raise CommandError(_IRREVERSIBLE[instruction.kind])
        aspect = _aspect(instruction)
        if aspect not in seen:
            seen.append(aspect)
    return seen


def _aspect(instruction: Instruction) -> str:
    if instruction.kind == "updateTrackEventsFallthrough":
        return "env:trackEventsFallthrough"
    part = part_of(instruction)
    if part is not None:
        base = part.split(":", 1)[0]  # "rule:<id>" and "targets:<variation>" restore the whole list
        return "env:rules" if base == "rule" else f"env:{base}"
    return _FLAG_ASPECTS[instruction.kind]


def inverse_patch(
    before: dict[str, Any],
    current: dict[str, Any],
    applied: SemanticPatch,
    *,
    other_flags: dict[str, dict[str, Any]] | None = None,
    after: dict[str, Any] | None = None,
) -> SemanticPatch:
    """The instructions that set everything ``applied`` changed back to how ``before`` had it.

    Args:
        before: the flag before the apply.
        current: the flag now (the inverse is computed against it, so it changes only what differs).
        applied: the applied patch.
        other_flags: prerequisite flags by key (their variation ids restore prerequisites).
        after: the flag right after the apply (default: ``current``, when nothing changed since);
            what the change itself did is the difference between ``before`` and it.

    Returns:
        The inverse patch (``environmentKey`` set when any instruction needs it).

    Raises:
        CommandError: nothing differs any more, or the change cannot be undone; says why.
    """
    env_key = applied.environmentKey
    builders: dict[str, Callable[[], list[Instruction]]] = {}
    if env_key:
        old = _env(before, env_key)
        now = _env(current, env_key)
        if after is None:
            after = current
        then = (after.get("environments") or {}).get(env_key) or now
        builders.update(
            {
                "env:on": lambda: _on(old, now),
                "env:rules": lambda: _rules_minimal(before, old, then, now),
                "env:targets": lambda: _targets_minimal(before, old, then, now),
                "env:fallthrough": lambda: _fallthrough(before, old, now),
                "env:offVariation": lambda: _off_variation(before, old, now),
                "env:prerequisites": lambda: _prerequisites_minimal(old, then, now, other_flags or {}),
                "env:trackEvents": lambda: _track(old, now, "trackEvents"),
                "env:trackEventsFallthrough": lambda: _track(old, now, "trackEventsFallthrough"),
            }
        )
    builders.update(
        {
            "tags": lambda: _tags(before, current),
            "name": lambda: _name(before, current),
            "description": lambda: _description(before, current),
            "temporary": lambda: _temporary(before, current),
            "clientSideAvailability": lambda: _client_side(before, current),
            "maintainer": lambda: _maintainer(before, current),
            "customProperties": lambda: _custom_properties(before, current),
            "variations": lambda: _variations(before, current),
            "defaults": lambda: _defaults(before, current),
        }
    )
    first: list[Instruction] = []
    middle: list[Instruction] = []
    last: list[Instruction] = []
    for aspect in aspects_of(applied):
        if aspect in ("archived", "deprecated"):
            was, now_ = bool(before.get(aspect)), bool(current.get(aspect))
            if was == now_:
                continue
            if aspect == "archived":
                # Restore first (an archived flag is restored before anything else changes);
                # archive last, after the other parts are back.
                (first if not was else last).append(RestoreFlag() if not was else ArchiveFlag())
            else:
                (first if not was else last).append(RestoreDeprecatedFlag() if not was else DeprecateFlag())
            continue
        middle.extend(builders[aspect]())
    instructions = first + middle + last
    if not instructions:
        raise CommandError("Nothing to undo: what that change set is already back to how it was before it.")
    scoped = any(i.environment_scoped for i in instructions)
    return SemanticPatch(environmentKey=env_key if scoped else None, instructions=instructions)


# --- environment parts ------------------------------------------------------------------------------


def _env(flag: dict[str, Any], env_key: str) -> dict[str, Any]:
    env = (flag.get("environments") or {}).get(env_key)
    if env is None:
        raise CommandError(f"The flag has no environment `{env_key}` any more: nothing to undo there.")
    return dict(env)


def _variation_id(flag: dict[str, Any], index: int) -> str:
    variations = flag.get("variations") or []
    if not 0 <= index < len(variations) or not variations[index].get("_id"):
        raise CommandError(f"The flag's variation #{index} is gone: this part cannot be restored.")
    return str(variations[index]["_id"])


def _serve_args(flag: dict[str, Any], serve: dict[str, Any]) -> dict[str, Any]:
    """``variationId`` or ``rolloutWeights`` (+ bucketBy, contextKind) for what ``serve`` serves."""
    if serve.get("variation") is not None:
        return {"variationId": _variation_id(flag, int(serve["variation"]))}
    rollout = serve.get("rollout") or {}
    args: dict[str, Any] = {
        "rolloutWeights": {
            _variation_id(flag, int(item["variation"])): int(item.get("weight", 0))
            for item in rollout.get("variations") or []
        },
        "rolloutContextKind": rollout.get("contextKind") or "user",
    }
    if rollout.get("bucketBy") is not None:
        args["rolloutBucketBy"] = rollout["bucketBy"]
    return args


def without_ids(value: Any) -> Any:
    """``value`` without generated ``_id``s, so rules and clauses compare by what they say (those
    restored by replaceRules, or added by instructions, get new ids from LaunchDarkly)."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "_id"}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


def _on(old: dict[str, Any], now: dict[str, Any]) -> list[Instruction]:
    if bool(old.get("on")) == bool(now.get("on")):
        return []
    return [TurnFlagOn() if old.get("on") else TurnFlagOff()]


def _rules(flag: dict[str, Any], old: dict[str, Any], now: dict[str, Any]) -> list[Instruction]:
    if without_ids(old.get("rules") or []) == without_ids(now.get("rules") or []):
        return []
    specs = []
    for rule in old.get("rules") or []:
        spec: dict[str, Any] = {
            **_serve_args(flag, rule),
            "clauses": [
                {
                    "contextKind": c.get("contextKind") or "user",
                    "attribute": c["attribute"],
                    "op": c["op"],
                    "negate": bool(c.get("negate")),
                    "values": list(c.get("values") or []),
                }
                for c in rule.get("clauses") or []
            ],
            "trackEvents": bool(rule.get("trackEvents")),
        }
        if rule.get("description") is not None:
            spec["description"] = rule["description"]
        specs.append(RuleSpec.model_validate(spec))
    return [ReplaceRules(rules=specs)]


def _targets_by(env: dict[str, Any]) -> dict[tuple[str, int], set[str]]:
    """(context kind, variation index) → the keys targeted to it."""
    found: dict[tuple[str, int], set[str]] = {}
    for entry in list(env.get("targets") or []) + list(env.get("contextTargets") or []):
        key = (entry.get("contextKind") or "user", int(entry.get("variation", -1)))
        found.setdefault(key, set()).update(str(v) for v in entry.get("values") or [])
    return found


def _targets_minimal(
    flag: dict[str, Any], old: dict[str, Any], then: dict[str, Any], now: dict[str, Any]
) -> list[Instruction]:
    """Remove the targets the change added, add back the ones it removed; nothing else."""
    was, did, has = _targets_by(old), _targets_by(then), _targets_by(now)
    out: list[Instruction] = []
    for kind, variation in sorted(set(was) | set(did)):
        added = did.get((kind, variation), set()) - was.get((kind, variation), set())
        still = sorted(added & has.get((kind, variation), set()))
        if still:
            out.append(
                RemoveTargets(contextKind=kind, variationId=_variation_id(flag, variation), values=still)
            )
    for kind, variation in sorted(set(was) | set(did)):
        removed = was.get((kind, variation), set()) - did.get((kind, variation), set())
        # A key someone has targeted again since (to any variation) is left where it is; one this
        # change itself moved to another variation is moved back (its addition is removed above).
        added_here = {
            v for (k, var), values in did.items() if k == kind for v in values - was.get((k, var), set())
        }
        elsewhere = {v for (k, _var), values in has.items() if k == kind for v in values} - added_here
        back = sorted(removed - elsewhere)
        if back:
            out.append(AddTargets(contextKind=kind, variationId=_variation_id(flag, variation), values=back))
    return out


def _rule_spec(flag: dict[str, Any], rule: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        **_serve_args(flag, rule),
        "clauses": [_clause(c) for c in rule.get("clauses") or []],
        "trackEvents": bool(rule.get("trackEvents")),
    }
    if rule.get("description") is not None:
        spec["description"] = rule["description"]
    return spec


def _clause(clause: dict[str, Any]) -> dict[str, Any]:
    return {
        "contextKind": clause.get("contextKind") or "user",
        "attribute": clause["attribute"],
        "op": clause["op"],
        "negate": bool(clause.get("negate")),
        "values": list(clause.get("values") or []),
    }


def _serving(rule: dict[str, Any]) -> Any:
    return (rule.get("variation"), without_ids(rule.get("rollout")))


def _rules_minimal(
    flag: dict[str, Any], old: dict[str, Any], then: dict[str, Any], now: dict[str, Any]
) -> list[Instruction]:
    """Undo exactly what the change did to the rules (see the module docstring)."""
    was = {str(r.get("_id")): r for r in old.get("rules") or []}
    did = {str(r.get("_id")): r for r in then.get("rules") or []}
    has = {str(r.get("_id")): r for r in now.get("rules") or []}
    kept = [rid for rid in was if rid in did]
    if [rid for rid in (did) if rid in was] != kept:
        return _rules(flag, old, now)  # a reordering: nothing finer than replaceRules
    out: list[Instruction] = []
    for rid in did:
        if rid not in was and rid in has:
            out.append(RemoveRule(ruleId=rid))
    order = [str(r.get("_id")) for r in old.get("rules") or []]
    for index, rid in enumerate(order):
        if rid in did or rid in has:
            continue
        following = next((r for r in order[index + 1 :] if r in has), None)
        out.append(AddRule.model_validate({**_rule_spec(flag, was[rid]), "beforeRuleId": following}))
    for rid in kept:
        before_rule, after_rule = was[rid], did[rid]
        if rid not in has or without_ids(before_rule) == without_ids(after_rule):
            continue
        now_rule = has[rid]
        # Each part is set back only where it still is as this change left it: a later edit of
        # the same part by someone else stands.
        if _serving(before_rule) != _serving(after_rule) and _serving(now_rule) == _serving(after_rule):
            serve = _serve_args(flag, before_rule)
            out.append(UpdateRuleVariationOrRollout.model_validate({"ruleId": rid, **serve}))
        description = before_rule.get("description")
        if description != after_rule.get("description") == now_rule.get("description"):
            out.append(UpdateRuleDescription(ruleId=rid, description=str(description or "")))
        track = bool(before_rule.get("trackEvents"))
        if track != bool(after_rule.get("trackEvents")) == bool(now_rule.get("trackEvents")):
            out.append(UpdateRuleTrackEvents(ruleId=rid, trackEvents=track))
        if without_ids(before_rule.get("clauses")) != without_ids(after_rule.get("clauses")):
            out.extend(_clauses_minimal(rid, before_rule, after_rule, has[rid]))
    return out


def _clauses_minimal(
    rule_id: str, before_rule: dict[str, Any], after_rule: dict[str, Any], now_rule: dict[str, Any]
) -> list[Instruction]:
    """Set back the clauses the change added, removed or edited in one rule, by clause id."""
    was = {str(c.get("_id")): c for c in before_rule.get("clauses") or []}
    did = {str(c.get("_id")): c for c in after_rule.get("clauses") or []}
    has = {str(c.get("_id")): c for c in now_rule.get("clauses") or []}
    out: list[Instruction] = []
    added = [cid for cid in did if cid not in was and cid in has]
    if added:
        out.append(RemoveClauses(ruleId=rule_id, clauseIds=added))
    for cid, clause in was.items():
        edited = cid in did and without_ids(clause) != without_ids(did[cid])
        if edited and cid in has and without_ids(has[cid]) == without_ids(did[cid]):
            update = {"ruleId": rule_id, "clauseId": cid, "clause": _clause(clause)}
            out.append(UpdateClause.model_validate(update))
    removed = [_clause(c) for cid, c in was.items() if cid not in did]
    if removed:
        out.append(AddClauses.model_validate({"ruleId": rule_id, "clauses": removed}))
    return out


def _prerequisites_minimal(
    old: dict[str, Any], then: dict[str, Any], now: dict[str, Any], other_flags: dict[str, dict[str, Any]]
) -> list[Instruction]:
    was = {str(p["key"]): int(p["variation"]) for p in old.get("prerequisites") or []}
    did = {str(p["key"]): int(p["variation"]) for p in then.get("prerequisites") or []}
    has = {str(p["key"]): int(p["variation"]) for p in now.get("prerequisites") or []}
    out: list[Instruction] = []
    for key in sorted(set(was) | set(did)):
        if key in did and key not in was:
            if key in has:
                out.append(RemovePrerequisite(key=key))
            continue
        if key not in was or was[key] == did.get(key) or has.get(key) == was[key]:
            continue
        if key not in other_flags:
            raise CommandError(f"The prerequisite flag `{key}` is gone: prerequisites cannot be restored.")
        variation = _variation_id(other_flags[key], was[key])
        if key in has:
            out.append(UpdatePrerequisite(key=key, variationId=variation))
        else:
            out.append(AddPrerequisite(key=key, variationId=variation))
    return out


def _fallthrough(flag: dict[str, Any], old: dict[str, Any], now: dict[str, Any]) -> list[Instruction]:
    was, is_ = old.get("fallthrough") or {}, now.get("fallthrough") or {}
    if was == is_:
        return []
    return [UpdateFallthroughVariationOrRollout.model_validate(_serve_args(flag, was))]


def _off_variation(flag: dict[str, Any], old: dict[str, Any], now: dict[str, Any]) -> list[Instruction]:
    if old.get("offVariation") == now.get("offVariation"):
        return []
    if old.get("offVariation") is None:
        raise CommandError(
            "The flag served nothing when off before; no instruction can clear the off variation again."
        )
    return [UpdateOffVariation(variationId=_variation_id(flag, int(old["offVariation"])))]


def _track(old: dict[str, Any], now: dict[str, Any], key: str) -> list[Instruction]:
    if bool(old.get(key)) == bool(now.get(key)):
        return []
    if key == "trackEvents":
        return [UpdateTrackEvents(trackEvents=bool(old.get(key)))]
    return [UpdateTrackEventsFallthrough(trackEvents=bool(old.get(key)))]


def instructions_toward(
    flag: dict[str, Any],
    target: dict[str, Any],
    current: dict[str, Any],
    *,
    other_flags: dict[str, dict[str, Any]],
    whole_rules: bool = False,
) -> list[Instruction]:
    """The instructions that make an environment as ``current`` is look as ``target`` does: the
    builders above read the other way round (a JSON patch sent for approval as instructions,
    ``commands.patches.translate``). ``flag`` names the variations; ``whole_rules`` replaces the
    rules as a list instead of rule by rule.

    Raises:
        CommandError: a part no instruction can set that way (says which).
    """
    if target.get("offVariation") is None and current.get("offVariation") is not None:
        raise CommandError("no instruction clears an environment's off variation")
    rules = _rules(flag, target, current) if whole_rules else _rules_minimal(flag, target, current, current)
    return [
        *_on(target, current),
        *rules,
        *_targets_minimal(flag, target, current, current),
        *_fallthrough(flag, target, current),
        *_off_variation(flag, target, current),
        *_prerequisites_minimal(target, current, current, other_flags),
        *_track(target, current, "trackEvents"),
        *_track(target, current, "trackEventsFallthrough"),
    ]


# --- flag-level parts -------------------------------------------------------------------------------


def _tags(before: dict[str, Any], current: dict[str, Any]) -> list[Instruction]:
    was, is_ = set(before.get("tags") or []), set(current.get("tags") or [])
    out: list[Instruction] = []
    if was - is_:
        out.append(AddTags(values=sorted(was - is_)))
    if is_ - was:
        out.append(RemoveTags(values=sorted(is_ - was)))
    return out


def _name(before: dict[str, Any], current: dict[str, Any]) -> list[Instruction]:
    if before.get("name") == current.get("name") or not before.get("name"):
        return []
    return [UpdateName(value=str(before["name"]))]


def _description(before: dict[str, Any], current: dict[str, Any]) -> list[Instruction]:
    if (before.get("description") or "") == (current.get("description") or ""):
        return []
    return [UpdateDescription(value=str(before.get("description") or ""))]


def _temporary(before: dict[str, Any], current: dict[str, Any]) -> list[Instruction]:
    if bool(before.get("temporary")) == bool(current.get("temporary")):
        return []
    return [MakeFlagTemporary() if before.get("temporary") else MakeFlagPermanent()]


def _client_side(before: dict[str, Any], current: dict[str, Any]) -> list[Instruction]:
    was = before.get("clientSideAvailability") or {}
    is_ = current.get("clientSideAvailability") or {}
    out: list[Instruction] = []
    for sdk in ("usingMobileKey", "usingEnvironmentId"):
        if bool(was.get(sdk)) != bool(is_.get(sdk)):
            out.append(
                TurnOnClientSideAvailability(value=sdk)
                if was.get(sdk)
                else TurnOffClientSideAvailability(value=sdk)
            )
    return out


def _maintainer(before: dict[str, Any], current: dict[str, Any]) -> list[Instruction]:
    was = (before.get("maintainerId"), before.get("maintainerTeamKey"))
    if was == (current.get("maintainerId"), current.get("maintainerTeamKey")):
        return []
    if was[0]:
        return [UpdateMaintainerMember(value=str(was[0]))]
    if was[1]:
        return [UpdateMaintainerTeam(value=str(was[1]))]
    return [RemoveMaintainer()]


def _custom_properties(before: dict[str, Any], current: dict[str, Any]) -> list[Instruction]:
    was = before.get("customProperties") or {}
    is_ = current.get("customProperties") or {}
    out: list[Instruction] = []
    for key in sorted(set(was) | set(is_)):
        if was.get(key) == is_.get(key):
            continue
        if key in was:
            prop = was[key]
            out.append(
                ReplaceCustomProperties(
                    key=key, name=str(prop.get("name") or key), values=list(prop.get("value") or [])
                )
            )
        elif is_[key].get("value"):
            out.append(RemoveCustomProperties(key=key, values=list(is_[key]["value"])))
    return out


def _variations(before: dict[str, Any], current: dict[str, Any]) -> list[Instruction]:
    was = {v.get("_id"): v for v in before.get("variations") or []}
    is_ = {v.get("_id"): v for v in current.get("variations") or []}
    missing = [vid for vid in was if vid not in is_]
    if missing:
        raise CommandError(_IRREVERSIBLE["removeVariation"])
    out: list[Instruction] = []
    for vid, old in was.items():
        now = is_[vid]
        fields = {
            name: old.get(name)
            for name in ("name", "value", "description")
            if old.get(name) != now.get(name) and (name == "value" or old.get(name) is not None)
        }
        if fields:
            out.append(UpdateVariation.model_validate({"variationId": vid, **fields}))
    out.extend(RemoveVariation(variationId=str(vid)) for vid in is_ if vid not in was)
    return out


def _defaults(before: dict[str, Any], current: dict[str, Any]) -> list[Instruction]:
    was, is_ = before.get("defaults") or {}, current.get("defaults") or {}
    if was == is_ or not was:
        return []
    variations = before.get("variations") or []
    return [
        UpdateDefaultVariation(
            onVariationValue=variations[was["onVariation"]].get("value"),
            offVariationValue=variations[was["offVariation"]].get("value"),
        )
    ]


# --- what changed since ---------------------------------------------------------------------------
