"""The state one semantic patch works on, the handler registry, and the lookups handlers share.

Every handler is ``handler(ctx, instruction) -> None``: it changes ``ctx.flag`` (a private deep copy
of the caller's document) in place, or calls ``ctx.refuse(reason)``. ``apply`` (core.py) runs the
handlers in order and only returns the copy when every one of them succeeded, which is what makes a
patch all or nothing ("A semantic patch is all or nothing", LAUNCHDARKLY.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

from commands.errors import EngineRefusal
from commands.instructions import Clause, Instruction

FlagDoc = dict[str, Any]
Handler = Callable[["Context", Any], None]
I = TypeVar("I", bound=Instruction)  # noqa: E741 - the conventional name for an instruction type

#: kind -> handler, filled by the ``@handles`` decorators of the handler modules.
HANDLERS: dict[str, Handler] = {}


def handles(model: type[I]) -> Callable[[Callable[[Context, I], None]], Callable[[Context, I], None]]:
    """Register the decorated function as the handler of ``model``'s instruction kind."""
    kind = str(model.model_fields["kind"].default)

    def register(func: Callable[[Context, I], None]) -> Callable[[Context, I], None]:
        if kind in HANDLERS:
            raise RuntimeError(f"two handlers for instruction kind {kind!r}")
        HANDLERS[kind] = func
        return func

    return register


