"""HTTP API (FastAPI): dependencies in :mod:`cloud.api.deps`, one router per resource in ``routes/``."""
