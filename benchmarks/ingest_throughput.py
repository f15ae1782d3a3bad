"""Ingest throughput and latency: fleet payloads → mosquitto → `sentinel cloud ingest` → SQLite → acks.

Phase 1 (throughput): the same backlog of telemetry batches (50 readings each, built by the fleet
simulator's sites) is queued in mosquitto for two persistent sessions; then
  * a bare paho subscriber drains it (baseline: receive only), and
  * the ingest worker (a separate `sentinel cloud ingest` process) drains it through the whole path:
    validate, dedup, store, commit, ack.
readings/s of each and the ratio ingest ÷ baseline; zero loss: stored readings = sent readings and every
seq acknowledged. Phase 2 (latency): the live worker gets batches paced at half its measured maximum;
publish → ack latency (an upper bound of publish → commit) p50/p99.
Also reads $SYS/broker/publish/messages/dropped.

Usage: .venv/bin/python benchmarks/ingest_throughput.py [--sites 40] [--batches 8000] [--append-docs]
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


def start_ingest(workdir: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    log = workdir / f"ingest-{time.monotonic_ns()}.log"
    env = dict(os.environ)
    env.update(
        SENTINEL_DATA_DIR=str(workdir / "data"),
        SENTINEL_MQTT_PORT=str(port),
        SENTINEL_MQTT_CLIENT_ID="bench-ingest",
        SENTINEL_MQTT_SHARE_GROUP="",  # one worker: a plain subscription keeps its backlog while it is away
        SENTINEL_INGEST_MAX_BATCH=os.environ.get("SENTINEL_INGEST_MAX_BATCH", "500"),
    )
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=40)
    ap.add_argument("--batches", type=int, default=8000)
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--latency-fraction", type=float, default=0.5, help="paced rate as a fraction of the max")
    ap.add_argument("--append-docs", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    broker = start_mosquitto(work / "mosquitto", extra_conf="sys_interval 1\n")
    port = broker.port
    try:
        messages = build_payloads(args.sites, args.batches)
        total_batches = len(messages)
        total_readings = total_batches * READINGS_PER_BATCH
        print(
            f"{total_batches} batches × {READINGS_PER_BATCH} readings = {total_readings} readings, "
            f"{sum(len(p) for _, p, _, _ in messages) / total_batches:.0f} bytes/batch"
        )

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
        proc, log = start_ingest(work, port)
        t0 = subscribed_at(log)
        deadline = time.monotonic() + 600
        while acks.total() < total_batches:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"only {acks.total()}/{total_batches} acked\n" + log.read_text()[-2000:])
            time.sleep(0.01)
        ingest_s = time.time() - t0
        db = sqlite3.connect(work / "data" / "sentinel.db")
        stored = db.execute("SELECT count(*) FROM reading").fetchone()[0]
        ingest_rate = total_readings / ingest_s
        ratio = ingest_rate / base_rate
        print(
            f"ingest (validate, dedup, store, commit, ack): {ingest_s:.2f} s → {ingest_rate:,.0f} readings/s; "
            f"ratio {ratio:.2f}; stored {stored}/{total_readings}"
        )

        # latency at half the measured maximum
        rate = ingest_rate / READINGS_PER_BATCH * args.latency_fraction
        n = int(rate * args.latency_seconds)
        extra = build_payloads(args.sites, n)
        offset = 10_000_000
        pub = paho_client("bench-paced", port, clean=True, v5=False)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        sent: dict[tuple[str, int], float] = {}
        start = time.perf_counter()
        for i, (topic, payload, agent, seq) in enumerate(extra):
            # shift seqs beyond phase 1 by re-encoding the seq field in place (same payload otherwise)
            new_seq = seq + offset
            payload = payload.replace(f'"seq":{seq},'.encode(), f'"seq":{new_seq},'.encode(), 1)
            target = start + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[(agent, new_seq)] = time.perf_counter()
            info = pub.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publish rc={info.rc}")
        deadline = time.monotonic() + 60
        while acks.total() < total_batches + len(extra) and time.monotonic() < deadline:
            time.sleep(0.05)
        pub.loop_stop()
        pub.disconnect()
        lat = [(acks.times[k] - t) * 1000 for k, t in sent.items() if k in acks.times]
        p50, p99 = statistics.median(lat), percentile(lat, 99)
        print(
            f"latency at {rate * READINGS_PER_BATCH:,.0f} readings/s ({rate:,.0f} batches/s, {len(lat)}/{len(sent)} "
            f"acked): publish→ack p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
        stored2 = db.execute("SELECT count(*) FROM reading").fetchone()[0]
        dropped = sys_dropped(port)
        print(
            f"stored after both phases {stored2}/{total_readings + len(extra) * READINGS_PER_BATCH}; "
            f"$SYS/broker/publish/messages/dropped = {dropped}"
        )
        acks.stop()
        stop(proc)
        lost = total_readings + len(extra) * READINGS_PER_BATCH - stored2

        if args.append_docs:
            total_sent = total_readings + len(extra) * READINGS_PER_BATCH
            paced = rate * READINGS_PER_BATCH
            lines = [
                "",
                "## Ingest throughput and latency (benchmarks/ingest_throughput.py)",
                f"mosquitto 2.0 → `sentinel cloud ingest` (separate process) → SQLite (WAL); {total_batches} batches",
                f"of {READINGS_PER_BATCH} readings from {args.sites} fleet-simulator sites, queued as a backlog in",
                "persistent sessions and drained by each consumer in turn. Whole path = validate (protocols),",
                "dedup (agent, seq), store, commit, ack. Debian 12, 2 cores, 2026-11-26.",
                "",
                "| consumer | seconds | readings/s | ratio |",
                "|---|---:|---:|---:|",
                f"| bare paho subscriber (receive only) | {base_s:.2f} | {base_rate:,.0f} | 1.00 |",
                f"| ingest, whole path | {ingest_s:.2f} | {ingest_rate:,.0f} | {ratio:.2f} |",
                "",
                f"Zero loss: stored {stored2} of {total_sent} readings (lost {lost});",
                f"`$SYS/broker/publish/messages/dropped` = {dropped}. Latency at {args.latency_fraction:.0%} of the",
                f"maximum ({paced:,.0f} readings/s, paced for {args.latency_seconds:.0f} s): publish → ack",
                f"(≥ publish → commit) p50 **{p50:.1f} ms**, p99 **{p99:.1f} ms**.",
                "",
            ]
            with open(ROOT / "docs" / "benchmarks.md", "a") as fh:
                fh.write("\n".join(lines))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
