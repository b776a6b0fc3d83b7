"""The running summary of a conversation's seeds, so a seed folds only what is new.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "seed_summaries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_id", sa.String(64), sa.ForeignKey("conversations.id"), nullable=False
        ),
        sa.Column("policy", sa.String(200), nullable=False),
        sa.Column("base_id", sa.Integer(), sa.ForeignKey("summaries.id"), nullable=True),
        sa.Column("upto", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_seed_summaries_key", "seed_summaries", ["conversation_id", "policy"])


def downgrade() -> None:
    """Revert this revision: the table is a cache (the next seed folds the history again)."""
    op.drop_index("ix_seed_summaries_key", table_name="seed_summaries")
    op.drop_table("seed_summaries")
