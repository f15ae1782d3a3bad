"""Ingest throughput and latency: fleet payloads → mosquitto → `sentinel cloud ingest` → SQLite → acks.

Phase 0 (second baseline): the raw store ceiling — the same rows inserted straight into a fresh database
with the same schema (SQLite executemany / PostgreSQL COPY, 500 batches per transaction), no MQTT, no validation.
Phase 1 (backlog drain): the same backlog of telemetry batches (50 readings each, built by the fleet
simulator's sites) is queued in mosquitto for two persistent sessions; then
  * a bare paho subscriber drains it (baseline: receive only), and
  * the ingest worker (a separate `sentinel cloud ingest` process) drains it through the whole path:
    validate, dedup, store, commit, ack.
readings/s of each and the ratio ingest ÷ baseline; zero loss: stored readings = sent readings and every
seq acknowledged. Phase 2 (max sustainable live rate): a paced publisher (the fleet) sends for a few
seconds at decreasing fractions of the drain rate; a rate is sustainable when, at the end of the step, less
than half a second of messages is still unacknowledged and all are acked within 2 s (queue not growing).
Phase 3 (latency): paced at half the sustainable maximum; publish → ack latency (an upper bound of
publish → commit) p50/p99.
Also reads $SYS/broker/publish/messages/dropped.

Usage: .venv/bin/python benchmarks/ingest_throughput.py [--backend sqlite|postgres] [--sites 40] [--batches 8000]
       [--append-docs]
       .venv/bin/python benchmarks/ingest_throughput.py --workers 2 [--batches 4000]   (1 vs 2 workers, PostgreSQL)
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protocols import Ack, decode  # noqa: E402
from sentinel_cli.servers import start_mosquitto  # noqa: E402
from simulators.fleet import SimulatedSite  # noqa: E402

READINGS_PER_BATCH = 50


def build_payloads(sites: int, batches: int) -> list[tuple[str, bytes, str, int]]:
    """(topic, payload, agent, seq) round-robin over sites, like a fleet publishing concurrently."""
    per_site = batches // sites
    fleet = [
        SimulatedSite(
            f"bench{i:03d}", host="", port=0, sensors=READINGS_PER_BATCH, batch=READINGS_PER_BATCH, interval=0
        )
        for i in range(sites)
    ]
    out = []
    for _ in range(per_site):
        for site in fleet:
            (seq,) = site.make_batches()
            payload, _ = site.outbox.pop(seq)
            out.append((site.topic(__import__("protocols").Channel.TELEMETRY), payload, site.agent_id, seq))
    return out


def paho_client(client_id: str, port: int, *, v5: bool = True, clean: bool = False) -> mqtt.Client:
    if v5:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    else:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    c.max_inflight_messages_set(1000)
    return c


def connect_v5(c: mqtt.Client, port: int, *, clean_start: bool = False) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    c.connect("127.0.0.1", port, clean_start=clean_start, properties=props)


def publish_all(port: int, messages: list[tuple[str, bytes, str, int]]) -> float:
    pub = paho_client("bench-publisher", port, clean=True, v5=False)
    pub.max_inflight_messages_set(500)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    started = time.perf_counter()
    infos = []
    for topic, payload, _, _ in messages:
        info = pub.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish failed rc={info.rc}")
        infos.append(info)
        if len(infos) >= 20_000:  # stay far below paho's 65,535 message ids
            for i in infos:
                i.wait_for_publish(60)
            infos.clear()
    for i in infos:
        i.wait_for_publish(60)
    elapsed = time.perf_counter() - started
    pub.loop_stop()
    pub.disconnect()
    return elapsed


def baseline_session(port: int, *, subscribe: bool) -> mqtt.Client:
    c = paho_client("bench-baseline", port)
    connect_v5(c, port)
    if subscribe:
        c.subscribe("ms/v1/+/+/telemetry", qos=1)
    return c


def run_baseline(port: int, expected: int) -> float:
    done = threading.Event()
    count = 0
    t0 = 0.0

    def on_connect(*_: object) -> None:
        nonlocal t0
        t0 = time.perf_counter()

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal count
        count += 1
        if count >= expected:
            done.set()

    c = paho_client("bench-baseline", port)
    c.on_connect = on_connect
    c.on_message = on_message
    connect_v5(c, port)
    c.loop_start()
    if not done.wait(600):
        raise RuntimeError(f"baseline received {count}/{expected}")
    elapsed = time.perf_counter() - t0
    c.loop_stop()
    c.disconnect()
    return elapsed


class AckListener:
    def __init__(self, port: int) -> None:
        self.acked: dict[str, set[int]] = {}
        self.times: dict[tuple[str, int], float] = {}
        self.lock = threading.Lock()
        self.client = paho_client("bench-acks", port, clean=True, v5=False)
        self.client.on_message = self.on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("ms/v1/+/+/ack", qos=1)
        self.client.loop_start()

    def on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        ack = decode(msg.payload, Ack)
        with self.lock:
            seen = self.acked.setdefault(ack.agent_id, set())
            for seq in ack.seqs():
                if seq not in seen:
                    seen.add(seq)
                    self.times[(ack.agent_id, seq)] = now

    def total(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.acked.values())

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


DB_URL: str | None = None  # PostgreSQL URL when --backend postgres


#: how many simulated sites the run publishes from (set by main); registered before an ingest starts
FLEET_SITES = 40


def register_fleet(workdir: Path, db_url: str | None, sites: int) -> None:
    """Register the simulated sites and their sensors, as an installation does: the ingest quarantines data of
    sites the registry does not know (#13)."""
    from sqlmodel import Session

    from cloud.core.config import Settings
    from cloud.core.db import init_db, make_engine
    from cloud.registry.service import register_installation

    settings = Settings(data_dir=workdir / "data", jwt_secret="x" * 40, database_url=db_url)  # type: ignore[arg-type]
    engine = make_engine(settings)
    init_db(engine)
    sensors = [f"t{i:03d}" for i in range(READINGS_PER_BATCH)]
    with Session(engine) as session:
        for i in range(sites):
            register_installation(session, site_id=f"bench{i:03d}", devices={"probe": sensors}, category="drug")
        session.commit()
    engine.dispose()


def start_ingest(
    workdir: Path,
    port: int,
    *,
    client_id: str = "bench-ingest",
    share_group: str = "",
    db_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], Path]:
    log = workdir / f"ingest-{time.monotonic_ns()}.log"
    env = dict(os.environ)
    db_url = db_url or DB_URL
    if db_url:
        env.update(SENTINEL_DATABASE_URL=db_url, SENTINEL_TELEMETRY_BACKEND="postgres")
    env.update(
        SENTINEL_DATA_DIR=str(workdir / "data"),
        SENTINEL_MQTT_PORT=str(port),
        SENTINEL_MQTT_CLIENT_ID=client_id,
        # one worker: a plain subscription keeps its backlog while it is away; several: an MQTT 5 shared one
        SENTINEL_MQTT_SHARE_GROUP=share_group,
        SENTINEL_INGEST_MAX_BATCH=os.environ.get("SENTINEL_INGEST_MAX_BATCH", "500"),
    )
    env.update(extra_env or {})
    register_fleet(workdir, db_url, FLEET_SITES)
    fh = open(log, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentinel_cli.main", "cloud", "ingest"], env=env, stdout=fh, stderr=subprocess.STDOUT
    )
    fh.close()
    deadline = time.monotonic() + 60
    while "subscribed" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("ingest did not start:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.02)
    return proc, log


def subscribed_at(log: Path) -> float:
    """Wall-clock time of the 'subscribed' log line (asctime has ms)."""
    for line in log.read_text(errors="replace").splitlines():
        if "subscribed" in line:
            m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})", line)
            if m:
                return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + int(m.group(2)) / 1000
    raise RuntimeError("no subscribed line")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def sys_dropped(port: int) -> str:
    got: dict[str, str] = {}
    c = paho_client("bench-sys", port, clean=True, v5=False)
    c.on_message = lambda _c, _u, m: got.setdefault(m.topic, m.payload.decode())
    c.connect("127.0.0.1", port)
    c.subscribe("$SYS/broker/publish/messages/dropped")
    c.loop_start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    c.loop_stop()
    c.disconnect()
    return next(iter(got.values()), "n/a")


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def raw_store_ceiling(work: Path, messages: list[tuple[str, bytes, str, int]]) -> float:
    """Readings/s of the bare store insert (same schema, same rows, 500 batches per transaction)."""
    import msgspec

    from cloud.core.config import Settings
    from cloud.core.db import make_engine
    from cloud.telemetry.store import open_store

    rows = []
    for _, payload, _, _ in messages:
        b = msgspec.json.decode(payload)
        ms = int(datetime.fromisoformat(b["readings"][0]["ts"]).timestamp() * 1000)
        for r in b["readings"]:
            rows.append((b["site_id"], r["sensor_id"], ms, r["value"], r["unit"], r["quality"], b["agent_id"]))
    settings = Settings(data_dir=work / "raw", jwt_secret="x" * 40, database_url=DB_URL)  # type: ignore[arg-type]
    if DB_URL:
        settings.telemetry_backend = "postgres"
    engine = make_engine(settings)
    store = open_store(settings, engine)  # creates reading / reading_latest
    if DB_URL:
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE reading, reading_latest")
    chunk = 500 * READINGS_PER_BATCH
    started = time.perf_counter()
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            if DB_URL:
                with (
                    raw.cursor() as cur,
                    cur.copy(
                        "COPY reading (site_id, sensor_id, ts, value, unit, quality, agent_id) FROM STDIN"
                    ) as copy,
                ):
                    for r in part:
                        copy.write_row((r[0], r[1], datetime.fromtimestamp(r[2] / 1000).astimezone(), *r[3:]))
            else:
                raw.cursor().executemany("INSERT INTO reading VALUES (?,?,?,?,?,?,?)", part)
    elapsed = time.perf_counter() - started
    if DB_URL:
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE reading, reading_latest")
    store.close()
    engine.dispose()
    return len(rows) / elapsed


