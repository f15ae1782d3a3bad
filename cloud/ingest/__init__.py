"""Lossless MQTT ingest: validate → dedup (agent, seq) → store → commit → ack (see :mod:`cloud.ingest.service`)."""
