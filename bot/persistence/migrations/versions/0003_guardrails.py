"""Per-channel settings (issue: guardrails, channel settings, undo).

``channel_settings``: one row per channel that ran ``/flag config``; a NULL column keeps the
default from the environment variables (see ``bot/guardrails/channel_config.py``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``channel_settings``."""
    op.create_table(
        "channel_settings",
        sa.Column("channel_id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(255), nullable=True),
        sa.Column("environment", sa.String(255), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("approvals_channel", sa.String(255), nullable=True),
        sa.Column("reviewers_json", sa.Text, nullable=True),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop ``channel_settings``."""
    op.drop_table("channel_settings")
