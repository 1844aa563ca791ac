"""The tables of the records store (SQLAlchemy Core). Alembic migrations in migrations/ create them;
this module is what the code reads and writes through, and must match the newest migration
(tests/integration/test_store.py compares the two).

Only references and codes are kept: no answers, no tokens, no free text from a request, except
the comment a clinician types when overriding a CDS card (the CDS Hooks brief keeps it; never logged).
Times are integer microseconds since the Unix epoch (UTC): the same type, ordering and range
comparisons on SQLite and PostgreSQL, with no time-zone conversions in between.
"""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

audit_event = sa.Table(
    "audit_event", metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # uuid4, the AuditEvent.id
    sa.Column("recorded_us", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # triage | cds-hook
    sa.Column("status", sa.Integer, nullable=False),  # HTTP status answered
    sa.Column("outcome", sa.String(2), nullable=False),  # audit-event-outcome code
    sa.Column("service", sa.String(64)),
    sa.Column("agent_iss", sa.String(255)),
    sa.Column("agent_sub", sa.String(255)),
    sa.Column("patient", sa.String(255)),
    sa.Column("questionnaire_response", sa.String(255)),
    sa.Column("rules_version", sa.String(32)),
    sa.Column("disposition", sa.String(16)),
    sa.Column("tenant", sa.String(64)),
    sa.Index("ix_audit_event_recorded", "recorded_us", "id"),
    sa.Index("ix_audit_event_patient", "patient", "recorded_us"),
)

cds_card = sa.Table(
    "cds_card", metadata,
    sa.Column("card_uuid", sa.String(64), primary_key=True),
    sa.Column("hook_instance", sa.String(128), nullable=False),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("disposition", sa.String(16), nullable=False),
    sa.Column("rules_version", sa.String(32), nullable=False),
    sa.Column("issued_us", sa.BigInteger, nullable=False),
    sa.Column("tenant", sa.String(64)),
    sa.Index("ix_cds_card_issued", "issued_us"),  # migration 0003_feedback: purge
)

cds_feedback = sa.Table(
    "cds_feedback", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("card_uuid", sa.String(64), nullable=False),  # joins cds_card; feedback may precede
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # accepted | overridden
    sa.Column("outcome_timestamp", sa.String(40), nullable=False),
    sa.Column("accepted_suggestions", sa.JSON, nullable=False),  # suggestion uuids
    sa.Column("override_code", sa.String(64)),
    sa.Column("override_system", sa.String(255)),
    sa.Column("iss", sa.String(255)),
    sa.Column("tenant", sa.String(64)),
    sa.Column("received_us", sa.BigInteger, nullable=False),
    sa.Column("user_comment", sa.Text),  # migration 0002
    # migration 0003_feedback: a digest of the item; the same item on the same card is kept once
    sa.Column("item_key", sa.String(64)),
    sa.Index("ix_cds_feedback_card", "card_uuid"),
    sa.Index("ux_cds_feedback_item", "card_uuid", "item_key", unique=True),
    sa.Index("ix_cds_feedback_received", "received_us"),
)

# One row (id 1) that /readyz updates: a write that went through, not only a SELECT that did.
store_heartbeat = sa.Table(
    "store_heartbeat", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("beat_us", sa.BigInteger, nullable=False),
)

token_seen = sa.Table(  # migration 0004_token_replay: tokens with a jti already accepted
    "token_seen", metadata,
    sa.Column("token_key", sa.String(64), primary_key=True),  # sha256 hex of (iss, jti): fixed length
    sa.Column("expires_us", sa.BigInteger, nullable=False),  # when the token (with leeway) expires
    sa.Index("ix_token_seen_expires", "expires_us"),
)
