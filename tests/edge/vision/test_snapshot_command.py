"""The ``snapshot`` and ``export_range`` commands' camera side (issue 15): the last decoded frame of a running
camera (a real video file through the real worker) becomes a JPEG in the evidence store, queued for upload like an
alert's snapshot; a recorded range becomes one WebM there, queued too; an unknown camera, one without a frame yet,
a range too long or with nothing recorded is refused with the reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from edge.vision.bridge import export_to_evidence
from edge.vision.evidence import EvidenceStore, UploadQueue
from edge.vision.service import CameraService
from tests.edge.vision.helpers import sim_camera_config
from tests.edge.vision.test_recording import T0, record
from tests.edge.vision.test_recording import store as recording_store
from tests.edge.vision.test_rough_edges import short_video, wait_for


def test_snapshot_of_a_running_camera_goes_to_the_evidence_store_and_its_upload_queue(tmp_path: Path) -> None:
    short_video(tmp_path / "clip.avi")
    cfg = sim_camera_config(source=str(tmp_path / "clip.avi"), loop_file=True, analysis_fps=10, zones=[])
    queue = UploadQueue(tmp_path / "evidence" / "uploads.db")
    store = EvidenceStore(tmp_path / "evidence", max_bytes=10_000_000, max_count=100, queue=queue)
    service = CameraService([cfg], lambda _t: None, evidence_store=store)
    with pytest.raises(ValueError, match="尚无画面"):
        service.snapshot(cfg.camera_id)
    service.start()
    try:
        wait_for(lambda: service.workers[cfg.camera_id].last_frame is not None, 20, "a decoded frame")
        ref = service.snapshot(cfg.camera_id)
        with pytest.raises(ValueError, match="没有摄像头 cam-x"):
            service.snapshot("cam-x")
    finally:
        service.stop()
        queue.close()
    data = store.read(ref.sha256)
    assert data is not None and data[:3] == b"\xff\xd8\xff", "a JPEG"
    assert ref.label == "remote_snapshot" and ref.size == len(data)
    reopened = UploadQueue(tmp_path / "evidence" / "uploads.db")
    try:
        assert reopened.contains(ref.sha256), "queued for upload through the evidence path"
    finally:
        reopened.close()


def test_export_range_puts_one_clip_of_the_recording_into_the_evidence_store(tmp_path: Path) -> None:
    recordings = recording_store(tmp_path)
    record(recordings, T0, 30)  # 6 s of video in 2 s segments
    queue = UploadQueue(tmp_path / "evidence" / "uploads.db")
    store = EvidenceStore(tmp_path / "evidence", max_bytes=10_000_000, max_count=100, queue=queue)
    try:
        ref = export_to_evidence(recordings, store, "cam1", T0 + timedelta(seconds=1), T0 + timedelta(seconds=5))
        data = store.read(ref.sha256)
        assert data is not None and data[:4] == b"\x1a\x45\xdf\xa3", "a WebM (EBML header)"
        assert (ref.content_type, ref.label) == ("video/webm", "remote_export") and queue.contains(ref.sha256)
        assert not list((tmp_path / "evidence").glob(".export-*")), "the working file is removed"
        with pytest.raises(ValueError, match="无录像可导出"):
            export_to_evidence(
                recordings, store, "cam1", T0 - timedelta(hours=2), T0 - timedelta(hours=2) + timedelta(minutes=10)
            )
        with pytest.raises(ValueError, match="不超过 30 分钟"):
            export_to_evidence(recordings, store, "cam1", T0, T0 + timedelta(hours=1))
    finally:
        queue.close()
