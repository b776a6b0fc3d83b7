"""Out-of-band usage marked, with the response's metadata; user turns a session lacks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from context_manager.errors import StoreError

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("usage") as batch:
        batch.add_column(
            sa.Column("out_of_band", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("response_metadata", sa.JSON(), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("uncarried", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert this revision, unless a row holds what revision 0003 cannot.

    Revision 0003 has no place for out-of-band marks, response metadata or the turns a session
    lacks: with any of them stored, the downgrade refuses rather than lose them.
    """
    bind = op.get_bind()
    count = bind.execute(sa.text(
        "SELECT count(*) FROM usage WHERE out_of_band OR response_metadata IS NOT NULL"
    )).scalar()  # fmt: skip
    count = (count or 0) + (
        bind.execute(sa.text("SELECT count(*) FROM sessions WHERE uncarried IS NOT NULL")).scalar()
        or 0
    )
    if count:
        raise StoreError(
            f"cannot downgrade below revision 0004: {count} rows hold out-of-band usage, response"
            " metadata or untranscribed turns a session lacks, which revision 0003 cannot hold",
            reason="schema",
        )
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("uncarried")
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("response_metadata")
        batch.drop_column("out_of_band")
