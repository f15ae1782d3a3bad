"""The ONNX detector plug-in with a tiny graph built here (no downloaded weights)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from edge.vision.config import ModelConfig  # noqa: E402
from edge.vision.models import ModelUnavailable, OnnxDetector  # noqa: E402
from edge.vision.pipeline import CameraPipeline  # noqa: E402
from protocols.messages import AlertPhase  # noqa: E402
from tests.edge.vision.helpers import sim_camera_config  # noqa: E402


def build_brightness_detector(path: Path, size: int = 32) -> None:
    """A 'detector' whose one box (centre of the image, class 1) scores the image's mean brightness."""
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])
    out = helper.make_tensor_value_info("detections", TensorProto.FLOAT, [1, 6])
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Concat", ["box", "mean", "cls"], ["flat"], axis=0),
        helper.make_node("Reshape", ["flat", "shape"], ["detections"]),
    ]
    inits = [
        helper.make_tensor("box", TensorProto.FLOAT, [4], [0.25, 0.5, 0.75, 1.0]),
        helper.make_tensor("cls", TensorProto.FLOAT, [1], [1.0]),
        helper.make_tensor("shape", TensorProto.INT64, [2], [1, 6]),
    ]
    graph = helper.make_graph(nodes, "brightness", [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture
def model_config(tmp_path: Path) -> ModelConfig:
    build_brightness_detector(tmp_path / "tiny.onnx")
    (tmp_path / "labels.txt").write_text("chef_hat\nsmoking\n", encoding="utf-8")
    return ModelConfig.model_validate(
        {
            "model_id": "tiny",
            "path": tmp_path / "tiny.onnx",
            "labels": tmp_path / "labels.txt",
            "input_width": 32,
            "input_height": 32,
            "run": "always",
            "interval_s": 0,
            "rules": [
                {
                    "label": "smoking",
                    "rule_id": "smoking_detected",
                    "min_score": 0.6,
                    "message": "「{zone}」疑似吸烟（置信度 {score}）",
                    "zones": ["kitchen"],
                    "raise_after_s": 0.4,
                    "clear_after_s": 0.4,
                }
            ],
        }
    )


def test_detector_maps_boxes_labels_and_scores(model_config: ModelConfig) -> None:
    det = OnnxDetector(model_config)
    bright = np.full((240, 320, 3), 230, np.uint8)
    [d] = det.detect(bright)
    assert d.label == "smoking" and d.score == pytest.approx(230 / 255, abs=0.01)
    assert (d.box.x1, d.box.y1, d.box.x2, d.box.y2) == (80, 120, 240, 240)
    assert det.detect(np.full((240, 320, 3), 40, np.uint8)) == [], "below the lowest rule's min_score"
    keep_all = OnnxDetector(model_config.model_copy(update={"conf_threshold": 0.0}))
    [dim] = keep_all.detect(np.full((240, 320, 3), 40, np.uint8))
    assert dim.score < 0.2


def test_per_label_rule_raises_and_clears_with_evidence_boxes(model_config: ModelConfig) -> None:
    cfg = sim_camera_config(models=[model_config.model_dump()], people={"enabled": False}, tamper={"enabled": False})
    pipe = CameraPipeline(cfg)
    wall = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    phases = []
    rng = np.random.default_rng(0)
    for i in range(16):
        level = 230 if 3 <= i < 9 else 60
        frame = np.clip(level + rng.normal(0, 6, (240, 320, 3)), 0, 255).astype(np.uint8)
        for t in pipe.process(frame, i * 0.2, wall).transitions:
            phases.append((t.phase, t.rule_id, t.zone_id, t.message, len(t.boxes)))
    assert [p[0] for p in phases] == [AlertPhase.RAISE, AlertPhase.CLEAR]
    assert phases[0][1:3] == ("smoking_detected", "kitchen")
    assert "后厨操作区" in phases[0][3] and phases[0][4] == 1


def test_missing_model_is_reported_not_fatal(tmp_path: Path, model_config: ModelConfig) -> None:
    broken = model_config.model_copy(update={"path": tmp_path / "absent.onnx"})
    with pytest.raises(ModelUnavailable, match="does not exist"):
        OnnxDetector(broken)
    pipe = CameraPipeline(sim_camera_config(models=[broken.model_dump()]))
    assert pipe._detectors == []
