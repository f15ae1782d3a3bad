"""Market Sentinel cloud core: API, lossless MQTT ingest, telemetry store, alerts, presence, workflow.

Composition root: :mod:`cloud.app` (``create_app``); command line: :mod:`cloud.cli`.
"""
