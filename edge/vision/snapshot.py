"""JPEG evidence snapshots with the detected boxes drawn in."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import cv2
from numpy.typing import NDArray

from edge.vision.geometry import Box

_RED = (0, 0, 255)
_WHITE = (255, 255, 255)


@dataclass(frozen=True, slots=True)
class Snapshot:
    jpeg: bytes
    sha256: str
    caption: str = ""
    """The caption line drawn on the picture."""

    @property
    def size(self) -> int:
        return len(self.jpeg)


def render_snapshot(
    frame: NDArray[Any],
    boxes: Sequence[Box],
    labels: Sequence[str],
    *,
    caption: str,
    ts: datetime,
    quality: int = 80,
    max_width: int = 1280,
    timezone: str = "Asia/Shanghai",
) -> Snapshot:
    """Draw ``boxes`` (full-frame px) with ASCII ``labels`` and a caption line, encode as JPEG.

    The caption's time is the site's local time (``timezone``, the camera schedule's), with its offset.
    """
    img = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    thickness = max(2, img.shape[0] // 240)
    for i, box in enumerate(boxes):
        cv2.rectangle(img, (box.x1, box.y1), (box.x2 - 1, box.y2 - 1), _RED, thickness)
        if i < len(labels) and labels[i]:
            cv2.putText(img, labels[i], (box.x1 + 2, max(12, box.y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, _RED, 1)
    text = f"{ts.astimezone(ZoneInfo(timezone)).isoformat(timespec='seconds')} {caption}"
    cv2.rectangle(img, (0, 0), (img.shape[1], 16), (0, 0, 0), -1)
    cv2.putText(img, text, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, _WHITE, 1)
    if img.shape[1] > max_width:
        f = max_width / img.shape[1]
        img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    data = buf.tobytes()
    return Snapshot(data, hashlib.sha256(data).hexdigest(), text)
