"""Cheap motion detection on a small greyscale frame; it gates every heavier analysis.

The frame is normalised for global brightness against the background before differencing, so a
lamp that dims or flickers changes nothing; a frame where most pixels change anyway is treated as
a lighting change (or tamper, which the tamper detector judges) and reports no motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.vision.config import MotionConfig
from edge.vision.geometry import Box, Mask, merge_boxes

Grey = NDArray[Any]


@dataclass(slots=True)
class MotionResult:
    boxes: list[Box] = field(default_factory=list)
    """Motion regions on the analysis frame."""
    foreground: Mask | None = None
    """0/255 foreground mask on the analysis frame (masked areas removed)."""
    changed_fraction: float = 0.0
    lighting_change: bool = False
    active: bool = False
    """Motion has lasted at least ``min_duration_s``."""
    zone_fraction: dict[str, float] = field(default_factory=dict)


class MotionDetector:
    def __init__(self, config: MotionConfig, valid_mask: Mask, zone_masks: dict[str, Mask]) -> None:
        self._cfg = config
        self._valid = valid_mask
        self._valid_count = max(1, int(np.count_nonzero(valid_mask)))
        self._zones = zone_masks
        self._zone_counts = {z: max(1, int(np.count_nonzero(m))) for z, m in zone_masks.items()}
        self._background: NDArray[Any] | None = None
        self._threshold = 10 + (1 - config.sensitivity) * 30
        self._min_area_px = max(2.0, config.min_area * valid_mask.size)
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._motion_since: float | None = None

    def reset(self) -> None:
        self._background = None
        self._motion_since = None

    def detect(self, grey: Grey, ts: float) -> MotionResult:
        frame = cv2.GaussianBlur(grey, (5, 5), 0).astype(np.float32)
        if self._background is None:
            self._background = frame.copy()
            return MotionResult(foreground=np.zeros_like(grey))
        bg = self._background
        valid = self._valid > 0
        cur_mean = float(frame[valid].mean())
        bg_mean = float(bg[valid].mean())
        gain = bg_mean / cur_mean if cur_mean > 1 else 1.0
        normalised = frame * gain
        diff = cv2.absdiff(normalised, bg)
        fg: Mask = np.where((diff > self._threshold) & valid, 255, 0).astype(np.uint8)
        changed = np.count_nonzero(fg) / self._valid_count

        if changed > self._cfg.lighting_reject_fraction:
            # Lighting (or a tamper the tamper detector reports): relearn fast, report nothing.
            cv2.accumulateWeighted(frame, bg, 0.5)
            self._motion_since = None
            return MotionResult(foreground=np.zeros_like(grey), changed_fraction=changed, lighting_change=True)

        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._kernel)
        fg = cv2.dilate(fg, self._kernel, iterations=2)
        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = [
            Box(x, y, x + w, y + h)
            for c in contours
            if cv2.contourArea(c) >= self._min_area_px
            for x, y, w, h in [cv2.boundingRect(c)]
        ]
        boxes = merge_boxes(boxes, gap=max(2, grey.shape[0] // 30))

        # Background: learn slowly where there is motion, normally elsewhere (in gain-normalised units).
        alpha = self._cfg.background_alpha
        still = cv2.bitwise_not(fg)
        cv2.accumulateWeighted(normalised, bg, alpha, mask=still)
        cv2.accumulateWeighted(normalised, bg, alpha / 10, mask=fg)
        if abs(gain - 1) > 0.01:
            # follow the lighting level slowly so that the normalisation never drifts far
            cv2.accumulateWeighted(frame, bg, alpha / 4)

        if boxes:
            if self._motion_since is None:
                self._motion_since = ts
        else:
            self._motion_since = None
        active = bool(boxes) and ts - (self._motion_since or ts) >= self._cfg.min_duration_s
        zone_fraction = {
            z: float(np.count_nonzero(cv2.bitwise_and(fg, m)) / self._zone_counts[z]) for z, m in self._zones.items()
        }
        return MotionResult(
            boxes=boxes,
            foreground=fg,
            changed_fraction=changed,
            active=active,
            zone_fraction=zone_fraction,
        )
