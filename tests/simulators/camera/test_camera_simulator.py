"""Camera simulator: scenarios, rendering, MJPEG server, video files, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from edge.vision.config import CameraConfig
from edge.vision.source import MjpegSource, OpenCvSource, open_source
from simulators.camera.cli import camera_app
from simulators.camera.mjpeg import MjpegServer, write_video
from simulators.camera.scenario import Scenario, load_scenarios

SCENARIOS = Path(__file__).resolve().parents[3] / "firmware-config" / "cameras" / "scenarios"


def test_every_scenario_loads_with_ground_truth_inside_its_duration() -> None:
    scenarios = load_scenarios(SCENARIOS)
    assert len(scenarios) >= 10
    kinds = {e.kind for s in scenarios for e in s.events}
    assert {"person_walk", "lens_cover", "camera_knock", "stall", "pest", "flicker"} <= kinds
    assert any(not s.expect for s in scenarios)  # no-event scenarios exist
    for s in scenarios:
        for e in s.expect:
            assert e.end_s <= s.duration_s


def test_rendering_is_deterministic_and_stalls_and_freezes_work() -> None:
    s = Scenario.load(SCENARIOS / "stream_stall.toml")
    a = [f.image for f in s.frames()]
    b = [f.image for f in s.frames()]
    assert all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    stalled = [f.t for f in s.frames() if f.image is None]
    assert stalled and min(stalled) >= 5 and max(stalled) < 14
    frozen = [f for f in Scenario.load(SCENARIOS / "frozen_picture.toml").frames() if f.frozen]
    assert frozen and all(np.array_equal(frozen[0].image, f.image) for f in frozen)


def test_mjpeg_server_serves_frames_to_the_edge_source() -> None:
    s = Scenario.load(SCENARIOS / "quiet_day.toml").with_size(160, 120)
    with MjpegServer(s) as server:
        src = MjpegSource(server.url, read_timeout_s=2)
        src.open()
        try:
            for _ in range(3):
                assert src.grab()
                assert src.retrieve().shape == (120, 160, 3)
        finally:
            src.close()


def test_video_file_round_trip(tmp_path: Path) -> None:
    s = Scenario.load(SCENARIOS / "lens_cover.toml").with_size(160, 120).model_copy(update={"duration_s": 2})
    out = tmp_path / "clip.avi"
    assert write_video(s, out) == 10
    cfg = CameraConfig(camera_id="file-cam", source=str(out))
    src = open_source(cfg)
    assert isinstance(src, OpenCvSource)
    src.open()
    n = 0
    try:
        while True:
            try:
                if not src.grab():
                    break
            except OSError:
                break
            assert src.retrieve().shape == (120, 160, 3)
            n += 1
    finally:
        src.close()
    assert n == 10


def test_cli_lists_scenarios_with_ground_truth() -> None:
    result = CliRunner().invoke(camera_app, ["list", "--directory", str(SCENARIOS)])
    assert result.exit_code == 0, result.output
    assert "after_hours_presence.kitchen" in result.output and "lighting_flicker" in result.output
