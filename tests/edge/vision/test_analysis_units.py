"""Motion, people, tamper, lifecycle and config on synthetic frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from edge.vision.config import CameraConfig, MotionConfig, Schedule, TamperConfig, WorkWindow
from edge.vision.geometry import Box, polygon_mask
from edge.vision.lifecycle import AlertLifecycle, Observation
from edge.vision.motion import MotionDetector
from edge.vision.people import PeopleDetector
from edge.vision.pipeline import CameraPipeline
from edge.vision.tamper import TamperDetector
from protocols.messages import AlertPhase, Severity
from simulators.camera.scene import draw_person, render_kitchen
from tests.edge.vision.helpers import sim_camera_config

W, H = 320, 240


def _small(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (160, 120), interpolation=cv2.INTER_AREA)


def _detector(**kw: object) -> MotionDetector:
    valid = np.full((120, 160), 255, np.uint8)
    return MotionDetector(MotionConfig(**kw), valid, {"all": valid})  # type: ignore[arg-type]


def test_motion_ignores_global_brightness_changes_but_sees_a_moving_object() -> None:
    bg = render_kitchen(W, H, seed=1)
    det = _detector(min_duration_s=0)
    det.detect(_small(bg), 0.0)
    for i, gain in enumerate((0.6, 1.0, 0.55, 0.9, 0.5, 1.0)):
        res = det.detect(_small(np.clip(bg * gain, 0, 255).astype(np.uint8)), 0.2 * (i + 1))
        assert not res.boxes, f"lighting gain {gain} was taken for motion"
    frame = bg.copy()
    draw_person(frame, 200, 230, 140)
    res = det.detect(_small(frame), 2.0)
    assert res.boxes and res.active
    box = max(res.boxes, key=lambda b: b.area).scaled(W / 160, H / 120)
    assert box.x1 <= 200 <= box.x2 and box.y2 >= 200  # full-frame coordinates around the figure


def test_motion_mask_and_min_duration() -> None:
    bg = render_kitchen(W, H, seed=2)
    valid = np.bitwise_not(polygon_mask([[(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]], 160, 120))
    det = MotionDetector(MotionConfig(min_duration_s=0.5), valid, {"left": valid})
    det.detect(_small(bg), 0.0)
    frame = bg.copy()
    draw_person(frame, 250, 230, 140)  # right half: masked out
    assert not det.detect(_small(frame), 0.2).boxes
    frame2 = bg.copy()
    draw_person(frame2, 80, 230, 140)  # left half
    first = det.detect(_small(frame2), 0.4)
    assert first.boxes and not first.active  # not yet long enough
    assert det.detect(_small(frame2), 1.0).active


def test_hog_finds_the_simulated_person_and_not_the_empty_kitchen() -> None:
    people = PeopleDetector()
    for seed in range(3):
        empty = render_kitchen(W, H, seed=seed)
        assert people.detect(empty, [Box(0, 0, W, H)]) == []
        for x, size in ((90, 130), (220, 160)):
            frame = empty.copy()
            draw_person(frame, x, 232, size, phase=seed)
            found = people.detect(frame, [Box(x - 30, 232 - size, x + 30, 232)])
            assert len(found) == 1, (seed, x, size)
            assert found[0].box.x1 <= x <= found[0].box.x2


def test_occupancy_limit_raises_with_boxes() -> None:
    cfg = sim_camera_config(zones=[{"zone_id": "kitchen", "kind": "kitchen", "occupancy_limit": 1}])
    pipe = CameraPipeline(cfg)
    bg = render_kitchen(W, H, seed=4)
    day = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai: working hours
    raised = []
    for i in range(20):
        frame = bg.copy()
        if i >= 3:
            draw_person(frame, 60 + 4 * i, 232, 150, phase=i)
            draw_person(frame, 230 - 3 * i, 232, 150, phase=i + 1)
        rep = pipe.process(frame, i * 0.2, day + timedelta(seconds=i * 0.2))
        raised += [t for t in rep.transitions if t.phase is AlertPhase.RAISE]
    assert [t.rule_id for t in raised] == ["occupancy_exceeded.kitchen"]
    assert raised[0].value == 2 and raised[0].limit == 1 and len(raised[0].boxes) == 2


def test_tamper_relearns_a_new_view_after_the_configured_time() -> None:
    import cv2

    cfg = TamperConfig(warmup_s=0.5, relearn_after_s=10)
    det = TamperDetector(cfg)
    scene = render_kitchen(W, H, seed=6)
    m = cv2.getRotationMatrix2D((W / 2, H / 2), 12, 1.0)
    m[0, 2] += 70
    m[1, 2] += 20
    moved = cv2.warpAffine(scene, m, (W, H), borderMode=cv2.BORDER_REFLECT)
    grey = cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY)
    grey_moved = cv2.cvtColor(moved, cv2.COLOR_BGR2GRAY)
    for t in range(5):
        assert not det.check(_small(scene), grey, t * 0.2, motion_active=False).moved
    assert det.check(_small(moved), grey_moved, 2.0, motion_active=False).moved
    assert det.check(_small(moved), grey_moved, 11.0, motion_active=False).moved
    state = det.check(_small(moved), grey_moved, 12.5, motion_active=False)
    assert state.relearned and not state.moved
    assert not det.check(_small(moved), grey_moved, 13.0, motion_active=False).moved


def test_lifecycle_hysteresis_scope_and_restore() -> None:
    wall = datetime(2026, 11, 26, tzinfo=UTC)
    obs = Observation("camera_covered", Severity.MAJOR, "video", "遮挡", raise_after_s=1, clear_after_s=2)
    lc = AlertLifecycle("cam")
    assert lc.step(0, wall, [obs]) == []
    [raised] = lc.step(1.0, wall, [obs])
    assert raised.phase is AlertPhase.RAISE
    assert lc.step(1.5, wall, []) == []  # not absent long enough
    assert lc.step(5.0, wall, [], scope={"video_offline"}) == []  # out of scope: frozen
    saved = lc.export_open()
    restored = AlertLifecycle("cam")
    restored.restore_open(saved, now=10.0)
    assert restored.step(11.0, wall, [obs]) == []  # same instance, no second raise
    [cleared] = restored.step(20.0, wall, [])
    assert cleared.phase is AlertPhase.CLEAR and cleared.alert_id == raised.alert_id


def test_schedule_overnight_window_and_config_errors() -> None:
    from datetime import time

    s = Schedule(windows=[WorkWindow(days=[5], start=time(18, 0), end=time(2, 0))])
    sh = timedelta(hours=8)
    friday_23 = datetime(2026, 11, 27, 23, 0, tzinfo=UTC) - sh
    saturday_01 = datetime(2026, 11, 28, 1, 0, tzinfo=UTC) - sh
    saturday_03 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC) - sh
    assert s.is_working(friday_23) and s.is_working(saturday_01) and not s.is_working(saturday_03)
    with pytest.raises(ValidationError, match="analysis_fps"):
        CameraConfig.model_validate({"camera_id": "c1", "source": "x.avi", "analysis_fps": 0})
    with pytest.raises(ValidationError, match="zone ids must be unique"):
        CameraConfig.model_validate(
            {"camera_id": "c1", "source": "x.avi", "zones": [{"zone_id": "a"}, {"zone_id": "a"}]}
        )
    assert CameraConfig(camera_id="c", source="http://h/s.mjpg").resolved_kind == "mjpeg"
    assert CameraConfig(camera_id="c", source="rtsp://h/s").resolved_kind == "ffmpeg"
    assert CameraConfig(camera_id="c", source="device:0").resolved_kind == "device"
    assert CameraConfig(camera_id="c", source="clip.avi").resolved_kind == "file"
