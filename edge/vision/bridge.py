"""Cameras inside the edge agent: lifecycle transitions → the agent's durable outbox, evidence → cloud.

:class:`OutboxAlertSink` turns each :class:`~edge.vision.lifecycle.Transition` into a protocols
``AlertEvent`` written to the agent's outbox (same seq sequence as everything else, deleted only on
the cloud's Ack) and, **in the same transaction**, the camera's open-alert state into the
``camera_alert_state`` table — the pattern the rule engine uses — so a restart neither forgets an
open camera alert nor raises it twice.

:class:`CameraBridge` owns the camera service, the evidence store and the uploader; the agent
creates it, awaits :meth:`CameraBridge.run` as one of its tasks and adds :meth:`health` to its
heartbeat and :meth:`announced_devices` to its announce.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.vision.config import CameraConfig, EvidenceConfig
from edge.vision.evidence import EvidenceStore, EvidenceUploader, UploadQueue
from protocols.messages import AlertEvent, AlertPhase, AnnouncedDevice, EvidenceRef, encode
from protocols.topics import Channel

if TYPE_CHECKING:
    from edge.outbox import Outbox
    from edge.vision.lifecycle import Transition
    from edge.vision.recording import RecordingStore
    from edge.vision.service import CameraService

log = logging.getLogger(__name__)

#: the longest recorded range one export_range command may ask for
MAX_EXPORT_S = 1800


def export_to_evidence(
    recordings: RecordingStore, store: EvidenceStore, camera_id: str, start: datetime, end: datetime
) -> EvidenceRef:
    """Cut ``[start, end]`` of a camera's recording into one WebM, store it as evidence (queued for upload) and
    remove the working file. Raises ValueError (Chinese) for a bad range or nothing recorded."""
    from edge.vision.recording import RecordingError, export_range

    if end <= start or (end - start).total_seconds() > MAX_EXPORT_S:
        raise ValueError(f"时段须大于 0 且不超过 {MAX_EXPORT_S // 60} 分钟")
    work = store.directory / f".export-{camera_id}-{os.getpid()}.webm"
    try:
        out = export_range(recordings, camera_id, start, end, work)
        return store.put_clip(out.read_bytes(), "video/webm", "remote_export")
    except RecordingError as exc:
        raise ValueError(f"无录像可导出：{exc}") from None
    finally:
        work.unlink(missing_ok=True)


_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS camera_alert_state (
    device_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (device_id, rule_id)
);
"""


