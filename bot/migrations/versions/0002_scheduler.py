"""Tables for reminders, scheduled jobs and the scheduler lease
(issue: scheduled reminder posts and scheduled changes).

Reserved in the revision chain ahead of the work, so that features built in parallel each fill
their own revision without forking Alembic's history. Until filled, it changes nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