class Context:
    """One patch in progress: the working copy, the instruction being applied, and the helpers.

    Args:
        flag: the working copy (already deep-copied; handlers mutate it).
        environment_key: the patch's ``environmentKey`` (None for flag-level-only patches).
        other_flags: the project's other flags by key, or None when the caller does not know them.
        new_id: makes ``_id``s for new rules, clauses and variations.
        now_ms: the timestamp of this change, in epoch milliseconds.
    """

    def __init__(
        self,
        flag: FlagDoc,
        *,
        environment_key: str | None,
        other_flags: Mapping[str, FlagDoc] | None,
        new_id: Callable[[], str],
        now_ms: int,
    ) -> None:
        self.flag = flag
        self.environment_key = environment_key
        self.other_flags = other_flags
        self.new_id = new_id
        self.now_ms = now_ms
        self.index = 0
        self.kind = ""
        self.deleted_at: int | None = None

    # --- refusals ----------------------------------------------------------------------------

    def refuse(self, reason: str) -> NoReturn:
        """Abort the whole patch, naming the current instruction (1-based in the message)."""
        raise EngineRefusal(
            f"instruction {self.index + 1} ({self.kind}): {reason}", index=self.index, kind=self.kind
        )

    # --- environment -------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, Any]:
        """The environment the patch names; refuses when the flag has no such environment."""
        key = self.environment_key
        environments: dict[str, Any] = self.flag.setdefault("environments", {})
        if key is None:
            self.refuse("environmentKey is required for this instruction")
        if key not in environments:
            known = ", ".join(sorted(environments)) or "none"
            self.refuse(f'unknown environment "{key}" (the flag has: {known})')
        env: dict[str, Any] = environments[key]
        return env

    def environments(self) -> list[tuple[str, dict[str, Any]]]:
        """Every environment of the flag, by key."""
        return list(self.flag.get("environments", {}).items())

    # --- variations --------------------------------------------------------------------------

    @property
    def variations(self) -> list[dict[str, Any]]:
        """The flag's variations (flag-level, referenced by ``_id`` in instructions)."""
        variations: list[dict[str, Any]] = self.flag.setdefault("variations", [])
        return variations

    def variation_index(self, variation_id: str) -> int:
        """The index of the variation whose ``_id`` is ``variation_id``; refuses an unknown ID.

        "The variation ID is the _id field in each element of the variations array." (seed 003);
        environments reference variations by index ("offVariation": 1, "fallthrough":
        {"variation": 0} in the seed's flag response).
        """
        for index, variation in enumerate(self.variations):
            if variation.get("_id") == variation_id:
                return index
        known = ", ".join(f'"{v.get("_id")}" ({label(v)})' for v in self.variations)
        self.refuse(f'unknown variationId "{variation_id}"; the flag\'s variations are {known}')

    def variation_label(self, index: int) -> str:
        """How a refusal names the variation at ``index``: its value, as the user sees it."""
        if 0 <= index < len(self.variations):
            return label(self.variations[index])
        return f"#{index}"

    def rollout(self, weights: Mapping[str, int], bucket_by: str | None, context_kind: str) -> dict[str, Any]:
        """A rollout in LaunchDarkly's stored shape from an instruction's ``rolloutWeights``.

        "rolloutWeights: Map of variationId to weight, in thousandths of a percent (0-100000)"
        (seed 003). Stored as the flag response shows it: ``{"variations": [{"variation": idx,
        "weight": w}], "contextKind": ..., "bucketBy"?: ...}``, one entry per given variation, in
        the flag's variation order (the order LaunchDarkly's UI lists them). An ID that is not one
        of the flag's variations is refused by ``variation_index``.
        """
        entries = sorted((self.variation_index(vid), weight) for vid, weight in weights.items())
        rollout: dict[str, Any] = {
            "variations": [{"variation": index, "weight": weight} for index, weight in entries],
            "contextKind": context_kind,
        }
        if bucket_by is not None:
            rollout["bucketBy"] = bucket_by
        return rollout

    # --- rules and clauses -------------------------------------------------------------------

    def rules(self) -> list[dict[str, Any]]:
        """The targeting rules of the patch's environment."""
        rules: list[dict[str, Any]] = self.env.setdefault("rules", [])
        return rules

    def rule(self, rule_id: str) -> dict[str, Any]:
        """The rule whose ``_id`` is ``rule_id``; refuses an unknown ID.

        "The flag rule ID is the _id field of each element in the rules array within each
        environment" (seed 003).
        """
        for rule in self.rules():
            if rule.get("_id") == rule_id:
                return rule
        self.refuse(f'unknown ruleId "{rule_id}" in environment "{self.environment_key}"')

    def clause(self, rule: dict[str, Any], clause_id: str) -> dict[str, Any]:
        """The clause of ``rule`` whose ``_id`` is ``clause_id``; refuses an unknown ID.

        "The clause ID is the _id field of each element of the clauses array within the rules
        array" (seed 003).
        """
        for clause in rule.get("clauses", []):
            if clause.get("_id") == clause_id:
                clause_doc: dict[str, Any] = clause
                return clause_doc
        self.refuse(f'unknown clauseId "{clause_id}" in rule "{rule.get("_id")}"')

    def new_clause(self, clause: Clause, clause_id: str | None = None) -> dict[str, Any]:
        """A clause document in the flag response's shape, with a new ``_id`` unless one is given."""
        return {
            "_id": clause_id if clause_id is not None else self.new_id(),
            "attribute": clause.attribute,
            "op": clause.op,
            "values": list(clause.values),
            "contextKind": clause.contextKind,
            "negate": clause.negate,
        }


def label(variation: Mapping[str, Any]) -> str:
    """A variation's value as text: ``false``, ``blue``, ``20``, ``{"a": 1}``."""
    value = variation.get("value")
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def canonical(value: Any) -> str:
    """A variation value as comparable text: ``1`` and ``1.0`` are one JSON number, ``true`` is not ``1``."""

    def normal(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, dict):
            return {key: normal(val) for key, val in item.items()}
        if isinstance(item, list):
            return [normal(val) for val in item]
        return item

    return json.dumps(normal(value), sort_keys=True)


def value_type(value: Any) -> str:
    """The LaunchDarkly variation type of a value: boolean, number, string or json."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "json"


def serves(served: Mapping[str, Any], index: int) -> bool:
    """Whether a rule or fallthrough (``variation`` or ``rollout``) can serve variation ``index``."""
    if served.get("variation") == index:
        return True
    rollout = served.get("rollout") or {}
    return any(
        entry.get("variation") == index and entry.get("weight", 0) > 0
        for entry in rollout.get("variations", [])
    )
