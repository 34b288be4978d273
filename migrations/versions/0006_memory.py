"""Memory: each conversation's rolling summary, and facts users stated about themselves.

Revision ID: 0006_memory
Revises: 0005_nudges
Create Date: 2026-12-07 00:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_memory"
down_revision: str | Sequence[str] | None = "0005_nudges"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema; every model call stored before was a reply's."""
    op.create_table(
        "conversation_memories",
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("covered_through", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_memories_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversation_memories")),
    )
    op.create_table(
        "user_facts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("character_id", sa.Text(), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_user_facts_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_facts")),
    )
    op.create_index(
        op.f("ix_user_facts_platform_user_id_character_id"),
        "user_facts",
        ["platform", "user_id", "character_id"],
    )
    op.create_index(op.f("ix_user_facts_conversation_id"), "user_facts", ["conversation_id"])


def downgrade() -> None:
    """Undo :func:`upgrade` (the memory is lost)."""
    op.drop_index(op.f("ix_user_facts_conversation_id"), table_name="user_facts")
    op.drop_index(op.f("ix_user_facts_platform_user_id_character_id"), table_name="user_facts")
    op.drop_table("user_facts")
    op.drop_table("conversation_memories")
