"""Model plug-ins: a detector interface and an ONNX implementation (extra ``vision-onnx``).

A site points a :class:`~edge.vision.config.ModelConfig` at its own model file and a labels file
(e.g. chef hat, mask, smoking, phone, rodent) and says per label what to alert on. Two output
conventions are supported, chosen by ``output``:

- ``boxes``: a float tensor ``[N, 6]`` (or ``[1, N, 6]``) of ``x1, y1, x2, y2, score, class_id`` with
  coordinates as fractions (0..1) of the model input — the usual post-NMS detector export;
- ``scores``: a float tensor ``[1, C]`` of per-label scores for the whole image (a classifier); its
  detections cover the whole frame.

The input is the frame resized to ``input_width × input_height``, RGB (or BGR) planes, NCHW float32
multiplied by ``scale``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.vision.config import ModelConfig
from edge.vision.geometry import Box
from edge.vision.people import Detection


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
        self.labels = read_labels(config.labels)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self._session: Any = ort.InferenceSession(
                str(config.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelUnavailable(f"cannot load ONNX model {config.path}: {exc}") from exc
        self._input = self._session.get_inputs()[0].name

    def _tensor(self, frame: NDArray[Any]) -> NDArray[Any]:
        img = cv2.resize(frame, (self._cfg.input_width, self._cfg.input_height), interpolation=cv2.INTER_AREA)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if self._cfg.rgb:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        tensor = img.astype(np.float32).transpose(2, 0, 1)[None] * np.float32(self._cfg.scale)
        return np.ascontiguousarray(tensor)

    def detect(self, frame: NDArray[Any]) -> list[Detection]:
        height, width = frame.shape[:2]
        (raw, *_) = self._session.run(None, {self._input: self._tensor(frame)})
        out = np.asarray(raw, dtype=np.float32)
        detections: list[Detection] = []
        if self._cfg.output == "scores":
            for class_id, score in enumerate(out.reshape(-1)):
                if class_id < len(self.labels):
                    detections.append(Detection(self.labels[class_id], float(score), Box(0, 0, width, height)))
            return detections
        for x1, y1, x2, y2, score, class_id in out.reshape(-1, 6):
            idx = round(float(class_id))
            if not 0 <= idx < len(self.labels):
                continue
            box = Box(
                int(np.clip(x1, 0, 1) * width),
                int(np.clip(y1, 0, 1) * height),
                int(np.clip(x2, 0, 1) * width),
                int(np.clip(y2, 0, 1) * height),
            )
            detections.append(Detection(self.labels[idx], float(score), box))
        return detections
