"""Real components for tests: Mosquitto brokers, databases, helpers to wait."""
