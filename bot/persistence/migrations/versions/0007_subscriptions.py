"""Channel subscriptions to flag changes, the audit log entries received, the webhook's settings.

``subscriptions``: one row per channel and filter (``kind`` flag / tag / env / all, ``value`` the
key, "" for all), unique per channel, project, kind and value. ``subscription_entries``: each audit
log entry received (its ``_id``, flag and ``date``), so a replayed webhook is ignored and a late
one is told apart. ``subscription_settings``: the webhook's id, its secret (Fernet-encrypted with
``FLAGOPS_SECRET_KEY``) and the polling cursor.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the three tables."""
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_subscriptions_channel_id", "subscriptions", ["channel_id"])
    op.create_index(
        "ix_subscriptions_unique", "subscriptions", ["channel_id", "project", "kind", "value"], unique=True
    )
    op.create_table(
        "subscription_entries",
        sa.Column("entry_id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(255), nullable=True),
        sa.Column("flag_key", sa.String(255), nullable=True),
        sa.Column("entry_date", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "subscription_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("subscription_settings")
    op.drop_table("subscription_entries")
    op.drop_index("ix_subscriptions_unique", table_name="subscriptions")
    op.drop_index("ix_subscriptions_channel_id", table_name="subscriptions")
    op.drop_table("subscriptions")
