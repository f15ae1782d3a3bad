"""Cameras in the agent: transitions land in the durable outbox as AlertEvents with evidence."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest

from edge.vision.bridge import CameraBridge
from protocols.messages import AlertEvent, AlertPhase, decode
from simulators.camera.mjpeg import MjpegServer
from simulators.camera.scenario import Scenario
from tests.edge.vision.helpers import sha256, sim_camera_config

outbox_mod = pytest.importorskip("edge.outbox")

SCENARIO = """
name = "stall"
start = 2026-11-26T10:00:00+08:00
duration_s = 600
[[events]]
kind = "lens_cover"
start_s = 2
end_s = 600
"""


def test_camera_alerts_go_to_the_outbox_with_evidence_and_survive_restart(tmp_path: Path) -> None:
    sc = Scenario.model_validate(tomllib.loads(SCENARIO)).with_size(160, 120)
    cfg = sim_camera_config(tamper={"warmup_s": 1, "raise_after_s": 0.5})
    outbox = outbox_mod.Outbox(tmp_path / "edge.db", fsync="normal")

    async def run_until_raise() -> None:
        with MjpegServer(sc) as server:
            camera = cfg.model_copy(update={"source": server.url})
            bridge = CameraBridge([camera], outbox, site_id="s1", agent_id="a1", data_dir=tmp_path)
            stop = asyncio.Event()
            task = asyncio.create_task(bridge.run(stop))
            for _ in range(300):
                if bridge.sink.written:
                    break
                await asyncio.sleep(0.1)
            stop.set()
            await task
            assert bridge.sink.written == 1
            [entry] = outbox.pending()
            event = decode(entry.payload, AlertEvent)
            assert (event.phase, event.rule_id, event.device_id) == (AlertPhase.RAISE, "camera_covered", cfg.camera_id)
            assert event.seq == entry.seq and event.site_id == "s1"
            [ref] = event.evidence
            blob = bridge.store.read(ref.sha256)
            assert blob is not None and sha256(blob) == ref.sha256
            assert bridge.store.queue is not None  # no upload URL configured: the snapshot waits in the queue
            assert [d.device_type for d in bridge.announced_devices()] == ["camera"]

    asyncio.run(run_until_raise())
    # after a restart the open alert is known again (no second raise, a later clear reuses its id)
    bridge2 = CameraBridge([cfg], outbox, site_id="s1", agent_id="a1", data_dir=tmp_path)
    [saved] = bridge2.sink.open_alerts()[cfg.camera_id]
    event = decode(outbox.pending()[0].payload, AlertEvent)
    assert saved["alert_id"] == event.alert_id and saved["rule_id"] == "camera_covered"
    assert [p.sha256 for p in bridge2.queue.due()] == [event.evidence[0].sha256]  # queued for upload
    bridge2.queue.close()
    outbox.close()
