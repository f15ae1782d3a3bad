"""Model plug-ins: a detector interface and an ONNX implementation (extra ``vision-onnx``).

A site points a :class:`~edge.vision.config.ModelConfig` at its own model file (an ultralytics
YOLOv5/v8/v11 export, with or without embedded NMS, an SSD-style TF OD API export, or our own
``boxes``/``scores`` conventions; see :mod:`edge.vision.decoders`) and a labels file, and maps classes
to behaviour events. The detector prepares the input as the model was trained (letterbox with
ultralytics' grey padding for YOLO, plain resize otherwise; NCHW float × ``scale`` or NHWC uint8 as the
model's input declares) and maps the decoded boxes back to full-frame pixels.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.vision.config import ModelConfig
from edge.vision.decoders import DecodeError, Letterbox, decode
from edge.vision.geometry import Box
from edge.vision.people import Detection

DEFAULT_SIDE = 640


class ModelUnavailable(RuntimeError):
    """The model cannot run here (runtime not installed, file missing or unreadable)."""


class Detector(Protocol):
    """Anything that turns a frame into labelled boxes in full-frame pixels."""

    model_id: str

    def detect(self, frame: NDArray[Any]) -> list[Detection]: ...


def read_labels(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelUnavailable(f"cannot read labels file {path}: {exc}") from exc
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def labels_from_metadata(meta: dict[str, str]) -> list[str]:
    """The class names an ultralytics export stores in its metadata (``names``: ``{0: 'person', …}``)."""
    raw = meta.get("names")
    if not raw:
        return []
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return []
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, list):
        return [str(n) for n in names]
    return []


def _side(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


class OnnxDetector:
    def __init__(self, config: ModelConfig) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailable("onnxruntime is not installed: pip install 'market-sentinel[vision-onnx]'") from exc
        if not config.path.is_file():
            raise ModelUnavailable(f"model file {config.path} does not exist")
        self.model_id = config.model_id
        self._cfg = config
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session: Any = ort.InferenceSession(
                str(config.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelUnavailable(f"cannot load ONNX model {config.path}: {exc}") from exc
        if config.labels is not None:
            self.labels = read_labels(config.labels)
        else:
            self.labels = labels_from_metadata(self._session.get_modelmeta().custom_metadata_map)
            if not self.labels:
                raise ModelUnavailable(f"{config.path}: no labels file configured and no class names in its metadata")
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        shape = list(inp.shape)
        self._nhwc = len(shape) == 4 and shape[-1] == 3 and shape[1] != 3
        self._uint8 = "uint8" in str(inp.type)
        h_dim, w_dim = (shape[1], shape[2]) if self._nhwc else (shape[2], shape[3]) if len(shape) == 4 else (0, 0)
        width = config.input_width or _side(w_dim) or DEFAULT_SIDE
        height = config.input_height or _side(h_dim) or DEFAULT_SIDE
        if config.keeps_ratio and (width % config.stride or height % config.stride):
            raise ModelUnavailable(f"{config.path}: input {width}×{height} is not a multiple of stride {config.stride}")
        self.input_size = (width, height)
        self._outputs = [o.name for o in self._session.get_outputs()]

    def _tensor(self, frame: NDArray[Any], lb: Letterbox) -> NDArray[Any]:
        img = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        img = lb.apply(img, *self.input_size)
        if self._cfg.rgb:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if self._uint8:
            tensor = img[None] if self._nhwc else img.transpose(2, 0, 1)[None]
        else:
            planes = img[None] if self._nhwc else img.transpose(2, 0, 1)[None]
            tensor = planes.astype(np.float32) * np.float32(self._cfg.scale)
        return np.ascontiguousarray(tensor)

    def detect(self, frame: NDArray[Any]) -> list[Detection]:
        height, width = frame.shape[:2]
        cfg = self._cfg
        in_w, in_h = self.input_size
        lb = Letterbox.fit(width, height, in_w, in_h, keep_ratio=cfg.keeps_ratio)
        outputs = self._session.run(None, {self._input: self._tensor(frame, lb)})
        if cfg.output == "scores":
            scores = np.asarray(outputs[0], dtype=np.float32).reshape(-1)
            return [
                Detection(self.labels[i], float(s), Box(0, 0, width, height))
                for i, s in enumerate(scores)
                if i < len(self.labels) and s >= cfg.min_confidence
            ]
        try:
            raw = decode(
                cfg.output,
                outputs,
                self._outputs,
                conf=cfg.min_confidence,
                iou=cfg.nms_iou,
                max_det=cfg.max_detections,
                input_w=in_w,
                input_h=in_h,
            )
        except DecodeError as exc:
            raise ModelUnavailable(f"model {cfg.model_id}: {exc}") from exc
        detections: list[Detection] = []
        for b in raw:
            idx = b.class_id + cfg.class_offset
            if not 0 <= idx < len(self.labels):
                continue
            detections.append(Detection(self.labels[idx], b.score, Box(*lb.to_frame(b))))
        return detections
