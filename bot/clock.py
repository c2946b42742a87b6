"""The one wall clock: the current time, timezone-aware in UTC. Services take a ``clock`` callable
defaulting to this, so tests can move time instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)
