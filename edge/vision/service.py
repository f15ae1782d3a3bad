"""Camera service: one worker thread per camera (read → analyse → emit), owned and stopped cleanly.

Decoding and analysis run in the worker threads, never on the agent's event loop. OpenCV releases
the GIL in its heavy calls, so cameras use the cores in parallel. Each worker:

- grabs frames as fast as the source delivers them, but decodes and analyses only at
  ``analysis_fps``;
- reports ``video_offline`` when nothing arrived for ``offline_after_s`` and reopens the stream with
  exponential back-off (``reopen_backoff_s`` … ``reopen_backoff_max_s``); the alert clears on the
  first frame that arrives again;
- hands every lifecycle transition to ``emit`` — from the worker thread, or on ``loop`` through
  ``call_soon_threadsafe`` when a loop is given (the agent's outbox lives on its loop).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from edge.vision.config import CameraConfig
from edge.vision.evidence import EvidenceStore
from edge.vision.lifecycle import Transition
from edge.vision.pipeline import CameraPipeline, ClipSink, EvidenceSink
from edge.vision.recording import RecordingStore, SegmentRecorder
from edge.vision.snapshot import Snapshot, render_snapshot
from edge.vision.source import FrameSource, SourceEnded, SourceError, open_source
from protocols.messages import EvidenceRef

log = logging.getLogger(__name__)

Emit = Callable[[Transition], None]
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CameraWorker:
    def __init__(
        self,
        config: CameraConfig,
        emit: Emit,
        *,
        evidence: EvidenceSink | None = None,
        clock: Clock = _utc_now,
        source: FrameSource | None = None,
        clip_sink: ClipSink | None = None,
        recorder: SegmentRecorder | None = None,
    ) -> None:
        self.config = config
        self.pipeline = CameraPipeline(config, evidence=evidence, clip_sink=clip_sink)
        self.recorder = recorder
        self.reason: str | None = None
        """Why the camera is down (Chinese, for the log, the alert and the operator)."""
        self._emit = emit
        self._clock = clock
        self._source = source or open_source(config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{config.camera_id}")
        self.frames_grabbed = 0
        self.frames_analysed = 0
        self.reopens = 0
        self.state = "starting"
        self.last_frame: tuple[Any, datetime] | None = None
        """The last decoded frame and its wall time (for an on-demand snapshot)."""

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("camera %s: worker did not stop within %.0f s", self.config.camera_id, timeout)

    def _publish(self, transitions: list[Transition]) -> None:
        for t in transitions:
            try:
                self._emit(t)
            except Exception:
                log.exception("camera %s: emitting %s %s failed", self.config.camera_id, t.phase, t.rule_id)

    def _wait_silent(self, duration: float, last_frame: float) -> None:
        """Wait (stoppable) while no frames come, keeping the offline judgement current."""
        end = time.monotonic() + duration
        while not self._stop.is_set():
            now = time.monotonic()
            self._publish(self.pipeline.no_frame(now, self._clock(), now - last_frame, reason=self.reason))
            if now >= end:
                return
            self._stop.wait(min(0.5, end - now))

    def _run(self) -> None:
        cfg, health = self.config, self.config.health
        src, pipe = self._source, self.pipeline
        interval = 1.0 / cfg.analysis_fps
        backoff = health.reopen_backoff_s
        opened = False
        last_frame = time.monotonic()  # last frame that arrived
        failing_since: float | None = None  # first frame that did not decode since the last one that did
        opened_at = last_frame
        next_analysis = 0.0
        error_logged = corrupt_logged = False
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if not opened:
                    try:
                        src.open()
                        opened = True
                        opened_at = time.monotonic()  # each connection gets its own chance to decode
                        self.state = "ok"
                        if error_logged:
                            log.info("camera %s: stream reopened", cfg.camera_id)
                        error_logged = False
                    except SourceError as exc:
                        self.reason = str(exc)
                        if not error_logged:
                            log.error("camera %s: %s; retrying with back-off", cfg.camera_id, exc)
                            error_logged = True
                        self.state = "down"
                        self._wait_silent(backoff, last_frame)
                        backoff = min(backoff * 2, health.reopen_backoff_max_s)
                        self.reopens += 1
                        continue
                try:
                    got = src.grab()
                except SourceEnded as exc:
                    log.info("camera %s: %s; the camera stops (loop_file = false)", cfg.camera_id, exc)
                    self.state, self.reason = "ended", str(exc)
                    return
                except SourceError as exc:
                    self.reason = str(exc)
                    if not error_logged:
                        log.warning("camera %s: %s; reopening", cfg.camera_id, exc)
                        error_logged = True
                    src.close()
                    opened = False
                    self._wait_silent(min(backoff, 1.0), last_frame)
                    continue
                now = time.monotonic()
                if got:
                    last_frame = now
                # a stream of garbage is no stream: no frame decoded for offline_after_s since the first failure
                garbage = failing_since is not None and now - max(failing_since, opened_at) >= health.offline_after_s
                if not got or garbage:
                    since = failing_since if garbage and failing_since is not None else last_frame
                    silent = now - since
                    self._publish(pipe.no_frame(now, self._clock(), silent, reason=self.reason))
                    if garbage or silent >= health.offline_after_s:
                        self.state = "down"
                        src.close()  # a stalled (or garbage-only) connection: reconnect
                        opened = False
                        self._wait_silent(backoff, since)
                        backoff = min(backoff * 2, health.reopen_backoff_max_s)
                        self.reopens += 1
                    continue
                self.frames_grabbed += 1
                if now < next_analysis:
                    continue
                next_analysis = max(next_analysis + interval, now - interval)
                try:
                    frame = src.retrieve()
                except SourceError as exc:
                    failing_since = now if failing_since is None else failing_since
                    self.reason = f"无有效画面（{exc}）"
                    if not corrupt_logged:
                        log.warning("camera %s: %s (logged once until a frame decodes)", cfg.camera_id, exc)
                        corrupt_logged = True
                    continue
                if corrupt_logged:
                    log.info("camera %s: frames decode again", cfg.camera_id)
                corrupt_logged = False
                failing_since = None
                backoff = health.reopen_backoff_s
                self.state, self.reason = "ok", None
                wall = self._clock()
                self.last_frame = (frame, wall)
                self._publish(pipe.frame_arrived(now, wall))
                report = pipe.process(frame, now, wall)
                self.frames_analysed += 1
                self._publish(report.transitions)
                if self.recorder is not None:
                    try:
                        self.recorder.write(frame, wall, motion=bool(report.motion and report.motion.active))
                    except OSError as exc:
                        log.error("camera %s: recording failed: %s", cfg.camera_id, exc)
                        self.recorder = None
        except Exception:
            log.exception("camera %s: worker crashed", cfg.camera_id)
            self.state = "down"
        finally:
            src.close()
            pipe.close()
            if self.recorder is not None:
                self.recorder.close()


def _recorder(store: RecordingStore | None, cam: CameraConfig) -> SegmentRecorder | None:
    mode = cam.recording_mode
    if store is None or mode == "off":
        return None
    rc = cam.recording
    store.camera_retention[cam.camera_id] = timedelta(days=rc.retention_days)
    return SegmentRecorder(
        store,
        cam.camera_id,
        mode=mode,
        segment_s=rc.segment_s,
        fps=cam.analysis_fps,
        max_width=rc.max_width,
        codec=rc.codec,
        motion_hold_s=rc.motion_hold_s,
    )


class CameraService:
    """All cameras of a site. ``start()`` spawns the workers, ``stop()`` joins them."""

    def __init__(
        self,
        cameras: list[CameraConfig],
        emit: Emit,
        *,
        evidence_store: EvidenceStore | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        clock: Clock = _utc_now,
        restore: dict[str, list[dict[str, Any]]] | None = None,
        sources: dict[str, FrameSource] | None = None,
        recordings: RecordingStore | None = None,
    ) -> None:
        self._emit_target = emit
        self._loop = loop
        self._store = evidence_store
        self.workers: dict[str, CameraWorker] = {}
        for cam in cameras:
            if not cam.enabled:
                continue
            worker = CameraWorker(
                cam,
                self._emit,
                evidence=self._evidence if evidence_store is not None else None,
                clock=clock,
                source=(sources or {}).get(cam.camera_id),
                clip_sink=evidence_store.put_clip if evidence_store is not None else None,
                recorder=_recorder(recordings, cam),
            )
            if restore and cam.camera_id in restore:
                worker.pipeline.lifecycle.restore_open(restore[cam.camera_id], time.monotonic())
            self.workers[cam.camera_id] = worker

    def _evidence(self, snapshot: Snapshot, label: str) -> EvidenceRef:
        assert self._store is not None
        return self._store.put(snapshot, label)

    def _emit(self, transition: Transition) -> None:
        if self._loop is None:
            self._emit_target(transition)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._emit_target, transition)

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()

    def stop(self) -> None:
        for worker in self.workers.values():
            worker._stop.set()
        for worker in self.workers.values():
            worker.stop()

    def snapshot(self, camera_id: str) -> EvidenceRef:
        """The camera's last decoded frame as a JPEG in the evidence store (uploaded like an alert's snapshot).

        Raises ValueError (Chinese) when there is no such camera, no frame yet or no evidence store."""
        worker = self.workers.get(camera_id)
        if worker is None:
            raise ValueError(f"没有摄像头 {camera_id}（已配置：{', '.join(self.workers) or '无'}）")
        if self._store is None:
            raise ValueError("本代理未配置证据存储")
        last = worker.last_frame
        if last is None:
            raise ValueError(f"摄像头 {camera_id} 尚无画面（{worker.reason or worker.state}）")
        frame, wall = last
        caption = f"remote snapshot {camera_id}"
        return self._store.put(render_snapshot(frame, [], [], caption=caption, ts=wall), "remote_snapshot")

    def without_frame(self) -> dict[str, str]:
        """camera id → why, for every camera that has not decoded a frame since it started (cannot be opened,
        garbage only, or not yet): the push trial's camera verdict (edge/agent.py ``health_problems``)."""
        return {
            cid: w.reason or ("尚未打开" if w.state == "starting" else w.state)
            for cid, w in self.workers.items()
            if w.last_frame is None
        }

    def health(self) -> dict[str, str]:
        """camera id → ok | degraded | down (for the heartbeat's driver map)."""
        out = {}
        for cid, w in self.workers.items():
            open_rules = w.pipeline.lifecycle.open_rules()
            degraded = bool(open_rules & {"video_frozen", "camera_covered", "camera_defocused", "camera_moved"})
            state = "down" if w.state == "ended" else w.state
            out[f"camera:{cid}"] = state if state != "ok" else ("degraded" if degraded else "ok")
        return out
