"""Regressions from the outside trial (issue #16): real files, real loopback HTTP, a real subprocess for stderr."""

from __future__ import annotations

import http.server
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from edge.vision.lifecycle import Transition
from edge.vision.service import CameraWorker
from edge.vision.snapshot import render_snapshot
from protocols.messages import AlertPhase
from simulators.camera.mjpeg import write_video
from simulators.camera.scenario import Scenario
from tests.edge.vision.helpers import sim_camera_config

ROOT = Path(__file__).resolve().parents[3]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def short_video(path: Path, seconds: float = 1.0) -> int:
    sc = Scenario.model_validate(
        {"name": "short", "start": "2026-11-26T10:00:00+08:00", "duration_s": seconds, "fps": 10}
    ).with_size(160, 120)
    return write_video(sc, path)


@pytest.mark.parametrize("loop", [False, True])
def test_loop_file_is_honoured(tmp_path: Path, loop: bool) -> None:
    n = short_video(tmp_path / "clip.avi")
    cfg = sim_camera_config(source=str(tmp_path / "clip.avi"), loop_file=loop, analysis_fps=30, zones=[])
    worker = CameraWorker(cfg, lambda _t: None)
    worker.start()
    try:
        if loop:
            wait_for(lambda: worker.frames_grabbed > 2 * n, 20, "the file to play twice")
            assert worker.state == "ok"
        else:
            wait_for(lambda: not worker._thread.is_alive(), 20, "the worker to stop at the end of the file")
            assert worker.frames_grabbed == n and worker.reopens == 0, "played once, never reopened"
            assert worker.state == "ended" and "ended" in (worker.reason or "")
    finally:
        worker.stop()


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""
    content_type = "video/mp4"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        self.end_headers()
        try:
            while True:  # keep streaming, like a server sending a big file
                self.wfile.write(self.body)
                time.sleep(0.02)
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


def serve(body: bytes, content_type: str) -> Iterator[str]:
    handler = type("H", (_Handler,), {"body": body, "content_type": content_type})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/video"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def mp4_server(tmp_path: Path) -> Iterator[str]:
    yield from serve(b"\x00\x00\x00\x18ftypmp42" + bytes(4000), "video/mp4")


@pytest.fixture
def lying_server() -> Iterator[str]:
    # says MJPEG, sends JPEG markers around garbage: every "frame" fails to decode
    yield from serve(b"--frame\r\n\xff\xd8" + bytes(range(256)) * 8 + b"\xff\xd9\r\n", "multipart/x-mixed-replace")


def run_down(url: str) -> tuple[CameraWorker, list[Transition]]:
    cfg = sim_camera_config(
        source=url,
        health={"offline_after_s": 1, "read_timeout_s": 0.3, "reopen_backoff_s": 0.2, "reopen_backoff_max_s": 0.5},
    )
    events: list[Transition] = []
    worker = CameraWorker(cfg, events.append)
    worker.start()
    try:
        wait_for(lambda: any(t.rule_id == "video_offline" for t in events), 20, "video_offline")
        wait_for(lambda: worker.state == "down", 5, "state down")
    finally:
        worker.stop()
    return worker, events


def test_http_source_that_is_not_mjpeg_goes_down_with_a_reason_and_an_alert(mp4_server: str) -> None:
    worker, events = run_down(mp4_server)
    [offline] = [t for t in events if t.rule_id == "video_offline"]
    assert offline.phase is AlertPhase.RAISE
    assert "not an MJPEG stream" in (worker.reason or "") and "video/mp4" in offline.message
    assert "原因" in offline.message


def test_stream_of_undecodable_frames_is_down_and_logged_once(
    lying_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.vision.service")
    worker, events = run_down(lying_server)
    assert worker.frames_grabbed > 3 and worker.frames_analysed == 0
    [offline] = [t for t in events if t.rule_id == "video_offline"]
    assert "无有效画面" in offline.message
    corrupt = [r for r in caplog.records if "corrupt JPEG" in r.getMessage()]
    assert len(corrupt) == 1, "a repeated failure is logged once until it recovers"


def test_snapshot_caption_uses_the_site_time_zone() -> None:
    ts = datetime(2026, 11, 26, 15, 30, 5, tzinfo=UTC)
    snap = render_snapshot(np.zeros((120, 160, 3), np.uint8), [], [], caption="cam x", ts=ts)
    assert snap.caption == "2026-11-26T23:30:05+08:00 cam x"
    other = render_snapshot(np.zeros((120, 160, 3), np.uint8), [], [], caption="c", ts=ts, timezone="Asia/Urumqi")
    assert other.caption.startswith("2026-11-26T21:30:05+06:00")


def test_opencv_warnings_do_not_reach_the_log_on_retries() -> None:
    """A missing local camera and a refused RTSP/HTTP URL, opened three times each, print nothing to stderr."""
    code = (
        "from edge.vision.source import OpenCvSource, SourceError\n"
        "for target in (99, 'rtsp://127.0.0.1:1/x', 'http://127.0.0.1:1/x.mp4'):\n"
        "    for _ in range(3):\n"
        "        try:\n"
        "            OpenCvSource(target, 0.3).open()\n"
        "        except SourceError as exc:\n"
        "            print('refused', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.count("refused") == 9, out.stdout + out.stderr
    assert out.stderr == "", out.stderr
