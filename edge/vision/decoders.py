"""Output decoders for the common exported detectors (pure numpy, no runtime needed).

Each decoder turns the raw output tensors of one export convention into :class:`RawBox` items in
**model-input pixels** (the letterboxed or resized image the model saw); :class:`Letterbox` maps
them back to the camera frame. Conventions:

``yolov5``
    ultralytics YOLOv5 ``export.py --include onnx``: one tensor ``[1, N, 5 + C]`` of
    ``cx, cy, w, h, objectness, class scores…`` in input pixels; score = objectness × class score.
``yolov8`` (also YOLOv11 and later ultralytics detect models)
    ``yolo export format=onnx``: one tensor ``[1, 4 + C, N]`` of ``cx, cy, w, h, class scores…``
    (no objectness), transposed compared with YOLOv5.
``yolo_nms``
    ``yolo export format=onnx nms=True`` (NMS inside the graph): ``[1, K, 6]`` of
    ``x1, y1, x2, y2, score, class`` in input pixels; rows of score 0 are padding.
``ssd``
    TensorFlow Object Detection API style (ONNX model zoo ``ssd_mobilenet_v1``): four outputs
    ``detection_boxes [1, K, 4]`` as ``ymin, xmin, ymax, xmax`` in 0..1 of the input,
    ``detection_classes [1, K]``, ``detection_scores [1, K]``, ``num_detections [1]``.
``boxes``
    our own older convention: ``[N, 6]`` ``x1, y1, x2, y2, score, class`` in 0..1 of the input.

The raw (pre-NMS) YOLO outputs are filtered by ``conf_threshold`` and then go through class-wise
non-maximum suppression, as ultralytics' own ``predict`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

OutputFormat = Literal["yolov5", "yolov8", "yolo_nms", "ssd", "boxes", "scores"]
Tensor = NDArray[Any]
LETTERBOX_FILL = 114  # ultralytics' grey padding


class DecodeError(ValueError):
    """The model's outputs do not have the shape its configured format needs."""


@dataclass(frozen=True, slots=True)
class RawBox:
    """A detection in model-input pixels (float, before mapping back to the frame)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was fitted into the model input: scale, then pad (ultralytics ``LetterBox``, centred)."""

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    frame_w: int
    frame_h: int

    @classmethod
    def fit(cls, frame_w: int, frame_h: int, input_w: int, input_h: int, *, keep_ratio: bool) -> Letterbox:
        if not keep_ratio:
            return cls(input_w / frame_w, input_h / frame_h, 0, 0, frame_w, frame_h)
        r = min(input_w / frame_w, input_h / frame_h)
        new_w, new_h = round(frame_w * r), round(frame_h * r)
        # ultralytics rounds the two halves with a -0.1/+0.1 bias; centred padding, left/top the smaller half
        pad_x, pad_y = round((input_w - new_w) / 2 - 0.1), round((input_h - new_h) / 2 - 0.1)
        return cls(new_w / frame_w, new_h / frame_h, pad_x, pad_y, frame_w, frame_h)

    def apply(self, frame: Tensor, input_w: int, input_h: int) -> Tensor:
        """The model-input image (BGR, uint8) for ``frame``."""
        new_w, new_h = round(self.frame_w * self.scale_x), round(self.frame_h * self.scale_y)
        resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA)
        if (new_w, new_h) == (input_w, input_h):
            return resized
        out = np.full((input_h, input_w, 3), LETTERBOX_FILL, np.uint8)
        out[self.pad_y : self.pad_y + new_h, self.pad_x : self.pad_x + new_w] = resized
        return out

    def to_frame(self, b: RawBox) -> tuple[int, int, int, int]:
        """Input-pixel box → frame-pixel box, clipped to the frame."""

        def x(v: float) -> int:
            return round(min(max((v - self.pad_x) / self.scale_x, 0.0), self.frame_w))

        def y(v: float) -> int:
            return round(min(max((v - self.pad_y) / self.scale_y, 0.0), self.frame_h))

        return x(b.x1), y(b.y1), x(b.x2), y(b.y2)


def _nms(boxes: list[RawBox], iou: float, max_det: int) -> list[RawBox]:
    """Class-wise NMS (a box only suppresses boxes of its own class), best score first."""
    if not boxes:
        return []
    rects = [[b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1] for b in boxes]
    keep = cv2.dnn.NMSBoxesBatched(
        rects, [b.score for b in boxes], [b.class_id for b in boxes], score_threshold=0.0, nms_threshold=iou
    )
    kept = [boxes[int(i)] for i in np.ravel(keep)]
    return sorted(kept, key=lambda b: -b.score)[:max_det]


def _centre_rows(rows: Tensor, scores: Tensor, conf: float, iou: float, max_det: int) -> list[RawBox]:
    """Rows of ``cx, cy, w, h`` with per-class ``scores`` → NMS-filtered boxes."""
    if rows.shape[0] == 0:
        return []
    class_ids = scores.argmax(axis=1)
    best = scores[np.arange(scores.shape[0]), class_ids]
    sel = best >= conf
    out = []
    for (cx, cy, w, h), score, cls in zip(rows[sel], best[sel], class_ids[sel], strict=True):
        out.append(RawBox(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, float(score), int(cls)))
    return _nms(out, iou, max_det)


