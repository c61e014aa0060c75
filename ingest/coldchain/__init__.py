"""Cold chain of the medical fridge: excursions, logger-style alarms, daily records."""