class Paced:
    """Publishes fresh batches (new seqs) at a fixed rate; latency = publish → first ack of the seq."""

    def __init__(self, port: int, sites: int, acks: AckListener) -> None:
        self.port, self.sites, self.acks = port, sites, acks
        self.offset = 10_000_000
        self.pub = paho_client("bench-paced", port, clean=True, v5=False)
        self.pub.max_inflight_messages_set(5000)
        self.pub.connect("127.0.0.1", port)
        self.pub.loop_start()
        self.sent_total = 0

    def run(self, batches_per_s: float, seconds: float) -> tuple[dict[tuple[str, int], float], int]:
        """Publish for ``seconds``; returns (sent times, unacknowledged at the end of the step)."""
        n = max(1, int(batches_per_s * seconds))
        extra = build_payloads(self.sites, n)
        sent: dict[tuple[str, int], float] = {}
        start = time.perf_counter()
        for i, (topic, payload, agent, seq) in enumerate(extra):
            new_seq = seq + self.offset
            payload = payload.replace(f'"seq":{seq},'.encode(), f'"seq":{new_seq},'.encode(), 1)
            delay = start + i / batches_per_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[(agent, new_seq)] = time.perf_counter()
            info = self.pub.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publish rc={info.rc}")
        self.offset += 10_000_000
        with self.acks.lock:
            backlog = sum(1 for k in sent if k not in self.acks.times)
        self.sent_total += len(extra)
        return sent, backlog

    def settle(self, expected: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.acks.total() < expected:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        self.pub.loop_stop()
        self.pub.disconnect()


def latencies(sent: dict[tuple[str, int], float], acks: AckListener) -> list[float]:
    with acks.lock:
        return [(acks.times[k] - t) * 1000 for k, t in sent.items() if k in acks.times]


def _fresh_database(dsn: str, name: str) -> str:
    from sqlalchemy import create_engine

    admin = create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1).rsplit("/", 1)[0] + f"/{name}"


