"""Tiny ONNX graphs that emit known outputs in each exported-detector convention (no downloaded weights).

``constant_model`` emits fixed tensors (whatever the picture); ``gated_model`` multiplies the scores by a
picture feature (mean brightness, or the red excess of a marker) so that a test or a simulated scene
decides frame by frame whether the 'detector' sees something.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

Gate = Literal["none", "brightness", "red"]


def _save(graph: onnx.GraphProto, path: Path, names: dict[int, str] | None) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if names is not None:  # what ultralytics writes into an export's metadata
        entry = model.metadata_props.add()
        entry.key, entry.value = "names", repr(names)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _gate_nodes(gate: Gate, source: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing a scalar ``gate`` in 0..1 from the NCHW float input ``source``."""
    if gate == "none":
        return [
            helper.make_node("ReduceMean", [source], ["g_mean"], axes=[0, 1, 2, 3], keepdims=0),
            helper.make_node("Mul", ["g_mean", "g_zero"], ["g_zeroed"]),
            helper.make_node("Add", ["g_zeroed", "g_one"], ["gate"]),
        ], [numpy_helper.from_array(np.float32(0), "g_zero"), numpy_helper.from_array(np.float32(1), "g_one")]
    if gate == "brightness":
        return [helper.make_node("ReduceMean", [source], ["gate"], axes=[0, 1, 2, 3], keepdims=0)], []
    # red: (largest R - G anywhere - 0.5) × 4, clipped to 0..1 — only a saturated red marker (the simulator's
    # `marker` event) reaches 1; the simulated kitchen's reddest pixels stay below 0.5
    return [
        helper.make_node("Split", [source, "g_split"], ["g_r", "g_g", "g_b"], axis=1),
        helper.make_node("Sub", ["g_r", "g_g"], ["g_rg"]),
        helper.make_node("ReduceMax", ["g_rg"], ["g_max"], axes=[0, 1, 2, 3], keepdims=0),
        helper.make_node("Sub", ["g_max", "g_half"], ["g_shift"]),
        helper.make_node("Mul", ["g_shift", "g_four"], ["g_scaled"]),
        helper.make_node("Clip", ["g_scaled", "g_lo", "g_hi"], ["gate"]),
    ], [
        numpy_helper.from_array(np.array([1, 1, 1], np.int64), "g_split"),
        numpy_helper.from_array(np.float32(0.5), "g_half"),
        numpy_helper.from_array(np.float32(4), "g_four"),
        numpy_helper.from_array(np.float32(0), "g_lo"),
        numpy_helper.from_array(np.float32(1), "g_hi"),
    ]


def gated_model(
    path: Path,
    outputs: dict[str, NDArray[np.float32]],
    *,
    size: tuple[int, int] = (320, 320),
    gate: Gate = "none",
    scaled: dict[str, NDArray[np.float32]] | None = None,
    names: dict[int, str] | None = None,
    nhwc_uint8: bool = False,
    dynamic: bool = False,
) -> Path:
    """A model with input ``images`` emitting ``outputs`` (constants) where ``scaled`` marks the entries (1) to
    multiply by the gate; the rest stay constant."""
    w, h = size
    dims: list[int | str] = ["batch", "height", "width", 3] if dynamic else [1, h, w, 3]
    if not nhwc_uint8:
        dims = ["batch", 3, "height", "width"] if dynamic else [1, 3, h, w]
    inp = helper.make_tensor_value_info("images", TensorProto.UINT8 if nhwc_uint8 else TensorProto.FLOAT, dims)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    source = "images"
    if nhwc_uint8:
        nodes += [
            helper.make_node("Cast", ["images"], ["as_float"], to=TensorProto.FLOAT),
            helper.make_node("Transpose", ["as_float"], ["nchw"], perm=[0, 3, 1, 2]),
            helper.make_node("Mul", ["nchw", "inv255"], ["unit"]),
        ]
        inits.append(numpy_helper.from_array(np.float32(1 / 255), "inv255"))
        source = "unit"
    gate_nodes, gate_inits = _gate_nodes(gate, source)
    nodes += gate_nodes
    inits += gate_inits
    graph_outputs = []
    for name, value in outputs.items():
        mask = (scaled or {}).get(name, np.zeros_like(value))
        const = value * (1 - mask)
        varying = value * mask
        inits += [numpy_helper.from_array(const.astype(np.float32), f"{name}_c")]
        inits += [numpy_helper.from_array(varying.astype(np.float32), f"{name}_v")]
        nodes += [
            helper.make_node("Mul", [f"{name}_v", "gate"], [f"{name}_g"]),
            helper.make_node("Add", [f"{name}_c", f"{name}_g"], [name]),
        ]
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(nodes, "tiny-detector", [inp], graph_outputs, initializer=inits)
    return _save(graph, path, names)


def yolov8_tensor(rows: list[tuple[float, float, float, float, list[float]]], classes: int) -> NDArray[np.float32]:
    """``[1, 4 + C, N]``: per column cx, cy, w, h, class scores (ultralytics v8/v11 raw head)."""
    out = np.zeros((1, 4 + classes, len(rows)), np.float32)
    for j, (cx, cy, w, h, scores) in enumerate(rows):
        out[0, :4, j] = (cx, cy, w, h)
        out[0, 4 : 4 + len(scores), j] = scores
    return out


def yolov5_tensor(
    rows: list[tuple[float, float, float, float, float, list[float]]], classes: int
) -> NDArray[np.float32]:
    """``[1, N, 5 + C]``: cx, cy, w, h, objectness, class scores (YOLOv5 raw head)."""
    out = np.zeros((1, len(rows), 5 + classes), np.float32)
    for i, (cx, cy, w, h, obj, scores) in enumerate(rows):
        out[0, i, :5] = (cx, cy, w, h, obj)
        out[0, i, 5 : 5 + len(scores)] = scores
    return out


# A one-box YOLOv8 "detector" of class 1 (`cigarette`): input 320×320, so on a 320×240 frame (40 px bands) the box
# centre (160, 220) in input pixels is (160, 180) in the frame — inside the sim kitchen's `kitchen` zone.
CIGARETTE_BOX = yolov8_tensor([(160, 220, 40, 40, [0.0, 1.0])], classes=2)
CIGARETTE_GATE = yolov8_tensor([(0, 0, 0, 0, [0.0, 1.0])], classes=2)


def cigarette_model(directory: Path, gate: Gate) -> dict[str, str | int | float]:
    """Writes the model and its labels file; returns a ``[[cameras.models]]`` item without rules."""
    gated_model(directory / "cigarette.onnx", {"output0": CIGARETTE_BOX}, gate=gate, scaled={"output0": CIGARETTE_GATE})
    (directory / "labels.txt").write_text("person\ncigarette\n", encoding="utf-8")
    return {
        "model_id": "kitchen-behaviour",
        "path": str(directory / "cigarette.onnx"),
        "labels": str(directory / "labels.txt"),
        "output": "yolov8",
        "run": "always",
        "interval_s": 0,
    }
