"""Video on the edge: evidence clips around an alert, segment recording with retention, range export.

* :class:`FrameRing` keeps the last ``pre_s`` seconds of analysed frames (downscaled to the clip width);
  :class:`ClipRecorder` turns an alert's raise into a clip of ``pre_s`` before and ``post_s`` after it.
* :class:`SegmentRecorder` writes continuous (or motion-triggered) segments ``<start>--<end>.<ext>``
  under ``<recordings>/<camera_id>/``; :class:`RecordingStore` deletes segments older than the
  retention and, over the quota or below the disk's free-space floor, the oldest first, so recording
  never fills the disk.
* :func:`export_range` cuts a time range out of the recorded segments into one file (the cloud asks
  for it with a fleet command).

Codecs: ``vp8`` (WebM; plays in every browser, so in the console) and ``mjpeg`` (AVI; the cheapest to
write). opencv-python-headless has no H.264 encoder (its FFmpeg build tries ``h264_v4l2m2m`` only).
Frames are recorded at the camera's ``analysis_fps`` (the frames that are decoded anyway).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.vision.quiet import quiet_opencv

log = logging.getLogger(__name__)

Frame = NDArray[Any]
Codec = Literal["vp8", "mjpeg"]
CODECS: dict[str, tuple[str, str, str]] = {  # codec → (fourcc, file suffix, content type)
    "vp8": ("VP80", ".webm", "video/webm"),
    "mjpeg": ("MJPG", ".avi", "video/x-msvideo"),
}
_STAMP = "%Y%m%dT%H%M%S%fZ"
_SEGMENT_RE = re.compile(r"^(?P<start>\d{8}T\d{12}Z)--(?P<end>\d{8}T\d{12}Z)\.(?:webm|avi)$")


class RecordingError(OSError):
    """A clip or segment cannot be written or read, or nothing is recorded for a range."""


def stamp(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime(_STAMP)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, _STAMP).replace(tzinfo=UTC)


def fit_width(frame: Frame, max_width: int) -> Frame:
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[1] <= max_width:
        return frame
    f = max_width / frame.shape[1]
    size = (max_width, max(2, round(frame.shape[0] * f)) // 2 * 2)
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def open_writer(path: Path, codec: Codec, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    fourcc = cv2.VideoWriter.fourcc(*CODECS[codec][0])
    with quiet_opencv():
        writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, fourcc, max(0.5, fps), size)
    if not writer.isOpened():
        raise RecordingError(f"cannot write {codec} video to {path} (OpenCV VideoWriter refused)")
    return writer


# -- evidence clips --------------------------------------------------------------------------------------


@dataclass(slots=True)
class FrameRing:
    """The last ``seconds`` of frames (monotonic time, frame), each downscaled to ``max_width``."""

    seconds: float
    max_width: int
    frames: deque[tuple[float, Frame]] = field(default_factory=deque)

    def push(self, now: float, frame: Frame) -> Frame:
        small = fit_width(frame, self.max_width)
        if small is frame:
            small = frame.copy()
        self.frames.append((now, small))
        while self.frames and now - self.frames[0][0] > self.seconds:
            self.frames.popleft()
        return small


class ClipJob:
    """One clip being written: frames go to the encoder as they come (no burst of work at the end)."""

    def __init__(self, alert_id: str, rule_id: str, started: float, codec: Codec, fps: float) -> None:
        self.alert_id, self.rule_id, self.started = alert_id, rule_id, started
        self.codec, self.fps = codec, fps
        fd, tmp = tempfile.mkstemp(suffix=CODECS[codec][1], prefix="clip-")
        os.close(fd)
        self.path = Path(tmp)
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def add(self, frame: Frame) -> None:
        if self._writer is None:
            self._size = (frame.shape[1], frame.shape[0])
            self._writer = open_writer(self.path, self.codec, self.fps, self._size)
        self._writer.write(frame if (frame.shape[1], frame.shape[0]) == self._size else cv2.resize(frame, self._size))
        self.frames += 1

    def finish(self) -> bytes:
        try:
            if self._writer is None:
                raise RecordingError("no frames for the clip")
            with quiet_opencv():
                self._writer.release()
            return self.path.read_bytes()
        finally:
            self.path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class FinishedClip:
    alert_id: str
    rule_id: str
    data: bytes
    content_type: str
    frames: int


class ClipRecorder:
    """Clips of ``pre_s`` before and ``post_s`` after an alert's raise (cut short when it clears)."""

    def __init__(self, *, pre_s: float, post_s: float, fps: float, max_width: int, codec: Codec) -> None:
        self.ring = FrameRing(pre_s, max_width)
        self.post_s, self.fps, self.codec = post_s, fps, codec
        self.jobs: dict[str, ClipJob] = {}

    def push(self, now: float, frame: Frame) -> None:
        small = self.ring.push(now, frame)
        for job in list(self.jobs.values()):
            if now > job.started:
                self._add(job, small)

    def _add(self, job: ClipJob, frame: Frame) -> None:
        try:
            job.add(frame)
        except RecordingError as exc:
            log.error("clip for %s (%s) abandoned: %s", job.rule_id, job.alert_id, exc)
            self.jobs.pop(job.alert_id, None)
            job.path.unlink(missing_ok=True)

    def start(self, alert_id: str, rule_id: str, now: float) -> None:
        if alert_id in self.jobs:
            return
        job = ClipJob(alert_id, rule_id, now, self.codec, self.fps)
        self.jobs[alert_id] = job
        for _, f in self.ring.frames:
            if alert_id in self.jobs:
                self._add(job, f)

    def due(self, now: float, ending: set[str]) -> Iterator[FinishedClip]:
        """Clips whose post time passed, or whose alert is ``ending`` now; removed from the jobs."""
        for alert_id in [a for a, j in self.jobs.items() if now - j.started >= self.post_s or a in ending]:
            job = self.jobs.pop(alert_id)
            try:
                data = job.finish()
            except RecordingError as exc:
                log.error("clip for %s (%s) not written: %s", job.rule_id, alert_id, exc)
                continue
            yield FinishedClip(alert_id, job.rule_id, data, CODECS[self.codec][2], job.frames)

    def close(self) -> None:
        for job in self.jobs.values():
            job.path.unlink(missing_ok=True)
        self.jobs.clear()


