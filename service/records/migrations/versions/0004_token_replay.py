"""Shared replay protection for tokens with a jti (issue 23): one row per (iss, jti) seen, kept until
the token expires, so that a token is accepted once across all workers and replicas, not once per
process.

Revision ID: 0004_token_replay
Revises: 0003_feedback
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

revision = "0004_token_replay"
down_revision = "0003_feedback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_seen",
        sa.Column("token_key", sa.String(64), primary_key=True),  # sha256 hex of (iss, jti)
        sa.Column("expires_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_token_seen_expires", "token_seen", ["expires_us"])


def downgrade() -> None:
    op.drop_index("ix_token_seen_expires", "token_seen")
    op.drop_table("token_seen")
