"""Server item ids per session: a seeded item has a new server id in every session.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 17:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from context_manager.errors import StoreError

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "server_items",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("server_item_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"]),
        sa.PrimaryKeyConstraint("item_id", "session_id"),
        sa.UniqueConstraint("session_id", "server_item_id", name="uq_server_items"),
    )
    op.execute(
        "INSERT INTO server_items (item_id, session_id, server_item_id)"
        " SELECT id, session_id, server_item_id FROM items"
        " WHERE session_id IS NOT NULL AND server_item_id IS NOT NULL"
    )
    with op.batch_alter_table("items") as batch:
        batch.drop_column("server_item_id")


def downgrade() -> None:
    """Revert this revision, unless an item has a server id in a session it was not said in.

    Revision 0002 keeps one server id per item, that of the session the item was first said
    in; the ids seeded items got in later sessions would be lost, so the downgrade refuses.
    """
    count = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM server_items s JOIN items i ON i.id = s.item_id"
        " WHERE i.session_id IS NULL OR s.session_id <> i.session_id"
    )).scalar()  # fmt: skip
    if count:
        raise StoreError(
            f"cannot downgrade below revision 0003: {count} server item ids are of sessions"
            " other than the one their item was first said in, which revision 0002 cannot hold",
            reason="schema",
        )
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("server_item_id", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE items SET server_item_id = (SELECT s.server_item_id FROM server_items s"
        " WHERE s.item_id = items.id AND s.session_id = items.session_id)"
    )
    op.drop_table("server_items")
