"""Records: audit events, CDS Hooks cards and their feedback.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("recorded_us", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(2), nullable=False),
        sa.Column("service", sa.String(64)),
        sa.Column("agent_iss", sa.String(255)),
        sa.Column("agent_sub", sa.String(255)),
        sa.Column("patient", sa.String(255)),
        sa.Column("questionnaire_response", sa.String(255)),
        sa.Column("rules_version", sa.String(32)),
        sa.Column("disposition", sa.String(16)),
        sa.Column("tenant", sa.String(64)),
    )
    op.create_index("ix_audit_event_recorded", "audit_event", ["recorded_us", "id"])
    op.create_index("ix_audit_event_patient", "audit_event", ["patient", "recorded_us"])
    op.create_table(
        "cds_card",
        sa.Column("card_uuid", sa.String(64), primary_key=True),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("rules_version", sa.String(32), nullable=False),
        sa.Column("issued_us", sa.BigInteger, nullable=False),
        sa.Column("tenant", sa.String(64)),
    )
    op.create_table(
        "cds_feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("card_uuid", sa.String(64), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_timestamp", sa.String(40), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON, nullable=False),
        sa.Column("override_code", sa.String(64)),
        sa.Column("override_system", sa.String(255)),
        sa.Column("iss", sa.String(255)),
        sa.Column("tenant", sa.String(64)),
        sa.Column("received_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_cds_feedback_card", "cds_feedback", ["card_uuid"])


def downgrade() -> None:
    op.drop_table("cds_feedback")
    op.drop_table("cds_card")
    op.drop_table("audit_event")
