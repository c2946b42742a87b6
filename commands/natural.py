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

import itertools
import re
from collections.abc import Callable

from commands.errors import CommandError
from commands.parse import parse_duration

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


# --- ramps ---------------------------------------------------------------------------------------

#: At most this many steps in one ramp (each is one LaunchDarkly scheduled change or approval request).
MAX_RAMP_STEPS = 10
#: The shortest and longest time between two steps.
MIN_RAMP_INTERVAL = 5 * 60
MAX_RAMP_INTERVAL = 7 * 86400

_STEP = r"\d{1,3}(?:\.\d{1,6})?\s*%?"
# `30m`, `1h30m`, `2 hours`, `an hour`, `hour`, `1 hour and 30 minutes`
_EVERY = r"(?:(?:an?|\d{1,6}(?:\.\d{1,3})?)\s*)?[a-z]+(?:\s*,?\s*(?:and\s+)?\d{1,6}\s*[a-z]+)*"
# `ramp new-checkout prod 5% 25% 50% 100% every 30m` / `ramp banner-color in test to 10 50 100 of
# blue every 2 hours` / `ramp new-checkout prod 5%, 25% then 100% every 1h false`.
_RAMP = re.compile(
    rf"^{_POLITE}ramp\s+(?:up\s+)?{_FLAG}\s+(?:(?:in|on|for)\s+)?(?:the\s+)?{_KEY}(?:\s+env(?:ironment)?)?"
    rf"\s+(?:to\s+)?({_STEP}(?:(?:\s*,\s*|\s+)(?:(?:then|and|to)\s+)?{_STEP})*)"
    rf"(?:\s+(?:of\s+)?{_KEY})?\s+every\s+({_EVERY})(?:\s+(?:of\s+)?{_KEY})?{_END}",
    re.I,
)
_RAMP_USAGE = "ramp <flag> <env> <pct>% <pct>% ... every <interval> [<variation>]"


def is_ramp(text: str) -> bool:
    """Whether a line is meant as a ramp (``ramp …``; ``ramp to 25%`` is a one-line rollout)."""
    words = text.split()
    return len(words) > 1 and words[0].lower() == "ramp" and words[1].lower() != "to"


def ramp_steps(text: str) -> tuple[str, str, tuple[float, ...], int, str | None] | None:
    """``(flag, environment, percentages, seconds between steps, variation or None)`` of a ramp.

    Returns:
        None when the line is not a ramp at all (see :func:`is_ramp`).

    Raises:
        CommandError: a ramp whose steps or interval cannot be used (said why, with the usage).
    """
    if not is_ramp(text):
        return None
    line = " ".join(text.split())
    match = _RAMP.match(line) if len(line) <= 300 else None
    if match is None:
        raise CommandError(
            "I read a ramp as the steps, then `every` and the time between them: "
            "`ramp new-checkout production 5% 25% 50% 100% every 30m`.",
            _RAMP_USAGE,
        )
    flag, env, steps_text, every_text = match[1], match[2], match[3], match[5]
    variation = match[4] or match[6]
    if match[4] and match[6]:
        raise CommandError("name the variation once: `… 100% blue every 1h`.", _RAMP_USAGE)
    if flag.lower() in _NOT_KEYS or env.lower() in _NOT_KEYS or (variation or "").lower() in _NOT_KEYS:
        raise CommandError(f"I cannot tell the flag and environment in `{line[:80]}`.", _RAMP_USAGE)
    numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", steps_text)]
    percents = tuple(numbers)
    if not percents:
        raise CommandError("a ramp needs at least one step, e.g. `5% 25% 100%`.", _RAMP_USAGE)
    if len(percents) > MAX_RAMP_STEPS:
        raise CommandError(
            f"at most {MAX_RAMP_STEPS} steps in one ramp ({len(percents)} given).", _RAMP_USAGE
        )
    for percent in percents:
        if not 0 < percent <= 100:
            raise CommandError(f"each step is a percentage above 0 and at most 100, not {percent:g}.")
        if round(percent, 3) != percent:
            raise CommandError(
                f"{percent:g}%: LaunchDarkly weighs in thousandths of a percent (12.5% and 33.333% are fine)."
            )
    if any(b <= a for a, b in itertools.pairwise(percents)):
        raise CommandError(
            "the steps must go up: "
            + " → ".join(f"{p:g}%" for p in percents)
            + " does not. To go back down, pause the ramp and say the rollout you want.",
            _RAMP_USAGE,
        )
    every_words = every_text.lower().strip()
    if every_words in ("minute", "hour", "day", "week"):
        every_words = f"1 {every_words}"
    seconds = parse_duration(every_words)
    if seconds < MIN_RAMP_INTERVAL:
        raise CommandError(
            f"steps at least {MIN_RAMP_INTERVAL // 60} minutes apart (`every 5m` or more), so each step "
            "can be watched and the ramp paused in time."
        )
    if seconds > MAX_RAMP_INTERVAL:
        raise CommandError(f"steps at most {MAX_RAMP_INTERVAL // 86400} days apart.")
    return flag, env, percents, seconds, variation


def complete_ramp_step(
    flag: dict[str, object], environment: str, percent: float, variation: str | None
) -> str | None:
    """The command one step of a ramp is: a one-line rollout (:func:`complete_rollout`), or at
    100% the variation served fully (``serve new-checkout production true``). None when it
    cannot be said (as for a one-line rollout). A boolean's variation may be named by its name
    (``Enabled``) as well as its value."""
    variation = _boolean_value(flag, variation)
    if percent < 100:
        return complete_rollout(flag, environment, percent, variation)
    variations = flag.get("variations")
    if not isinstance(variations, list) or not variations:
        return None
    values = [v.get("value") if isinstance(v, dict) else None for v in variations]
    names = [str(v.get("name") or "") if isinstance(v, dict) else "" for v in variations]
    key = flag.get("key")
    if values == [True, False] or values == [False, True]:
        chosen = (variation or "true").lower()
        return f"serve {key} {environment} {chosen}" if chosen in ("true", "false") else None
    if variation is None:
        return None
    lowered = variation.lower()
    for i, (value, name) in enumerate(zip(values, names, strict=True)):
        if str(value).lower() == lowered or name.lower() == lowered:
            return f"serve {key} {environment} #{i + 1}"
    return None


def _boolean_value(flag: dict[str, object], variation: str | None) -> str | None:
    """``true``/``false`` for a boolean flag's variation said by its name (``Enabled``); else as said."""
    variations = flag.get("variations")
    if variation is None or not isinstance(variations, list):
        return variation
    values = [v.get("value") if isinstance(v, dict) else None for v in variations]
    if values not in ([True, False], [False, True]) or variation.lower() in ("true", "false"):
        return variation
    lowered = variation.lower()
    for item in variations:
        if isinstance(item, dict) and str(item.get("name") or "").lower() == lowered:
            return "true" if item.get("value") is True else "false"
    return variation
