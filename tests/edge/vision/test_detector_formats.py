"""Decoding each exported-detector format from a tiny ONNX graph that emits known boxes.

Frame 640×360 into a 320×320 YOLO input: letterbox scale 0.5, 320×180 picture, 70 px grey bands top and
bottom. A box (140, 120)–(180, 200) in input pixels is therefore (280, 100)–(360, 260) in the frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from pydantic import ValidationError

from edge.vision.config import ModelConfig
from edge.vision.decoders import Letterbox
from edge.vision.models import ModelUnavailable, OnnxDetector
from tests.edge.vision.onnx_graphs import gated_model, yolov5_tensor, yolov8_tensor

LABELS = "person\ncigarette\nphone\n"
FRAME = np.full((360, 640, 3), 90, np.uint8)
# (label, score, frame box) after class-wise NMS, best first
EXPECTED = [
    ("cigarette", 0.9, (280, 100, 360, 260)),
    ("person", 0.7, (280, 100, 360, 260)),
    ("phone", 0.6, (560, 20, 640, 100)),
]


def config(tmp_path: Path, model: Path, output: str, **extra: Any) -> ModelConfig:
    labels = tmp_path / "labels.txt"
    labels.write_text(LABELS, encoding="utf-8")
    raw: dict[str, Any] = {
        "model_id": "m",
        "path": model,
        "labels": labels,
        "output": output,
        "rules": [{"event": "smoking", "labels": ["cigarette"], "min_score": 0.5}],
        "conf_threshold": 0.25,
    }
    raw.update(extra)
    return ModelConfig.model_validate(raw)


def decoded(det: OnnxDetector, frame: np.ndarray[Any, Any] = FRAME) -> list[tuple[str, float, tuple[int, ...]]]:
    return [(d.label, round(d.score, 4), (d.box.x1, d.box.y1, d.box.x2, d.box.y2)) for d in det.detect(frame)]


def test_letterbox_geometry_matches_ultralytics() -> None:
    lb = Letterbox.fit(640, 360, 320, 320, keep_ratio=True)
    assert (lb.scale_x, lb.scale_y, lb.pad_x, lb.pad_y) == (0.5, 0.5, 0, 70)
    img = lb.apply(FRAME, 320, 320)
    assert img.shape == (320, 320, 3)
    assert (img[:70] == 114).all() and (img[250:] == 114).all() and (img[70:250] == 90).all()


def test_yolov8_raw_head_with_class_wise_nms(tmp_path: Path) -> None:
    out = yolov8_tensor(
        [
            (160, 160, 40, 80, [0.0, 0.9, 0.0]),  # cigarette
            (162, 160, 40, 80, [0.0, 0.8, 0.0]),  # the same cigarette again: suppressed by NMS
            (160, 160, 40, 80, [0.7, 0.0, 0.0]),  # a person at the same place: another class, kept
            (40, 40, 20, 20, [0.0, 0.1, 0.0]),  # below conf_threshold
            (300, 100, 40, 40, [0.0, 0.0, 0.6]),  # phone
        ],
        classes=3,
    )
    model = gated_model(tmp_path / "v8.onnx", {"output0": out})
    det = OnnxDetector(config(tmp_path, model, "yolov8"))
    assert det.input_size == (320, 320), "taken from the model's static input shape"
    assert decoded(det) == EXPECTED


def test_yolov5_objectness_times_class_score(tmp_path: Path) -> None:
    out = yolov5_tensor(
        [
            (160, 160, 40, 80, 0.9, [0.0, 1.0, 0.0]),
            (161, 160, 40, 80, 0.9, [0.0, 0.85, 0.0]),
            (160, 160, 40, 80, 1.0, [0.7, 0.0, 0.0]),
            (300, 100, 40, 40, 0.75, [0.0, 0.0, 0.8]),  # 0.75 × 0.8 = 0.6
            (40, 40, 20, 20, 0.2, [0.0, 1.0, 0.0]),  # 0.2: dropped
        ],
        classes=3,
    )
    model = gated_model(tmp_path / "v5.onnx", {"output0": out})
    assert decoded(OnnxDetector(config(tmp_path, model, "yolov5"))) == EXPECTED


def test_ultralytics_export_with_embedded_nms_and_labels_from_metadata(tmp_path: Path) -> None:
    rows = np.zeros((1, 300, 6), np.float32)  # max_det rows, zero-padded
    rows[0, 0] = (140, 120, 180, 200, 0.9, 1)
    rows[0, 1] = (140, 120, 180, 200, 0.7, 0)
    rows[0, 2] = (280, 80, 320, 120, 0.6, 2)
    model = gated_model(
        tmp_path / "nms.onnx", {"output0": rows}, names={0: "person", 1: "cigarette", 2: "phone"}, dynamic=True
    )
    cfg = config(tmp_path, model, "yolo_nms", labels=None, input_width=320, input_height=320)
    det = OnnxDetector(cfg)
    assert det.labels == ["person", "cigarette", "phone"]
    assert decoded(det) == EXPECTED


def test_ssd_tf_object_detection_api_outputs(tmp_path: Path) -> None:
    boxes = np.array([[[0.25, 0.5, 0.75, 0.75], [0.0, 0.0, 0.5, 0.25], [0.1, 0.1, 0.2, 0.2]]], np.float32)
    outputs = {
        "detection_boxes": boxes,
        "detection_classes": np.array([[2, 3, 1]], np.float32),  # 1-based (0 = background)
        "detection_scores": np.array([[0.9, 0.6, 0.95]], np.float32),
        "num_detections": np.array([2], np.float32),  # the third row is padding, however high its score
    }
    model = gated_model(tmp_path / "ssd.onnx", outputs, size=(300, 300), nhwc_uint8=True)
    det = OnnxDetector(config(tmp_path, model, "ssd", class_offset=-1))
    frame = np.full((480, 640, 3), 90, np.uint8)
    assert decoded(det, frame) == [("cigarette", 0.9, (320, 120, 480, 360)), ("phone", 0.6, (0, 0, 160, 240))]


def test_stride_and_bad_shapes_are_clear_errors(tmp_path: Path) -> None:
    model = gated_model(tmp_path / "v8.onnx", {"output0": yolov8_tensor([], classes=3)}, dynamic=True)
    with pytest.raises(ValidationError, match="multiple of the model stride 32"):
        config(tmp_path, model, "yolov8", input_width=330)
    # a yolov5-shaped output configured as ssd
    v5 = gated_model(tmp_path / "v5.onnx", {"output0": yolov5_tensor([], classes=3)})
    with pytest.raises(ModelUnavailable, match="ssd"):
        OnnxDetector(config(tmp_path, v5, "ssd")).detect(FRAME)
    with pytest.raises(ModelUnavailable, match="no labels file"):
        OnnxDetector(config(tmp_path, model, "yolov8", labels=None))


def test_unknown_event_and_bad_placeholder_rejected(tmp_path: Path) -> None:
    model = tmp_path / "absent.onnx"
    with pytest.raises(ValidationError, match="unknown behaviour event 'smokin'"):
        config(tmp_path, model, "yolov8", rules=[{"event": "smokin"}])
    with pytest.raises(ValidationError, match="unknown placeholder"):
        config(tmp_path, model, "yolov8", rules=[{"event": "smoking", "message": "{where}"}])
    with pytest.raises(ValidationError, match="dwell_k"):
        config(tmp_path, model, "yolov8", rules=[{"event": "smoking", "dwell_k": 4, "dwell_n": 3}])
