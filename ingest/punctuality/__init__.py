"""Punctuality: the weekly timetable expanded into visits, arrivals and departures detected
from GPS fixes, and their comparison (delay, early / on time / late / missed), plus ETAs,
coordinators' changes, punctuality figures and the GTFS exchange of the timetable.

The domain modules are pure: no clock, socket or database; callers pass the time in.
The adapters are ``storage`` (the SQL tables) and ``tracker`` (the ingest's observer);
``gtfs`` also reads and writes the feed's files.
"""
