"""Shared helpers for the camera tests: the simulator's camera config and an offline scenario runner."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from edge.vision.config import CameraConfig
from edge.vision.lifecycle import Transition
from edge.vision.pipeline import CameraPipeline
from edge.vision.snapshot import Snapshot
from protocols.messages import AlertPhase, EvidenceRef
from simulators.camera.groundtruth import ObservedAlert
from simulators.camera.scenario import Scenario

ROOT = Path(__file__).resolve().parents[3]
CAMERAS = ROOT / "firmware-config" / "cameras"
SCENARIOS = CAMERAS / "scenarios"


def sim_camera_config(**overrides: Any) -> CameraConfig:
    raw = tomllib.loads((CAMERAS / "sim-kitchen.toml").read_text(encoding="utf-8"))
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return CameraConfig.model_validate(raw)


def scenario(name: str) -> Scenario:
    return Scenario.load(SCENARIOS / f"{name}.toml")


@dataclass
class Run:
    transitions: list[tuple[float, Transition]] = field(default_factory=list)
    snapshots: dict[str, bytes] = field(default_factory=dict)
    hog_runs: int = 0
    frames: int = 0

    def alerts(self) -> list[ObservedAlert]:
        raised: dict[str, tuple[str, float]] = {}
        out: list[ObservedAlert] = []
        for t, tr in self.transitions:
            if tr.phase is AlertPhase.RAISE:
                raised[tr.alert_id] = (tr.rule_id, t)
            elif tr.phase is AlertPhase.CLEAR and tr.alert_id in raised:
                rule, at = raised.pop(tr.alert_id)
                out.append(ObservedAlert(rule, at, t))
        out += [ObservedAlert(rule, at, None) for rule, at in raised.values()]
        return sorted(out, key=lambda a: a.raised_s)


def run_offline(sc: Scenario, config: CameraConfig | None = None, *, jpeg_quality: int = 80) -> Run:
    """Feed a scenario through a pipeline with the scenario's clock (frames JPEG round-tripped like a stream)."""
    run = Run()

    def sink(snap: Snapshot, label: str) -> EvidenceRef:
        run.snapshots[snap.sha256] = snap.jpeg
        return EvidenceRef(sha256=snap.sha256, size=snap.size, label=label[:64])

    pipe = CameraPipeline(config or sim_camera_config(), evidence=sink)
    silent_since: float | None = None
    for frame in sc.frames():
        wall = sc.at(frame.t)
        if frame.image is None:
            silent_since = frame.t if silent_since is None else silent_since
            out = pipe.no_frame(frame.t, wall, frame.t - silent_since)
        else:
            out = pipe.frame_arrived(frame.t, wall) if silent_since is not None else []
            silent_since = None
            ok, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            assert ok
            report = pipe.process(cv2.imdecode(buf, cv2.IMREAD_COLOR), frame.t, wall)
            out += report.transitions
            run.hog_runs += report.hog_runs
            run.frames += 1
        run.transitions += [(frame.t, tr) for tr in out]
    return run


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
