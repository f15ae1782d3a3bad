"""Outbox replay after an outage: N buffered readings (batches of 50) published through mosquitto to a cloud
stand-in that acks each batch, until the outbox is empty. Baseline in the same run: raw paho QoS 1
publish → mosquitto → paho subscriber of the same number of same-sized messages (no outbox, no acks).

Usage: .venv/bin/python benchmarks/edge_outbox_replay.py [readings]   (default 1,000,000)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.config.models import MqttConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.messages import Announce, Heartbeat, Reading, TelemetryBatch, encode
from sentinel_cli import servers
from tests.edge.cloud_standin import CloudStandIn

BATCH = 50


def fill(box: Outbox, readings: int) -> int:
    t0 = datetime(2026, 11, 26, tzinfo=UTC)
    template = [
        Reading(sensor_id=f"dev{i % 25}.temperature", ts=t0 + timedelta(seconds=i), value=4.5, unit="°C")
        for i in range(BATCH)
    ]
    size = 0
    for n in range(readings // BATCH):

        def build(seq: int) -> bytes:
            return encode(TelemetryBatch(site_id="bench", agent_id="edge-1", seq=seq, sent_at=t0, readings=template))

        box.append("telemetry", build, readings=BATCH)
        if n == 0:
            size = len(build(1))
    return size


def raw_paho(port: int, messages: int, size: int) -> float:
    done = threading.Event()
    got = [0]

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        got[0] += 1
        if got[0] >= messages:
            done.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="raw-sub")
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("raw/t", qos=1)
    sub.loop_start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="raw-pub")
    pub.max_inflight_messages_set(500)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    time.sleep(0.5)
    payload = b"x" * size
    start = time.perf_counter()
    for _ in range(messages):
        while True:
            info = pub.publish("raw/t", payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                break
            time.sleep(0.001)
    done.wait(600)
    elapsed = time.perf_counter() - start
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return messages / elapsed


async def replay(port: int, box: Outbox) -> float:
    cloud = CloudStandIn(port).start()
    cfg = MqttConfig(port=port, inflight_window=500, reconnect_min_s=0.2)
    now = datetime.now(UTC)

    async def on_command(_c: object) -> None:
        raise RuntimeError

    uplink = Uplink(
        cfg,
        "bench",
        "edge-1",
        box,
        on_command=on_command,  # type: ignore[arg-type]
        heartbeat=lambda: Heartbeat(site_id="bench", agent_id="edge-1", ts=now, uptime_s=0, outbox_depth=box.depth),
        announce=lambda: Announce(site_id="bench", agent_id="edge-1", ts=now, devices=[]),
        heartbeat_interval_s=3600,
        replay_rate_per_s=100_000,
    )
    start = time.perf_counter()
    task = asyncio.create_task(uplink.run())
    while box.depth:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    cloud.stop()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("readings", nargs="?", type=int, default=1_000_000, help="readings to replay (default 1,000,000)")
    readings = ap.parse_args().readings
    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    broker = servers.start_mosquitto(work / "mosquitto")
    try:
        box = Outbox(work / "edge.db", fsync="normal")
        t = time.perf_counter()
        size = fill(box, readings)
        print(
            f"filled {readings:,} readings in {box.depth:,} batches of {size} bytes in {time.perf_counter() - t:.1f}s"
        )
        elapsed = asyncio.run(replay(broker.port, box))
        batches = readings // BATCH
        rate = readings / elapsed
        print(f"replay: {readings:,} readings ({batches:,} batches) acked in {elapsed:.1f}s = {rate:,.0f} readings/s")
        baseline = raw_paho(broker.port, batches, size)
        print(f"baseline raw paho QoS 1 pub→sub, same {batches:,} messages: {baseline:,.0f} msg/s")
        print(
            f"ratio replay/raw (messages): {batches / elapsed / baseline:.2f}  aim ≥ 20,000 readings/s: "
            f"{'met' if rate >= 20_000 else 'NOT met'}"
        )
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
