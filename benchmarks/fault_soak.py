"""Fault soak: a small county under steady load for a configurable time, with a schedule of mixed faults.

The county is the fault rig's (tests/faults/rig.py): real mosquitto (persistence), the cloud ingest as a process,
a cloud API instance (`sentinel cloud serve --no-ingest`, same database), two edge agents polling a real Modbus
TCP simulator, a TCP proxy between the edges and the broker. The schedule, one after another with steady load
between them: broker restart, ``kill -9`` of the ingest worker, ``kill -9`` of the API instance, a network cut
between the edges and the broker (``--cut-s``, the issue's 5 minutes = 300), the edges' outbox disk quota reached
while the cloud ingest is down. At the end: batches written vs committed, readings stored, duplicates, alerts
written vs committed, recovery time per fault; a JSON line per fault and a summary (``--report FILE``).

Usage: .venv/bin/python benchmarks/fault_soak.py [--minutes 20] [--cut-s 300] [--report soak.jsonl]
The test suite runs the short form (tests/faults/test_soak.py: a few seconds per fault, ≤ ~60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sentinel_cli import servers  # noqa: E402
from simulators.clock import ScenarioClock  # noqa: E402
from simulators.modbus_tcp import SiteServer  # noqa: E402
from simulators.scenario import load_scenario  # noqa: E402
from tests.faults.rig import SCENARIO, County, make_county  # noqa: E402


@dataclass
class ApiInstance:
    data_dir: Path
    log: Path
    port: int = field(default_factory=servers.free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "SENTINEL_DATA_DIR": str(self.data_dir), "SENTINEL_LEASE_TTL_S": "3"}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sentinel_cli.main", "cloud", "serve", "--no-ingest", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=env,
                start_new_session=True,
            )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


async def wait_for(predicate: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out ({limit_s:.0f} s) waiting for {what}")
        await asyncio.sleep(0.2)


Fault = Callable[[County, ApiInstance], Awaitable[tuple[dict[str, int], Callable[[], bool]]]]


def faults(hold_s: float, cut_s: float) -> list[tuple[str, Fault]]:
    """(name, fault): each returns the edges' marks when it is lifted and what "recovered" means for it."""

    async def broker_restart(c: County, _api: ApiInstance) -> tuple[dict[str, int], Callable[[], bool]]:
        c.broker.stop()
        await asyncio.sleep(hold_s)
        c.broker = servers.start_mosquitto(c.broker.workdir, c.broker.port, persistence=True)
        return c.marks(), lambda: True

    async def kill_ingest(c: County, _api: ApiInstance) -> tuple[dict[str, int], Callable[[], bool]]:
        c.cloud.kill9()
        await asyncio.sleep(hold_s)
        marks = c.marks()
        c.cloud.start()
        return marks, lambda: True

    async def kill_api(c: County, api: ApiInstance) -> tuple[dict[str, int], Callable[[], bool]]:
        api.kill9()
        await asyncio.sleep(hold_s)
        api.start()
        return c.marks(), api.healthy

    async def cut(c: County, _api: ApiInstance) -> tuple[dict[str, int], Callable[[], bool]]:
        assert c.proxy is not None
        await c.proxy.cut()
        await asyncio.sleep(cut_s)
        marks = c.marks()
        await c.proxy.restore()
        return marks, lambda: True

    async def quota(c: County, _api: ApiInstance) -> tuple[dict[str, int], Callable[[], bool]]:
        before = sum(e.meta("thinned_batches") for e in c.edges)
        c.cloud.stop()
        await wait_for(lambda: sum(e.meta("thinned_batches") for e in c.edges) > before, 300, "the quota reached")
        marks = c.marks()
        c.cloud.start()
        return marks, lambda: True

    return [
        (f"broker restart (down {hold_s:.0f} s)", broker_restart),
        (f"kill -9 ingest worker (down {hold_s:.0f} s)", kill_ingest),
        (f"kill -9 API instance (restarted after {hold_s:.0f} s)", kill_api),
        (f"network cut edges↔broker ({cut_s:.0f} s, TCP proxy)", cut),
        ("edge outbox quota reached while the ingest is down", quota),
    ]


async def soak(
    tmp: Path, *, minutes: float, cut_s: float, hold_s: float, quota: int, batch: int = 10
) -> dict[str, Any]:
    county = make_county(tmp, via_proxy=True, batch=batch, max_entries=quota)
    api = ApiInstance(tmp / "cloud", tmp / "api.log")
    schedule = faults(hold_s, cut_s)
    gap_s = max(1.0, minutes * 60 / (len(schedule) + 1) - cut_s / len(schedule))
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    county.cloud.start()
    assert county.proxy is not None
    await county.proxy.start()
    try:
        async with SiteServer(load_scenario(SCENARIO), county.modbus_port, clock=ScenarioClock(10)):  # type: ignore[attr-defined]
            for edge in county.edges:
                edge.agent.start()
            await wait_for(lambda: county.readings() > 50, 90, "first readings stored")
            api.start()
            await wait_for(api.healthy, 90, "the API instance")
            for name, fault in schedule:
                await asyncio.sleep(gap_s)
                t0 = time.monotonic()
                marks, recovered = await fault(county, api)
                lifted = time.monotonic()

                def done(marks: dict[str, int] = marks, recovered: Callable[[], bool] = recovered) -> bool:
                    return county.caught_up(marks) and recovered()

                await wait_for(done, 600, f"recovery from {name}")
                rows.append(
                    {"fault": name, "held_s": round(lifted - t0, 1), "recovery_s": round(time.monotonic() - lifted, 1)}
                )
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
            await asyncio.sleep(gap_s)
        await wait_for(lambda: all(e.depth() == 0 for e in county.edges), 300, "outboxes drained")
    except Exception:
        print(county.logs(), f"\n--- api\n{api.log.read_text(errors='replace')[-2000:] if api.log.exists() else ''}")
        raise
    finally:
        for edge in county.edges:
            edge.agent.stop()
        await county.proxy.close()
        api.stop()
        county.cloud.stop()
        county.broker.stop()
    elapsed = time.monotonic() - started
    out = county.outcome()
    summary = {
        "duration_s": round(elapsed),
        "agents": len(county.edges),
        "load_readings_per_s": round(out.readings / elapsed, 1),
        "batches_written": out.written,
        "batches_committed": out.committed,
        "thinned_by_quota": out.thinned,
        "missing_in_cloud": len(out.missing),
        "queued_at_shutdown": out.queued,
        "readings_stored": out.readings,
        "duplicate_readings": out.duplicate_readings,
        "alerts_committed": out.alerts_committed,
        "faults": rows,
    }
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=20.0, help="total soak time (the recorded run: ≥ 20)")
    ap.add_argument("--cut-s", type=float, default=300.0, help="network cut length (a county link: 5 minutes)")
    ap.add_argument("--hold-s", type=float, default=3.0, help="how long the broker / ingest / API stay down")
    ap.add_argument("--quota", type=int, default=2000, help="edge outbox quota (entries, ≥ 100)")
    ap.add_argument("--batch", type=int, default=10, help="readings per outbox entry")
    ap.add_argument("--report", type=Path, default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fault-soak-"))
    summary = asyncio.run(
        soak(tmp, minutes=args.minutes, cut_s=args.cut_s, hold_s=args.hold_s, quota=args.quota, batch=args.batch)
    )
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    print(text)
    if args.report:
        args.report.write_text(text, encoding="utf-8")
    ok = summary["duplicate_readings"] == 0 and summary["missing_in_cloud"] <= summary["thinned_by_quota"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
