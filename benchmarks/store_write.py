"""Batch write rate of each telemetry backend, with the ratio to a raw baseline measured in the same run.

* SQLite      — SqliteStore.write_readings (executemany + latest upsert, one transaction per batch)
                vs raw sqlite3 ``executemany`` INSERT of the same tuples into a table of the same shape and index.
* PostgreSQL  — PostgresStore.write_readings (COPY + latest upsert) vs raw psycopg ``executemany`` INSERT
                into a table of the same shape and index.
* VictoriaMetrics — InfluxStore (influxdb-client v2 write API) vs a raw HTTP POST of pre-built line protocol.
* InfluxDB 1.6.7  — InfluxStore (v1 ``/write``) vs a raw HTTP POST of pre-built line protocol.

Each store run includes building its payload from ``ReadingRow`` tuples; the raw baselines get their payload
pre-built (the bound the store could reach). Servers are started from temp dirs and stopped by PID.

    .venv/bin/python benchmarks/store_write.py [--readings 200000] [--batch 5000] [--append docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cloud.core.config import Settings  # noqa: E402
from cloud.core.db import make_engine  # noqa: E402
from cloud.telemetry.influx import InfluxStore, to_line  # noqa: E402
from cloud.telemetry.postgres import PostgresStore  # noqa: E402
from cloud.telemetry.sqlite import SqliteStore  # noqa: E402
from cloud.telemetry.store import ReadingRow, TelemetryStore  # noqa: E402
from sentinel_cli import servers  # noqa: E402
from sentinel_cli.servers import ServerUnavailable  # noqa: E402

T0 = datetime(2026, 11, 26, tzinfo=UTC)


def make_rows(n: int, sensors: int = 500) -> list[ReadingRow]:
    return [
        ReadingRow(
            f"agent-{i % 50}",
            f"site-{i % 50}",
            f"s{i % sensors}",
            T0 + timedelta(milliseconds=i * 7),
            4.0 + (i % 100) / 10,
            "°C",
            "good",
        )
        for i in range(n)
    ]


def batches(rows: list[ReadingRow], size: int) -> list[list[ReadingRow]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def rate(fn: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def bench_sqlite(rows: list[ReadingRow], size: int, tmp: Path) -> tuple[float, float]:
    settings = Settings(data_dir=tmp / "sq", database_url=f"sqlite:///{tmp / 'sq' / 'store.db'}")
    engine = make_engine(settings)
    store = SqliteStore(settings, engine)
    store.create_schema()
    chunks = batches(rows, size)

    def run_store() -> None:
        for chunk in chunks:
            with engine.begin() as conn:
                store.write_readings(chunk, connection=conn)

    store_rate = rate(run_store, len(rows))
    raw = sqlite3.connect(tmp / "sq" / "raw.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute(  # same shape as the store's table, index included
        "CREATE TABLE r (site_id TEXT, sensor_id TEXT, ts_ms INTEGER, value REAL, unit TEXT, quality TEXT, "
        "agent_id TEXT)"
    )
    raw.execute("CREATE INDEX ix_r ON r (site_id, sensor_id, ts_ms)")
    tuples = [
        [(r.site_id, r.sensor_id, int(r.ts.timestamp() * 1000), r.value, r.unit, r.quality, r.agent_id) for r in c]
        for c in chunks
    ]

    def run_raw() -> None:
        for chunk in tuples:
            raw.execute("BEGIN")
            raw.executemany("INSERT INTO r VALUES (?,?,?,?,?,?,?)", chunk)
            raw.execute("COMMIT")

    raw_rate = rate(run_raw, len(rows))
    raw.close()
    assert store.count() == len(rows)
    engine.dispose()
    return store_rate, raw_rate


def bench_postgres(rows: list[ReadingRow], size: int, tmp: Path) -> tuple[float, float]:
    import psycopg

    server = servers.start_postgres(tmp / "pg")
    try:
        dsn = server.extra["dsn"]
        settings = Settings(
            data_dir=tmp / "pgdata-cfg", database_url=dsn.replace("postgresql://", "postgresql+psycopg://")
        )
        engine = make_engine(settings)
        store = PostgresStore(settings, engine)
        store.create_schema()
        chunks = batches(rows, size)

        def run_store() -> None:
            for chunk in chunks:
                with engine.begin() as conn:
                    store.write_readings(chunk, connection=conn)

        store_rate = rate(run_store, len(rows))
        assert store.count() == len(rows)
        engine.dispose()
        with psycopg.connect(dsn) as conn:
            conn.execute(
                "CREATE TABLE r (site_id text, sensor_id text, ts timestamptz, value float8, unit text, quality text, "
                "agent_id text)"
            )
            conn.execute("CREATE INDEX ON r (site_id, sensor_id, ts)")
            conn.commit()
            tuples = [
                [(r.site_id, r.sensor_id, r.ts, r.value, r.unit, r.quality, r.agent_id) for r in c] for c in chunks
            ]

            def run_raw() -> None:
                for chunk in tuples:
                    with conn.cursor() as cur:
                        cur.executemany("INSERT INTO r VALUES (%s,%s,%s,%s,%s,%s,%s)", chunk)
                    conn.commit()

            raw_rate = rate(run_raw, len(rows))
        return store_rate, raw_rate
    finally:
        server.stop()


def bench_http(store: TelemetryStore, raw_url: str, rows: list[ReadingRow], size: int) -> tuple[float, float]:
    chunks = batches(rows, size)

    def run_store() -> None:
        for chunk in chunks:
            store.write_readings(chunk)

    store_rate = rate(run_store, len(rows))
    bodies = ["\n".join(to_line(r) for r in c).encode() for c in chunks]
    with httpx.Client(timeout=60) as client:

        def run_raw() -> None:
            for body in bodies:
                client.post(raw_url, content=body).raise_for_status()

        raw_rate = rate(run_raw, len(rows))
    return store_rate, raw_rate


def bench_vm(rows: list[ReadingRow], size: int, tmp: Path) -> tuple[float, float]:
    server = servers.start_victoriametrics(tmp / "vm")
    try:
        store = InfluxStore(
            None, url=f"http://{server.url}", bucket="bench", write_mode="v2", read_mode="victoriametrics"
        )
        result = bench_http(store, f"http://{server.url}/write?db=raw&precision=ms", rows, size)
        store.close()
        return result
    finally:
        server.stop()


def bench_influx1(rows: list[ReadingRow], size: int, tmp: Path) -> tuple[float, float]:
    server = servers.start_influxdb1(tmp / "influx")
    try:
        store = InfluxStore(None, url=f"http://{server.url}", bucket="bench", write_mode="v1", read_mode="influxql")
        deadline = time.monotonic() + 20
        while True:  # the HTTP port opens a moment before the service answers
            try:
                store.create_schema()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        httpx.post(f"http://{server.url}/query", params={"q": 'CREATE DATABASE "raw"'}).raise_for_status()
        result = bench_http(store, f"http://{server.url}/write?db=raw&precision=ms", rows, size)
        assert store.count() == len(rows)
        store.close()
        return result
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--append", type=Path, help="append the result section to this markdown file")
    args = ap.parse_args()
    rows = make_rows(args.readings)
    results: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        import os

        os.chmod(tmp, 0o755)  # postgres runs as its own user when we are root
        for name, baseline, fn in (
            ("SQLite (SqliteStore, executemany)", "raw sqlite3 executemany", bench_sqlite),
            ("PostgreSQL 15 (PostgresStore, COPY)", "raw psycopg executemany", bench_postgres),
            ("VictoriaMetrics 1.79 (influxdb-client v2 write)", "raw HTTP line-protocol POST", bench_vm),
            ("InfluxDB 1.6.7 (v1 /write)", "raw HTTP line-protocol POST", bench_influx1),
        ):
            try:
                store_rate, raw_rate = fn(rows, args.batch, tmp)
            except ServerUnavailable as exc:
                print(f"{name}: skipped ({exc})")
                continue
            results.append((name, baseline, store_rate, raw_rate))
            print(
                f"{name}: {store_rate:,.0f} readings/s; baseline {baseline}: {raw_rate:,.0f}/s; "
                f"ratio {store_rate / raw_rate:.2f}"
            )
    lines = [
        "## Telemetry store batch writes (benchmarks/store_write.py)",
        "",
        f"{args.readings:,} readings in batches of {args.batch:,}, 500 sensors on 50 sites; one transaction or HTTP "
        "request per batch; ratio = store ÷ raw baseline measured in the same run. Debian 12, 2 cores, 2026-11-26.",
        "",
        "| backend | readings/s | raw baseline | baseline readings/s | ratio |",
        "|---|---:|---|---:|---:|",
        *[f"| {n} | {s:,.0f} | {b} | {r:,.0f} | {s / r:.2f} |" for n, b, s, r in results],
        "",
    ]
    print("\n".join(lines))
    if args.append:
        with args.append.open("a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