# -- segment recording ------------------------------------------------------------------------------------

DiskUsage = Callable[[Path], tuple[int, int, int]]
"""``shutil.disk_usage``-like: (total, used, free) bytes of the file system holding a path."""


def _disk_usage(path: Path) -> tuple[int, int, int]:
    u = shutil.disk_usage(path)
    return u.total, u.used, u.free


@dataclass(frozen=True, slots=True)
class Segment:
    path: Path
    start: datetime
    end: datetime
    size: int


class RecordingStore:
    """Recorded segments of all cameras of a site under one directory, within retention and quota."""

    def __init__(
        self,
        directory: Path,
        *,
        retention_days: float,
        max_bytes: int,
        min_free_bytes: int,
        disk_usage: DiskUsage = _disk_usage,
    ) -> None:
        self.directory = directory
        self.retention = timedelta(days=retention_days)
        self.camera_retention: dict[str, timedelta] = {}
        self.max_bytes, self.min_free_bytes = max_bytes, min_free_bytes
        self._disk_usage = disk_usage
        self.deleted = 0
        self._warned_quota = False
        directory.mkdir(parents=True, exist_ok=True)

    def camera_dir(self, camera_id: str) -> Path:
        path = self.directory / camera_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def segments(self, camera_id: str | None = None) -> list[Segment]:
        """Closed segments, oldest first."""
        dirs = [self.directory / camera_id] if camera_id else [p for p in self.directory.iterdir() if p.is_dir()]
        out = []
        for d in dirs:
            if not d.is_dir():
                continue
            for p in d.iterdir():
                m = _SEGMENT_RE.match(p.name)
                if m:
                    out.append(Segment(p, parse_stamp(m["start"]), parse_stamp(m["end"]), p.stat().st_size))
        return sorted(out, key=lambda s: (s.start, s.path.name))

    def free_bytes(self) -> int:
        return self._disk_usage(self.directory)[2]

    def has_room(self) -> bool:
        return self.free_bytes() >= self.min_free_bytes

    def enforce(self, now: datetime) -> int:
        """Delete segments past the retention, then the oldest while over quota or short of free space."""
        removed = 0
        segments = self.segments()
        keep: list[Segment] = []
        for seg in segments:
            if seg.end < now - self._retention_of(seg):
                removed += self._delete(seg, "retention")
            else:
                keep.append(seg)
        total = sum(s.size for s in keep)
        while keep and (total > self.max_bytes or self.free_bytes() < self.min_free_bytes):
            seg = keep.pop(0)
            if not self._warned_quota and seg.end > now - self._retention_of(seg):
                log.warning(
                    "recording quota reached: deleting %s (younger than the %s retention); "
                    "raise recording max_bytes or add disk",
                    seg.path.name,
                    self.retention,
                )
                self._warned_quota = True
            total -= seg.size
            removed += self._delete(seg, "quota")
        return removed

    def _retention_of(self, seg: Segment) -> timedelta:
        return self.camera_retention.get(seg.path.parent.name, self.retention)

    def _delete(self, seg: Segment, why: str) -> int:
        try:
            seg.path.unlink()
        except FileNotFoundError:
            return 0
        log.debug("recording %s deleted (%s)", seg.path, why)
        self.deleted += 1
        return 1


