"""People: OpenCV's HOG + linear SVM detector on motion regions, and a tracker that keeps them stable.

The default detector window is 64×128 px for a person about 96 px tall. Each region is expanded to
a person-shaped crop, scaled so that the person lands in the detector's size range, and searched;
results are mapped back to full-frame coordinates and merged with non-maximum suppression.

Detection is the expensive part, so the pipeline runs it at ``detect_interval_s`` (default once a
second) while motion runs on every frame, and :class:`PersonTracker` carries people between
detections: a detection joins the nearest track (centre distance below ``match_distance`` × the
person's height), a track needs ``min_hits`` detections to count and survives ``hold_s`` without
one. A person HOG misses for a few seconds therefore neither clears a presence alert nor drops the
count; the count for occupancy is the median of the last detection rounds.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.vision.geometry import Box, non_max_suppression

Frame = NDArray[Any]
_WIN_W, _WIN_H = 64, 128


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    score: float
    box: Box


class PeopleDetector:
    """HOG on person-shaped crops around the given regions (scaled to at most ``max_crop_h`` px high)."""

    def __init__(
        self, hit_threshold: float = 0.3, max_regions: int = 4, scale_step: float = 1.05, max_crop_h: int = 256
    ) -> None:
        self._max_crop_h = max_crop_h
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
        self._hit_threshold = hit_threshold
        self._max_regions = max_regions
        self._scale_step = scale_step

    def detect(self, frame: Frame, regions: list[Box]) -> list[Detection]:
        """People in ``frame`` (BGR or grey, full size) whose body overlaps one of ``regions``."""
        height, width = frame.shape[:2]
        boxes: list[Box] = []
        scores: list[float] = []
        for crop in self._crops(regions, width, height):
            patch = frame[crop.y1 : crop.y2, crop.x1 : crop.x2]
            factor = min(1.0, self._max_crop_h / max(1, crop.height))
            if factor < 1.0:
                patch = cv2.resize(patch, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            if patch.shape[0] < _WIN_H or patch.shape[1] < _WIN_W:
                continue
            rects, weights = self._hog.detectMultiScale(
                patch, hitThreshold=self._hit_threshold, winStride=(8, 8), padding=(8, 8), scale=self._scale_step
            )
            for (x, y, w, h), score in zip(rects, np.ravel(weights), strict=False):
                boxes.append(
                    Box(
                        crop.x1 + int(x / factor),
                        crop.y1 + int(y / factor),
                        crop.x1 + int((x + w) / factor),
                        crop.y1 + int((y + h) / factor),
                    )
                )
                scores.append(float(score))
        keep = non_max_suppression(boxes, scores, iou=0.3)
        keep = [
            i
            for i in keep
            if not any(_mostly_inside(boxes[i], boxes[k]) for k in keep if k != i and scores[k] > scores[i])
        ]
        return [Detection("person", scores[i], boxes[i]) for i in keep]

    def _crops(self, regions: list[Box], width: int, height: int) -> list[Box]:
        """Person-shaped search windows around the biggest regions, merged where they overlap."""
        crops: list[Box] = []
        for region in sorted(regions, key=lambda b: b.area, reverse=True)[: self._max_regions]:
            h = max(region.height, region.width * 2, _WIN_H) * 1.4
            w = max(region.width * 1.4, h / 2)
            cx, cy = region.centre
            crop = Box(
                max(0, int(cx - w / 2)),
                max(0, int(cy - h / 2)),
                min(width, int(cx + w / 2)),
                min(height, int(cy + h / 2)),
            )
            for i, existing in enumerate(crops):
                if existing.iou(crop) > 0 or _contains(existing, crop) or _contains(crop, existing):
                    crops[i] = existing.union(crop)
                    break
            else:
                crops.append(crop)
        return crops


def _mostly_inside(inner: Box, outer: Box) -> bool:
    """``inner`` lies ≥ 70 % inside ``outer`` (HOG's nested hits on one person at two scales)."""
    ix = max(0, min(inner.x2, outer.x2) - max(inner.x1, outer.x1))
    iy = max(0, min(inner.y2, outer.y2) - max(inner.y1, outer.y1))
    return inner.area > 0 and ix * iy >= 0.7 * inner.area


def _contains(outer: Box, inner: Box) -> bool:
    return outer.x1 <= inner.x1 and outer.y1 <= inner.y1 and outer.x2 >= inner.x2 and outer.y2 >= inner.y2


@dataclass(slots=True)
class Track:
    track_id: int
    box: Box
    score: float
    first_seen: float
    last_seen: float
    hits: int = 1


@dataclass(slots=True)
class PersonTracker:
    """People carried between detection rounds (nearest-centre association, hold, median count)."""

    hold_s: float
    min_hits: int = 2
    match_distance: float = 0.75
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 1

    def update(self, detections: list[Detection], now: float) -> None:
        """One detection round: match, create, age out."""
        free = list(self.tracks)
        for d in sorted(detections, key=lambda x: -x.score):
            cx, cy = d.box.centre
            best: Track | None = None
            best_dist = float("inf")
            for t in free:
                tx, ty = t.box.centre
                reach = self.match_distance * max(t.box.height, d.box.height, 1)
                dist = ((cx - tx) ** 2 + (cy - ty) ** 2) ** 0.5
                if dist <= reach and dist < best_dist:
                    best, best_dist = t, dist
            if best is not None:
                free.remove(best)
                best.box, best.score, best.last_seen = d.box, d.score, now
                best.hits += 1
            else:
                self.tracks.append(Track(self._next_id, d.box, d.score, now, now))
                self._next_id += 1
        self.tracks = [t for t in self.tracks if now - t.last_seen <= self.hold_s]

    def live(self, now: float) -> list[Track]:
        """Confirmed tracks seen within ``hold_s``."""
        return [t for t in self.tracks if t.hits >= self.min_hits and now - t.last_seen <= self.hold_s]

    def seen_at(self, now: float) -> list[Track]:
        """Tracks the detection round at ``now`` saw (a one-round false hit is removed by the median count)."""
        return [t for t in self.tracks if t.last_seen == now]


def median_count(counts: deque[int]) -> int:
    return int(statistics.median_low(counts)) if counts else 0
