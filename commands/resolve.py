"""Intent + flag document → semantic patch: symbolic references become LaunchDarkly IDs.

Variations are found by 1-based position, by value (respecting the flag's value types: on a
boolean flag ``true`` is the boolean and ``"true"`` in quotes matches nothing) or by name; rules
by position, description or ``_id``; clauses by position, attribute or ``_id``. Anything that
matches nothing raises :class:`~commands.errors.ResolveError` naming the candidates and the
closest one::

    no variation "ture" on new-checkout, did you mean "true"? (true, false)

Strict where it matters: an environment must exist exactly (``prod`` is not ``production``),
a description or attribute must match one rule or clause (case aside), never a fuzzy guess.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any, TypeVar, assert_never

from pydantic import BaseModel, ValidationError

from commands import instructions as ins
from commands import intents as it
from commands.errors import ResolveError
from commands.grammar import is_number_word

Flag = Mapping[str, Any]
M = TypeVar("M", bound=BaseModel)


def resolve(
    cmd: it.ChangeCommand,
    flag: Flag,
    *,
    members: Mapping[str, str] | None = None,
    flags: Mapping[str, Flag] | None = None,
) -> ins.SemanticPatch:
    """Turn a change command into the semantic patch to send.

    Args:
        cmd: the parsed command.
        flag: the flag document (LaunchDarkly's flag response shape).
        members: email → member id, to resolve ``maintainer <email>``; without it the email is
            kept as the instruction's value, for the caller to map.
        flags: other flags by key, for the variations of prerequisite flags.

    Returns:
        The semantic patch (environmentKey, comment, instructions), validated.

    Raises:
        ResolveError: a reference matches nothing (or more than one thing) on the flag.
    """
    resolver = _Resolver(cmd, flag, members or {}, flags or {})
    instructions: list[ins.Instruction] = []
    for change in cmd.changes:
        instructions += resolver.instructions(change)
    fields: dict[str, Any] = {"instructions": instructions}
    if cmd.environment is not None:
        fields["environmentKey"] = cmd.environment
    if cmd.comment is not None:
        fields["comment"] = cmd.comment
    return _make(ins.SemanticPatch, **fields)


def referenced_flags(cmd: it.ChangeCommand) -> set[str]:
    """Keys of the other flags ``resolve`` needs (prerequisites), so the caller can fetch them."""
    keys: set[str] = set()
    for change in cmd.changes:
        if isinstance(change, it.AddPrerequisite | it.UpdatePrerequisite):
            keys.add(change.key)
        elif isinstance(change, it.ReplacePrerequisites):
            keys |= {p.key for p in change.prerequisites}
    return keys


def _make(model: type[M], **fields: Any) -> M:
    """Build a model from the fields that have a value (so ``exclude_unset`` leaves out the rest)."""
    try:
        return model(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ResolveError(reasons) from None


def render_value(value: Any) -> str:
    """A variation value as people read it: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _close(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f', did you mean "{close[0]}"?' if close else ""


def _value_matches(value: Any, text: str, quoted: bool) -> bool:
    if isinstance(value, str):
        return value == text
    if quoted:
        return False
    if isinstance(value, bool):
        return text in ("true", "false") and value == (text == "true")
    if isinstance(value, int | float):
        return is_number_word(text) and float(text) == value
    if value is None:
        return text == "null"
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False


def find_variation(ref: it.VariationRef, flag: Flag) -> dict[str, Any]:
    """The variation ``ref`` names on ``flag``.

    Raises:
        ResolveError: none (or several) match; the message lists the flag's values.
    """
    variations: list[dict[str, Any]] = list(flag.get("variations") or [])
    key = flag.get("key", "the flag")
    shown = [render_value(v.get("value")) for v in variations]
    if ref.index is not None:
        if ref.index <= len(variations):
            return variations[ref.index - 1]
        raise ResolveError(
            f"no variation #{ref.index} on {key}: it has {len(variations)} ({', '.join(shown)})", shown
        )
    text = ref.text or ""
    by_value = [v for v in variations if _value_matches(v.get("value"), text, ref.quoted)]
    by_name = [v for v in variations if v.get("name") == text]
    folded = text.casefold()
    loosely = [
        v
        for v in variations
        if (isinstance(v.get("name"), str) and v["name"].casefold() == folded)
        or (isinstance(v.get("value"), str) and v["value"].casefold() == folded)
    ]
    for found in (by_value, by_name, loosely):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            which = ", ".join(f"#{variations.index(v) + 1} {render_value(v.get('value'))}" for v in found)
            raise ResolveError(f'"{text}" matches {len(found)} variations on {key}: say #n ({which})', shown)
    names = [v["name"] for v in variations if isinstance(v.get("name"), str)]
    hint = ""
    if ref.quoted and any(_value_matches(v.get("value"), text, False) for v in variations):
        kind = _type_name(variations)
        hint = f'; "{text}" in quotes is a string, write it without quotes for the {kind} value'
    elif not ref.quoted and any(render_value(v.get("value")) == text for v in variations):
        hint = f"; this flag's values are {_type_name(variations)}s"
    close = difflib.get_close_matches(text, shown + names, n=2, cutoff=0.5)
    raise ResolveError(
        f'no variation "{text}" on {key}{_close(text, shown + names)} ({", ".join(shown)}){hint}',
        shown,
        guess=(text, close[0]) if len(close) == 1 and not ref.quoted and " " not in close[0] else None,
    )


def _type_name(variations: list[dict[str, Any]]) -> str:
    kinds = {type(v.get("value")).__name__ for v in variations}
    names = {"bool": "boolean", "int": "number", "float": "number", "str": "string"}
    return names.get(kinds.pop(), "JSON") if len(kinds) == 1 else "JSON"


def typed_value(literal: it.ValueLiteral, flag: Flag) -> Any:
    """A new variation value, typed like the flag's other values.

    Raises:
        ResolveError: the value cannot have the flag's type (``purple`` on a boolean flag).
    """
    if literal.form == "string":
        return literal.text
    if literal.form == "json":
        try:
            return json.loads(literal.text)
        except ValueError as exc:
            raise ResolveError(f"invalid JSON value: {exc}") from None
    text = literal.text
    values = [v.get("value") for v in flag.get("variations") or []]
    if values and all(isinstance(v, str) for v in values):
        return text
    if values and all(isinstance(v, bool) for v in values):
        if text not in ("true", "false"):
            raise ResolveError(f'{flag.get("key")} is a boolean flag: "{text}" is not true or false')
        return text == "true"
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        if not is_number_word(text):
            raise ResolveError(f'{flag.get("key")} serves numbers: "{text}" is not a number')
        return float(text) if any(c in text for c in ".eE") else int(text)
    if text in ("true", "false", "null") or is_number_word(text):
        return json.loads(text)
    return text


class _Resolver:
    def __init__(
        self, cmd: it.ChangeCommand, flag: Flag, members: Mapping[str, str], flags: Mapping[str, Flag]
    ) -> None:
        self.cmd = cmd
        self.flag = flag
        self.key = str(flag.get("key", cmd.flag))
        self.members = {email.casefold(): member_id for email, member_id in members.items()}
        self.flags = flags
        if cmd.flag != self.key:
            raise ResolveError(f"the command is for {cmd.flag}, but the flag document is {self.key}")
        environments: Mapping[str, Any] = flag.get("environments") or {}
        self.env: Mapping[str, Any] = {}
        if cmd.environment is not None:
            if cmd.environment not in environments:
                names = sorted(environments)
                raise ResolveError(
                    f'no environment "{cmd.environment}" on {self.key}'
                    f"{_close(cmd.environment, names)} ({', '.join(names)})",
                    names,
                )
            self.env = environments[cmd.environment]

    # --- references ---

    def variation_id(self, ref: it.VariationRef, flag: Flag | None = None) -> str:
        return str(find_variation(ref, flag or self.flag)["_id"])

    def rule(self, ref: it.RuleRef) -> dict[str, Any]:
        rules: list[dict[str, Any]] = list(self.env.get("rules") or [])
        where = f"{self.key} in {self.cmd.environment}"
        listed = [f'{i} "{r.get("description") or "(no description)"}"' for i, r in enumerate(rules, 1)]
        if ref.position is not None:
            if ref.position <= len(rules):
                return rules[ref.position - 1]
            raise ResolveError(
                f"no rule {ref.position} on {where}: it has {len(rules)} rule(s)"
                f"{': ' + ', '.join(listed) if listed else ''}",
                listed,
            )
        text = ref.description or ""
        for found in (
            [r for r in rules if r.get("description") == text or r.get("_id") == text],
            [r for r in rules if str(r.get("description") or "").casefold() == text.casefold()],
        ):
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise ResolveError(
                    f'{len(found)} rules on {where} are described "{text}": say rule <position>', listed
                )
        descriptions = [str(r.get("description")) for r in rules if r.get("description")]
        raise ResolveError(
            f'no rule "{text}" on {where}{_close(text, descriptions)} (rules: {", ".join(listed) or "none"})',
            listed,
        )

    def rule_id(self, ref: it.RuleRef) -> str:
        return str(self.rule(ref)["_id"])

    def clause_id(self, rule: dict[str, Any], ref: it.ClauseRef) -> str:
        found_clauses: list[dict[str, Any]] = list(rule.get("clauses") or [])
        label = f'rule "{rule.get("description") or rule.get("_id")}"'
        listed = [f"{i} {c.get('attribute')}" for i, c in enumerate(found_clauses, 1)]
        if ref.position is not None:
            if ref.position <= len(found_clauses):
                return str(found_clauses[ref.position - 1]["_id"])
            raise ResolveError(
                f"no clause {ref.position} in {label}: it has {len(found_clauses)} ({', '.join(listed)})",
                listed,
            )
        text = ref.attribute or ""
        found = [c for c in found_clauses if c.get("attribute") == text or c.get("_id") == text]
        if len(found) == 1:
            return str(found[0]["_id"])
        if len(found) > 1:
            positions = [str(found_clauses.index(c) + 1) for c in found]
            raise ResolveError(
                f"{label} has {len(found)} clauses on {text}: say clause {' or '.join(positions)}", listed
            )
        attributes = [str(c.get("attribute")) for c in found_clauses]
        raise ResolveError(
            f'no clause on "{text}" in {label}{_close(text, attributes)} ({", ".join(listed)})', listed
        )

    def other_flag(self, key: str) -> Flag:
        if key == self.key:
            raise ResolveError(f"{key} cannot be its own prerequisite")
        other = self.flags.get(key)
        if other is None:
            raise ResolveError(
                f"flag {key} is needed to find its variation (is the key right?)", sorted(self.flags)
            )
        return other

    def prerequisite_keys(self) -> list[str]:
        return [str(p.get("key")) for p in self.env.get("prerequisites") or []]

    # --- pieces ---

    def serving(self, serve: it.Serving) -> dict[str, Any]:
        if isinstance(serve, it.ServeVariation):
            return {"variationId": self.variation_id(serve.variation)}
        weights: dict[str, int] = {}
        for w in serve.weights:
            variation_id = self.variation_id(w.variation)
            if variation_id in weights:
                raise ResolveError("two slices of the rollout name the same variation")
            weights[variation_id] = w.weight
        return {
            "rolloutWeights": weights,
            "rolloutBucketBy": serve.bucket_by,
            "rolloutContextKind": serve.context_kind,
        }

    @staticmethod
    def clause(spec: it.ClauseSpec) -> ins.Clause:
        return ins.Clause(
            contextKind=spec.context_kind or "user",
            attribute=spec.attribute,
            op=spec.op,
            negate=spec.negate,
            values=list(spec.values),
        )

    def remove_targets(self, keys: tuple[str, ...], context_kind: str | None) -> dict[str, list[str]]:
        """variation id -> keys, from where each key is targeted now (context_kind None: legacy users)."""
        variations = list(self.flag.get("variations") or [])
        lists = list(self.env.get("targets") or [])
        if context_kind is not None:
            lists += list(self.env.get("contextTargets") or [])
        wanted = context_kind or "user"
        held: dict[str, int] = {}
        for target in lists:
            if target.get("contextKind", "user") == wanted:
                for value in target.get("values") or []:
                    held.setdefault(value, target.get("variation", -1))
        grouped: dict[str, list[str]] = {}
        for key in keys:
            index = held.get(key)
            if index is None or not 0 <= index < len(variations):
                raise ResolveError(f"{wanted} {key} is not targeted on {self.key} in {self.cmd.environment}")
            grouped.setdefault(str(variations[index]["_id"]), []).append(key)
        return grouped

    # --- one intent → instructions ---

    def instructions(self, c: it.AnyIntent) -> list[ins.Instruction]:
        match c:
            case it.TurnOn():
                return [ins.TurnFlagOn()]
            case it.TurnOff():
                return [ins.TurnFlagOff()]
            case it.AddTargets():
                return [
                    _make(
                        ins.AddTargets,
                        contextKind=c.context_kind,
                        values=list(c.keys),
                        variationId=self.variation_id(c.variation),
                    )
                ]
            case it.RemoveTargets():
                if c.variation is not None:
                    return [
                        _make(
                            ins.RemoveTargets,
                            contextKind=c.context_kind,
                            values=list(c.keys),
                            variationId=self.variation_id(c.variation),
                        )
                    ]
                return [
                    _make(ins.RemoveTargets, contextKind=c.context_kind, values=keys, variationId=vid)
                    for vid, keys in self.remove_targets(c.keys, c.context_kind).items()
                ]
            case it.ClearTargets():
                return [ins.ClearTargets(variationId=self.variation_id(c.variation))]
            case it.ReplaceTargets():
                return [
                    ins.ReplaceTargets(
                        targets=[
                            ins.TargetSpec(
                                contextKind=t.context_kind,
                                variationId=self.variation_id(t.variation),
                                values=list(t.keys),
                            )
                            for t in c.targets
                        ]
                    )
                ]
            case it.AddUserTargets():
                return [
                    _make(ins.AddUserTargets, values=list(c.keys), variationId=self.variation_id(c.variation))
                ]
            case it.RemoveUserTargets():
                if c.variation is not None:
                    return [
                        _make(
                            ins.RemoveUserTargets,
                            values=list(c.keys),
                            variationId=self.variation_id(c.variation),
                        )
                    ]
                return [
                    _make(ins.RemoveUserTargets, values=keys, variationId=vid)
                    for vid, keys in self.remove_targets(c.keys, None).items()
                ]
            case it.ClearUserTargets():
                return [ins.ClearUserTargets(variationId=self.variation_id(c.variation))]
            case it.ReplaceUserTargets():
                return [
                    ins.ReplaceUserTargets(
                        targets=[
                            ins.UserTargetSpec(
                                variationId=self.variation_id(t.variation), values=list(t.keys)
                            )
                            for t in c.targets
                        ]
                    )
                ]
            case it.SetFallthrough():
                return [_make(ins.UpdateFallthroughVariationOrRollout, **self.serving(c.serve))]
            case it.SetRuleServe():
                return [
                    _make(
                        ins.UpdateRuleVariationOrRollout, ruleId=self.rule_id(c.rule), **self.serving(c.serve)
                    )
                ]
            case it.SetOffVariation():
                return [ins.UpdateOffVariation(variationId=self.variation_id(c.variation))]
            case it.AddRule():
                return [
                    _make(
                        ins.AddRule,
                        clauses=[self.clause(s) for s in c.clauses],
                        beforeRuleId=self.rule_id(c.before) if c.before else None,
                        description=c.description,
                        trackEvents=c.track_events,
                        **self.serving(c.serve),
                    )
                ]
            case it.RemoveRule():
                return [ins.RemoveRule(ruleId=self.rule_id(c.rule))]
            case it.ReorderRules():
                return [self.reorder(c)]
            case it.ReplaceRules():
                return [
                    ins.ReplaceRules(
                        rules=[
                            _make(
                                ins.RuleSpec,
                                clauses=[self.clause(s) for s in r.clauses],
                                description=r.description,
                                trackEvents=r.track_events,
                                **self.serving(r.serve),
                            )
                            for r in c.rules
                        ]
                    )
                ]
            case it.RenameRule():
                return [ins.UpdateRuleDescription(ruleId=self.rule_id(c.rule), description=c.description)]
            case it.SetRuleTrackEvents():
                return [ins.UpdateRuleTrackEvents(ruleId=self.rule_id(c.rule), trackEvents=c.track_events)]
            case it.SetTrackEvents():
                return [ins.UpdateTrackEvents(trackEvents=c.track_events)]
            case it.SetFallthroughTrackEvents():
                return [ins.UpdateTrackEventsFallthrough(trackEvents=c.track_events)]
            case it.AddClauses():
                return [
                    ins.AddClauses(ruleId=self.rule_id(c.rule), clauses=[self.clause(s) for s in c.clauses])
                ]
            case it.RemoveClauses():
                rule = self.rule(c.rule)
                ids = [self.clause_id(rule, ref) for ref in c.clauses]
                return [ins.RemoveClauses(ruleId=str(rule["_id"]), clauseIds=list(dict.fromkeys(ids)))]
            case it.AddClauseValues() | it.RemoveClauseValues():
                rule = self.rule(c.rule)
                model = (
                    ins.AddValuesToClause if isinstance(c, it.AddClauseValues) else ins.RemoveValuesFromClause
                )
                return [
                    model(
                        ruleId=str(rule["_id"]),
                        clauseId=self.clause_id(rule, c.clause),
                        values=list(c.values),
                    )
                ]
            case it.UpdateClause():
                rule = self.rule(c.rule)
                return [
                    ins.UpdateClause(
                        ruleId=str(rule["_id"]),
                        clauseId=self.clause_id(rule, c.clause),
                        clause=self.clause(c.new),
                    )
                ]
            case it.AddPrerequisite():
                if c.key in self.prerequisite_keys():
                    raise ResolveError(f"{c.key} is already a prerequisite: use `update prereq`")
                return [
                    ins.AddPrerequisite(
                        key=c.key, variationId=self.variation_id(c.variation, self.other_flag(c.key))
                    )
                ]
            case it.RemovePrerequisite() | it.UpdatePrerequisite():
                current = self.prerequisite_keys()
                if c.key not in current:
                    raise ResolveError(
                        f"{c.key} is not a prerequisite of {self.key} in {self.cmd.environment}"
                        f"{_close(c.key, current)} (prerequisites: {', '.join(current) or 'none'})",
                        current,
                    )
                if isinstance(c, it.RemovePrerequisite):
                    return [ins.RemovePrerequisite(key=c.key)]
                return [
                    ins.UpdatePrerequisite(
                        key=c.key, variationId=self.variation_id(c.variation, self.other_flag(c.key))
                    )
                ]
            case it.ReplacePrerequisites():
                return [
                    ins.ReplacePrerequisites(
                        prerequisites=[
                            ins.PrerequisiteSpec(
                                key=p.key, variationId=self.variation_id(p.variation, self.other_flag(p.key))
                            )
                            for p in c.prerequisites
                        ]
                    )
                ]
            case it.AddVariation():
                fields = {"name": c.name, "description": c.description}
                return [
                    ins.AddVariation(
                        value=typed_value(c.value, self.flag),
                        **{k: v for k, v in fields.items() if v is not None},
                    )
                ]
            case it.RemoveVariation():
                return [ins.RemoveVariation(variationId=self.variation_id(c.variation))]
            case it.UpdateVariation():
                changes: dict[str, Any] = {"name": c.name, "description": c.description}
                changes = {k: v for k, v in changes.items() if v is not None}
                if c.value is not None:
                    changes["value"] = typed_value(c.value, self.flag)
                return [ins.UpdateVariation(variationId=self.variation_id(c.variation), **changes)]
            case it.SetDefaultVariations():
                defaults: dict[str, Any] = {}
                if c.on is not None:
                    defaults["onVariationValue"] = find_variation(c.on, self.flag).get("value")
                if c.off is not None:
                    defaults["offVariationValue"] = find_variation(c.off, self.flag).get("value")
                return [ins.UpdateDefaultVariation(**defaults)]
            case it.AddCustomProperty():
                return [
                    ins.AddCustomProperties(
                        key=c.key, name=self.property_name(c.key, c.name), values=list(c.values)
                    )
                ]
            case it.ReplaceCustomProperty():
                return [
                    ins.ReplaceCustomProperties(
                        key=c.key, name=self.property_name(c.key, c.name), values=list(c.values)
                    )
                ]
            case it.RemoveCustomPropertyValues():
                return [ins.RemoveCustomProperties(key=c.key, values=list(c.values))]
            case it.AddTags():
                return [ins.AddTags(values=list(c.tags))]
            case it.RemoveTags():
                return [ins.RemoveTags(values=list(c.tags))]
            case it.MakePermanent():
                return [ins.MakeFlagPermanent()]
            case it.MakeTemporary():
                return [ins.MakeFlagTemporary()]
            case it.RemoveMaintainer():
                return [ins.RemoveMaintainer()]
            case it.MaintainerMember():
                return [ins.UpdateMaintainerMember(value=self.member_id(c.member))]
            case it.MaintainerTeam():
                return [ins.UpdateMaintainerTeam(value=c.team)]
            case it.ExposeClientSide():
                return [ins.TurnOnClientSideAvailability(value=c.sdk)]
            case it.HideClientSide():
                return [ins.TurnOffClientSideAvailability(value=c.sdk)]
            case it.SetDescription():
                return [ins.UpdateDescription(value=c.description)]
            case it.Rename():
                return [ins.UpdateName(value=c.name)]
            case it.Archive():
                return [ins.ArchiveFlag()]
            case it.Delete():
                return [ins.DeleteFlag()]
            case it.Deprecate():
                return [ins.DeprecateFlag()]
            case it.Undeprecate():
                return [ins.RestoreDeprecatedFlag()]
            case it.Restore():
                return [ins.RestoreFlag()]
            case _:
                assert_never(c)

    def reorder(self, c: it.ReorderRules) -> ins.ReorderRules:
        ids = [self.rule_id(ref) for ref in c.rules]
        all_ids = [str(r["_id"]) for r in self.env.get("rules") or []]
        if len(set(ids)) != len(ids):
            raise ResolveError("a rule appears twice in the new order")
        missing = [str(all_ids.index(i) + 1) for i in all_ids if i not in ids]
        if missing:
            raise ResolveError(f"name every rule in the new order; missing: rule {', '.join(missing)}")
        return ins.ReorderRules(ruleIds=ids)

    def property_name(self, key: str, name: str | None) -> str:
        if name is not None:
            return name
        current = (self.flag.get("customProperties") or {}).get(key) or {}
        return str(current.get("name") or key)

    def member_id(self, member: str) -> str:
        if "@" not in member or not self.members:
            return member
        found = self.members.get(member.casefold())
        if found is None:
            emails = sorted(self.members)
            raise ResolveError(f'no member "{member}"{_close(member.casefold(), emails)}', emails)
        return found
