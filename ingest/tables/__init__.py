"""The schema of the system of record: every table, one module per part of the product.

These modules import only SQLAlchemy and :mod:`ingest.tables.base`, so storage code of
every domain can use any table without importing another domain. Importing this package
defines them all on :data:`metadata`, which migrations compare with the database.
"""

from ingest.tables import (
    access,
    alerts,
    audit,
    coldchain,
    coordination,
    daily_records,
    footprint,
    intake,
    punctuality,
    reports,
)
from ingest.tables.base import UtcDateTime, metadata

__all__ = [
    "UtcDateTime",
    "access",
    "alerts",
    "audit",
    "coldchain",
    "coordination",
    "daily_records",
    "footprint",
    "intake",
    "metadata",
    "punctuality",
    "reports",
]
