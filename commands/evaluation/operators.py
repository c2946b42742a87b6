"""Clause operators, as LaunchDarkly's SDKs apply them to one context value and one clause value.

* ``in``: equal JSON values; a boolean never equals a number (``true`` is not ``1``).
* ``startsWith``, ``endsWith``, ``contains``: both strings.
* ``matches``: the clause value is a regular expression searched in the string (an invalid one
  matches nothing).
* ``lessThan``, ``lessThanOrEqual``, ``greaterThan``, ``greaterThanOrEqual``: both numbers.
* ``before``, ``after``: both times: epoch milliseconds, or RFC 3339 text with its offset.
* ``semVerEqual``, ``semVerLessThan``, ``semVerGreaterThan``: both semantic versions; a missing
  minor or patch counts as 0 (``2`` is ``2.0.0``, ``2.0-rc1`` is ``2.0.0-rc1``).

Anything of the wrong type does not match (it is not an error). ``segmentMatch`` needs segments and
is applied by the evaluator.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

Operator = Callable[[Any, Any], bool]

_SEMVER = re.compile(
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_LEADING_NUMBERS = re.compile(r"([0-9.]*)(.*)", re.S)


def is_number(value: Any) -> bool:
    """A JSON number (a boolean is not one), finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _strings(fn: Callable[[str, str], bool]) -> Operator:
    return lambda a, b: isinstance(a, str) and isinstance(b, str) and fn(a, b)


def _numbers(fn: Callable[[float, float], bool]) -> Operator:
    return lambda a, b: is_number(a) and is_number(b) and fn(float(a), float(b))


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _matches(value: Any, pattern: Any) -> bool:
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


def parse_time(value: Any) -> float | None:
    """Epoch milliseconds from a number, or from RFC 3339 text (which must carry its offset)."""
    if is_number(value):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp() * 1000


def _times(fn: Callable[[float, float], bool]) -> Operator:
    def compare(a: Any, b: Any) -> bool:
        left, right = parse_time(a), parse_time(b)
        return left is not None and right is not None and fn(left, right)

    return compare


SemVer = tuple[int, int, int, tuple[int | str, ...] | None]


def parse_semver(value: Any) -> SemVer | None:
    """A semantic version (``major, minor, patch, prerelease``), lenient about missing parts."""
    if not isinstance(value, str):
        return None
    text = value
    for _ in range(3):
        match = _SEMVER.fullmatch(text)
        if match is not None:
            pre = match.group("pre")
            identifiers = (
                tuple(int(p) if p.isdigit() else p for p in pre.split(".")) if pre is not None else None
            )
            return int(match["major"]), int(match["minor"]), int(match["patch"]), identifiers
        # "2" → "2.0", "2.0" → "2.0.0", "2.0-rc1" → "2.0.0-rc1" (as the SDKs read them).
        numbers = _LEADING_NUMBERS.match(text)
        assert numbers is not None  # the pattern matches any text
        text = f"{numbers.group(1)}.0{numbers.group(2)}"
    return None


def _prerelease_key(pre: tuple[int | str, ...] | None) -> tuple[Any, ...]:
    # A version without a prerelease ranks above any prerelease of it; numeric identifiers rank
    # below alphanumeric ones; a shorter list of equal identifiers ranks first (semver 2.0.0 §11).
    if pre is None:
        return (1,)
    return (0, *[(0, p, "") if isinstance(p, int) else (1, 0, p) for p in pre], (-1, 0, ""))


def compare_semver(a: SemVer, b: SemVer) -> int:
    """-1, 0 or 1 as ``a`` ranks below, equal to or above ``b`` (build metadata ignored)."""
    left = (a[:3], _prerelease_key(a[3]))
    right = (b[:3], _prerelease_key(b[3]))
    return (left > right) - (left < right)


def _semvers(fn: Callable[[int], bool]) -> Operator:
    def compare(a: Any, b: Any) -> bool:
        left, right = parse_semver(a), parse_semver(b)
        return left is not None and right is not None and fn(compare_semver(left, right))

    return compare


OPERATORS: dict[str, Operator] = {
    "in": _equal,
    "startsWith": _strings(lambda a, b: a.startswith(b)),
    "endsWith": _strings(lambda a, b: a.endswith(b)),
    "contains": _strings(lambda a, b: b in a),
    "matches": _matches,
    "lessThan": _numbers(lambda a, b: a < b),
    "lessThanOrEqual": _numbers(lambda a, b: a <= b),
    "greaterThan": _numbers(lambda a, b: a > b),
    "greaterThanOrEqual": _numbers(lambda a, b: a >= b),
    "before": _times(lambda a, b: a < b),
    "after": _times(lambda a, b: a > b),
    "semVerEqual": _semvers(lambda c: c == 0),
    "semVerLessThan": _semvers(lambda c: c < 0),
    "semVerGreaterThan": _semvers(lambda c: c > 0),
}


def matches_value(op: str, context_value: Any, clause_values: list[Any]) -> bool:
    """Whether one context value matches any of a clause's values (an unknown operator: never)."""
    operator = OPERATORS.get(op)
    return operator is not None and any(operator(context_value, v) for v in clause_values)
