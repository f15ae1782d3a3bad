"""Telemetry storage behind one interface (:class:`cloud.telemetry.store.TelemetryStore`).

Backends: ``sqlite`` (embedded default, :mod:`cloud.telemetry.sqlite`), ``postgres`` and ``influx``
(:mod:`cloud.telemetry.postgres`, :mod:`cloud.telemetry.influx`). :func:`cloud.telemetry.store.open_store`
picks one from the settings.
"""

from cloud.telemetry.store import Bucket, ReadingRow, TelemetryStore, open_store

__all__ = ["Bucket", "ReadingRow", "TelemetryStore", "open_store"]
