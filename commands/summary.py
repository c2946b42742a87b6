"""What a flag does, as short labelled facts, and what a change does to them (before → after).

Cards show the facts a change moves: ``Targeting in production: OFF → ON``. Facts are computed
from whole flag documents (the one previewed against and the dry run's answer, or the engine's),
so one function covers all 53 instruction kinds and any JSON patch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_LISTED = 5  # keys listed before "+N more": a card must summarise, not overflow


@dataclass(frozen=True)
class Fact:
    """One labelled fact; ``key`` is stable across versions (a rule's id, not its position)."""

    key: str
    label: str
    text: str
    name: str = ""  # what identifies it besides its position (a rule's description)


@dataclass(frozen=True)
class FactChange:
    """One fact that differs: ``before`` or ``after`` is None when the fact appears or goes."""

    label: str
    before: str | None
    after: str | None


def value_text(value: Any) -> str:
    """A variation value as a person reads it: strings bare, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def variation_label(flag: dict[str, Any], index: int | None) -> str:
    """``Enabled (true)`` for a named variation, ``blue`` for an unnamed one."""
    variations = flag.get("variations") or []
    if index is None or not 0 <= index < len(variations):
        return f"variation #{index}" if index is not None else "nothing"
    variation = variations[index]
    text = value_text(variation.get("value"))
    name = variation.get("name")
    return f"{name} ({text})" if name and name != text else text


def serve_text(flag: dict[str, Any], serve: dict[str, Any] | None) -> str:
    """What a rule or the default rule serves: one variation or a percentage rollout."""
    if not serve:
        return "nothing"
    if "variation" in serve and serve["variation"] is not None:
        return variation_label(flag, serve["variation"])
    rollout = serve.get("rollout") or {}
    parts = [
        f"{_percent(item.get('weight', 0))} {variation_label(flag, item.get('variation'))}"
        for item in rollout.get("variations", [])
        if item.get("weight", 0)
    ]
    text = ", ".join(parts) or "an empty rollout"
    by = rollout.get("bucketBy")
    kind = rollout.get("contextKind") or "user"
    if by and by != "key":
        text += f" (by {kind} {by})"
    elif kind != "user":
        text += f" (by {kind} key)"
    return text


def _percent(weight: int) -> str:
    percent = weight / 1000
    return f"{percent:g}%"


def clause_text(clause: dict[str, Any]) -> str:
    """``user country in DE, FR``; ``not`` before the operator when negated."""
    values = clause.get("values") or []
    shown = ", ".join(value_text(v) for v in values[:MAX_LISTED])
    if len(values) > MAX_LISTED:
        shown += f", +{len(values) - MAX_LISTED} more"
    op = clause.get("op", "?")
    if op == "segmentMatch":
        return f"{'not ' if clause.get('negate') else ''}in segment {shown}"
    kind = clause.get("contextKind") or "user"
    neg = "not " if clause.get("negate") else ""
    return f"{kind} {clause.get('attribute', '?')} {neg}{op} {shown}"


def rule_text(flag: dict[str, Any], rule: dict[str, Any]) -> str:
    """``if user country in DE and ... → serve 25% v2, 75% v1``."""
    clauses = " and ".join(clause_text(c) for c in rule.get("clauses") or []) or "everyone"
    return f"if {clauses} → {serve_text(flag, rule)}"


def _targets_facts(flag: dict[str, Any], env: dict[str, Any]) -> list[Fact]:
    by_variation: dict[int, list[str]] = {}
    for entry in list(env.get("targets") or []) + list(env.get("contextTargets") or []):
        values = entry.get("values") or []
        if not values:
            continue
        kind = entry.get("contextKind") or "user"
        shown = ", ".join(values[:MAX_LISTED])
        more = f", +{len(values) - MAX_LISTED} more" if len(values) > MAX_LISTED else ""
        by_variation.setdefault(entry.get("variation", -1), []).append(f"{kind} {shown}{more}")
    return [
        Fact(f"targets:{idx}", f"Individual targets → {variation_label(flag, idx)}", "; ".join(parts))
        for idx, parts in sorted(by_variation.items())
    ]


def rule_name(rule: dict[str, Any]) -> str:
    """A rule's description, or what it matches when it has none (never its id: LaunchDarkly gives
    a rule another id in a dry run than when it is written, so a card and its thread would differ)."""
    if rule.get("description"):
        return str(rule["description"])
    clauses = " and ".join(clause_text(c) for c in rule.get("clauses") or []) or "everyone"
    return clauses if len(clauses) <= 60 else clauses[:59] + "…"


def _fact(key: str, text: str, label: str | None = None) -> Fact:
    return Fact(key, label or key, text)


def environment_facts(
    flag: dict[str, Any], env_key: str, flags: Mapping[str, dict[str, Any]] | None = None
) -> list[Fact]:
    """The facts of one environment's targeting, labelled for a card.

    ``flags``: other flags by key, to name what a prerequisite must serve.
    """
    env = (flag.get("environments") or {}).get(env_key)
    if env is None:
        return []
    facts = [
        _fact(f"Targeting in {env_key}", "ON" if env.get("on") else "OFF"),
        _fact("Serves when off", variation_label(flag, env.get("offVariation"))),
        _fact("Default rule", serve_text(flag, env.get("fallthrough"))),
    ]
    for prereq in env.get("prerequisites") or []:
        other = (flags or {}).get(str(prereq.get("key")))
        serves = (
            variation_label(other, prereq.get("variation"))
            if other
            else f"variation #{prereq.get('variation')}"
        )
        facts.append(_fact(f"Prerequisite {prereq.get('key')}", f"must serve {serves}"))
    rules = env.get("rules") or []
    for position, rule in enumerate(rules, start=1):
        # Keyed by the rule's id, so adding a rule above does not show every later rule as changed.
        label = f"Rule {position} ({rule_name(rule)})"
        facts.append(Fact(f"rule:{rule.get('_id')}", label, rule_text(flag, rule), rule_name(rule)))
    if len(rules) > 1:
        facts.append(_fact("Rule order", ", ".join(rule_name(r) for r in rules)))
    facts.extend(_targets_facts(flag, env))
    if env.get("trackEvents"):
        facts.append(_fact("Track events", "all rules"))
    if env.get("trackEventsFallthrough"):
        facts.append(_fact("Track events (default rule)", "yes"))
    return facts


def every_environment_facts(flag: dict[str, Any], waiting: Mapping[str, str] | None = None) -> list[Fact]:
    """One line per environment: on or off, what it serves, and what is waiting there (``waiting``:
    environment → e.g. "1 approval request pending"), state at a glance."""
    facts = []
    for env_key in sorted(flag.get("environments") or {}):
        env = flag["environments"][env_key] or {}
        if env.get("on"):
            rules = len(env.get("rules") or [])
            targets = sum(len(t.get("values") or []) for t in env.get("targets") or [])
            extra = [f"{rules} rule{'s' if rules != 1 else ''}"] if rules else []
            extra += [f"{targets} target{'s' if targets != 1 else ''}"] if targets else []
            state = f"ON · serves {serve_text(flag, env.get('fallthrough'))} by default" + (
                f" · {', '.join(extra)}" if extra else ""
            )
        else:
            state = f"OFF · serves {variation_label(flag, env.get('offVariation'))}"
        if waiting and waiting.get(env_key):
            state += f" · {waiting[env_key]}"
        facts.append(_fact(env_key, state))
    return facts


def lifecycle_state(flag: dict[str, Any]) -> str:
    """``live``, ``deprecated``, ``archived`` or ``deleted``: where a flag is in its life."""
    if flag.get("_deleted"):
        return "deleted"
    return "archived" if flag.get("archived") else "deprecated" if flag.get("deprecated") else "live"


def flag_facts(flag: dict[str, Any]) -> list[Fact]:
    """The flag-level facts: name, variations, settings, lifecycle."""
    if flag.get("_deleted"):
        return [_fact("State", "deleted")]
    csa = flag.get("clientSideAvailability") or {}
    state = lifecycle_state(flag)
    member = flag.get("_maintainer") or {}
    team = flag.get("_maintainerTeam") or {}
    maintainer = (
        member.get("email")
        or flag.get("maintainerId")
        or (f"team {team.get('name') or flag['maintainerTeamKey']}" if flag.get("maintainerTeamKey") else "—")
    )
    facts = [
        _fact("Name", str(flag.get("name", ""))),
        _fact("Description", str(flag.get("description") or "—")),
        _fact(
            "Variations",
            ", ".join(variation_label(flag, i) for i in range(len(flag.get("variations") or []))),
        ),
        _fact("Tags", ", ".join(flag.get("tags") or []) or "—"),
        _fact("Lifetime", "temporary" if flag.get("temporary") else "permanent"),
        _fact(
            "Client-side SDKs",
            f"mobile key {'yes' if csa.get('usingMobileKey') else 'no'}, "
            f"client-side ID {'yes' if csa.get('usingEnvironmentId') else 'no'}",
        ),
        _fact("Maintainer", str(maintainer)),
        _fact("State", state),
    ]
    defaults = flag.get("defaults") or {}
    if defaults:
        facts.append(
            _fact(
                "Defaults for new environments",
                f"on {variation_label(flag, defaults.get('onVariation'))}, "
                f"off {variation_label(flag, defaults.get('offVariation'))}",
            )
        )
    for key, prop in sorted((flag.get("customProperties") or {}).items()):
        facts.append(
            Fact(
                f"custom:{key}",
                f"Custom property {prop.get('name') or key}",
                ", ".join(prop.get("value") or []),
            )
        )
    return facts


def all_facts(
    flag: dict[str, Any], env_key: str | None, flags: Mapping[str, dict[str, Any]] | None = None
) -> list[Fact]:
    """Flag-level facts, then the environment's (when one is named)."""
    facts = flag_facts(flag)
    if env_key:
        facts.extend(environment_facts(flag, env_key, flags))
    return facts


