"""The class board: students share run summaries with their class; the teacher's board
shows them all, live. Kept in a database (SQLite by default, PostgreSQL when hosted) through
SQLAlchemy 2 with Alembic migrations; see ``db`` (engine, migrations) and ``store``
(validated operations). Torch-free: it runs in the web process."""
