"""Turns owed: the newest message a turn was wanted for, next to the newest one answered.

Revision ID: 0003_owed_turns
Revises: 0002_delivery
Create Date: 2026-12-06 18:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_owed_turns"
down_revision: str | Sequence[str] | None = "0002_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("turn_claims") as batch:
        batch.add_column(
            sa.Column("wanted_through", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    """Undo :func:`upgrade`."""
    with op.batch_alter_table("turn_claims") as batch:
        batch.drop_column("wanted_through")
