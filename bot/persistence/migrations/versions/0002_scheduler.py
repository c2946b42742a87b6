"""Tables for reminders, scheduled jobs and the scheduler lease
(issue: scheduled reminder posts and scheduled changes).

``jobs``: everything due (reminders, digests, checks after scheduled changes, snoozes), moved
pending → running → sent / failed / cancelled by compare-and-set. ``scheduler_lease``: on SQLite,
the row that keeps a second scheduler idle (Postgres uses an advisory lock instead).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``jobs`` and ``scheduler_lease``."""
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("target_json", sa.Text, nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=True),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("dedupe_key", sa.String(255), nullable=True, unique=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_jobs_state_due_at", "jobs", ["state", "due_at"])
    op.create_index("ix_jobs_kind_user", "jobs", ["kind", "user_id"])
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("scheduler_lease")
    op.drop_table("jobs")
