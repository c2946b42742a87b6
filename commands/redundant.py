"""A partly redundant change drops its redundant part and says so.

``target new-checkout test alice,bob -> true`` where alice is served true already sends only bob,
and the card says "alice is already served true: left out". Only set-like changes are reduced,
where "already so" is certain from the flag document alone:

* ``target`` / ``target-users``: keys already served that variation (in that context kind);
* ``untarget`` / ``untarget-users``: keys not targeted (by that variation, when one is named);
* ``add tags`` / ``remove tags``: tags already on the flag, or not on it;
* ``add values`` / ``remove values``: values already in the clause, or not in it;
* ``add prereq``: a prerequisite already there serving that very variation;
* ``add clause``: a clause the rule has exactly (same kind, attribute, operator, negation, values);
* ``add rule`` at the end (no ``before``) serving one variation: a rule with exactly these clauses
  serving that variation exists (it catches everyone the new rule would: the new one is never
  reached). A rule placed ``before`` another is never dropped: it would change who gets what.

A command that mixes kinds of change is left whole (a later change may rely on an earlier one:
``untarget alice; target alice -> true``). When nothing is left, the caller refuses the command
with these notes as the state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from commands import intents as it
from commands.errors import ResolveError
from commands.render import clause as render_clause
from commands.resolve import Flag, _Resolver, find_variation, render_value

_REDUCIBLE = (
    it.AddTargets,
    it.RemoveTargets,
    it.AddUserTargets,
    it.RemoveUserTargets,
    it.AddTags,
    it.RemoveTags,
    it.AddClauseValues,
    it.RemoveClauseValues,
    it.AddPrerequisite,
    it.AddClauses,
    it.AddRule,
)


def drop_redundant(
    cmd: it.ChangeCommand, flag: Flag, flags: dict[str, dict[str, Any]] | None = None
) -> tuple[it.ChangeCommand | None, list[str]]:
    """The command without what is already so on ``flag``, and a note per part left out.

    Args:
        cmd: the command (keys and environment as the flag spells them).
        flag: the flag document as it is now.
        flags: other flags by key (prerequisites' variations).

    Returns:
        ``(command, notes)``: the command unchanged and no notes when nothing is redundant;
        ``(None, notes)`` when every part is already so. A note says the state
        (``"`alice` is already served true"``); the card adds "left out".
    """
    kinds = {type(c) for c in cmd.changes}
    if len(kinds) != 1 or not issubclass(next(iter(kinds)), _REDUCIBLE):
        return cmd, []
    try:
        reducer = _Reducer(cmd, flag, flags or {})
        kept: list[it.AnyIntent] = []
        for change in cmd.changes:
            reduced = reducer.reduce(change)
            if reduced is not None:
                kept.append(reduced)
    except ResolveError:
        return cmd, []  # a reference that matches nothing: resolving says so, in its words
    if not reducer.notes:
        return cmd, []
    if not kept:
        return None, reducer.notes
    return cmd.model_copy(update={"changes": tuple(kept)}), reducer.notes


def _names(items: Sequence[object]) -> str:
    shown = [f"`{render_value(i)}`" for i in items[:10]]
    more = f" and {len(items) - 10} more" if len(items) > 10 else ""
    return ", ".join(shown) + more


def _verb(items: Sequence[object], one: str, many: str) -> str:
    return one if len(items) == 1 else many


class _Reducer:
    def __init__(self, cmd: it.ChangeCommand, flag: Flag, flags: dict[str, dict[str, Any]]) -> None:
        self.resolver = _Resolver(cmd, flag, {}, flags)
        self.flag = flag
        self.env: dict[str, Any] = dict(self.resolver.env)
        self.notes: list[str] = []

    def _left_out(self, items: Sequence[object], state: str, states: str) -> None:
        self.notes.append(f"{_names(items)} {_verb(items, state, states)}")

    # --- targets ---

    def _targeted(self, kind: str) -> dict[str, int]:
        """key → the variation index targeting it, for one context kind."""
        lists = [t for t in self.env.get("targets") or [] if t.get("contextKind", "user") == kind]
        lists += [t for t in self.env.get("contextTargets") or [] if t.get("contextKind", "user") == kind]
        held: dict[str, int] = {}
        for target in lists:
            for value in target.get("values") or []:
                held.setdefault(str(value), int(target.get("variation", -1)))
        return held

    def _index(self, ref: it.VariationRef) -> tuple[int, str]:
        variations = list(self.flag.get("variations") or [])
        found = find_variation(ref, self.flag)
        return variations.index(found), render_value(found.get("value"))

    def _add(self, kind: str, keys: tuple[str, ...], ref: it.VariationRef) -> tuple[str, ...]:
        index, shown = self._index(ref)
        held = self._targeted(kind)
        already = [k for k in keys if held.get(k) == index]
        if already:
            label = "" if kind == "user" else f"{kind}:"
            self._left_out(
                [f"{label}{k}" for k in already], f"is already served {shown}", f"are already served {shown}"
            )
        return tuple(k for k in dict.fromkeys(keys) if held.get(k) != index)

    def _remove(self, kind: str, keys: tuple[str, ...], ref: it.VariationRef | None) -> tuple[str, ...]:
        held = self._targeted(kind)
        label = "" if kind == "user" else f"{kind}:"
        if ref is None:
            absent = [k for k in keys if k not in held]
            state = ("is not targeted", "are not targeted")
        else:
            index, shown = self._index(ref)
            absent = [k for k in keys if held.get(k) != index]
            state = (f"is not served {shown} by a target", f"are not served {shown} by a target")
        if absent:
            self._left_out([f"{label}{k}" for k in absent], *state)
        return tuple(k for k in dict.fromkeys(keys) if k not in absent)

    # --- one change ---

    def reduce(self, c: it.AnyIntent) -> it.AnyIntent | None:
        match c:
            case it.AddTargets():
                keys = self._add(c.context_kind, c.keys, c.variation)
            case it.AddUserTargets():
                keys = self._add("user", c.keys, c.variation)
            case it.RemoveTargets():
                keys = self._remove(c.context_kind, c.keys, c.variation)
            case it.RemoveUserTargets():
                keys = self._remove("user", c.keys, c.variation)
            case it.AddTags() | it.RemoveTags():
                tags = [str(t) for t in self.flag.get("tags") or []]
                adding = isinstance(c, it.AddTags)
                odd = [t for t in c.tags if (t in tags) == adding]
                if odd:
                    where = "already on the flag" if adding else "not on the flag"
                    self._left_out(odd, f"is {where}", f"are {where}")
                left = tuple(t for t in dict.fromkeys(c.tags) if t not in odd)
                return c.model_copy(update={"tags": left}) if left else None
            case it.AddClauseValues() | it.RemoveClauseValues():
                rule = self.resolver.rule(c.rule)
                clause_id = self.resolver.clause_id(rule, c.clause)
                clause = next(x for x in rule.get("clauses") or [] if str(x.get("_id")) == clause_id)
                present = list(clause.get("values") or [])
                adding = isinstance(c, it.AddClauseValues)
                extra = [v for v in c.values if _has(present, v) == adding]
                if extra:
                    where = f"the clause on {clause.get('attribute')}"
                    self._left_out(
                        extra,
                        f"is {'already' if adding else 'not'} in {where}",
                        f"are {'already' if adding else 'not'} in {where}",
                    )
                values = tuple(v for v in c.values if not any(_same(v, o) for o in extra))
                return c.model_copy(update={"values": values}) if values else None
            case it.AddPrerequisite():
                now = {str(p.get("key")): p.get("variation") for p in self.env.get("prerequisites") or []}
                if c.key not in now:
                    return c
                other = self.resolver.other_flag(c.key)
                found = find_variation(c.variation, other)
                index = list(other.get("variations") or []).index(found)
                if now[c.key] != index:
                    return c  # another variation: resolving says to use `update prereq`
                self.notes.append(
                    f"`{c.key}` is already a prerequisite serving `{render_value(found.get('value'))}`"
                )
                return None
            case it.AddClauses():
                rule = self.resolver.rule(c.rule)
                present = list(rule.get("clauses") or [])
                there = [spec for spec in c.clauses if any(_same_clause(spec, x) for x in present)]
                if there:
                    where = f"rule {self._position(rule)}"
                    self._left_out(
                        [render_clause(s) for s in there], f"is already in {where}", f"are in {where}"
                    )
                specs = tuple(spec for spec in c.clauses if spec not in there)
                return c.model_copy(update={"clauses": specs}) if specs else None
            case it.AddRule():
                # Only at the end: an identical rule placed before others would change who gets what.
                if c.before is not None or not isinstance(c.serve, it.ServeVariation):
                    return c
                index, shown = self._index(c.serve.variation)
                for rule in self.env.get("rules") or []:
                    clauses = list(rule.get("clauses") or [])
                    same = (
                        rule.get("variation") == index
                        and rule.get("rollout") is None
                        and len(clauses) == len(c.clauses)
                        and all(any(_same_clause(spec, x) for x in clauses) for spec in c.clauses)
                        and (c.description is None or c.description == rule.get("description"))
                    )
                    if same:
                        self.notes.append(
                            f"rule {self._position(rule)} already serves `{shown}` on these conditions"
                        )
                        return None
                return c
            case _:
                return c
        return c.model_copy(update={"keys": keys}) if keys else None

    def _position(self, rule: dict[str, Any]) -> str:
        rules = list(self.env.get("rules") or [])
        position = next((i for i, r in enumerate(rules, 1) if r.get("_id") == rule.get("_id")), 0)
        described = rule.get("description")
        return f"{position}" + (f' ("{described}")' if described else "")


def _same(a: object, b: object) -> bool:
    """Equal as LaunchDarkly compares clause values (``1`` is not ``true``, ``1`` is ``1.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _same_values(a: Sequence[object], b: Sequence[object]) -> bool:
    return len(a) == len(b) and all(any(_same(x, y) for y in b) for x in a)


def _same_clause(spec: it.ClauseSpec, clause: dict[str, Any]) -> bool:
    """Whether a clause of the flag is exactly ``spec`` (values in any order)."""
    return (
        (spec.context_kind or "user") == clause.get("contextKind", "user")
        and spec.attribute == clause.get("attribute")
        and spec.op == clause.get("op")
        and spec.negate == bool(clause.get("negate"))
        and _same_values(list(spec.values), list(clause.get("values") or []))
    )


def _has(values: list[Any], value: object) -> bool:
    return any(_same(value, v) for v in values)
