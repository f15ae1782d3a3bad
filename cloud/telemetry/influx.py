"""InfluxDB-protocol telemetry store: writes through influxdb-client (v2 write API) or the v1 ``/write``,
reads through InfluxQL (``/query``) or VictoriaMetrics' ``/api/v1/export``.

Supported servers (``SENTINEL_TELEMETRY_INFLUX_WRITE`` / ``SENTINEL_TELEMETRY_INFLUX_READ``):

=====================  ===========  ===============  ==============================================
server                 write mode   read mode        notes
=====================  ===========  ===============  ==============================================
InfluxDB 1.8+          v2           influxql         v2 write compat endpoint; bucket = "db/rp" or "db"
InfluxDB 2.x / 3.x     v2           influxql         v1-compatible /query needs a DBRP mapping
InfluxDB 1.6 / 1.7     v1           influxql         no /api/v2 at all (tested: 1.6.7)
VictoriaMetrics        v2 (or v1)   victoriametrics  measurement+field → ``{measurement}_{field}``
=====================  ===========  ===============  ==============================================

Data model: measurement ``reading``; tags ``site_id``, ``sensor_id``, ``unit``, ``agent_id``; fields
``value`` (float, absent when the reading is bad) and ``quality`` (integer 0 good, 1 uncertain, 2 bad);
millisecond timestamps. A point is identified by (measurement, tags, timestamp), so writing the same reading
twice overwrites it: writes are idempotent (the ingest relies on this; see ``store.py``). VictoriaMetrics
keeps duplicate samples unless started with ``-dedup.minScrapeInterval=1ms``; the read path here collapses
them by timestamp either way.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import httpx
from sqlalchemy import Connection, Engine

from cloud.telemetry.store import Bucket, ReadingRow, TelemetryStore

if TYPE_CHECKING:
    from cloud.core.config import Settings

log = logging.getLogger(__name__)

WriteMode = Literal["v2", "v1"]
ReadMode = Literal["influxql", "victoriametrics"]
MEASUREMENT = "reading"
QUALITY_CODE = {"good": 0, "uncertain": 1, "bad": 2}
QUALITY_NAME = {v: k for k, v in QUALITY_CODE.items()}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InfluxError(RuntimeError):
    """The time-series server refused a write or a query; the message says which and why."""


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _from_ms(ms: float) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))


def _escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


@lru_cache(maxsize=65_536)
def _series_key(agent_id: str, sensor_id: str, site_id: str, unit: str) -> str:
    return (
        f"{MEASUREMENT},agent_id={_escape_tag(agent_id)},sensor_id={_escape_tag(sensor_id)},"
        f"site_id={_escape_tag(site_id)},unit={_escape_tag(unit or '-')} quality="
    )


def to_line(r: ReadingRow) -> str:
    """One reading as an InfluxDB line-protocol line (ms precision)."""
    head = _series_key(r.agent_id, r.sensor_id, r.site_id, r.unit)
    ms = int(r.ts.timestamp() * 1000)
    value = r.value
    if value is not None and math.isfinite(value):
        return f"{head}{QUALITY_CODE.get(r.quality, 1)}i,value={float(value)!r} {ms}"
    return f"{head}{QUALITY_CODE.get(r.quality, 1)}i {ms}"


def _ql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _prom_str(value: str) -> str:
    return json.dumps(value)


class InfluxStore(TelemetryStore):
    name: ClassVar[str] = "influx"
    transactional: ClassVar[bool] = False

    def __init__(self, settings: Settings | None, engine: Engine | None = None, **params: Any) -> None:
        if settings is not None:
            token = settings.telemetry_token.get_secret_value() if settings.telemetry_token else None
            params = {
                "url": settings.telemetry_url,
                "token": token,
                "org": settings.telemetry_org,
                "bucket": settings.telemetry_bucket,
                "write_mode": getattr(settings, "telemetry_influx_write", "v2"),
                "read_mode": getattr(settings, "telemetry_influx_read", "influxql"),
                **params,
            }
        url = params.get("url")
        if not url:
            raise ValueError("the influx telemetry backend needs SENTINEL_TELEMETRY_URL (e.g. http://127.0.0.1:8086)")
        self.url: str = str(url).rstrip("/")
        self.token: str | None = params.get("token")
        self.org: str = params.get("org") or "sentinel"
        self.bucket: str = params.get("bucket") or "sentinel"
        self.database: str = self.bucket.split("/")[0]
        self.write_mode: WriteMode = params.get("write_mode") or "v2"
        self.read_mode: ReadMode = params.get("read_mode") or "influxql"
        self.latest_lookback = timedelta(days=float(params.get("latest_lookback_days", 30)))
        if self.write_mode not in ("v2", "v1") or self.read_mode not in ("influxql", "victoriametrics"):
            raise ValueError(f"unknown influx modes write={self.write_mode!r} read={self.read_mode!r}")
        headers = {}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=30.0)
        self._client: Any = None
        self._write_api: Any = None

    # ------------------------------------------------------------ schema
    def create_schema(self) -> None:
        """InfluxDB 1.x: ``CREATE DATABASE`` (idempotent). 2.x/3.x buckets and VictoriaMetrics need nothing."""
        if self.read_mode != "influxql":
            return
        try:
            resp = self.http.post("/query", params={"q": f'CREATE DATABASE "{self.database}"'})
        except httpx.HTTPError as exc:
            raise InfluxError(f"InfluxDB at {self.url} unreachable: {exc}") from exc
        if resp.status_code >= 400:  # 2.x refuses DDL over v1: the bucket is created by its admin
            log.info("CREATE DATABASE refused by %s (%s); assuming the bucket exists", self.url, resp.status_code)

    # ------------------------------------------------------------ writes
    def _v2_api(self) -> Any:
        if self._write_api is None:
            from influxdb_client.client.influxdb_client import InfluxDBClient
            from influxdb_client.client.write_api import SYNCHRONOUS

            self._client = InfluxDBClient(url=self.url, token=self.token or "", org=self.org, timeout=30_000)
            self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        return self._write_api

    def write_readings(self, rows: Sequence[ReadingRow], *, connection: Connection | None = None) -> None:
        if not rows:
            return
        body = "\n".join(to_line(r) for r in rows)
        if self.write_mode == "v2":
            from influxdb_client.domain.write_precision import WritePrecision
            from influxdb_client.rest import ApiException

            try:
                self._v2_api().write(bucket=self.bucket, org=self.org, record=body, write_precision=WritePrecision.MS)
            except ApiException as exc:
                raise InfluxError(f"v2 write to {self.url} refused: {exc.status} {exc.body}") from exc
            except OSError as exc:
                raise InfluxError(f"v2 write to {self.url} failed: {exc}") from exc
            return
        try:
            resp = self.http.post("/write", params={"db": self.database, "precision": "ms"}, content=body.encode())
        except httpx.HTTPError as exc:
            raise InfluxError(f"v1 write to {self.url} failed: {exc}") from exc
        if resp.status_code >= 300:
            raise InfluxError(f"v1 write to {self.url} refused: {resp.status_code} {resp.text[:300]}")

    # ------------------------------------------------------------ InfluxQL read path
    def _influxql(self, q: str) -> list[dict[str, Any]]:
        try:
            resp = self.http.post("/query", data={"db": self.database, "q": q, "epoch": "ms"})
        except httpx.HTTPError as exc:
            raise InfluxError(f"InfluxQL query to {self.url} failed: {exc}") from exc
        if resp.status_code >= 300:
            raise InfluxError(f"InfluxQL query refused: {resp.status_code} {resp.text[:300]}")
        out: list[dict[str, Any]] = []
        for result in resp.json().get("results", []):
            if "error" in result:
                raise InfluxError(f"InfluxQL error: {result['error']}")
            out.extend(result.get("series", []))
        return out

    @staticmethod
    def _where(site_id: str, sensor_id: str | None, start: datetime | None, end: datetime | None) -> str:
        cond = [f"site_id = {_ql_str(site_id)}"]
        if sensor_id is not None:
            cond.append(f"sensor_id = {_ql_str(sensor_id)}")
        if start is not None:
            cond.append(f"time >= {_ms(start)}ms")
        if end is not None:
            cond.append(f"time < {_ms(end)}ms")
        return " AND ".join(cond)

    def _ql_rows(self, series: Iterable[dict[str, Any]], site_id: str) -> list[ReadingRow]:
        out = []
        for s in series:
            tags = s.get("tags") or {}
            cols = s["columns"]
            for values in s.get("values", []):
                rec = dict(zip(cols, values, strict=True)) | tags
                q = rec.get("quality")
                if q is None:
                    continue
                out.append(
                    ReadingRow(
                        rec.get("agent_id") or "",
                        site_id,
                        rec.get("sensor_id") or "",
                        _from_ms(rec["time"]),
                        rec.get("value"),
                        "" if rec.get("unit") in (None, "-") else rec["unit"],
                        QUALITY_NAME.get(int(q), "uncertain"),
                    )
                )
        return out

    # ------------------------------------------------------------ VictoriaMetrics read path
    def _export(self, match: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        params = {"match[]": match, "start": f"{_ms(start) / 1000:.3f}", "end": f"{(_ms(end) - 1) / 1000:.3f}"}
        try:
            resp = self.http.get("/api/v1/export", params=params)
        except httpx.HTTPError as exc:
            raise InfluxError(f"VictoriaMetrics export from {self.url} failed: {exc}") from exc
        if resp.status_code >= 300:
            raise InfluxError(f"VictoriaMetrics export refused: {resp.status_code} {resp.text[:300]}")
        return [json.loads(line) for line in resp.text.splitlines() if line.strip()]

    def _vm_rows(self, site_id: str, sensor_id: str | None, start: datetime, end: datetime) -> list[ReadingRow]:
        sel = f"site_id={_prom_str(site_id)}" + (f",sensor_id={_prom_str(sensor_id)}" if sensor_id else "")
        series = self._export(f'{{__name__=~"{MEASUREMENT}_(value|quality)",{sel}}}', start, end)
        points: dict[tuple[str, int], dict[str, Any]] = defaultdict(dict)
        for s in series:
            metric = s["metric"]
            field = metric["__name__"].removeprefix(f"{MEASUREMENT}_")
            for ts, v in zip(s["timestamps"], s["values"], strict=True):
                p = points[(metric.get("sensor_id", ""), int(ts))]
                p[field] = v
                p.setdefault("agent_id", metric.get("agent_id", ""))
                p.setdefault("unit", metric.get("unit", ""))
        rows = []
        for (sensor, ts), p in points.items():
            if "quality" not in p:
                continue
            unit = "" if p["unit"] == "-" else p["unit"]
            rows.append(
                ReadingRow(
                    p["agent_id"],
                    site_id,
                    sensor,
                    _from_ms(ts),
                    p.get("value"),
                    unit,
                    QUALITY_NAME.get(int(p["quality"]), "uncertain"),
                )
            )
        rows.sort(key=lambda r: (r.sensor_id, r.ts))
        return rows

    # ------------------------------------------------------------ interface
    def query_readings(
        self, *, site_id: str, sensor_id: str, start: datetime, end: datetime, limit: int = 10_000
    ) -> list[ReadingRow]:
        if self.read_mode == "influxql":
            q = (
                f"SELECT value, quality, unit, agent_id, sensor_id FROM {MEASUREMENT} "
                f"WHERE {self._where(site_id, sensor_id, start, end)} ORDER BY time ASC LIMIT {int(limit)}"
            )
            return self._ql_rows(self._influxql(q), site_id)
        return self._vm_rows(site_id, sensor_id, start, end)[:limit]

    def downsample(
        self, *, site_id: str, sensor_id: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Bucket]:
        step_ms = max(1, int(step.total_seconds() * 1000))
        origin = _ms(start)
        if self.read_mode == "influxql":
            offset = origin % step_ms
            q = (
                f"SELECT count(value), min(value), mean(value), max(value) FROM {MEASUREMENT} "
                f"WHERE {self._where(site_id, sensor_id, start, end)} "
                f"GROUP BY time({step_ms}ms, {offset}ms) fill(none)"
            )
            unit = self._unit(site_id, sensor_id)
            out = []
            for s in self._influxql(q):
                for t, c, lo, avg, hi in s.get("values", []):
                    if c:
                        out.append(Bucket(_from_ms(t), int(c), lo, avg, hi, unit))
            return out
        groups: dict[int, list[float]] = defaultdict(list)
        unit = None
        for r in self._vm_rows(site_id, sensor_id, start, end):
            if r.value is not None:
                groups[(_ms(r.ts) - origin) // step_ms].append(r.value)
                unit = r.unit
        return [
            Bucket(_from_ms(origin + b * step_ms), len(v), min(v), sum(v) / len(v), max(v), unit)
            for b, v in sorted(groups.items())
        ]

    def _unit(self, site_id: str, sensor_id: str) -> str | None:
        series = self._influxql(
            f"SELECT last(quality), unit FROM {MEASUREMENT} WHERE {self._where(site_id, sensor_id, None, None)}"
        )
        for s in series:
            for values in s.get("values", []):
                rec = dict(zip(s["columns"], values, strict=True))
                return None if rec.get("unit") in (None, "-") else str(rec["unit"])
        return None

    def latest(self, *, site_id: str) -> list[ReadingRow]:
        if self.read_mode == "influxql":
            q = (
                f"SELECT last(quality) AS quality, value, unit, agent_id FROM {MEASUREMENT} "
                f"WHERE {self._where(site_id, None, None, None)} GROUP BY sensor_id"
            )
            return sorted(self._ql_rows(self._influxql(q), site_id), key=lambda r: r.sensor_id)
        now = datetime.now(UTC) + timedelta(days=1)
        newest: dict[str, ReadingRow] = {}
        for r in self._vm_rows(site_id, None, now - self.latest_lookback, now):
            if r.sensor_id not in newest or r.ts >= newest[r.sensor_id].ts:
                newest[r.sensor_id] = r
        return [newest[k] for k in sorted(newest)]

    def count(self) -> int:
        if self.read_mode == "influxql":
            series = self._influxql(f"SELECT count(quality) FROM {MEASUREMENT}")
            return sum(int(v[1]) for s in series for v in s.get("values", []))
        now = datetime.now(UTC) + timedelta(days=1)
        seen: set[tuple[tuple[str | None, str | None], int]] = set()
        for s in self._export(f'{{__name__="{MEASUREMENT}_quality"}}', _EPOCH + timedelta(days=1), now):
            key = (s["metric"].get("site_id"), s["metric"].get("sensor_id"))
            seen.update((key, ts) for ts in s["timestamps"])
        return len(seen)

    def flush(self) -> None:
        """VictoriaMetrics: make just-written samples visible to queries (tests, benchmarks)."""
        if self.read_mode == "victoriametrics":
            self.http.get("/internal/force_flush")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = self._write_api = None
        self.http.close()
