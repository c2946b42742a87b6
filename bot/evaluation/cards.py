"""The answer to ``eval`` as Block Kit: pure builders over the flag, LaunchDarkly's answer and
flagops' own reading (``commands.evaluation``).

First what the context gets, then why (LaunchDarkly's reason, in words, with the rule it names
read from the flag), then how, as flagops computed it (clauses, the rollout's bucket), labelled as
such. Every text from LaunchDarkly or typed by a person is escaped here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.slack import blocks
from commands.contexts import Individual, context_text
from commands.describe import clause_text
from commands.evaluation import ClauseCheck, Evaluation, RuleCheck
from commands.summary import rule_name, rule_text, serve_text, value_text, variation_label

MAX_RULES_SHOWN = 6

Doc = Mapping[str, Any]


@dataclass(frozen=True)
class EvaluationView:
    """Everything the answer shows."""

    project: str
    environment: str
    flag: Doc
    contexts: Mapping[str, Individual]
    value: Any  # LaunchDarkly's ``_value``
    reason: Mapping[str, Any]  # LaunchDarkly's reason
    local: Evaluation | None  # flagops' own reading (None: it could not read the flag's parts)
    flags: Mapping[str, Doc]  # the flag and its prerequisites, by key
    flag_url: str | None = None


def variation_of(flag: Doc, value: Any) -> int | None:
    """The index of the variation whose value is ``value`` (a boolean is never a number)."""
    for index, variation in enumerate(flag.get("variations") or []):
        other = variation.get("value")
        if isinstance(other, bool) == isinstance(value, bool) and other == value:
            return index
    return None


def served_text(flag: Doc, value: Any) -> str:
    """``Enabled (true)``; a value no variation has, as is; null as what the SDK does with it."""
    if value is None:
        return "no variation (null): your code's fallback value"
    index = variation_of(flag, value)
    return variation_label(dict(flag), index) if index is not None else value_text(value)


def agrees(local: Evaluation | None, value: Any, reason: Mapping[str, Any]) -> bool:
    """Whether flagops' own reading gives LaunchDarkly's answer (value, reason, rule, prerequisite)."""
    if local is None or local.kind != reason.get("kind"):
        return False
    if local.reason.get("ruleIndex") != reason.get("ruleIndex"):
        return False
    if local.reason.get("prerequisiteKey") != reason.get("prerequisiteKey"):
        return False
    same_type = isinstance(local.value, bool) == isinstance(value, bool)
    return same_type and bool(local.value == value)


def _env(flag: Doc, env: str) -> Doc:
    config: Doc = (flag.get("environments") or {}).get(env) or {}
    return config


def _rule(flag: Doc, env: str, reason: Mapping[str, Any]) -> tuple[int, Doc] | None:
    rules = list(_env(flag, env).get("rules") or [])
    for index, rule in enumerate(rules):
        if reason.get("ruleID") and rule.get("_id") == reason.get("ruleID"):
            return index, rule
    position = reason.get("ruleIndex")
    if isinstance(position, int) and 0 <= position < len(rules):
        return position, rules[position]
    return None


def _why(view: EvaluationView) -> str:
    flag, env, reason = view.flag, view.environment, view.reason
    kind = str(reason.get("kind"))
    e = blocks.escape
    if kind == "OFF":
        text = f"Targeting is *off* in *{e(env)}*, so the flag serves its off variation."
    elif kind == "TARGET_MATCH":
        text = "This context is an *individual target* of that variation."
    elif kind == "RULE_MATCH":
        found = _rule(flag, env, reason)
        if found is None:
            text = f"It matches rule {e(str(reason.get('ruleIndex')))} (LaunchDarkly's index, from 0)."
        else:
            index, rule = found
            said = e(blocks.clip(rule_text(dict(flag), dict(rule)), 600))
            text = f"It matches *rule {index + 1}* ({e(rule_name(dict(rule)))}): {said}"
    elif kind == "FALLTHROUGH":
        serves = e(serve_text(dict(flag), _env(flag, env).get("fallthrough")))
        text = f"No individual target and no rule matched, so the *default rule* serves it: {serves}."
    elif kind == "PREREQUISITE_FAILED":
        key = str(reason.get("prerequisiteKey"))
        need = next((p for p in _env(flag, env).get("prerequisites") or [] if p.get("key") == key), None)
        other = view.flags.get(key)
        wanted = (
            variation_label(dict(other), need.get("variation"))
            if other is not None and need is not None
            else "the variation it requires"
        )
        text = (
            f"Its prerequisite *{e(key)}* does not serve {e(wanted)} to this context, "
            "so the flag serves its off variation."
        )
    elif kind == "ERROR":
        text = f"LaunchDarkly could not evaluate it: {e(str(reason.get('errorKind') or 'an error'))}."
    else:
        text = f"LaunchDarkly's reason: {e(kind)}."
    if reason.get("inExperiment"):
        text += " It is part of an experiment."
    return f"*Why*: {text}"


def _seen(check: ClauseCheck) -> str:
    clause = check.clause
    if check.absent:
        return check.absent
    if clause.get("op") == "segmentMatch":
        inside = check.seen or []
        return f"a member of {', '.join(inside)}" if inside else "not a member"
    if clause.get("attribute") == "kind":
        return f"kinds: {', '.join(check.seen or [])}"
    return f"{clause.get('attribute')} is {value_text(check.seen)}"


YES, NO = ":heavy_check_mark:", ":heavy_multiplication_x:"


def _clause_line(check: ClauseCheck) -> str:
    """``country is one of DE, FR — country is US``: the condition, then what the context has."""
    said = blocks.escape(blocks.clip(clause_text(check.clause), 200))
    return f"{said} — {blocks.escape(blocks.clip(_seen(check), 120))}"


def _rule_lines(checks: Sequence[RuleCheck]) -> list[str]:
    lines: list[str] = []
    for check in checks[:MAX_RULES_SHOWN]:
        name = f"Rule {check.index + 1} ({blocks.escape(rule_name(dict(check.rule)))})"
        if check.matched:
            lines.append(f"{YES} *{name}* matches, every condition holds:")
            lines += [f"        {YES} {_clause_line(c)}" for c in check.clauses]
        else:
            failed = next((c for c in check.clauses if not c.matched), None)
            detail = _clause_line(failed) if failed is not None else "it has no conditions"
            lines.append(f"{NO} {name}: {detail}")
    if len(checks) > MAX_RULES_SHOWN:
        lines.append(f"_…and {len(checks) - MAX_RULES_SHOWN} more rules that do not match_")
    return lines


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.3f}".rstrip("0").rstrip(".")


def _bucket_line(view: EvaluationView, local: Evaluation) -> str | None:
    check = local.bucket
    if check is None:
        return None
    start = sum(int(w.get("weight") or 0) for w in check.weighted[: check.position]) / 100_000
    size = int(check.weighted[check.position].get("weight") or 0) / 100_000
    label = blocks.escape(variation_label(dict(view.flag), check.weighted[check.position].get("variation")))
    by = f"{check.context_kind} {check.by}"
    seed = f", seed {check.seed}" if check.seed is not None else ""
    if check.context_kind not in view.contexts:
        kind = blocks.escape(check.context_kind)
        return f"Percentage rollout: the context has no {kind}, so it gets the first slice: {label}."
    where = f"{_percent(start)}–{_percent(start + size)}"
    return (
        f"Percentage rollout by {blocks.escape(by)}{seed}: this context's bucket is "
        f"*{_percent(check.value)}* of 100, in the slice {where} → {label}."
    )


def _local_lines(view: EvaluationView) -> list[str]:
    local = view.local
    assert local is not None
    lines: list[str] = []
    if local.target is not None:
        kind, key = local.target
        lines.append(
            f"{blocks.escape(kind)} {blocks.escape(key)} is listed in the flag's individual targets."
        )
    if local.kind in ("RULE_MATCH", "FALLTHROUGH"):
        lines += _rule_lines(local.rules)
    bucket = _bucket_line(view, local)
    if bucket:
        lines.append(bucket)
    prerequisite = local.prerequisite
    if local.kind == "PREREQUISITE_FAILED":
        key = blocks.escape(str(local.reason.get("prerequisiteKey")))
        if prerequisite is None:
            lines.append(f"*{key}* could not be read.")
        else:
            other = view.flags.get(prerequisite.flag_key) or {}
            got = blocks.escape(served_text(other, prerequisite.value))
            state = "its targeting is off" if prerequisite.kind == "OFF" else f"reason {prerequisite.kind}"
            lines.append(f"*{key}* serves {got} to this context ({blocks.escape(state)}).")
    return lines


def render_evaluation(view: EvaluationView) -> tuple[str, blocks.Blocks]:
    """The answer: what the context gets, why, and how (flagops' own reading, labelled)."""
    e = blocks.escape
    flag_key = str(view.flag.get("key", ""))
    name = e(str(view.flag.get("name") or flag_key))
    who = e(blocks.clip(context_text({k: {"key": v.get("key")} for k, v in view.contexts.items()}), 200))
    served = e(served_text(view.flag, view.value))
    title = f":mag: *{who}* gets *{served}* from *{name}* (`{e(flag_key)}`) in *{e(view.environment)}*"
    body: blocks.Blocks = [_section(title), _section(_why(view))]
    if view.local is not None and agrees(view.local, view.value, view.reason):
        lines = _local_lines(view)
        if lines:
            head = "*How*, as flagops reads the flag (this part is not LaunchDarkly's answer):"
            body.append(_section("\n".join([head, *lines])))
    elif view.local is not None:
        body.append(
            _context(
                f"flagops' own reading of the flag differs ({e(view.local.kind)}), so no clause detail "
                "is shown: LaunchDarkly's answer above is what your SDKs serve."
            )
        )
    body.append(_context(f"*Context*: {e(blocks.clip(context_text(view.contexts), 1500))}"))
    footer = [f"LaunchDarkly: {e(str(view.reason.get('kind')))}"]
    if isinstance(view.reason.get("ruleIndex"), int):
        footer[0] += f" (rule index {view.reason['ruleIndex']})"
    footer.append(f"project {e(view.project)} · flag version {e(str(view.flag.get('_version')))}")
    if view.flag_url:
        footer.append(f"<{view.flag_url}|Open in LaunchDarkly>")
    body.append(_context(" · ".join(footer)))
    text = blocks.clip(f"{who} gets {served} from {e(flag_key)} in {e(view.environment)}", 3000)
    return text, body


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": blocks.clip(text, blocks.SECTION_LIMIT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": blocks.clip(text, 2000)}]}
