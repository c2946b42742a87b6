"""Tables for linked LaunchDarkly accounts and approval cards
(issue: button approvals, linked accounts, message actions).

``linked_accounts``: one row per Slack user who pasted a LaunchDarkly personal access token; the
token is stored Fernet-encrypted (``FLAGOPS_SECRET_KEY``), never in clear.

``approval_cards``: one row per LaunchDarkly approval request shown in Slack; ``state`` is the
compare-and-set column that makes Apply happen once however many reviewers click it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``linked_accounts`` and ``approval_cards``."""
    op.create_table(
        "linked_accounts",
        sa.Column("slack_user_id", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("member_email", sa.String(255), nullable=True),
        sa.Column("token_ciphertext", sa.Text, nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_linked_accounts_member_id", "linked_accounts", ["member_id"])
    op.create_table(
        "approval_cards",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("change_id", sa.String(36), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("flag_key", sa.String(255), nullable=False),
        sa.Column("environment", sa.String(255), nullable=False),
        sa.Column("requester_id", sa.String(64), nullable=True),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=True),
        sa.Column("cards_json", sa.Text, nullable=False),
        sa.Column("content_json", sa.Text, nullable=False),
        sa.Column("request_json", sa.Text, nullable=True),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_approval_cards_request_id", "approval_cards", ["request_id"], unique=True)


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("approval_cards")
    op.drop_table("linked_accounts")
