"""Sensor profiles shipped with the agent (TOML files, one per sensor model)."""
