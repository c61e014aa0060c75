"""Imports every module that defines domain tables on ``ingest.store.metadata``, so that
creating the schema creates them too."""

from ingest import daily_records
from ingest.alerts import storage as alerts_storage
from ingest.coldchain import storage as coldchain_storage
from ingest.footprint import storage as footprint_storage
from ingest.reports import configuration

__all__ = [
    "alerts_storage",
    "coldchain_storage",
    "configuration",
    "daily_records",
    "footprint_storage",
]