class OutboxAlertSink:
    def __init__(self, outbox: Outbox, site_id: str, agent_id: str, wake: Callable[[], None] | None = None) -> None:
        self.outbox = outbox
        self.site_id, self.agent_id = site_id, agent_id
        self._wake = wake
        outbox.db.executescript(_STATE_SCHEMA)
        self.written = 0

    def open_alerts(self) -> dict[str, list[dict[str, Any]]]:
        """Saved open alerts per camera (for :class:`CameraService` ``restore``)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for device_id, state in self.outbox.db.execute("SELECT device_id, state FROM camera_alert_state"):
            out.setdefault(device_id, []).append(json.loads(state))
        return out

    def write(self, t: Transition) -> int:
        """Append the event (and the open-alert state change) to the outbox in one transaction; returns its seq."""

        def build(seq: int) -> bytes:
            return encode(AlertEvent(site_id=self.site_id, agent_id=self.agent_id, seq=seq, **t.alert_fields()))

        key = (t.device_id, t.rule_id)
        state = t.open_state()

        def persist(db: sqlite3.Connection) -> None:
            if t.phase is AlertPhase.CLEAR:
                db.execute("DELETE FROM camera_alert_state WHERE device_id = ? AND rule_id = ?", key)
            else:
                db.execute(
                    "INSERT INTO camera_alert_state (device_id, rule_id, state) VALUES (?,?,?) "
                    "ON CONFLICT(device_id, rule_id) DO UPDATE SET state = excluded.state",
                    (*key, json.dumps(state, ensure_ascii=False)),
                )

        seq = self.outbox.append(Channel.EVENTS.value, build, is_alert=True, extra=persist)
        self.written += 1
        log.info("camera alert %s %s/%s: %s", t.phase.value, t.device_id, t.rule_id, t.message)
        if self._wake is not None:
            self._wake()
        return seq


class CameraBridge:
    def __init__(
        self,
        cameras: list[CameraConfig],
        outbox: Outbox,
        *,
        site_id: str,
        agent_id: str,
        data_dir: Path,
        evidence: EvidenceConfig | None = None,
        wake: Callable[[], None] | None = None,
        token: Callable[[], str | None] | None = None,
    ) -> None:
        self.cameras = [c for c in cameras if c.enabled]
        ev = evidence or EvidenceConfig()
        directory = ev.directory if ev.directory.is_absolute() else data_dir / "evidence"
        self.queue = UploadQueue(directory / "uploads.db")
        self.store = EvidenceStore(directory, max_bytes=ev.max_bytes, max_count=ev.max_count, queue=self.queue)
        self.sink = OutboxAlertSink(outbox, site_id, agent_id, wake)
        self.recordings: RecordingStore | None = None
        if any(c.recording_mode != "off" for c in self.cameras):
            from edge.vision.recording import RecordingStore  # OpenCV: only for an agent with cameras

            rec_dir = ev.recordings_dir if ev.recordings_dir.is_absolute() else data_dir / ev.recordings_dir
            self.recordings = RecordingStore(
                rec_dir,
                retention_days=max(c.recording.retention_days for c in self.cameras),
                max_bytes=ev.recordings_max_bytes,
                min_free_bytes=ev.recordings_min_free_bytes,
            )
        self.uploader = (
            EvidenceUploader(self.store, self.queue, ev.upload_url, token or (lambda: os.environ.get(ev.token_env)))
            if ev.upload_url
            else None
        )
        self.service: CameraService | None = None

    @classmethod
    def from_site(cls, config: Any, outbox: Outbox, wake: Callable[[], None] | None = None) -> CameraBridge:
        """From the agent's ``SiteConfig`` (``cameras``, ``agent``, optional ``evidence``)."""
        return cls(
            list(config.cameras),
            outbox,
            site_id=config.agent.site_id,
            agent_id=config.agent.agent_id,
            data_dir=Path(config.agent.data_dir),
            evidence=getattr(config, "evidence", None),
            wake=wake,
        )

    def _write(self, t: Transition) -> None:
        self.sink.write(t)

    async def run(self, stop: asyncio.Event) -> None:
        """Run the cameras (worker threads) and the uploader until ``stop`` is set."""
        if not self.cameras:
            try:
                await stop.wait()
            finally:
                self.queue.close()
            return
        # OpenCV (~35 MB RSS) is imported only by an agent that has cameras
        from edge.vision.service import CameraService

        loop = asyncio.get_running_loop()
        self.service = CameraService(
            self.cameras,
            self._write,
            evidence_store=self.store,
            loop=loop,
            restore=self.sink.open_alerts(),
            recordings=self.recordings,
        )
        self.service.start()
        uploader = asyncio.create_task(self.uploader.run(stop), name="evidence-uploader") if self.uploader else None
        try:
            await stop.wait()
        finally:
            await asyncio.to_thread(self.service.stop)
            if uploader is not None:
                await uploader
            self.queue.close()

    def health(self) -> dict[str, str]:
        return self.service.health() if self.service is not None else {}

    def reasons(self) -> dict[str, str]:
        """camera id → why it is down (its worker's last reason), for the cameras that have one."""
        if self.service is None:
            return {}
        return {cid: w.reason for cid, w in self.service.workers.items() if w.reason}

    def without_frame(self) -> dict[str, str]:
        """camera id → why, for each camera without a decoded frame since this bridge started its cameras
        (every camera, while the service is not up yet)."""
        if self.service is None:
            return {c.camera_id: "尚未启动" for c in self.cameras}
        return self.service.without_frame()

    async def export_range(self, camera_id: str, start: datetime, end: datetime) -> EvidenceRef:
        """The recorded video of ``camera_id`` in ``[start, end]`` into the evidence store (ValueError if none)."""
        if self.recordings is None:
            raise ValueError("本代理未开启录像（摄像头 recording_mode 均为 off）")
        return await asyncio.to_thread(export_to_evidence, self.recordings, self.store, camera_id, start, end)

    async def snapshot(self, camera_id: str) -> EvidenceRef:
        """A frame of ``camera_id`` now, through the evidence store and its upload queue (ValueError if none)."""
        if self.service is None:
            raise ValueError(f"没有摄像头 {camera_id}（本代理未运行摄像头）")
        return await asyncio.to_thread(self.service.snapshot, camera_id)

    def announced_devices(self) -> list[AnnouncedDevice]:
        return [
            AnnouncedDevice(device_id=c.camera_id, device_type="camera", model=c.name or None) for c in self.cameras
        ]
