"""Usage by modality: image counts, and the prediction by modality instead of two totals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 17:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from context_manager.errors import StoreError

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
    """Revert this revision, unless a usage row holds what revision 0001 has no column for.

    0001 has no image counts and predicts two totals: a row with an image count or a
    prediction of audio, images or output would lose it, so the downgrade refuses.
    """
    lossy = " OR ".join(
        ["input_image <> 0", "cached_image <> 0"]
        + [f"predicted_{kind} IS NOT NULL" for kind in _KINDS if not kind.endswith("_text")]
        + ["predicted_output_text IS NOT NULL"]
    )
    count = op.get_bind().execute(sa.text(f"SELECT count(*) FROM usage WHERE {lossy}")).scalar()
    if count:
        raise StoreError(
            f"cannot downgrade below revision 0002: {count} usage rows hold image counts or a"
            " prediction by modality, which revision 0001 has no columns for",
            reason="schema",
        )
    with op.batch_alter_table("usage") as batch:
        batch.add_column(sa.Column("predicted_input", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("predicted_cached", sa.Integer(), nullable=True))
    op.execute("UPDATE usage SET predicted_input = predicted_input_text,"
               " predicted_cached = predicted_cached_text")  # fmt: skip
    with op.batch_alter_table("usage") as batch:
        for kind in _KINDS:
            batch.drop_column(f"predicted_{kind}")
        batch.drop_column("cached_image")
        batch.drop_column("input_image")