def _single(outputs: Sequence[Tensor], fmt: str, rank_ok: Callable[[Tensor], bool]) -> Tensor:
    if len(outputs) < 1:
        raise DecodeError(f"{fmt}: the model has no outputs")
    out = np.asarray(outputs[0], dtype=np.float32)
    if out.ndim == 3 and out.shape[0] == 1:
        out = out[0]
    if not rank_ok(out):
        raise DecodeError(f"{fmt}: unexpected output shape {np.asarray(outputs[0]).shape}")
    return out


def decode_yolov5(outputs: Sequence[Tensor], *, conf: float, iou: float, max_det: int) -> list[RawBox]:
    out = _single(outputs, "yolov5", lambda t: t.ndim == 2 and t.shape[1] >= 6)
    scores = out[:, 5:] * out[:, 4:5]
    return _centre_rows(out[:, :4], scores, conf, iou, max_det)


def decode_yolov8(outputs: Sequence[Tensor], *, conf: float, iou: float, max_det: int) -> list[RawBox]:
    out = _single(outputs, "yolov8", lambda t: t.ndim == 2 and t.shape[0] >= 5).T
    return _centre_rows(out[:, :4], out[:, 4:], conf, iou, max_det)


def decode_yolo_nms(outputs: Sequence[Tensor], *, conf: float, max_det: int, normalised: bool = False) -> list[RawBox]:
    out = _single(outputs, "yolo_nms", lambda t: t.ndim == 2 and t.shape[1] >= 6)
    boxes = []
    for x1, y1, x2, y2, score, cls in out[:, :6]:
        if score >= conf and score > 0:
            boxes.append(RawBox(float(x1), float(y1), float(x2), float(y2), float(score), round(float(cls))))
    return sorted(boxes, key=lambda b: -b.score)[:max_det]


def decode_ssd(
    outputs: Sequence[Tensor], names: Sequence[str], *, conf: float, max_det: int, input_w: int, input_h: int
) -> list[RawBox]:
    """TF-OD-API outputs, found by name (``boxes``/``classes``/``scores``/``num``) or else by shape."""
    by_name: dict[str, Tensor] = {}
    for name, value in zip(names, outputs, strict=True):
        for key in ("boxes", "classes", "scores", "num"):
            if key in name.lower() and key not in by_name:
                by_name[key] = np.asarray(value, dtype=np.float32)
    if not {"boxes", "classes", "scores"} <= by_name.keys():
        if len(outputs) < 3:
            raise DecodeError(f"ssd: need boxes, classes and scores outputs, got {list(names)}")
        by_name = dict(
            zip(("boxes", "classes", "scores", "num"), (np.asarray(o, np.float32) for o in outputs), strict=False)
        )
    boxes = by_name["boxes"].reshape(-1, 4)
    classes = by_name["classes"].reshape(-1)
    scores = by_name["scores"].reshape(-1)
    if not len(boxes) == len(classes) == len(scores):
        raise DecodeError(f"ssd: {len(boxes)} boxes, {len(classes)} classes, {len(scores)} scores")
    n = len(scores)
    if "num" in by_name and by_name["num"].size:
        n = min(n, int(by_name["num"].reshape(-1)[0]))
    out = []
    for (ymin, xmin, ymax, xmax), cls, score in zip(boxes[:n], classes[:n], scores[:n], strict=True):
        if score >= conf:
            out.append(
                RawBox(
                    float(xmin) * input_w,
                    float(ymin) * input_h,
                    float(xmax) * input_w,
                    float(ymax) * input_h,
                    float(score),
                    round(float(cls)),
                )
            )
    return sorted(out, key=lambda b: -b.score)[:max_det]


def decode_boxes(outputs: Sequence[Tensor], *, conf: float, input_w: int, input_h: int) -> list[RawBox]:
    out = np.asarray(outputs[0], dtype=np.float32).reshape(-1, 6)
    return [
        RawBox(float(x1) * input_w, float(y1) * input_h, float(x2) * input_w, float(y2) * input_h, float(s), round(c))
        for x1, y1, x2, y2, s, c in out
        if s >= conf
    ]


def decode(
    fmt: OutputFormat,
    outputs: Sequence[Tensor],
    names: Sequence[str],
    *,
    conf: float,
    iou: float,
    max_det: int,
    input_w: int,
    input_h: int,
) -> list[RawBox]:
    """Boxes in input pixels for every format except ``scores`` (a classifier: see the detector)."""
    if fmt == "yolov5":
        return decode_yolov5(outputs, conf=conf, iou=iou, max_det=max_det)
    if fmt == "yolov8":
        return decode_yolov8(outputs, conf=conf, iou=iou, max_det=max_det)
    if fmt == "yolo_nms":
        return decode_yolo_nms(outputs, conf=conf, max_det=max_det)
    if fmt == "ssd":
        return decode_ssd(outputs, names, conf=conf, max_det=max_det, input_w=input_w, input_h=input_h)
    if fmt == "boxes":
        return decode_boxes(outputs, conf=conf, input_w=input_w, input_h=input_h)
    raise DecodeError(f"format {fmt!r} has no box decoder")
