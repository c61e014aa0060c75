"""Emission factor files (TOML), shipped with the package; no code lives here."""