def diff_facts(
    before: dict[str, Any],
    after: dict[str, Any],
    env_key: str | None,
    flags: Mapping[str, dict[str, Any]] | None = None,
) -> list[FactChange]:
    """The facts that differ between two versions of a flag, in the order a card shows them.

    ``flags``: other flags by key, to name what prerequisites must serve.
    """
    if after.get("_deleted"):
        return [FactChange("State", lifecycle_state(before), "deleted")]
    return _diff(all_facts(before, env_key, flags), all_facts(after, env_key, flags), before, after, env_key)


def diff_facts_everywhere(before: dict[str, Any], after: dict[str, Any]) -> list[FactChange]:
    """The facts that differ between two versions of a flag, flag-level first, then each
    environment's (labelled with it: ``Default rule in production``), environments by key."""
    changes = diff_facts(before, after, None)
    if after.get("_deleted"):
        return changes
    envs = sorted(set(before.get("environments") or {}) | set(after.get("environments") or {}))
    for env in envs:
        was, now = environment_facts(before, env), environment_facts(after, env)
        for change in _diff(was, now, before, after, env):
            label = change.label if change.label.endswith(f" in {env}") else f"{change.label} in {env}"
            changes.append(FactChange(label, change.before, change.after))
    return changes


def _diff(
    old_facts: list[Fact],
    new_facts: list[Fact],
    before: dict[str, Any],
    after: dict[str, Any],
    env_key: str | None,
) -> list[FactChange]:
    old = {f.key: f for f in old_facts}
    new = {f.key: f for f in new_facts}
    keys = list(old) + [key for key in new if key not in old]
    changes = []
    for key in keys:
        was, now = old.get(key), new.get(key)
        if was and now and (was.text, was.name) == (now.text, now.name):
            continue
        if key == "Rule order" and _same_relative_order(before, after, env_key):
            continue  # rules were only added or removed: their own lines say so
        label = now.label if now else was.label if was else key
        changes.append(FactChange(label, was.text if was else None, now.text if now else None))
    return changes


def _same_relative_order(before: dict[str, Any], after: dict[str, Any], env_key: str | None) -> bool:
    def ids(flag: dict[str, Any]) -> list[str]:
        env = (flag.get("environments") or {}).get(env_key or "") or {}
        return [str(r.get("_id")) for r in env.get("rules") or []]

    old, new = ids(before), ids(after)
    common = set(old) & set(new)
    return [i for i in old if i in common] == [i for i in new if i in common]


def targets_count(env: dict[str, Any]) -> int:
    """How many individual targets an environment has, all context kinds together."""
    entries = list(env.get("targets") or []) + list(env.get("contextTargets") or [])
    return sum(len(e.get("values") or []) for e in entries)
