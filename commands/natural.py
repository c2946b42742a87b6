"""Natural phrasings of the everyday commands, read deterministically (no model).

The grammar (``commands.grammar``) reads ``off new-checkout production``. People in an incident
type ``turn off new-checkout in production``, ``new-checkout off``, ``kill new-checkout``,
``disable new-checkout for prod`` or ``what is new-checkout``. :func:`rephrase` turns such a line
into the canonical command (``off new-checkout production``), or says it is not one it reads; the
bot then parses the canonical text and says how it read the line, so people learn the short form.

Only whole lines are read, with a fixed set of patterns: a line that is neither a command nor one
of these phrasings is still answered by the grammar's own error, never by a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_KEY = r"([A-Za-z0-9][\w.-]*)"
_WHERE = rf"(?:\s+(?:(?:in|on|for|at)\s+)?(?:the\s+)?{_KEY}(?:\s+env(?:ironment)?)?)?"
_FLAG = rf"(?:the\s+)?{_KEY}(?:\s+flag)?"
_POLITE = r"(?:(?:please|pls|can\s+you|could\s+you)\s+)?"
_END = r"\s*[.!?]*\s*$"


def _switch(state: str, flag: str, env: str | None) -> str:
    return f"{state.lower()} {flag}" + (f" {env}" if env else "")


def _show(flag: str, env: str | None) -> str:
    return f"show {flag}" + (f" {env}" if env else "")


_OFF_WORDS = {"disable": "off", "enable": "on", "kill": "off", "deactivate": "off", "activate": "on"}

#: (pattern, how its groups make the canonical command). Tried in order; the first match wins.
PHRASES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    # turn off new-checkout in production / switch on the banner flag for test
    (
        re.compile(rf"^{_POLITE}(?:turn|switch|flip)\s+(on|off)\s+{_FLAG}{_WHERE}{_END}", re.I),
        lambda m: _switch(m[1], m[2], m[3]),
    ),
    # turn new-checkout off in production
    (
        re.compile(rf"^{_POLITE}(?:turn|switch|flip)\s+{_FLAG}\s+(on|off){_WHERE}{_END}", re.I),
        lambda m: _switch(m[2], m[1], m[3]),
    ),
    # enable / disable / kill / kill switch new-checkout [in production]
    (
        re.compile(
            rf"^{_POLITE}(enable|disable|kill|deactivate|activate)(?:\s+switch)?\s+{_FLAG}{_WHERE}{_END}",
            re.I,
        ),
        lambda m: _switch(_OFF_WORDS[m[1].lower()], m[2], m[3]),
    ),
    # new-checkout off / new-checkout off in production / new-checkout on test
    (
        re.compile(rf"^{_KEY}\s+(on|off)(?:\s+(?:(?:in|on|for|at)\s+)?{_KEY})?{_END}", re.I),
        lambda m: _switch(m[2], m[1], m[3]),
    ),
    # off new-checkout in production (the command with a preposition)
    (
        re.compile(rf"^(on|off)\s+{_KEY}\s+(?:in|for|at)\s+{_KEY}{_END}", re.I),
        lambda m: _switch(m[1], m[2], m[3]),
    ),
    # status / get / info / what is / how is new-checkout [in production]
    (
        re.compile(
            rf"^(?:status|state|get|info|details|describe|what\s+is|what's|whats|how\s+is|how's)\s+{_FLAG}{_WHERE}{_END}",
            re.I,
        ),
        lambda m: _show(m[1], m[2]),
    ),
]

# Words that are never a flag in a phrasing ("turn off the" is not about a flag called "the").
_NOT_KEYS = frozenset({"the", "flag", "in", "on", "off", "for", "at", "it", "this", "that"})


def rephrase(text: str) -> str | None:
    """The canonical command a natural phrasing means, or None when the line is not one.

    Args:
        text: the line after ``/flag`` (or a message's text).

    Returns:
        E.g. ``"off new-checkout production"`` for ``"turn off new-checkout in production"``.
    """
    line = " ".join(text.split())
    if not line or len(line) > 200:
        return None
    for pattern, build in PHRASES:
        match = pattern.match(line)
        if match is None:
            continue
        canonical = build(match)
        _verb, *keys = canonical.split()
        if any(key.lower() in _NOT_KEYS for key in keys):
            return None
        return canonical
    return None


# `rollout new-checkout prod 25%` / `rollout banner-color test 25% blue`: one percentage, the rest
# completed from the flag (see :func:`complete_rollout`).
_PARTIAL_ROLLOUT = re.compile(
    rf"^(?:rollout|roll\s*out|ramp\s+to)\s+{_KEY}\s+(?:(?:in|on|for|to)\s+)?{_KEY}\s+(?:to\s+)?"
    rf"(\d+(?:\.\d+)?)\s*%(?:\s+(?:of\s+)?(?:to\s+)?{_KEY})?{_END}",
    re.I,
)


# `roll out new-checkout to 25% in production` / `roll out banner-color to 25% of blue in test`
_PHRASED_ROLLOUT = re.compile(
    rf"^{_POLITE}roll\s*out\s+{_FLAG}\s+to\s+(\d+(?:\.\d+)?)\s*%(?:\s+(?:of\s+)?{_KEY})?"
    rf"\s+(?:in|on|for)\s+(?:the\s+)?{_KEY}(?:\s+env(?:ironment)?)?{_END}",
    re.I,
)


def partial_rollout(text: str) -> tuple[str, str, float, str | None] | None:
    """``(flag, environment, percent, variation or None)`` of a one-percentage rollout line."""
    line = " ".join(text.split())
    match = _PARTIAL_ROLLOUT.match(line)
    if match is not None:
        flag, env, percent, variation = match[1], match[2], float(match[3]), match[4]
    else:
        phrased = _PHRASED_ROLLOUT.match(line)
        if phrased is None:
            return None
        flag, percent, variation, env = phrased[1], float(phrased[2]), phrased[3], phrased[4]
    # LaunchDarkly weighs in thousandths of a percent: 12.5% and 33.333% are fine, 0.0001% is not.
    if not 0 < percent < 100 or round(percent, 3) != percent or (variation or "").lower() in _NOT_KEYS:
        return None
    return flag, env, percent, variation


def complete_rollout(
    flag: dict[str, object], environment: str, percent: float, variation: str | None
) -> str | None:
    """The whole rollout command a one-percentage line means on ``flag``, or None.

    A boolean flag: ``25%`` is 25% true, 75% false (``25% false`` the other way round). Any flag:
    ``25% blue`` gives blue 25%, and the rest stays with what the default rule serves now (when it
    serves one variation). None when it cannot be said (a rollout serving now, an unknown name).
    """
    variations = flag.get("variations")
    if not isinstance(variations, list) or not variations:
        return None
    values = [v.get("value") if isinstance(v, dict) else None for v in variations]
    names = [str(v.get("name") or "") if isinstance(v, dict) else "" for v in variations]
    key = flag.get("key")
    rest = f"{100 - percent:g}%"
    pct = f"{percent:g}%"
    if percent == 100:
        return None
    if values == [True, False] or values == [False, True]:
        chosen = (variation or "true").lower()
        if chosen not in ("true", "false"):
            return None
        other = "false" if chosen == "true" else "true"
        return f"rollout {key} {environment} {pct} {chosen} {rest} {other}"
    if variation is None:
        return None
    lowered = variation.lower()
    index = next(
        (
            i
            for i, (val, name) in enumerate(zip(values, names, strict=True))
            if str(val).lower() == lowered or name.lower() == lowered
        ),
        None,
    )
    environments = flag.get("environments")
    env = environments.get(environment) if isinstance(environments, dict) else None
    fallthrough = env.get("fallthrough") if isinstance(env, dict) else None
    current = fallthrough.get("variation") if isinstance(fallthrough, dict) else None
    if index is None or not isinstance(current, int) or current == index:
        return None
    return f"rollout {key} {environment} {pct} #{index + 1} {rest} #{current + 1}"
