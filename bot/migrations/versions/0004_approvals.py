"""Tables for linked LaunchDarkly accounts and approval cards
(issue: button approvals, linked accounts, message actions).

Reserved in the revision chain ahead of the work, so that features built in parallel each fill
their own revision without forking Alembic's history. Until filled, it changes nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
