"""Evidence clips and segment recording on real files: OpenCV and ffprobe read them back; retention and quota."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edge.vision.recording import RecordingError, RecordingStore, SegmentRecorder, export_range, stamp
from edge.vision.snapshot import Snapshot
from protocols.messages import AlertPhase, EvidenceRef
from tests.edge.vision.helpers import sim_camera_config

pytest.importorskip("onnxruntime")

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def frame(i: int, level: int = 90) -> np.ndarray[Any, Any]:
    img = np.full((240, 320, 3), level, np.uint8)
    cv2.putText(img, str(i), (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    return img


def probe(path: Path) -> dict[str, Any]:
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed")
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)], capture_output=True, check=True
    )
    return json.loads(out.stdout)["streams"][0]  # type: ignore[no-any-return]


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


# -- evidence clips ---------------------------------------------------------------------------------------


class Sinks:
    def __init__(self, tmp: Path) -> None:
        self.tmp, self.snapshots, self.clips = tmp, [], []  # type: ignore[var-annotated]

    def snapshot(self, snap: Snapshot, label: str) -> EvidenceRef:
        self.snapshots.append(snap)
        return EvidenceRef(sha256=snap.sha256, size=snap.size, label=label[:64])

    def clip(self, data: bytes, content_type: str, label: str) -> EvidenceRef:
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        path = self.tmp / f"{sha}.webm"
        path.write_bytes(data)
        self.clips.append(path)
        return EvidenceRef(sha256=sha, size=len(data), content_type=content_type, label=label)


def clip_pipeline(tmp_path: Path, sinks: Sinks, **clips: Any) -> Any:
    from edge.vision.pipeline import CameraPipeline
    from tests.edge.vision.onnx_graphs import cigarette_model

    rule = {"event": "smoking", "labels": ["cigarette"], "raise_after_s": 0, "clear_after_s": 0.4}
    model = cigarette_model(tmp_path, "brightness") | {"rules": [rule]}
    cfg = sim_camera_config(
        models=[model],
        people={"enabled": False},
        tamper={"enabled": False},
        clips={"pre_s": 1.0, "post_s": 1.0, **clips},
    )
    return CameraPipeline(cfg, evidence=sinks.snapshot, clip_sink=sinks.clip)


def run_frames(pipe: Any, bright: range, n: int) -> list[Any]:
    out = []
    for i in range(n):
        t = round(i * 0.2, 1)
        out += pipe.process(frame(i, 230 if i in bright else 60), t, T0 + timedelta(seconds=t)).transitions
    return out


def test_raise_carries_a_snapshot_and_then_a_playable_clip(tmp_path: Path) -> None:
    sinks = Sinks(tmp_path)
    transitions = run_frames(clip_pipeline(tmp_path, sinks), range(10, 30), 40)
    phases = [(t.phase, [e.content_type for e in t.evidence]) for t in transitions]
    assert phases == [
        (AlertPhase.RAISE, ["image/jpeg"]),
        (AlertPhase.UPDATE, ["video/webm"]),  # 1 s after the raise
        (AlertPhase.CLEAR, []),
    ]
    assert transitions[1].alert_id == transitions[0].alert_id
    [clip] = sinks.clips
    # pre: the raise frame and the 5 before it (1 s at 5 fps); post: 5 frames
    assert count_frames(clip) == 11
    stream = probe(clip)
    assert stream["codec_name"] == "vp8" and stream["width"] == 320
    # the snapshot caption is in the site's time zone (Asia/Shanghai), not UTC
    assert "2026-11-26T10:00:02+08:00" in sinks.snapshots[0].caption


def test_clip_cut_short_by_the_clear_rides_the_clear(tmp_path: Path) -> None:
    sinks = Sinks(tmp_path)
    pipe = clip_pipeline(tmp_path, sinks, post_s=30, codec="mjpeg")
    transitions = run_frames(pipe, range(10, 13), 25)
    assert [t.phase for t in transitions] == [AlertPhase.RAISE, AlertPhase.CLEAR]
    [ref] = transitions[1].evidence
    assert ref.content_type == "video/x-msvideo"
    assert probe(sinks.clips[0])["codec_name"] == "mjpeg"


def test_health_alerts_have_no_clip() -> None:
    cfg = sim_camera_config()
    assert not cfg.clips.wants("video_offline") and cfg.clips.wants("smoking.kitchen")


# -- segment recording --------------------------------------------------------------------------------------


def store(tmp_path: Path, **kw: Any) -> RecordingStore:
    args: dict[str, Any] = {"retention_days": 7, "max_bytes": 10**9, "min_free_bytes": 0} | kw
    return RecordingStore(tmp_path / "rec", **args)


def record(rs: RecordingStore, start: datetime, frames: int, segment_s: float = 2, **kw: Any) -> SegmentRecorder:
    rec = SegmentRecorder(
        rs, "cam1", mode=kw.pop("mode", "continuous"), segment_s=segment_s, fps=5, max_width=320, codec="mjpeg", **kw
    )
    for i in range(frames):
        rec.write(frame(i), start + timedelta(seconds=i * 0.2), motion=kw.get("motion", False))
    rec.close()
    return rec


def test_segments_rotate_and_read_back(tmp_path: Path) -> None:
    rs = store(tmp_path)
    record(rs, T0, 30)
    segs = rs.segments("cam1")
    assert [s.path.name for s in segs] == [
        f"{stamp(T0)}--{stamp(T0 + timedelta(seconds=1.8))}.avi",
        f"{stamp(T0 + timedelta(seconds=2))}--{stamp(T0 + timedelta(seconds=3.8))}.avi",
        f"{stamp(T0 + timedelta(seconds=4))}--{stamp(T0 + timedelta(seconds=5.8))}.avi",
    ]
    assert [count_frames(s.path) for s in segs] == [10, 10, 10]
    assert probe(segs[0].path)["codec_name"] == "mjpeg"

    out = export_range(rs, "cam1", T0 + timedelta(seconds=1), T0 + timedelta(seconds=4.9), tmp_path / "range.webm")
    assert count_frames(out) == 20 and probe(out)["codec_name"] == "vp8"  # frames at 1.0 … 4.8 s
    with pytest.raises(RecordingError, match="nothing recorded"):
        export_range(rs, "cam1", T0 - timedelta(hours=2), T0 - timedelta(hours=1), tmp_path / "none.webm")


def test_retention_deletes_segments_older_than_seven_days(tmp_path: Path) -> None:
    rs = store(tmp_path)
    old, recent = T0 - timedelta(days=8), T0 - timedelta(days=6)
    record(rs, old, 10)
    record(rs, recent, 10)
    assert len(rs.segments("cam1")) == 2
    record(rs, T0, 10)  # opening a segment enforces retention
    assert [s.start for s in rs.segments("cam1")] == [recent, T0]


def test_quota_and_free_space_delete_the_oldest_first(tmp_path: Path) -> None:
    rs = store(tmp_path)
    for day in range(3):
        record(rs, T0 + timedelta(hours=day), 10)
    sizes = [s.size for s in rs.segments()]
    rs.max_bytes = sizes[-1] + sizes[-2]
    rs.enforce(T0 + timedelta(hours=3))
    assert [s.start for s in rs.segments()] == [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]

    # the disk itself runs short (a disk cannot be filled in a test: its usage function is replaced)
    free = {"bytes": 10}
    rs = store(tmp_path, min_free_bytes=1000, disk_usage=lambda _p: (10**6, 10**6 - free["bytes"], free["bytes"]))
    rec = record(rs, T0 + timedelta(hours=5), 10)
    assert rs.segments() == [] and rec.frames_written == 0, "oldest deleted, then recording paused, disk not filled"
    free["bytes"] = 10**6
    assert record(rs, T0 + timedelta(hours=6), 10).frames_written == 10


def test_motion_mode_records_only_around_motion(tmp_path: Path) -> None:
    rs = store(tmp_path)
    rec = SegmentRecorder(rs, "cam1", mode="motion", segment_s=60, fps=5, max_width=320, codec="mjpeg", motion_hold_s=1)
    for i in range(40):
        rec.write(frame(i), T0 + timedelta(seconds=i * 0.2), motion=10 <= i < 15)
    rec.close()
    [seg] = rs.segments("cam1")
    assert count_frames(seg.path) == 10  # frames 10–19: the motion and 1 s after it


def test_segment_left_open_by_a_crash_is_closed_on_start(tmp_path: Path) -> None:
    rs = store(tmp_path)
    leftover = rs.camera_dir("cam1") / f"{stamp(T0)}.open.avi"
    leftover.write_bytes(b"RIFF")
    SegmentRecorder(rs, "cam1", mode="continuous", segment_s=60, fps=5, max_width=320, codec="mjpeg")
    [seg] = rs.segments("cam1")
    assert seg.start == T0 and not leftover.exists()


def test_kitchen_cameras_keep_video_seven_days() -> None:
    with pytest.raises(ValidationError, match="below the 7 days kitchen video must be kept"):
        sim_camera_config(recording={"retention_days": 3})
    assert sim_camera_config().recording_mode == "continuous"
    assert sim_camera_config(zones=[]).recording_mode == "off"
