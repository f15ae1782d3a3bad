"""Lossless MQTT ingest: validate → dedup (site, agent, seq) → store → commit → ack (:mod:`cloud.ingest.service`)."""
