"""Leases on changes being applied, and the settle window of unknown outcomes.

``lease_owner`` / ``lease_expires_at``: the instance that holds a change in ``applying`` and until
when; only once the lease has expired (and the settle window passed) may another instance settle
the change. ``sent_at``: when the write was last sent to LaunchDarkly. ``settle_at``: for a change
in ``outcome_unknown``, when LaunchDarkly's audit log is read again to decide it for good (NULL
once decided: Send again is offered only then).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the lease and settle columns to ``changes``."""
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("settle_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("changes") as batch:
        for name in ("settle_at", "sent_at", "lease_expires_at", "lease_owner"):
            batch.drop_column(name)
