"""Nudges: characters that speak first (per conversation settings and state), and the kind of
each model call (a reply or a nudge) for ``/usage``.

Revision ID: 0005_nudges
Revises: 0004_swipes
Create Date: 2026-12-07 00:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_nudges"
down_revision: str | Sequence[str] | None = "0004_swipes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema; every model call made before was a reply."""
    op.create_table(
        "nudges",
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("quiet_minutes", sa.Integer(), nullable=True),
        sa.Column("quiet_hours", sa.Text(), nullable=True),
        sa.Column("timezone", sa.Text(), nullable=True),
        sa.Column("max_per_day", sa.Integer(), nullable=True),
        sa.Column("schedule", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_nudge_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_greeting_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("day", sa.Text(), nullable=True),
        sa.Column("sent_today", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_nudges_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_nudges")),
    )
    with op.batch_alter_table("model_calls") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), server_default="reply", nullable=False)
        )


def downgrade() -> None:
    """Undo :func:`upgrade`."""
    with op.batch_alter_table("model_calls") as batch:
        batch.drop_column("kind")
    op.drop_table("nudges")
