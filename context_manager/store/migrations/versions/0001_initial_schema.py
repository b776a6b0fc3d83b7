"""The initial schema: conversations, sessions, items, summaries, usage, compactions.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-21 17:41:36.608097
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from context_manager.errors import StoreError

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=80), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sessions_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "summaries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"],
            ["summaries.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("summaries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_summaries_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "compactions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("strategy", sa.String(length=80), nullable=False),
        sa.Column("summary_id", sa.Integer(), nullable=True),
        sa.Column("items_removed", sa.Integer(), nullable=False),
        sa.Column("tokens_before", sa.Integer(), nullable=False),
        sa.Column("tokens_after", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["summary_id"],
            ["summaries.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("compactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_compactions_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("server_item_id", sa.String(length=64), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id", "position", name="uq_items_position"),
        sa.UniqueConstraint("conversation_id", "uid", name="uq_items_uid"),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_items_conversation_status", ["conversation_id", "status"], unique=False
        )

    op.create_table(
        "usage",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("response_id", sa.String(length=64), nullable=True),
        sa.Column("input_text", sa.Integer(), nullable=False),
        sa.Column("input_audio", sa.Integer(), nullable=False),
        sa.Column("cached_text", sa.Integer(), nullable=False),
        sa.Column("cached_audio", sa.Integer(), nullable=False),
        sa.Column("output_text", sa.Integer(), nullable=False),
        sa.Column("output_audio", sa.Integer(), nullable=False),
        sa.Column("predicted_input", sa.Integer(), nullable=True),
        sa.Column("predicted_cached", sa.Integer(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_usage_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "summary_items",
        sa.Column("summary_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
        ),
        sa.ForeignKeyConstraint(
            ["summary_id"],
            ["summaries.id"],
        ),
        sa.PrimaryKeyConstraint("summary_id", "item_id"),
    )


_TABLES = ("conversations", "sessions", "items", "summaries", "summary_items", "usage",
           "compactions")  # fmt: skip


def downgrade() -> None:
    """Revert this revision (drop every table), unless a table holds rows."""
    bind = op.get_bind()
    rows = {t: bind.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in _TABLES}
    held = {t: n for t, n in rows.items() if n}
    if held:
        listed = ", ".join(f"{n} {t}" for t, n in held.items())
        raise StoreError(
            f"cannot downgrade to base: the tables hold {listed} (dropping them would lose"
            " them; delete the rows first)",
            reason="schema",
        )
    op.drop_table("summary_items")
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_conversation_id"))

    op.drop_table("usage")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_conversation_status")

    op.drop_table("items")
    with op.batch_alter_table("compactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_compactions_conversation_id"))

    op.drop_table("compactions")
    with op.batch_alter_table("summaries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_summaries_conversation_id"))

    op.drop_table("summaries")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_conversation_id"))

    op.drop_table("sessions")
    op.drop_table("conversations")
