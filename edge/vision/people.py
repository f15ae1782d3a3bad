"""People with OpenCV's HOG + linear SVM people detector, run only on motion regions.

The default detector window is 64×128 px for a person about 96 px tall. Each region is expanded to
a person-shaped crop, scaled so that the person lands in the detector's size range, and searched;
results are mapped back to full-frame coordinates and merged with non-maximum suppression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.vision.geometry import Box, non_max_suppression

Frame = NDArray[Any]
_WIN_W, _WIN_H = 64, 128
_MAX_CROP_H = 256  # crops are scaled down to at most this height before the search


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    score: float
    box: Box


class PeopleDetector:
    def __init__(self, hit_threshold: float = 0.3, max_regions: int = 4) -> None:
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
        self._hit_threshold = hit_threshold
        self._max_regions = max_regions

    def detect(self, frame: Frame, regions: list[Box]) -> list[Detection]:
        """People in ``frame`` (BGR or grey, full size) whose body overlaps one of ``regions``."""
        height, width = frame.shape[:2]
        crops = self._crops(regions, width, height)
        boxes: list[Box] = []
        scores: list[float] = []
        for crop in crops:
            patch = frame[crop.y1 : crop.y2, crop.x1 : crop.x2]
            factor = min(1.0, _MAX_CROP_H / max(1, crop.height))
            if factor < 1.0:
                patch = cv2.resize(patch, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            if patch.shape[0] < _WIN_H or patch.shape[1] < _WIN_W:
                continue
            rects, weights = self._hog.detectMultiScale(
                patch, hitThreshold=self._hit_threshold, winStride=(8, 8), padding=(8, 8), scale=1.05
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


def _contains(outer: Box, inner: Box) -> bool:
    return outer.x1 <= inner.x1 and outer.y1 <= inner.y1 and outer.x2 >= inner.x2 and outer.y2 >= inner.y2
