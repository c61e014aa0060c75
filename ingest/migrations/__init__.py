"""Schema migrations of the system of record (Alembic)."""