def drain_with_workers(work: Path, port: int, dsn: str, messages: list[tuple[str, bytes, str, int]], n: int) -> float:
    """readings/s of ``n`` ingest workers on one shared subscription draining the same backlog into a fresh DB."""
    global DB_URL
    url = _fresh_database(dsn, f"bench_w{n}_{os.getpid()}")
    DB_URL = url
    acks = AckListener(port)
    procs = [
        start_ingest(work, port, client_id=f"bench-w{n}-{i}", share_group=f"bench{n}", db_url=url) for i in range(n)
    ]
    try:
        started = time.perf_counter()
        publish_all(port, messages)  # the publisher is ~10× faster than the ingest: the workers bound the rate
        deadline = time.monotonic() + 600
        while acks.total() < len(messages):
            if time.monotonic() > deadline or any(p.poll() is not None for p, _ in procs):
                raise RuntimeError(f"{n} workers: only {acks.total()}/{len(messages)} acked")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        stored = count_stored(work)
        expected = len(messages) * READINGS_PER_BATCH
        if stored != expected:
            raise RuntimeError(f"{n} workers stored {stored}/{expected}")
        return expected / elapsed
    finally:
        acks.stop()
        for proc, _ in procs:
            stop(proc)


def workers_mode(args: argparse.Namespace) -> None:
    """--workers N: 1 vs N ingest workers on PostgreSQL, same backlog, in one run; prints the ratio."""
    from sentinel_cli.servers import start_postgres

    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    broker = start_mosquitto(work / "mosquitto", extra_conf="sys_interval 1\n")
    pg = start_postgres(work / "pg")
    try:
        messages = build_payloads(args.sites, args.batches)
        readings = len(messages) * READINGS_PER_BATCH
        print(f"postgres, {len(messages)} batches × {READINGS_PER_BATCH} = {readings} readings; cores {os.cpu_count()}")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        rates = {}
        for n in sorted({1, args.workers}):
            rates[n] = drain_with_workers(work, broker.port, pg.extra["dsn"], messages, n)
            print(f"{n} worker(s): {rates[n]:,.0f} readings/s (zero loss: every reading stored, every seq acked)")
        ratio = rates[args.workers] / rates[1]
        print(
            f"ratio {args.workers} workers ÷ 1 worker: {ratio:.2f}; load average after: {os.getloadavg()[0]:.2f}\n"
            f"bound: {os.cpu_count()} cores shared by mosquitto, PostgreSQL, the publisher and the workers "
            "(each worker is one Python process, CPU-bound on decode/validate; PostgreSQL's commit and index "
            "maintenance is the shared part that does not scale with workers)"
        )
    finally:
        broker.stop()
        pg.stop()


