"""Simulator over loopback HTTP (MJPEG) into the camera service's worker thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from edge.vision.evidence import EvidenceStore
from edge.vision.lifecycle import Transition
from edge.vision.service import CameraService
from protocols.messages import AlertPhase
from simulators.camera.mjpeg import MjpegServer
from simulators.camera.scenario import Scenario
from tests.edge.vision.helpers import sha256, sim_camera_config

SCENARIO = """
name = "live"
start = 2026-11-26T23:20:00+08:00
duration_s = 600
[[events]]
kind = "flicker"
start_s = 0
end_s = 6
depth = 0.45
[[events]]
kind = "person_walk"
start_s = 6
end_s = 14
"""


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_stream_person_after_hours_then_camera_dies_and_returns(tmp_path: Path) -> None:
    import tomllib

    sc = Scenario.model_validate(tomllib.loads(SCENARIO))
    server = MjpegServer(sc).start()
    store = EvidenceStore(tmp_path / "ev", max_bytes=50_000_000, max_count=1000)
    got: list[Transition] = []
    cfg = sim_camera_config(
        source=server.url,
        health={"offline_after_s": 3, "read_timeout_s": 0.5, "reopen_backoff_s": 0.5, "reopen_backoff_max_s": 1},
    )
    service = CameraService([cfg], got.append, evidence_store=store, clock=lambda: sc.at(server.scene_time()))
    service.start()
    try:
        _wait(lambda: any(t.phase is AlertPhase.CLEAR for t in got), 40, "presence raise and clear")
        assert [(t.phase, t.rule_id) for t in got] == [
            (AlertPhase.RAISE, "after_hours_presence.kitchen"),
            (AlertPhase.CLEAR, "after_hours_presence.kitchen"),
        ], "the flicker must not alert; the person must"
        raised = got[0]
        assert raised.zone_id == "kitchen" and raised.boxes
        [ref] = raised.evidence
        blob = store.read(ref.sha256)
        assert blob is not None and sha256(blob) == ref.sha256

        server.stop()  # the camera dies
        _wait(lambda: len(got) >= 3, 20, "video_offline")
        assert (got[2].phase, got[2].rule_id) == (AlertPhase.RAISE, "video_offline")
        assert "视频离线" in got[2].message
        assert service.health() == {"camera:kitchen-cam-1": "down"}

        server.start()  # and comes back on the same port
        _wait(lambda: len(got) >= 4, 20, "video_offline clear")
        assert (got[3].phase, got[3].rule_id, got[3].alert_id) == (AlertPhase.CLEAR, "video_offline", got[2].alert_id)
        _wait(lambda: service.health() == {"camera:kitchen-cam-1": "ok"}, 10, "health ok")
    finally:
        service.stop()
        server.stop()
    worker = service.workers["kitchen-cam-1"]
    assert worker.frames_analysed <= worker.frames_grabbed
