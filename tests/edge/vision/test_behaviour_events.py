"""Behaviour events from a model: k-of-n dwell, hysteresis, cool-down (one alert per incident), schedule.

A tiny YOLOv8-format graph reports one ``cigarette`` box in the kitchen zone whose score is the picture's mean
brightness: a bright frame (≈0.9) is a hit, a dark one (≈0.24) is not. Frames come at 5 fps (0.2 s apart).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edge.vision.pipeline import CameraPipeline
from protocols.messages import AlertPhase
from tests.edge.vision.helpers import sim_camera_config
from tests.edge.vision.onnx_graphs import cigarette_model

WORKING = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: working hours of the sim kitchen


def pipeline(tmp_path: Path, **rule: Any) -> CameraPipeline:
    rules = {
        "event": "smoking",
        "labels": ["cigarette"],
        "zones": ["kitchen"],
        "min_score": 0.5,
        "dwell_k": 3,
        "dwell_n": 5,
        "raise_after_s": 0,
        "clear_after_s": 1.0,
        "cooldown_s": 5,
    } | rule
    model_cfg = cigarette_model(tmp_path, "brightness") | {"rules": [rules]}
    cfg = sim_camera_config(models=[model_cfg], people={"enabled": False}, tamper={"enabled": False})
    return CameraPipeline(cfg)


def run(pipe: CameraPipeline, bright: set[int], frames: int, start: datetime = WORKING) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(frames):
        level = 230 if i in bright else 60
        frame = np.clip(level + rng.normal(0, 4, (240, 320, 3)), 0, 255).astype(np.uint8)
        t = round(i * 0.2, 1)
        for tr in pipe.process(frame, t, start + timedelta(seconds=t)).transitions:
            out.append((tr.phase, tr.rule_id, t, tr.message))
    return out


# frame indices that are bright (a cigarette seen)
STRAY = {0}  # one stray box: 1 of 5, nothing
INCIDENT = {5, 6, 8, *range(9, 15), *range(16, 22)}  # one dark frame (7, 15) inside does not end it
RELAPSE = set(range(30, 35))  # within the cool-down after the clear
LATER = set(range(55, 60))  # after the cool-down


def test_k_of_n_dwell_one_alert_per_incident_and_cooldown(tmp_path: Path) -> None:
    events = run(pipeline(tmp_path), STRAY | INCIDENT | RELAPSE | LATER, 64)
    assert [(p, r, t) for p, r, t, _ in events] == [
        (AlertPhase.RAISE, "smoking.kitchen", 1.6),  # third hit among the last five inferences (frames 5, 6, 8)
        (AlertPhase.CLEAR, "smoking.kitchen", 5.6),  # last hit frame 21; 3 of 5 hold to frame 23 (4.6 s), +1 s
        (AlertPhase.RAISE, "smoking.kitchen", 11.4),  # frames 30–34 fell in the 5 s cool-down; 55–57 raise
    ]
    assert "后厨操作区" in events[0][3] and "吸烟" in events[0][3] and "后厨摄像头1" in events[0][3]


def test_working_hours_schedule_gates_the_event(tmp_path: Path) -> None:
    frames = INCIDENT
    assert run(pipeline(tmp_path, when="after_hours"), frames, 30) == [], "10:00 is working time"
    night = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)  # 00:00 in Shanghai
    phases = [(p, t) for p, _, t, _ in run(pipeline(tmp_path, when="after_hours"), frames, 30, night)]
    assert phases == [(AlertPhase.RAISE, 1.6), (AlertPhase.CLEAR, 5.6)]
    # a rule's own schedule overrides the camera's: never working → after hours even at 10:00
    own = pipeline(tmp_path, when="after_hours", schedule={"windows": []})
    assert [(p, t) for p, _, t, _ in run(own, frames, 30)] == phases


def test_vocabulary_defaults_and_zone_filter(tmp_path: Path) -> None:
    # the box lies in the kitchen zone; a rule for another zone never fires
    pipe = pipeline(tmp_path, zones=[], cooldown_s=None)
    [raise_, _clear] = run(pipe, INCIDENT, 30)
    assert raise_[1] == "smoking.kitchen"
    model = pipe._model_cfg["kitchen-behaviour"]
    severity, category, _msg, cooldown = model.rules[0].resolved()
    assert (severity.value, category, cooldown) == ("major", "food_safety", 300.0)
