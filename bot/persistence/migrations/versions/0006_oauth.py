"""Connect with LaunchDarkly (OAuth): what kind of token a link holds, its refresh token and when
it expires; and the ``state`` of each authorization under way.

``linked_accounts.token_kind``: ``personal`` (a pasted personal access token, sent bare) or
``oauth`` (an access token, sent as ``Bearer``); ``refresh_ciphertext`` (Fernet, as the token) and
``expires_at`` for OAuth links. ``oauth_states``: one row per Connect button; ``state_hash`` is
the SHA-256 of the random ``state`` (the state itself is never stored), bound to the Slack user
and team, single use (``used_at``), valid until ``expires_at``; ``reply_json`` says where to tell
the person, ``resume_json`` what to do once connected (a click that needed the connection).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the OAuth columns to ``linked_accounts`` and the ``oauth_states`` table."""
    with op.batch_alter_table("linked_accounts") as batch:
        batch.add_column(sa.Column("token_kind", sa.String(16), nullable=False, server_default="personal"))
        batch.add_column(sa.Column("refresh_ciphertext", sa.Text, nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "oauth_states",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("slack_user_id", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("reply_json", sa.Text, nullable=False),
        sa.Column("resume_json", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("oauth_states")
    with op.batch_alter_table("linked_accounts") as batch:
        for name in ("expires_at", "refresh_ciphertext", "token_kind"):
            batch.drop_column(name)
