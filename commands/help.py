"""Help text, generated from the registry (the same one the parser reads).

Formatted for Slack's mrkdwn (``*bold*``, backticks), which also reads well in a terminal.
"""

from __future__ import annotations

import difflib
import re

from commands import registry
from commands.grammar import OP_ALIASES, OP_SPELLING
from commands.instructions import CLAUSE_OPS, INSTRUCTION_MODELS

_TOPICS: dict[str, str] = {
    "options": "\n".join(
        ["*Options* (anywhere in a command; `--opt=value` works too):"]
        + [f"  `{flags}`: {text}" for flags, text in registry.OPTIONS_HELP]
    ),
    "schedule": (
        "*Schedule* a change by ending it with `at <time>` or `in <duration>`:\n"
        "  `off holiday-banner production at 2026-01-05 09:00`\n"
        "  `on new-checkout production in 2 hours` (durations: `90m`, `1h30m`, `3 days`, `a week`)\n"
        '`at` always starts the time, so quote a value that is the word at (`"at"`).'
    ),
    "ramp": (
        "*Ramp* a rollout up in steps that LaunchDarkly runs as scheduled changes:\n"
        "  `ramp new-checkout production 5% 25% 50% 100% every 30m` (or `5 25 50 100 every 30 minutes`)\n"
        "  `ramp pricing-page test 10% 50% 100% v2 every 1h` (a multivariate flag names the variation)\n"
        "Step k runs k intervals after the card; 100% serves the variation fully. At most 10 steps,\n"
        "5 minutes to 7 days apart. One Apply creates them all (an approval environment: one request per\n"
        "step); *Pause* on the card deletes the steps not yet run."
    ),
    "in": (
        "*The three meanings of `in`*, decided in this order:\n"
        "  1. a schedule: `in` + a duration at the very end (`... in 2 hours`)\n"
        "  2. the environment, right after the flag: `off new-checkout in production`\n"
        "  3. the operator of a clause: `if country in US,CA`\n"
        'So a clause value that looks like a duration goes in quotes at the end: `if build in "2h"`.'
    ),
    "variations": (
        '*Naming a variation*: by value (`true`, `blue`, `20`), by name (`Enabled`, `"New pricing"`)\n'
        "or by position (`#1` is the first, as `show` lists them). Quoted text only matches string\n"
        'values and names: on a boolean flag `true` is the boolean, `"true"` matches nothing.'
    ),
    "references": (
        "*Naming a rule*: by position (`rule 2`, counting from 1) or by description "
        '(`rule "Beta testers"`).\n*Naming a clause*: by position in its rule (`clause 2`) or by '
        "attribute (`clause country`)."
    ),
    "clauses": "\n".join(
        [
            "*Clauses*: `[<kind>.]<attribute> [not] <operator> <value>[,<value>...]`, joined by `and`;",
            "segments: `[not] in segment <segment>[,...]`. Values: `2`, `-1.5`, `true` are typed;",
            'quote to keep text (`"2"`). Dates: ISO text (`2025-01-01T00:00:00Z`) or epoch milliseconds.',
            "Operators (LaunchDarkly's names, case-sensitive): " + ", ".join(f"`{o}`" for o in CLAUSE_OPS),
            "Friendly spellings: "
            + ", ".join(f"`{alias}` = {'not ' * neg}`{op}`" for alias, (op, neg) in OP_ALIASES.items()),
            "Canonical spellings: " + ", ".join(f"`{OP_SPELLING[o]}`" for o in CLAUSE_OPS),
        ]
    ),
    "several": (
        "*Several changes to one flag* go in one command, separated by `;`, and apply all or nothing:\n"
        "  `on new-checkout test; target user:alice -> true; off-variation false`\n"
        "After the first change the flag and environment may be left out (or repeated, both)."
    ),
}
_SYNONYMS = {"operators": "clauses", "schedules": "schedule"}
_TOPICS.update({synonym: _TOPICS[topic] for synonym, topic in _SYNONYMS.items()})


def _verb_help(verb: registry.Verb) -> str:
    lines = [f"`{verb.syntax}`", verb.summary]
    if verb.aliases:
        lines.append("Also: " + ", ".join(f"`{a}`" for a in verb.aliases))
    if verb.kinds:
        lines.append("Instructions: " + ", ".join(verb.kinds))
    lines += [f"Arguments for the bot: {note}" for note in verb.notes]
    if verb.examples:
        lines.append("Examples:")
        lines += [f"  `{e.text}`: {e.description}" for e in verb.examples]
    return "\n".join(lines)


