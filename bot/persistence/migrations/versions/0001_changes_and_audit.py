"""The first tables: pending and past changes, and the audit trail of their transitions.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``changes`` and ``audit``."""
    op.create_table(
        "changes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("previous_state", sa.String(32), nullable=True),
        sa.Column("requester_id", sa.String(64), nullable=False),
        sa.Column("requester_name", sa.String(255), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("card_ts", sa.String(32), nullable=True),
        sa.Column("thread_ts", sa.String(32), nullable=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("flag_key", sa.String(255), nullable=False),
        sa.Column("environment", sa.String(255), nullable=True),
        sa.Column("command_text", sa.Text, nullable=False),
        sa.Column("request_json", sa.Text, nullable=False),
        sa.Column("preview_version", sa.Integer, nullable=False),
        sa.Column("env_version", sa.Integer, nullable=True),
        sa.Column("flag_before_json", sa.Text, nullable=True),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("ignore_conflicts", sa.Boolean, nullable=False),
        sa.Column("approval_request_id", sa.String(255), nullable=True),
        sa.Column("outcome_json", sa.Text, nullable=True),
        sa.Column("ld_status", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_changes_state_expires_at", "changes", ["state", "expires_at"])
    op.create_index("ix_changes_channel_card", "changes", ["channel_id", "card_ts"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.String(36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("ld_status", sa.Integer, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_audit_change_id", "audit", ["change_id"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("audit")
    op.drop_table("changes")
