"""The durable inbox: each accepted slash command or click, written before the ack.

``inbox``: one row per Slack delivery (``delivery_key`` unique: a retry or replay is the same row),
the handler that runs it and the payload (``body_json``, emptied once done), its state
(``pending`` → ``working`` → ``done``) with the worker's lease, the card it is about
(``card_key``, ``<channel>:<ts>``: rows of one card run in order), and what it posted
(``posting_at`` before its first message, ``card_ts`` after) so that a takeover never posts twice.
On Postgres a trigger sends ``NOTIFY flagops_inbox`` for each new row and each row done, so
workers wake at once (``LISTEN``); SQLite's workers poll.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION flagops_inbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('flagops_inbox', NEW.id::text);
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    """Create the table, its indexes and (Postgres) the NOTIFY triggers."""
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_key", sa.String(255), nullable=False),
        sa.Column("handler", sa.String(64), nullable=False),
        sa.Column("body_json", sa.Text, nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=True),
        sa.Column("card_key", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posting_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("card_ts", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_inbox_delivery_key", "inbox", ["delivery_key"], unique=True)
    op.create_index("ix_inbox_state_id", "inbox", ["state", "id"])
    op.create_index("ix_inbox_card_key", "inbox", ["card_key"])
    op.create_index("ix_inbox_channel_state", "inbox", ["channel_id", "state"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY_FUNCTION)
        op.execute(
            "CREATE TRIGGER inbox_notify_new AFTER INSERT ON inbox "
            "FOR EACH ROW EXECUTE FUNCTION flagops_inbox_notify()"
        )
        op.execute(
            "CREATE TRIGGER inbox_notify_done AFTER UPDATE OF state ON inbox "
            "FOR EACH ROW WHEN (NEW.state = 'done' AND OLD.state <> 'done') "
            "EXECUTE FUNCTION flagops_inbox_notify()"
        )


def downgrade() -> None:
    """Drop them."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS inbox_notify_done ON inbox")
        op.execute("DROP TRIGGER IF EXISTS inbox_notify_new ON inbox")
        op.execute("DROP FUNCTION IF EXISTS flagops_inbox_notify()")
    op.drop_index("ix_inbox_channel_state", table_name="inbox")
    op.drop_index("ix_inbox_card_key", table_name="inbox")
    op.drop_index("ix_inbox_state_id", table_name="inbox")
    op.drop_index("ix_inbox_delivery_key", table_name="inbox")
    op.drop_table("inbox")