def _group_help(group: str) -> str:
    lines = [f"*{registry.GROUPS[group]}*"]
    lines += [f"  `{v.syntax}`: {v.summary}" for v in registry.VERBS if v.group == group]
    return "\n".join(lines)


#: The verbs ``help`` shows first: what people type most (the rest is in ``help all``).
MOST_USED: tuple[str, ...] = ("on", "off", "show", "list", "target", "untarget", "serve", "history")
MOST_USED += ("undo", "approvals", "eval")


def _overview() -> str:
    """What fits a screen (at most 25 lines with the policy line above it): the verbs used most,
    how a change goes, and where the rest is."""
    lines = [
        "*flagops*: `/flag <verb> <flag> [<env>] ...`. Every change is previewed first as a card;",
        "nothing happens until someone presses *Apply*.",
        "*Most used*",
    ]
    for name in MOST_USED:
        verb = registry.VERB_INDEX[name]
        first = verb.examples[0].text if verb.examples else verb.syntax
        lines.append(f"  `{first}`: {re.sub(r' [(][^()]*[)][.]?$', '', verb.summary).rstrip('.')}")
    lines += [
        '*Options*: `-m "why"` (a comment), `--approval`, `at <time>` or `in <duration>` (schedule).',
        "*More*: `help <verb>` (e.g. `help target`), `help <group>` ("
        + ", ".join(registry.GROUPS)
        + "), `help options`, `help schedule`; `help all` lists every verb; the README has the whole "
        "reference.",
    ]
    return "\n".join(lines)


def _everything() -> str:
    """``help all``: every verb by group, and the options."""
    lines = [
        "*flagops*: `/flag <verb> <flag> [<env>] ...`, e.g. `/flag on new-checkout test`.",
        "Every change is previewed first; nothing happens until you press Apply.",
        "",
    ]
    for group in registry.GROUPS:
        lines += [_group_help(group), ""]
    lines += [
        _TOPICS["options"],
        "",
        "More: `help <verb>`, `help <group>` (" + ", ".join(registry.GROUPS) + "), an instruction kind "
        "(`help addRule`), or `help " + "|".join(t for t in _TOPICS if t not in _SYNONYMS) + "`.",
    ]
    return "\n".join(lines)


def topics() -> list[str]:
    """Every topic ``help_text`` knows: verbs, aliases, groups, instruction kinds, special topics."""
    return sorted({*registry.VERB_INDEX, *registry.GROUPS, *INSTRUCTION_MODELS, *_TOPICS, "all"})


def help_text(topic: str | None = None) -> str:
    """Help, overall or on one topic.

    Args:
        topic: a verb or alias (``add rule``, ``add-rule``), a group (``targets``), an instruction kind
            (``addRule``), one of options, schedule, in, variations, references, clauses, several,
            or ``all`` (every verb). None: the overview that fits a screen (the verbs used most).

    Returns:
        The help text (never raises: an unknown topic answers with the closest topics).
    """
    if topic is None or not topic.strip():
        return _overview()
    wanted = " ".join(topic.strip().strip("`").split()).lower()
    if wanted in ("all", "everything", "reference"):
        return _everything()
    candidates = [wanted, wanted.replace("-", " ", 1)]
    for name in candidates:
        if name in registry.VERB_INDEX:
            return _verb_help(registry.VERB_INDEX[name])
        if name in registry.GROUPS:
            return _group_help(name)
        if name in _TOPICS:
            return _TOPICS[name]
    kinds = {k.lower(): k for k in INSTRUCTION_MODELS}
    if wanted in kinds:
        verbs = registry.verbs_for_kind(kinds[wanted])
        return f"`{kinds[wanted]}` comes from:\n\n" + "\n\n".join(_verb_help(v) for v in verbs)
    close = difflib.get_close_matches(wanted, [t.lower() for t in topics()], n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(f'`help {c}`' for c in close)}?" if close else ""
    shown = topic.strip() if len(topic.strip()) <= 80 else topic.strip()[:79] + "…"
    return f"No help on `{shown}`.{hint} `help` lists everything."