@dataclass
class Live:
    drain_rate: float  # readings/s, backlog drain through the whole path
    sustainable_bps: float  # batches/s
    steps: list[str]
    p50_ms: float
    p99_ms: float
    paced_sent: int  # batches published by the paced phases


def live_figures(
    work: Path,
    port: int,
    messages: list[tuple[str, bytes, str, int]],
    acks: AckListener,
    args: argparse.Namespace,
    extra_env: dict[str, str] | None = None,
) -> Live:
    """Start an ingest worker on the queued backlog (its persistent session must exist): drain it, find the max
    sustainable live rate, then the publish → ack latency at half of it. Stops the worker."""
    total_batches = len(messages)
    total_readings = total_batches * READINGS_PER_BATCH
    proc, log = start_ingest(work, port, extra_env=extra_env)
    try:
        t0 = subscribed_at(log)
        deadline = time.monotonic() + 600
        while acks.total() < total_batches:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"only {acks.total()}/{total_batches} acked\n" + log.read_text()[-2000:])
            time.sleep(0.01)
        ingest_s = time.time() - t0
        ingest_rate = total_readings / ingest_s
        print(f"backlog drain (validate, dedup, store, commit, ack): {ingest_s:.2f} s → {ingest_rate:,.0f} readings/s")

        # max sustainable live rate: decreasing fractions of the drain rate until the queue does not grow
        paced = Paced(port, args.sites, acks)
        drain_bps = ingest_rate / READINGS_PER_BATCH
        sustainable = 0.0
        steps: list[str] = []
        for fraction in (1.0, 0.8, 0.65, 0.5, 0.4, 0.3, 0.22, 0.15, 0.1):
            rate = drain_bps * fraction
            sent, backlog = paced.run(rate, args.step_seconds)
            ok = backlog <= rate * 0.5 and paced.settle(total_batches + paced.sent_total, 2.0)
            lat = latencies(sent, acks)
            steps.append(
                f"{rate * READINGS_PER_BATCH:,.0f} readings/s: unacked at end {backlog}, "
                f"p99 {percentile(lat, 99) if lat else float('nan'):.0f} ms → {'sustained' if ok else 'queue grows'}"
            )
            print("  step " + steps[-1])
            paced.settle(total_batches + paced.sent_total, 120)
            if ok:
                sustainable = rate
                break
        if not sustainable:
            raise RuntimeError("no sustainable rate found")

        rate = sustainable * 0.5
        sent, _ = paced.run(rate, args.latency_seconds)
        paced.settle(total_batches + paced.sent_total, 60)
        lat = latencies(sent, acks)
        p50, p99 = statistics.median(lat), percentile(lat, 99)
        print(
            f"latency at half the sustainable max ({rate * READINGS_PER_BATCH:,.0f} readings/s, {rate:,.0f} batches/s, "
            f"{len(lat)}/{len(sent)} acked): publish→ack p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
        paced.stop()
        return Live(ingest_rate, sustainable, steps, p50, p99, paced.sent_total)
    finally:
        stop(proc)


def pipeline_mode(args: argparse.Namespace) -> None:
    """--pipeline: one worker unpipelined vs pipelined (``SENTINEL_INGEST_PIPELINE``), same backlog, same run."""
    results: dict[str, Live] = {}
    load_before = os.getloadavg()
    messages = build_payloads(args.sites, args.batches)
    print(
        f"{args.backend}: {len(messages)} batches × {READINGS_PER_BATCH} readings, one ingest worker; "
        f"cores {os.cpu_count()}, load average before {load_before[0]:.2f}"
    )
    for name, flag in (("unpipelined", "false"), ("pipelined", "true")):
        work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        broker = start_mosquitto(work / "mosquitto")
        try:
            env = {"SENTINEL_INGEST_PIPELINE": flag}
            proc, _ = start_ingest(work, broker.port, extra_env=env)  # the persistent session, then the backlog
            stop(proc)
            publish_all(broker.port, messages)
            acks = AckListener(broker.port)
            print(f"-- {name}")
            results[name] = live_figures(work, broker.port, messages, acks, args, env)
            acks.stop()
            expected = (len(messages) + results[name].paced_sent) * READINGS_PER_BATCH
            stored = count_stored(work)
            if stored != expected:
                raise RuntimeError(f"{name}: stored {stored}/{expected}")
        finally:
            broker.stop()
    off, on = results["unpipelined"], results["pipelined"]
    load_after = os.getloadavg()
    table = [
        "| one worker | backlog drain (readings/s) | max sustainable live (readings/s) | p50 at half (ms) | "
        "p99 at half (ms) |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {n} | {r.drain_rate:,.0f} | {r.sustainable_bps * READINGS_PER_BATCH:,.0f} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} |"
            for n, r in results.items()
        ),
        f"| ratio pipelined ÷ unpipelined | {on.drain_rate / off.drain_rate:.2f} | "
        f"{on.sustainable_bps / off.sustainable_bps:.2f} | {on.p50_ms / off.p50_ms:.2f} | {on.p99_ms / off.p99_ms:.2f} |",
    ]
    print("\n".join(table))
    print(f"load average after: {load_after[0]:.2f}; every reading stored in both runs")
    if args.append_docs:
        with open(ROOT / "docs" / "benchmarks.md", "a") as fh:
            fh.write(
                f"\n### Pipelined ingest, one worker, {args.backend} ({datetime.now():%Y-%m-%d %H:%M}, "
                f"{os.cpu_count()} cores, load average {load_before[0]:.1f} before / {load_after[0]:.1f} after)\n\n"
                + "\n".join(table)
                + "\n\nSteps (unpipelined): "
                + "; ".join(off.steps)
                + ". Steps (pipelined): "
                + "; ".join(on.steps)
                + ".\n"
            )


