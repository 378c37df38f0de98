"""Alembic environment of the class board: run programmatically by ``app.board.db.migrate``
(the connection arrives in ``config.attributes['connection']``)."""

from __future__ import annotations

from alembic import context

from app.board.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  version_table="board_alembic_version", render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
