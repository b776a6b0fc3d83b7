"""A user turn being spoken, noted on its session (so a crash mid-turn is known).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from context_manager.errors import StoreError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("open_turn_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Revert this revision, unless a session holds a turn in progress (or one lost)."""
    bind = op.get_bind()
    count = bind.execute(
        sa.text("SELECT count(*) FROM sessions WHERE open_turn_ms IS NOT NULL")
    ).scalar()
    if count:
        raise StoreError(
            f"cannot downgrade below revision 0005: {count} sessions hold a user turn in"
            " progress or lost, which revision 0004 cannot hold",
            reason="schema",
        )
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("open_turn_ms")
