"""The HTTP API and the web dashboard (FastAPI)."""
