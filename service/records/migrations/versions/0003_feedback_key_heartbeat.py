"""Feedback kept once per item, and a heartbeat row that readiness writes (issue 23, items 6 and 11).

- cds_feedback.item_key: a digest of everything a feedback item says; unique per card, so the same item
  sent again (CDS clients repeat feedback) is kept once. Rows from before stay as they are (NULL key).
- store_heartbeat: one row that /readyz updates (throttled): ready means a write went through, not only
  that the database answers a SELECT (a full disk or a read-only database still does).
- Indexes on the times that `purge` cuts cards and feedback by.

Revision ID: 0003_feedback
Revises: 0002
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

revision = "0003_feedback"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cds_feedback", sa.Column("item_key", sa.String(64)))
    op.create_index("ux_cds_feedback_item", "cds_feedback", ["card_uuid", "item_key"], unique=True)
    op.create_index("ix_cds_feedback_received", "cds_feedback", ["received_us"])
    op.create_index("ix_cds_card_issued", "cds_card", ["issued_us"])
    heartbeat = op.create_table(
        "store_heartbeat",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("beat_us", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(heartbeat, [{"id": 1, "beat_us": 0}])


def downgrade() -> None:
    op.drop_table("store_heartbeat")
    op.drop_index("ix_cds_card_issued", "cds_card")
    op.drop_index("ix_cds_feedback_received", "cds_feedback")
    op.drop_index("ux_cds_feedback_item", "cds_feedback")
    op.drop_column("cds_feedback", "item_key")
