"""Notification latency: alert upsert → delivery on each channel, p50/p99, bare vs under reading load.

Real servers on loopback: mosquitto (MQTT per-person topic), aiosmtpd (e-mail), a stdlib HTTP receiver (generic
and WeCom webhooks); the in-app channel is the SSE hub. Drug-storage alarms at distinct sites (GSP route: three
designated people + the on-duty inspector; storm-exempt) are raised one by one through ``apply_signal`` (the
ingest's upsert) from a worker thread; latency = delivery ``sent_at`` − the ``alert.raised`` journal time.
Phase 1 runs bare, phase 2 while a background thread writes 10,000 readings/s into the same SQLite database.

    .venv/bin/python benchmarks/notify_latency.py [--alerts 60] [--rate 4] [--readings-per-s 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlmodel import Session, col, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud import journal
from cloud.alerts import AlertSignal, apply_signal
from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine, utcnow, writer
from cloud.notify.config import NotifySettings, load_rules
from cloud.notify.models import Contact, Delivery, DutyShift, Notification, Rank, SiteContact
from cloud.notify.service import NotifyService
from cloud.telemetry.store import ReadingRow, open_store
from protocols import AlertPhase
from sentinel_cli import servers


class _Smtp:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def webhook_server() -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def seed(engine: Any, sites: int, hook: str) -> None:
    now = utcnow()
    with Session(writer(engine)) as session:
        session.add(Contact(key="ext:a", rank=Rank.EXTERNAL, email="a@pharm.example", mqtt=False, inapp=False))
        session.add(Contact(key="ext:b", rank=Rank.EXTERNAL, webhook_url=f"{hook}/b", mqtt=False, inapp=False))
        session.add(
            Contact(key="ext:c", rank=Rank.EXTERNAL, webhook_url=f"{hook}/c", webhook_format="wecom", mqtt=False)
        )
        session.add(Contact(key="insp-a", department="SC01", rank=Rank.INSPECTOR))
        session.add(
            DutyShift(
                department="SC01",
                contact_key="insp-a",
                starts_at=now - dt.timedelta(hours=1),
                ends_at=now + dt.timedelta(days=1),
            )
        )
        for i in range(sites):
            for key in ("ext:a", "ext:b", "ext:c"):
                session.add(SiteContact(site_id=f"ph-{i:04d}", contact_key=key, designation="gsp_designated"))
        session.commit()


def raise_alerts(engine: Any, first: int, n: int, rate: float) -> None:
    for i in range(first, first + n):
        now = utcnow()
        with Session(writer(engine)) as session:
            apply_signal(
                session,
                AlertSignal(
                    site_id=f"ph-{i:04d}",
                    device_id="fridge",
                    rule_id="temp_high",
                    phase=AlertPhase.RAISE,
                    severity="major",
                    category="drug_storage",
                    message="冷藏柜温度超限",
                    ts=now,
                    started_at=now,
                ),
            )
            session.commit()
        time.sleep(1 / rate)


def load_writer(store: Any, per_s: int, stop: threading.Event, written: list[int]) -> None:
    batch = max(1, per_s // 10)
    seq = 0
    next_t = time.monotonic()
    while not stop.is_set():
        ts = utcnow()
        rows = [
            ReadingRow("agent-load", f"load-{(seq + k) % 50:02d}", f"t{k % 20}", ts, 5.0, "°C", "good")
            for k in range(batch)
        ]
        store.write_readings(rows)
        seq += batch
        written[0] += batch
        next_t += 0.1
        time.sleep(max(0.0, next_t - time.monotonic()))


def latencies(engine: Any, since_id: int) -> dict[str, list[float]]:
    with Session(engine) as session:
        raised = {
            int(e.target_id): e.ts
            for e in journal.read_since(session, since_id, limit=100_000, actions=["alert.raised"])
        }
        from cloud.notify.models import Incident

        rows = session.exec(
            select(Delivery.channel, Delivery.sent_at, Incident.alert_id)
            .join(Notification, col(Notification.id) == Delivery.notification_id)
            .join(Incident, col(Incident.id) == Notification.incident_id)
            .where(col(Incident.alert_id).in_(list(raised)), col(Delivery.sent_at).is_not(None))
        ).all()
    out: dict[str, list[float]] = {}
    for channel, sent_at, alert_id in rows:
        out.setdefault(channel, []).append((sent_at - raised[alert_id]).total_seconds() * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def phase(engine: Any, first: int, n: int, rate: float, expected: int) -> dict[str, list[float]]:
    with Session(engine) as session:
        last = session.exec(select(journal.JournalEvent.id).order_by(col(journal.JournalEvent.id).desc())).first() or 0
    await asyncio.to_thread(raise_alerts, engine, first, n, rate)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lat = latencies(engine, last)
        if sum(len(v) for v in lat.values()) >= expected:
            return lat
        await asyncio.sleep(0.2)
    return latencies(engine, last)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=60)
    ap.add_argument("--rate", type=float, default=4.0, help="alerts per second")
    ap.add_argument("--readings-per-s", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = servers.start_mosquitto(Path(tmp) / "mosquitto")
        smtp_port = servers.free_port()
        smtp = Controller(_Smtp(), hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        hook_server, _ = webhook_server()
        settings = Settings(
            data_dir=Path(tmp) / "data", jwt_secret="x" * 40, admin_password="Admin-Passw0rd!", mqtt_port=broker.port
        )
        engine = make_engine(settings)
        init_db(engine)
        store = open_store(settings, engine)
        seed(engine, 2 * args.alerts, f"http://127.0.0.1:{hook_server.server_address[1]}")
        rules = load_rules()
        rules = rules.model_copy(update={"routing": rules.routing.model_copy(update={"default_department": "SC01"})})
        nsettings = NotifySettings(smtp_host="127.0.0.1", smtp_port=smtp_port, mqtt_client_id="bench-notify")
        service = NotifyService(settings, engine, nsettings=nsettings, rules=rules)
        task = asyncio.create_task(service.run())
        await service.ready.wait()
        per_alert = 6  # a: email; b: webhook; c: webhook (wecom) + inapp; insp-a: inapp + mqtt
        try:
            bare = await phase(engine, 0, args.alerts, args.rate, per_alert * args.alerts)
            stop, written = threading.Event(), [0]
            loader = threading.Thread(target=load_writer, args=(store, args.readings_per_s, stop, written))
            t0 = time.monotonic()
            loader.start()
            try:
                loaded = await phase(engine, args.alerts, args.alerts, args.rate, per_alert * args.alerts)
            finally:
                stop.set()
                loader.join()
            achieved = written[0] / (time.monotonic() - t0)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            store.close()
            engine.dispose()
            smtp.stop()
            hook_server.shutdown()
            broker.stop()
    print(f"alerts per phase: {args.alerts} at {args.rate}/s; background load achieved {achieved:,.0f} readings/s")
    print(
        "| channel | deliveries | bare p50 ms | bare p99 ms | loaded p50 ms | loaded p99 ms | p99 ratio loaded/bare |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for channel in ("inapp", "mqtt", "webhook", "email"):
        b, lo = bare.get(channel, []), loaded.get(channel, [])
        if not b or not lo:
            print(f"| {channel} | 0 | – | – | – | – | – |")
            continue
        print(
            f"| {channel} | {len(lo)} | {pct(b, 0.5):.1f} | {pct(b, 0.99):.1f} | {pct(lo, 0.5):.1f} | "
            f"{pct(lo, 0.99):.1f} | {pct(lo, 0.99) / pct(b, 0.99):.2f} |"
        )
    allb = [v for vs in bare.values() for v in vs]
    alll = [v for vs in loaded.values() for v in vs]
    print(
        f"all channels: bare p50 {statistics.median(allb):.1f} ms p99 {pct(allb, 0.99):.1f} ms; "
        f"loaded p50 {statistics.median(alll):.1f} ms p99 {pct(alll, 0.99):.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
