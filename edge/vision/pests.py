"""Night pest heuristic (疑似鼠患): small, fast blobs in a kitchen zone while dark or after hours.

This is an honest heuristic, not a detector: it reports *suspected* activity with a confidence in
[0, 0.9] built from how small, how fast and how persistent the track is; a person must review the
snapshot. Motion blobs are tracked frame to frame by nearest centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.vision.config import PestConfig
from edge.vision.geometry import Box, Mask

MAX_CONFIDENCE = 0.9


@dataclass(slots=True)
class _Track:
    points: list[tuple[float, float, float]] = field(default_factory=list)  # ts, x, y (analysis px)
    boxes: list[Box] = field(default_factory=list)

    @property
    def last(self) -> tuple[float, float, float]:
        return self.points[-1]


@dataclass(frozen=True, slots=True)
class PestSighting:
    zone_id: str
    confidence: float
    speed: float
    """Frame heights per second."""
    box: Box
    """On the analysis frame."""


class PestHeuristic:
    def __init__(self, config: PestConfig, zone_masks: dict[str, Mask]) -> None:
        self._cfg = config
        self._zones = zone_masks
        self._tracks: list[_Track] = []

    def update(self, foreground: Mask | None, ts: float, *, dark: bool, after_hours: bool) -> list[PestSighting]:
        cfg = self._cfg
        if foreground is None or not (dark or after_hours) or not self._zones:
            self._tracks.clear()
            return []
        h, w = foreground.shape
        max_area = cfg.max_blob_area * h * w
        contours, _ = cv2.findContours(foreground, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        blobs: list[Box] = []
        for c in contours:
            area = cv2.contourArea(c)
            if cfg.min_blob_area_px <= area <= max_area:
                x, y, bw, bh = cv2.boundingRect(c)
                blobs.append(Box(x, y, x + bw, y + bh))
        self._associate(blobs, ts, h)

        sightings: list[PestSighting] = []
        for track in self._tracks:
            if len(track.points) < cfg.min_track_points or track.last[0] != ts:
                continue
            t0, x0, y0 = track.points[0]
            t1, x1, y1 = track.last
            if t1 <= t0:
                continue
            speed = math.hypot(x1 - x0, y1 - y0) / h / (t1 - t0)
            if speed < cfg.min_speed:
                continue
            zone = self._zone_of(track.boxes[-1])
            if zone is None:
                continue
            rel_size = track.boxes[-1].area / max(1.0, max_area)
            confidence = (
                0.35
                + 0.2 * min(1.0, (len(track.points) - 1) / 6)
                + 0.15 * min(1.0, speed / (3 * cfg.min_speed))
                + 0.1 * (1.0 - min(1.0, rel_size))
                + (0.1 if dark and after_hours else 0.0)
            )
            confidence = round(min(MAX_CONFIDENCE, confidence), 2)
            if confidence >= cfg.min_confidence:
                sightings.append(PestSighting(zone, confidence, speed, track.boxes[-1]))
        return sightings

    def _associate(self, blobs: list[Box], ts: float, height: int) -> None:
        max_jump = 0.35 * height
        alive: list[_Track] = []
        unused = list(blobs)
        for track in self._tracks:
            if ts - track.last[0] > 1.0:
                continue  # lost for a second: forget it
            _, tx, ty = track.last
            best = min(unused, key=lambda b: math.hypot(b.centre[0] - tx, b.centre[1] - ty), default=None)
            if best is not None and math.hypot(best.centre[0] - tx, best.centre[1] - ty) <= max_jump:
                unused.remove(best)
                track.points.append((ts, *best.centre))
                track.boxes.append(best)
                del track.points[:-12], track.boxes[:-12]
            alive.append(track)
        for blob in unused:
            alive.append(_Track([(ts, *blob.centre)], [blob]))
        self._tracks = alive[:32]

    def _zone_of(self, box: Box) -> str | None:
        cx, cy = (int(v) for v in box.centre)
        for zone_id, mask in self._zones.items():
            if 0 <= cy < mask.shape[0] and 0 <= cx < mask.shape[1] and mask[cy, cx]:
                return zone_id
        return None


def scene_is_dark(small: np.ndarray, dark_mean: float) -> bool:
    return float(small.mean()) < dark_mean
