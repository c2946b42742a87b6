"""Intent → text: the canonical command for a :class:`~commands.intents.ChangeCommand`.

The inverse of the parser: ``parse(canonical(cmd)) == cmd``. The canonical form is explicit
rather than short: every change repeats ``<flag> [<env>]`` (so each segment reads on its own in
an audit log), descriptions are always quoted, options come before the schedule, which is last.
"""

from __future__ import annotations

import re
from typing import assert_never

from commands import intents as it
from commands.grammar import DAY_WORDS, OP_SPELLING, is_number_word, mentioned_user

# Words that mean something somewhere in the grammar: as text they are always quoted.
KEYWORDS = frozenset(
    {
        "to",
        "from",
        "and",
        "if",
        "serve",
        "named",
        "before",
        "track-events",
        "by",
        "kind",
        "rule",
        "clause",
        "clauses",
        "none",
        "not",
        "in",
        "at",
        "segment",
        "description",
        "value",
        "on",
        "off",
        "default",
        "confirm",
        "team",
        "is",
        "=",
        "true",
        "false",
        "a",
        "an",
        # A day word right before `at` belongs to the schedule (`tomorrow at 9am`, commands.parse).
        *DAY_WORDS,
    }
)
_BARE = re.compile(r"[A-Za-z0-9_@.:+#%!?/*^$|()~=][A-Za-z0-9_@.:+#%!?/*^$|()~=-]*")
_COMPACT_DURATION = re.compile(r"(?:[0-9]{1,6}(?:s|m|h|d|w))+", re.IGNORECASE)
_SDK_WORD = {"usingMobileKey": "mobile", "usingEnvironmentId": "client-side"}


