"""Punctuality: the weekly timetable expanded into visits, arrivals and departures detected
from GPS fixes, and their comparison (delay, early / on time / late / missed), plus ETAs.

Every module here is pure: no clock, socket or database; callers pass the time in.
"""
