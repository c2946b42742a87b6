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
