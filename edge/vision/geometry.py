"""Boxes, polygon masks and scaling between the analysis frame and the full frame."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Mask = NDArray[Any]


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box in pixels, ``x2``/``y2`` exclusive."""

    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    @property
    def foot(self) -> tuple[float, float]:
        """Bottom centre: where a person stands."""
        return ((self.x1 + self.x2) / 2, float(self.y2))

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def scaled(self, fx: float, fy: float) -> Box:
        return Box(int(self.x1 * fx), int(self.y1 * fy), round(self.x2 * fx), round(self.y2 * fy))

    def expanded(self, margin_x: int, margin_y: int, width: int, height: int) -> Box:
        return Box(
            max(0, self.x1 - margin_x),
            max(0, self.y1 - margin_y),
            min(width, self.x2 + margin_x),
            min(height, self.y2 + margin_y),
        )

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union else 0.0

    def union(self, other: Box) -> Box:
        return Box(min(self.x1, other.x1), min(self.y1, other.y1), max(self.x2, other.x2), max(self.y2, other.y2))

    def as_list(self) -> list[int]:
        return [self.x1, self.y1, self.x2, self.y2]


def polygon_mask(polygons: Iterable[Sequence[tuple[float, float]]], width: int, height: int) -> Mask:
    """A 0/255 mask of the union of normalised polygons at the given size."""
    mask = np.zeros((height, width), np.uint8)
    for poly in polygons:
        pts = np.array([[round(x * (width - 1)), round(y * (height - 1))] for x, y in poly], np.int32)
        cv2.fillPoly(mask, [pts], 255)
    return mask


def merge_boxes(boxes: list[Box], gap: int = 0) -> list[Box]:
    """Merge boxes that overlap (or lie within ``gap`` px of each other) until none do."""
    merged = list(boxes)
    changed = True
    while changed and len(merged) > 1:
        changed = False
        out: list[Box] = []
        while merged:
            cur = merged.pop()
            i = 0
            while i < len(merged):
                other = merged[i]
                if (
                    cur.x1 - gap <= other.x2
                    and other.x1 - gap <= cur.x2
                    and cur.y1 - gap <= other.y2
                    and other.y1 - gap <= cur.y2
                ):
                    cur = cur.union(merged.pop(i))
                    changed = True
                else:
                    i += 1
            out.append(cur)
        merged = out
    return merged


def non_max_suppression(boxes: list[Box], scores: list[float], iou: float = 0.4) -> list[int]:
    """Indices of the boxes kept, best score first."""
    order = sorted(range(len(boxes)), key=lambda i: scores[i], reverse=True)
    keep: list[int] = []
    for i in order:
        if all(boxes[i].iou(boxes[k]) < iou for k in keep):
            keep.append(i)
    return keep
