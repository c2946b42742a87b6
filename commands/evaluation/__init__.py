"""What a context gets from a flag, and why, as LaunchDarkly's SDKs evaluate it (pure, no I/O).

The sandbox answers ``POST .../flags/evaluate`` with it, and the bot uses it to say which clause of
a rule matched (LaunchDarkly's answer names the rule, not the clause). In order:

1. targeting off → the off variation (``OFF``);
2. each prerequisite flag must be on and serve the required variation, else the off variation
   (``PREREQUISITE_FAILED`` with ``prerequisiteKey``);
3. individual targets, per context kind (``TARGET_MATCH``);
4. the rules in order: a rule matches when every clause does (``RULE_MATCH`` with ``ruleIndex``
   and ``ruleID``);
5. the default rule (``FALLTHROUGH``).

A clause reads the attribute of the context of its ``contextKind`` (default ``user``); a context
without that kind, or without the attribute, fails the clause even when it is negated. An
attribute that is a list matches when any element does. ``kind`` matches the context's kinds;
``segmentMatch`` asks whether the context is in any of the named segments (included, excluded,
then the segment's rules). A malformed flag (a variation index out of range, an empty rollout, a
prerequisite cycle) is ``ERROR`` / ``MALFORMED_FLAG`` with no value.

Where LaunchDarkly's documents leave it open, decided here: a flag's user targets (``targets``)
that no ``contextTargets`` entry of kind ``user`` stands for are checked before the other kinds'
targets; a big (unbounded) segment matches nobody, since its members are not in the flag data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from commands.contexts import Individual, individual_contexts
from commands.evaluation.bucketing import bucket, variation_for
from commands.evaluation.operators import matches_value

Doc = Mapping[str, Any]


@dataclass(frozen=True)
class ClauseCheck:
    """One clause against the context: ``seen`` is the value compared; ``absent`` says why there
    was none (``no organization context``, ``no attribute tier``)."""

    clause: Doc
    matched: bool
    seen: Any = None
    absent: str | None = None


@dataclass(frozen=True)
class RuleCheck:
    """One rule, with every one of its clauses (the rule matches when all of them do)."""

    index: int
    rule: Doc
    matched: bool
    clauses: tuple[ClauseCheck, ...]


@dataclass(frozen=True)
class BucketCheck:
    """Where a percentage rollout put the context: its bucket (0 to 1) and the slice it fell in."""

    value: float
    context_kind: str
    by: str
    seed: int | None
    position: int
    weighted: tuple[Doc, ...]
    experiment: bool


@dataclass(frozen=True)
class Evaluation:
    """The result: ``reason`` in LaunchDarkly's shape (``kind``, ``ruleIndex``, ``ruleID``,
    ``prerequisiteKey``, ``inExperiment``, ``errorKind``), and how it was reached."""

    flag_key: str
    value: Any
    variation: int | None
    reason: dict[str, Any]
    target: tuple[str, str] | None = None  # (context kind, key) for TARGET_MATCH
    rules: tuple[RuleCheck, ...] = ()  # the rules checked, in order, up to the one that matched
    bucket: BucketCheck | None = None
    prerequisite: Evaluation | None = None  # the failed prerequisite's own result

    @property
    def kind(self) -> str:
        return str(self.reason.get("kind"))


class _Malformed(Exception):
    pass


def evaluate(
    flag: Doc,
    env_key: str,
    context: Any,
    *,
    flags: Mapping[str, Doc] | None = None,
    segments: Mapping[str, Doc] | None = None,
) -> Evaluation:
    """Evaluate ``flag`` in environment ``env_key`` for ``context``.

    Args:
        flag: the flag document (LaunchDarkly's REST shape, with ``environments``).
        env_key: the environment.
        context: the context as LaunchDarkly's JSON (``commands.contexts``).
        flags: other flags by key (prerequisites).
        segments: the environment's segments by key (``segmentMatch``).

    Returns:
        The evaluation (see the module docstring).

    Raises:
        ContextError: the context is not one LaunchDarkly evaluates.
    """
    contexts = individual_contexts(context)
    evaluator = _Evaluator(env_key, contexts, flags or {}, segments or {})
    key = str(flag.get("key", ""))
    try:
        return evaluator.flag(flag, [key])
    except (_Malformed, AttributeError, KeyError, TypeError):
        # A document of the wrong shape (a JSON or merge patch can write anything into a flag) is
        # what the SDKs call a malformed flag: no value, and nothing else breaks.
        return Evaluation(key, None, None, {"kind": "ERROR", "errorKind": "MALFORMED_FLAG"})


class _Evaluator:
    def __init__(
        self,
        env_key: str,
        contexts: Mapping[str, Individual],
        flags: Mapping[str, Doc],
        segments: Mapping[str, Doc],
    ) -> None:
        self.env_key = env_key
        self.contexts = contexts
        self.flags = flags
        self.segments = segments

    # --- the flag ---------------------------------------------------------------------------------

    def flag(self, flag: Doc, stack: list[str]) -> Evaluation:
        key = str(flag.get("key", ""))
        env = (flag.get("environments") or {}).get(self.env_key)
        if not isinstance(env, Mapping):
            raise _Malformed(f"{key} has no configuration in {self.env_key}")
        if not env.get("on"):
            return self._off(flag, env, {"kind": "OFF"})
        failed = self._prerequisites(env, stack)
        if failed is not None:
            prereq_key, result = failed
            off = self._off(flag, env, {"kind": "PREREQUISITE_FAILED", "prerequisiteKey": prereq_key})
            return _with(off, prerequisite=result)
        target = self._target(env)
        if target is not None:
            (kind, context_key), index = target
            found = self._variation(flag, index, {"kind": "TARGET_MATCH"})
            return _with(found, target=(kind, context_key))
        checked: list[RuleCheck] = []
        for index, rule in enumerate(env.get("rules") or []):
            check = self._rule(index, rule)
            checked.append(check)
            if check.matched:
                reason = {"kind": "RULE_MATCH", "ruleIndex": index, "ruleID": rule.get("_id")}
                return _with(self._serve(flag, env, rule, reason), rules=tuple(checked))
        served = self._serve(flag, env, env.get("fallthrough") or {}, {"kind": "FALLTHROUGH"})
        return _with(served, rules=tuple(checked))

    def _off(self, flag: Doc, env: Doc, reason: dict[str, Any]) -> Evaluation:
        index = env.get("offVariation")
        if index is None:
            return Evaluation(str(flag.get("key", "")), None, None, reason)
        return self._variation(flag, index, reason)

    def _variation(self, flag: Doc, index: Any, reason: dict[str, Any]) -> Evaluation:
        variations = flag.get("variations") or []
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(variations):
            raise _Malformed(f"variation {index} does not exist")
        return Evaluation(str(flag.get("key", "")), variations[index].get("value"), index, reason)

    def _serve(self, flag: Doc, env: Doc, serve: Doc, reason: dict[str, Any]) -> Evaluation:
        if serve.get("variation") is not None:
            return self._variation(flag, serve["variation"], reason)
        rollout = serve.get("rollout")
        if not isinstance(rollout, Mapping) or not rollout.get("variations"):
            raise _Malformed("nothing to serve")
        weighted = tuple(rollout["variations"])
        experiment = rollout.get("kind") == "experiment"
        kind = str(rollout.get("contextKind") or "user")
        by = "key" if experiment else str(rollout.get("bucketBy") or "key")
        context = self.contexts.get(kind)
        seed = rollout.get("seed") if isinstance(rollout.get("seed"), int) else None
        salt = str(env.get("salt") or flag.get("salt") or "")
        # A context without the rollout's kind lands in the first slice, never in an experiment.
        place = 0.0
        if context is not None:
            place = bucket(_attribute(context, by), key=str(flag.get("key", "")), salt=salt, seed=seed)
        position, index = variation_for(place, list(weighted))
        if experiment and context is not None and not weighted[position].get("_untracked"):
            reason = {**reason, "inExperiment": True}
        check = BucketCheck(place, kind, by, seed, position, weighted, experiment)
        return _with(self._variation(flag, index, reason), bucket=check)

    # --- prerequisites and targets ----------------------------------------------------------------

    def _prerequisites(self, env: Doc, stack: list[str]) -> tuple[str, Evaluation | None] | None:
        for prereq in env.get("prerequisites") or []:
            key = str(prereq.get("key"))
            if key in stack:
                raise _Malformed(f"prerequisite cycle through {key}")
            other = self.flags.get(key)
            if other is None:
                return key, None
            result = self.flag(other, [*stack, key])
            other_env = (other.get("environments") or {}).get(self.env_key) or {}
            if not other_env.get("on") or result.variation != prereq.get("variation"):
                return key, result
        return None

    def _target(self, env: Doc) -> tuple[tuple[str, str], Any] | None:
        user_targets = [t for t in env.get("targets") or [] if _kind(t) == "user"]
        context_targets = list(env.get("contextTargets") or [])
        placeholders = {t.get("variation") for t in context_targets if _kind(t) == "user"}
        ordered: list[Doc] = [t for t in user_targets if t.get("variation") not in placeholders]
        for entry in context_targets:
            if _kind(entry) == "user":
                ordered += [t for t in user_targets if t.get("variation") == entry.get("variation")]
            else:
                ordered.append(entry)
        for entry in ordered:
            kind = _kind(entry)
            context = self.contexts.get(kind)
            if context is not None and context.get("key") in (entry.get("values") or []):
                return (kind, str(context["key"])), entry.get("variation")
        return None

    # --- rules and clauses ------------------------------------------------------------------------

    def _rule(self, index: int, rule: Doc) -> RuleCheck:
        clauses = tuple(self.clause(c, []) for c in rule.get("clauses") or [])
        return RuleCheck(index, rule, all(c.matched for c in clauses), clauses)

    def clause(self, clause: Doc, segment_stack: list[str]) -> ClauseCheck:
        op = str(clause.get("op"))
        negate = bool(clause.get("negate"))
        values = list(clause.get("values") or [])
        if op == "segmentMatch":
            inside = [str(k) for k in values if self._in_segment(str(k), segment_stack)]
            return ClauseCheck(clause, bool(inside) != negate, seen=inside)
        attribute = str(clause.get("attribute") or "")
        if attribute == "kind":
            kinds = list(self.contexts)
            return ClauseCheck(clause, any(matches_value(op, k, values) for k in kinds) != negate, kinds)
        kind = str(clause.get("contextKind") or "user")
        context = self.contexts.get(kind)
        if context is None:
            return ClauseCheck(clause, False, absent=f"no {kind} context")
        value = _attribute(context, attribute)
        if value is None:
            return ClauseCheck(clause, False, absent=f"no attribute {attribute}")
        candidates = value if isinstance(value, list) else [value]
        found = any(matches_value(op, v, values) for v in candidates)
        return ClauseCheck(clause, found != negate, seen=value)

    def _in_segment(self, key: str, stack: list[str]) -> bool:
        segment = self.segments.get(key)
        if segment is None or segment.get("unbounded"):
            return False
        if key in stack:
            raise _Malformed(f"segment cycle through {key}")
        if self._listed(segment.get("included"), segment.get("includedContexts")):
            return True
        if self._listed(segment.get("excluded"), segment.get("excludedContexts")):
            return False
        for rule in segment.get("rules") or []:
            if all(self.clause(c, [*stack, key]).matched for c in rule.get("clauses") or []):
                weight = rule.get("weight")
                if weight is None:
                    return True
                kind = str(rule.get("rolloutContextKind") or "user")
                context = self.contexts.get(kind)
                if context is None:
                    continue
                by = str(rule.get("bucketBy") or "key")
                place = bucket(_attribute(context, by), key=key, salt=str(segment.get("salt") or ""))
                if place < int(weight) / 100_000:
                    return True
        return False

    def _listed(self, user_keys: Any, by_kind: Any) -> bool:
        user = self.contexts.get("user")
        if user is not None and user.get("key") in (user_keys or []):
            return True
        for entry in by_kind or []:
            context = self.contexts.get(str(entry.get("contextKind") or "user"))
            if context is not None and context.get("key") in (entry.get("values") or []):
                return True
        return False


def _attribute(context: Individual | None, reference: str) -> Any:
    """An attribute of one context: a name, or a ``/``-path into nested objects (``/address/city``);
    an old-style user's ``custom`` attributes too. None when absent."""
    if context is None:
        return None
    if reference.startswith("/"):
        value: Any = context
        for part in reference[1:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value
    if reference in context:
        return context[reference]
    custom = context.get("custom")
    return custom.get(reference) if isinstance(custom, Mapping) else None


def _kind(entry: Doc) -> str:
    return str(entry.get("contextKind") or "user")


def _with(result: Evaluation, **changes: Any) -> Evaluation:
    return dataclasses.replace(result, **changes)