class SegmentRecorder:
    """One camera's recording: frames → segments of ``segment_s``; ``motion`` mode records only around motion."""

    def __init__(
        self,
        store: RecordingStore,
        camera_id: str,
        *,
        mode: Literal["continuous", "motion"],
        segment_s: float,
        fps: float,
        max_width: int,
        codec: Codec,
        motion_hold_s: float = 10.0,
    ) -> None:
        self.store, self.camera_id = store, camera_id
        self.mode, self.segment_s, self.fps = mode, segment_s, fps
        self.max_width, self.codec, self.motion_hold_s = max_width, codec, motion_hold_s
        self._dir = store.camera_dir(camera_id)
        self._writer: cv2.VideoWriter | None = None
        self._open_path: Path | None = None
        self._start: datetime | None = None
        self._last: datetime | None = None
        self._size: tuple[int, int] | None = None
        self._motion_at: datetime | None = None
        self._refused = False
        self.frames_written = 0
        self._recover()

    def _recover(self) -> None:
        """Segments left open by a crash or power loss are closed under their last write time."""
        for p in self._dir.glob("*.open.*"):
            start = p.name.split(".", 1)[0]
            end = datetime.fromtimestamp(p.stat().st_mtime, UTC)
            try:
                p.rename(p.with_name(f"{start}--{stamp(end)}{p.suffix}"))
            except OSError as exc:
                log.error("cannot close leftover segment %s: %s", p, exc)

    def write(self, frame: Frame, wall: datetime, motion: bool = False) -> None:
        if motion:
            self._motion_at = wall
        if self.mode == "motion" and (self._motion_at is None or wall - self._motion_at > self._hold):
            self.close()
            return
        if self._start is not None and (wall - self._start).total_seconds() >= self.segment_s:
            self.close()
        img = fit_width(frame, self.max_width)
        if self._writer is None:
            if not self._open(wall, img):
                return
        elif (img.shape[1], img.shape[0]) != self._size:
            self.close()
            if not self._open(wall, img):
                return
        assert self._writer is not None
        self._writer.write(img)
        self._last = wall
        self.frames_written += 1

    @property
    def _hold(self) -> timedelta:
        return timedelta(seconds=self.motion_hold_s)

    def _open(self, wall: datetime, img: Frame) -> bool:
        self.store.enforce(wall)
        if not self.store.has_room():
            if not self._refused:
                log.error(
                    "camera %s: recording paused, less than %d bytes free on %s",
                    self.camera_id,
                    self.store.min_free_bytes,
                    self.store.directory,
                )
                self._refused = True
            return False
        self._refused = False
        path = self._dir / f"{stamp(wall)}.open{CODECS[self.codec][1]}"
        size = (img.shape[1], img.shape[0])
        self._writer = open_writer(path, self.codec, self.fps, size)
        self._open_path, self._start, self._size = path, wall, size
        return True

    def close(self) -> Segment | None:
        """Close the open segment (renamed ``<start>--<end>``); enforce retention and quota."""
        if self._writer is None or self._open_path is None or self._start is None:
            return None
        with quiet_opencv():
            self._writer.release()
        end = self._last or self._start
        final = self._dir / f"{stamp(self._start)}--{stamp(end)}{CODECS[self.codec][1]}"
        self._open_path.rename(final)
        seg = Segment(final, self._start, end, final.stat().st_size)
        self._writer = self._open_path = self._start = self._last = None
        self.store.enforce(end)
        return seg


def _segment_frames(seg: Segment) -> Iterator[tuple[datetime, Frame]]:
    """Frames of a segment with their times, spread evenly between its start and end."""
    with quiet_opencv():
        cap = cv2.VideoCapture(str(seg.path))
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        span = (seg.end - seg.start).total_seconds()
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            at = seg.start + timedelta(seconds=span * i / max(1, n - 1))
            yield at, np.asarray(frame)
            i += 1
    finally:
        cap.release()


def export_range(
    store: RecordingStore, camera_id: str, start: datetime, end: datetime, out: Path, *, fps: float = 5.0
) -> Path:
    """The recorded video of ``camera_id`` between ``start`` and ``end`` as one file ``out`` (.webm or .avi).

    Raises :class:`RecordingError` when nothing was recorded in the range (deleted by retention,
    recording off, or the camera was down).
    """
    if end <= start:
        raise RecordingError(f"empty range {start.isoformat()} … {end.isoformat()}")
    codec: Codec = "mjpeg" if out.suffix == ".avi" else "vp8"
    writer: cv2.VideoWriter | None = None
    size: tuple[int, int] | None = None
    written = 0
    tmp = out.with_name(f".{out.stem}.part{out.suffix}")
    try:
        for seg in store.segments(camera_id):
            if seg.end < start or seg.start > end:
                continue
            for at, frame in _segment_frames(seg):
                if not start <= at <= end:
                    continue
                if writer is None:
                    size = (frame.shape[1], frame.shape[0])
                    writer = open_writer(tmp, codec, fps, size)
                writer.write(frame if (frame.shape[1], frame.shape[0]) == size else cv2.resize(frame, size))
                written += 1
    finally:
        if writer is not None:
            with quiet_opencv():
                writer.release()
    if not written:
        tmp.unlink(missing_ok=True)
        raise RecordingError(f"camera {camera_id}: nothing recorded between {start.isoformat()} and {end.isoformat()}")
    tmp.replace(out)
    return out
