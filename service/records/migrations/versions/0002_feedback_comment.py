"""CDS Hooks feedback keeps the clinician's override comment (../shared/cds-hooks.md, "Feedback":
stored, never logged); 0001 dropped it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cds_feedback", sa.Column("user_comment", sa.Text))


def downgrade() -> None:
    op.drop_column("cds_feedback", "user_comment")
