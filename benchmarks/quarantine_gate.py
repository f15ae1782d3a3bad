"""Cost of the quarantine gate (#13) in the ingest transaction, as a ratio measured in one run.

Two ingest writers on the same SQLite database commit the same kind of telemetry (registered sites, 50 readings a
batch) in alternating rounds: one with the gate (registry view cached, one ``registry_version`` query per
transaction), one with the gate switched off (what the ingest did before any quarantine). Prints readings/s of
both and the ratio. No MQTT: this isolates the hook from broker and network noise.

Usage: .venv/bin/python benchmarks/quarantine_gate.py [--sites 20] [--rounds 20] [--batches 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlmodel import Session  # noqa: E402

from cloud.core.config import Settings  # noqa: E402
from cloud.core.db import init_db, make_engine  # noqa: E402
from cloud.ingest.writer import IngestWriter, RawMessage  # noqa: E402
from cloud.registry.service import register_installation  # noqa: E402
from cloud.telemetry.store import open_store  # noqa: E402
from protocols import Channel, Reading, TelemetryBatch, encode, topic_for  # noqa: E402

READINGS = 50


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--batches", type=int, default=50, help="batches per transaction")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    settings = Settings(data_dir=work, jwt_secret="x" * 40)
    engine = make_engine(settings)
    init_db(engine)
    store = open_store(settings, engine)
    sensors = [f"probe.t{i:02d}" for i in range(READINGS)]
    with Session(engine) as session:
        for i in range(args.sites):
            register_installation(session, site_id=f"gate{i:03d}", devices={"probe": sensors})
        session.commit()
    gated, plain = IngestWriter(engine, store), IngestWriter(engine, store)
    plain._quarantine = None  # the ingest without any quarantine hook
    t0 = datetime.now(UTC) - timedelta(hours=2)
    seq = {"gated": 0, "plain": 0}
    elapsed = {"gated": 0.0, "plain": 0.0}

    def batch_of(name: str) -> list[RawMessage]:
        out = []
        for _ in range(args.batches):
            seq[name] += 1
            site = f"gate{seq[name] % args.sites:03d}"
            agent = f"{name}-{site}"
            ts = t0 + timedelta(milliseconds=seq[name])
            readings = [Reading(sensor_id=s, ts=ts, value=4.0, unit="°C") for s in sensors]
            msg = TelemetryBatch(site_id=site, agent_id=agent, seq=seq[name], sent_at=ts, readings=readings)
            out.append(RawMessage(topic_for(site, agent, Channel.TELEMETRY), encode(msg)))
        return out

    for round_no in range(args.rounds + 1):  # round 0 warms both writers up, not timed
        for name, writer in (("gated", gated), ("plain", plain)):
            batch = batch_of(name)
            started = time.perf_counter()
            result = writer.commit(batch)
            if round_no:
                elapsed[name] += time.perf_counter() - started
            assert result.readings == len(batch) * READINGS and result.quarantined == 0, result
    total = args.rounds * args.batches * READINGS
    rate = {name: total / s for name, s in elapsed.items()}
    gate = gated._quarantine.__self__  # type: ignore[union-attr]
    print(f"{args.rounds} transactions × {args.batches} batches × {READINGS} readings per writer")
    print(f"without the gate: {rate['plain']:,.0f} readings/s; with the gate: {rate['gated']:,.0f} readings/s")
    print(f"ratio gated/plain: {rate['gated'] / rate['plain']:.2f}; registry view reloads: {gate.reloads}")
    store.close()
    engine.dispose()


if __name__ == "__main__":
    main()