def main() -> None:
    global DB_URL, FLEET_SITES
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=0, help="compare 1 vs N ingest workers on PostgreSQL and stop")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--sites", type=int, default=40)
    ap.add_argument("--batches", type=int, default=8000)
    ap.add_argument("--step-seconds", type=float, default=4.0, help="duration of each sustainable-rate step")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--append-docs", action="store_true")
    ap.add_argument("--pipeline", action="store_true", help="one worker unpipelined vs pipelined, then stop")
    args = ap.parse_args()
    FLEET_SITES = args.sites
    if args.workers:
        workers_mode(args)
        return
    if args.pipeline:
        pipeline_mode(args)
        return

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    broker = start_mosquitto(work / "mosquitto", extra_conf="sys_interval 1\n")
    pg = None
    port = broker.port
    try:
        if args.backend == "postgres":
            from sentinel_cli.servers import start_postgres

            pg = start_postgres(work / "pg")
            DB_URL = pg.extra["dsn"].replace("postgresql://", "postgresql+psycopg://", 1)
        messages = build_payloads(args.sites, args.batches)
        total_batches = len(messages)
        total_readings = total_batches * READINGS_PER_BATCH
        print(
            f"{args.backend}: {total_batches} batches × {READINGS_PER_BATCH} readings = {total_readings} readings, "
            f"{sum(len(p) for _, p, _, _ in messages) / total_batches:.0f} bytes/batch; "
            f"load average before: {os.getloadavg()[0]:.2f}"
        )
        raw_rate = raw_store_ceiling(work, messages)
        print(f"raw store ceiling (insert only, no MQTT, no validation): {raw_rate:,.0f} readings/s")

        # persistent sessions for both consumers, then the backlog
        c = baseline_session(port, subscribe=True)
        c.loop_start()
        time.sleep(0.5)
        c.loop_stop()
        c.disconnect()
        proc, _ = start_ingest(work, port)
        stop(proc)
        pub_s = publish_all(port, messages)
        print(f"published backlog in {pub_s:.2f} s ({total_batches / pub_s:,.0f} msg/s)")

        base_s = run_baseline(port, total_batches)
        base_rate = total_readings / base_s
        print(f"baseline paho subscriber: {base_s:.2f} s → {base_rate:,.0f} readings/s")

        acks = AckListener(port)
        live = live_figures(work, port, messages, acks, args)
        ingest_rate, sustainable, steps, p50, p99 = (
            live.drain_rate,
            live.sustainable_bps,
            live.steps,
            live.p50_ms,
            live.p99_ms,
        )
        ratio = ingest_rate / base_rate
        print(f"ratio to bare paho {ratio:.2f}; to the raw store ceiling {ingest_rate / raw_rate:.2f}")
        total_sent = total_readings + live.paced_sent * READINGS_PER_BATCH
        stored = count_stored(work)
        dropped = sys_dropped(port)
        lost = total_sent - stored
        print(f"stored {stored}/{total_sent} (lost {lost}); $SYS/broker/publish/messages/dropped = {dropped}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        acks.stop()

        if args.append_docs:
            sus = sustainable * READINGS_PER_BATCH
            lines = [
                "",
                f"### {args.backend} ({datetime.now():%Y-%m-%d %H:%M}, load average {os.getloadavg()[0]:.1f})",
                "",
                "| measure | readings/s | ratio |",
                "|---|---:|---:|",
                f"| bare paho subscriber, backlog (receive only) | {base_rate:,.0f} | 1.00 |",
                f"| raw store insert ceiling (no MQTT, no validation) | {raw_rate:,.0f} | {raw_rate / base_rate:.2f} |",
                f"| ingest whole path, backlog drain | {ingest_rate:,.0f} | **{ratio:.2f}** |",
                f"| ingest whole path, max sustainable live rate | {sus:,.0f} | {sus / base_rate:.2f} |",
                "",
                f"Latency at half the sustainable max ({sus / 2:,.0f} readings/s, {args.latency_seconds:.0f} s): "
                f"publish → ack p50 **{p50:.1f} ms**, p99 **{p99:.1f} ms**. Stored {stored} of {total_sent} "
                f"readings (lost {lost}); broker dropped {dropped}. Steps: " + "; ".join(steps) + ".",
                "",
            ]
            with open(ROOT / "docs" / "benchmarks.md", "a") as fh:
                fh.write("\n".join(lines))
    finally:
        broker.stop()
        if pg is not None:
            pg.stop()


def count_stored(work: Path) -> int:
    if DB_URL:
        from sqlalchemy import create_engine

        engine = create_engine(DB_URL)
        with engine.connect() as conn:
            n = int(conn.exec_driver_sql("SELECT count(*) FROM reading").scalar_one())
        engine.dispose()
        return n
    db = sqlite3.connect(work / "data" / "sentinel.db")
    try:
        return int(db.execute("SELECT count(*) FROM reading").fetchone()[0])
    finally:
        db.close()


if __name__ == "__main__":
    main()
