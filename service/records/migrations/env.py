"""Alembic environment: runs on the connection the store hands over (service/records/store.py
migrate()), inside the transaction that holds the migration lock."""
from __future__ import annotations

from alembic import context

from service.records.store import VERSION_TABLE  # its own name: the database may be shared with others
from service.records.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
