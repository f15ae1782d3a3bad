"""The ``snapshot`` command's camera side (issue 15): the last decoded frame of a running camera (a real video
file through the real worker) becomes a JPEG in the evidence store, queued for upload like an alert's snapshot;
an unknown camera or one without a frame yet is refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.vision.evidence import EvidenceStore, UploadQueue
from edge.vision.service import CameraService
from tests.edge.vision.helpers import sim_camera_config
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