def quoted(text: str) -> str:
    """``text`` in double quotes, with ``"`` and ``\\`` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def word(text: str, *, colon: bool = True, dot: bool = True, numeric: bool = True) -> str:
    """``text`` bare when it reads back as the same text, else quoted.

    Args:
        text: the text.
        colon: whether a ``:`` can stay bare (not where ``kind:key`` is meant).
        dot: whether a ``.`` can stay bare (not where ``kind.attribute`` is meant).
        numeric: whether a number-like word can stay bare (not where numbers are positions or typed).
    """
    bare = (
        _BARE.fullmatch(text) is not None
        and text.lower() not in KEYWORDS
        and (colon or ":" not in text)
        and (dot or "." not in text)
        and (numeric or not (is_number_word(text) or text.isdigit()))
        and _COMPACT_DURATION.fullmatch(text) is None
        and not text.endswith("%")
    )
    return text if bare else quoted(text)


def _variation(ref: it.VariationRef) -> str:
    if ref.index is not None:
        return f"#{ref.index}"
    text = ref.text or ""
    return quoted(text) if ref.quoted else text


def _value_literal(value: it.ValueLiteral) -> str:
    return quoted(value.text) if value.form == "string" else value.text


def _rule(ref: it.RuleRef) -> str:
    return str(ref.position) if ref.position is not None else quoted(ref.description or "")


def _clause_ref(ref: it.ClauseRef) -> str:
    return str(ref.position) if ref.position is not None else word(ref.attribute or "", numeric=False)


def _clause_value(value: it.ClauseValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return word(value, numeric=False)


def _values(values: tuple[it.ClauseValue, ...]) -> str:
    return ",".join(_clause_value(v) for v in values)


def clause(spec: it.ClauseSpec) -> str:
    """A clause spec as text (``country in US,CA``, ``not in segment beta``)."""
    nots = "not " if spec.negate else ""
    if spec.attribute == "segmentMatch" and spec.op == "segmentMatch" and spec.context_kind is None:
        return f"{nots}in segment {_values(spec.values)}"
    if spec.context_kind is not None:
        subject = f"{spec.context_kind}.{spec.attribute}"
    else:
        subject = word(spec.attribute, dot=False)
    return f"{subject} {nots}{OP_SPELLING[spec.op]} {_values(spec.values)}"


def _clauses(specs: tuple[it.ClauseSpec, ...]) -> str:
    return " and ".join(clause(s) for s in specs)


def serving(serve: it.Serving) -> str:
    """A serving as text: a variation, or ``10% a 90% b [by x] [kind k]``."""
    if isinstance(serve, it.ServeVariation):
        return _variation(serve.variation)
    parts = [
        f"{w.weight / 1000:.3f}".rstrip("0").rstrip(".") + "% " + _variation(w.variation)
        for w in serve.weights
    ]
    if serve.bucket_by is not None:
        parts.append(f"by {word(serve.bucket_by)}")
    if serve.context_kind is not None:
        parts.append(f"kind {word(serve.context_kind)}")
    return " ".join(parts)


def _keys(keys: tuple[str, ...], context_kind: str | None) -> str:
    """Target keys; ``context_kind`` None: legacy user keys (no kind prefix is read)."""
    if context_kind is None:
        return ",".join(k if mentioned_user(k) else word(k) for k in keys)
    rendered = [k if mentioned_user(k) else word(k, colon=False) for k in keys]
    if context_kind == "user":
        return ",".join(rendered)
    first = keys[0]
    if rendered[0] == first:
        return ",".join([f"{context_kind}:{first}", *rendered[1:]])
    return f"{context_kind}: " + ",".join(rendered)


def _rule_parts(
    description: str | None, specs: tuple[it.ClauseSpec, ...], serve: it.Serving, track: bool | None
) -> list[str]:
    parts = []
    if description is not None:
        parts.append(f"named {quoted(description)}")
    if specs:
        parts.append(f"if {_clauses(specs)}")
    parts.append(f"serve {serving(serve)}")
    if track is not None:
        parts.append(f"track-events {'on' if track else 'off'}")
    return parts


def _onoff(value: bool) -> str:
    return "on" if value else "off"


def change(c: it.AnyIntent, flag: str, env: str | None) -> str:
    """One intent as a command segment (``<verb> <flag> [<env>] <arguments>``)."""
    f = word(flag)
    fe = f"{f} {word(env)}" if env is not None and c.environment_scoped else f
    match c:
        case it.TurnOn():
            return f"on {fe}"
        case it.TurnOff():
            return f"off {fe}"
        case it.AddTargets():
            return f"target {fe} {_keys(c.keys, c.context_kind)} -> {_variation(c.variation)}"
        case it.RemoveTargets():
            tail = f" from {_variation(c.variation)}" if c.variation is not None else ""
            return f"untarget {fe} {_keys(c.keys, c.context_kind)}{tail}"
        case it.ClearTargets():
            return f"clear targets {fe} {_variation(c.variation)}"
        case it.ReplaceTargets():
            groups = [f"{_keys(t.keys, t.context_kind)} -> {_variation(t.variation)}" for t in c.targets]
            return f"replace targets {fe} {' '.join(groups) or 'none'}"
        case it.AddUserTargets():
            return f"target-users {fe} {_keys(c.keys, None)} -> {_variation(c.variation)}"
        case it.RemoveUserTargets():
            tail = f" from {_variation(c.variation)}" if c.variation is not None else ""
            return f"untarget-users {fe} {_keys(c.keys, None)}{tail}"
        case it.ClearUserTargets():
            return f"clear user-targets {fe} {_variation(c.variation)}"
        case it.ReplaceUserTargets():
            groups = [f"{_keys(t.keys, None)} -> {_variation(t.variation)}" for t in c.targets]
            return f"replace user-targets {fe} {' '.join(groups) or 'none'}"
        case it.SetFallthrough():
            verb = "rollout" if isinstance(c.serve, it.Rollout) else "serve"
            return f"{verb} {fe} {serving(c.serve)}"
        case it.SetRuleServe():
            verb = "rollout" if isinstance(c.serve, it.Rollout) else "serve"
            return f"{verb} {fe} rule {_rule(c.rule)} {serving(c.serve)}"
        case it.SetOffVariation():
            return f"off-variation {fe} {_variation(c.variation)}"
        case it.AddRule():
            parts = _rule_parts(c.description, c.clauses, c.serve, None)
            if c.before is not None:
                parts.append(f"before rule {_rule(c.before)}")
            if c.track_events is not None:
                parts.append(f"track-events {_onoff(c.track_events)}")
            return f"add rule {fe} {' '.join(parts)}"
        case it.RemoveRule():
            return f"remove rule {fe} {_rule(c.rule)}"
        case it.ReorderRules():
            return f"reorder rules {fe} {','.join(_rule(r) for r in c.rules)}"
        case it.ReplaceRules():
            drafts = [
                "rule " + " ".join(_rule_parts(r.description, r.clauses, r.serve, r.track_events))
                for r in c.rules
            ]
            return f"replace rules {fe} {' '.join(drafts) or 'none'}"
        case it.RenameRule():
            return f"rename rule {fe} {_rule(c.rule)} to {quoted(c.description)}"
        case it.SetRuleTrackEvents():
            return f"track-events {fe} rule {_rule(c.rule)} {_onoff(c.track_events)}"
        case it.SetTrackEvents():
            return f"track-events {fe} {_onoff(c.track_events)}"
        case it.SetFallthroughTrackEvents():
            return f"track-events {fe} default {_onoff(c.track_events)}"
        case it.AddClauses():
            return f"add clause {fe} rule {_rule(c.rule)} if {_clauses(c.clauses)}"
        case it.RemoveClauses():
            refs = ",".join(_clause_ref(r) for r in c.clauses)
            return f"remove clause {fe} rule {_rule(c.rule)} clause {refs}"
        case it.AddClauseValues():
            return f"add values {fe} rule {_rule(c.rule)} clause {_clause_ref(c.clause)} {_values(c.values)}"
        case it.RemoveClauseValues():
            return (
                f"remove values {fe} rule {_rule(c.rule)} clause {_clause_ref(c.clause)} {_values(c.values)}"
            )
        case it.UpdateClause():
            return (
                f"update clause {fe} rule {_rule(c.rule)} clause {_clause_ref(c.clause)} to {clause(c.new)}"
            )
        case it.AddPrerequisite():
            return f"add prereq {fe} {word(c.key)} {_variation(c.variation)}"
        case it.RemovePrerequisite():
            return f"remove prereq {fe} {word(c.key)}"
        case it.UpdatePrerequisite():
            return f"update prereq {fe} {word(c.key)} {_variation(c.variation)}"
        case it.ReplacePrerequisites():
            items = [f"{word(p.key)} {_variation(p.variation)}" for p in c.prerequisites]
            return f"replace prereqs {fe} {', '.join(items) or 'none'}"
        case it.AddVariation():
            tail = f" named {quoted(c.name)}" if c.name is not None else ""
            tail += f" description {quoted(c.description)}" if c.description is not None else ""
            return f"add variation {fe} {_value_literal(c.value)}{tail}"
        case it.RemoveVariation():
            return f"remove variation {fe} {_variation(c.variation)}"
        case it.UpdateVariation():
            tail = f" value {_value_literal(c.value)}" if c.value is not None else ""
            tail += f" named {quoted(c.name)}" if c.name is not None else ""
            tail += f" description {quoted(c.description)}" if c.description is not None else ""
            return f"update variation {fe} {_variation(c.variation)}{tail}"
        case it.SetDefaultVariations():
            tail = f" on {_variation(c.on)}" if c.on is not None else ""
            tail += f" off {_variation(c.off)}" if c.off is not None else ""
            return f"default-variations {fe}{tail}"
        case it.AddCustomProperty() | it.ReplaceCustomProperty():
            verb = "add" if isinstance(c, it.AddCustomProperty) else "replace"
            values = ",".join(word(v) for v in c.values) or "none"
            tail = f" named {quoted(c.name)}" if c.name is not None else ""
            return f"{verb} property {fe} {word(c.key)} {values}{tail}"
        case it.RemoveCustomPropertyValues():
            return f"remove property {fe} {word(c.key)} {','.join(word(v) for v in c.values)}"
        case it.AddTags():
            return f"add tags {fe} {','.join(word(t) for t in c.tags)}"
        case it.RemoveTags():
            return f"remove tags {fe} {','.join(word(t) for t in c.tags)}"
        case it.MakePermanent():
            return f"make permanent {fe}"
        case it.MakeTemporary():
            return f"make temporary {fe}"
        case it.RemoveMaintainer():
            return f"remove maintainer {fe}"
        case it.MaintainerMember():
            return f"maintainer {fe} {word(c.member, colon=not c.member.startswith('team:'))}"
        case it.MaintainerTeam():
            bare = word(c.team)
            return f"maintainer {fe} team:{c.team}" if bare == c.team else f"maintainer {fe} team {bare}"
        case it.ExposeClientSide():
            return f"expose {fe} {_SDK_WORD[c.sdk]}"
        case it.HideClientSide():
            return f"hide {fe} {_SDK_WORD[c.sdk]}"
        case it.SetDescription():
            return f"describe {fe} {quoted(c.description)}"
        case it.Rename():
            return f"rename {fe} {quoted(c.name)}"
        case it.Archive():
            return f"archive {fe}"
        case it.Delete():
            return f"delete {fe} confirm {f}"
        case it.Deprecate():
            return f"deprecate {fe}"
        case it.Undeprecate():
            return f"undeprecate {fe}"
        case it.Restore():
            return f"restore {fe}"
        case _:
            assert_never(c)


def canonical(cmd: it.ChangeCommand) -> str:
    """The canonical text of a change command; ``parse(canonical(cmd)) == cmd``.

    Args:
        cmd: a change command.

    Returns:
        The command text: changes separated by ``; ``, then options, then the schedule.
    """
    text = "; ".join(change(c, cmd.flag, cmd.environment) for c in cmd.changes)
    if cmd.environment is not None and not cmd.environment_scoped:
        text += f" --env {word(cmd.environment)}"
    if cmd.project is not None:
        text += f" --project {word(cmd.project)}"
    if cmd.comment is not None:
        text += f" --comment {quoted(cmd.comment)}"
    if cmd.approval:
        text += " --approval"
    if cmd.reviewers:
        text += " --reviewers " + ",".join(r if r.startswith("<@") else word(r) for r in cmd.reviewers)
    if cmd.schedule is not None:
        text += f" {cmd.schedule.kind} {cmd.schedule.text}"
    return text
