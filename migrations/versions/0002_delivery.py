"""Delivery: a reply's delivery state, the platform ids of its later parts, cut model calls.

Revision ID: 0002_delivery
Revises: 0001
Create Date: 2026-12-03 10:12:40.118204
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0002_delivery"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DELIVERY_CHECK = "delivery IN ('pending', 'delivered', 'undelivered')"


def _messages() -> AbstractContextManager[BatchOperations]:
    # SQLite rebuilds the table for the check constraint: keep AUTOINCREMENT on the copy.
    return op.batch_alter_table("messages", table_kwargs={"sqlite_autoincrement": True})


def upgrade() -> None:
    """Upgrade the schema; every message stored before counts as delivered."""
    with _messages() as batch:
        batch.add_column(
            sa.Column("delivery", sa.String(length=16), server_default="delivered", nullable=False)
        )
        batch.create_check_constraint(op.f("ck_messages_delivery"), _DELIVERY_CHECK)
        batch.drop_index(op.f("ix_messages_conversation_id_input_flagged_id"))
        batch.create_index(
            op.f("ix_messages_conversation_id_input_flagged_delivery_id"),
            ["conversation_id", "input_flagged", "delivery", "id"],
        )
    op.create_table(
        "message_parts",
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("platform_message_id", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_message_parts_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_parts_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "part", name=op.f("pk_message_parts")),
    )
    op.create_index(
        op.f("ix_message_parts_conversation_id_platform_message_id"),
        "message_parts",
        ["conversation_id", "platform_message_id"],
    )
    with op.batch_alter_table("model_calls") as batch:
        batch.add_column(sa.Column("cut", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    """Undo :func:`upgrade` (replies that were never delivered are kept, as delivered)."""
    with op.batch_alter_table("model_calls") as batch:
        batch.drop_column("cut")
    op.drop_table("message_parts")
    with _messages() as batch:
        batch.drop_index(op.f("ix_messages_conversation_id_input_flagged_delivery_id"))
        batch.create_index(
            op.f("ix_messages_conversation_id_input_flagged_id"),
            ["conversation_id", "input_flagged", "id"],
        )
        batch.drop_constraint(op.f("ck_messages_delivery"), type_="check")
        batch.drop_column("delivery")
