"""Alerts: conditions of a vehicle that a person should look at, raised once, cleared when
the condition ends, kept across restarts, optionally pushed to a webhook."""
