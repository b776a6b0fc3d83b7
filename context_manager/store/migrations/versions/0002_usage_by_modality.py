"""Usage by modality: image counts, and the prediction by modality instead of two totals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 17:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_KINDS = ("input_text", "input_audio", "input_image", "cached_text", "cached_audio",
          "cached_image", "output_text", "output_audio")  # fmt: skip


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("usage") as batch:
        batch.add_column(sa.Column("input_image", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("cached_image", sa.Integer(), nullable=False, server_default="0")
        )
        for kind in _KINDS:
            batch.add_column(sa.Column(f"predicted_{kind}", sa.Integer(), nullable=True))
    # The old totals go to the text column: the split was never recorded.
    op.execute("UPDATE usage SET predicted_input_text = predicted_input,"
               " predicted_cached_text = predicted_cached")  # fmt: skip
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("predicted_input")
        batch.drop_column("predicted_cached")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("usage") as batch:
        batch.add_column(sa.Column("predicted_input", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("predicted_cached", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE usage SET"
        " predicted_input = predicted_input_text + predicted_input_audio + predicted_input_image,"
        " predicted_cached = predicted_cached_text + predicted_cached_audio"
        " + predicted_cached_image"
    )
    with op.batch_alter_table("usage") as batch:
        for kind in _KINDS:
            batch.drop_column(f"predicted_{kind}")
        batch.drop_column("cached_image")
        batch.drop_column("input_image")
