"""Percentage rollouts bucketed as LaunchDarkly's SDKs do.

A context's bucket is a number in [0, 1): ``int(sha1(input).hexdigest()[:15], 16) / 0xFFFFFFFFFFFFFFF``
where the input is ``"<flag key>.<salt>.<value>"``, or ``"<seed>.<value>"`` when the rollout has a
seed. The value is the bucketing context's key, or the attribute ``bucketBy`` names (a string, or an
integer written as one; any other value, a float or a boolean, buckets at 0). Weights are out of
100,000; the context gets the first variation whose cumulative weight passes its bucket (the last
one when rounding leaves it past the end).
"""

from __future__ import annotations

import hashlib
from typing import Any

TOTAL_WEIGHT = 100_000
_LONG_SCALE = float(0xFFFFFFFFFFFFFFF)


def bucketable(value: Any) -> str | None:
    """The text a value is bucketed by: a string, or an integer as digits; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def bucket(value: Any, *, key: str, salt: str, seed: int | None = None) -> float:
    """The bucket in [0, 1) of ``value`` for a flag (or segment) ``key`` with ``salt``.

    Args:
        value: the context's key, or its ``bucketBy`` attribute.
        key: the flag's (or the segment's) key.
        salt: the flag environment's (or the segment's) salt.
        seed: the rollout's seed, which replaces key and salt when set.

    Returns:
        The bucket; 0 when the value is not bucketable.
    """
    text = bucketable(value)
    if text is None:
        return 0.0
    prefix = str(seed) if seed is not None else f"{key}.{salt}"
    digest = hashlib.sha1(f"{prefix}.{text}".encode()).hexdigest()
    return int(digest[:15], 16) / _LONG_SCALE


def variation_for(bucket_value: float, weighted: list[dict[str, Any]]) -> tuple[int, int]:
    """The position in ``weighted`` (``[{"variation", "weight"}...]``) a bucket falls in, and its
    variation index. ``weighted`` must not be empty."""
    total = 0.0
    for position, item in enumerate(weighted):
        total += int(item.get("weight") or 0) / TOTAL_WEIGHT
        if bucket_value < total:
            return position, int(item["variation"])
    return len(weighted) - 1, int(weighted[-1]["variation"])
