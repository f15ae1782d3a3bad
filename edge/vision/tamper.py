"""Tamper detection: lens covered / blackout, defocus, camera moved.

Each judgement is made against the scene's own history, not fixed absolute numbers:
- *covered*: almost no texture left (grey std-dev tiny), or a dark frame with little texture;
- *defocused*: gain-invariant sharpness (variance of the Laplacian over the variance of the image)
  far below the slowly learnt baseline of this camera;
- *moved*: most cells of a 4×4 grid no longer correlate (zero-mean NCC, so brightness does not
  matter) with a reference view that is refreshed slowly while everything is normal. A view that
  stays different for ``relearn_after_s`` is accepted as the new reference (someone re-aimed it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.vision.config import TamperConfig

Grey = NDArray[Any]
GRID = 4


@dataclass(frozen=True, slots=True)
class TamperState:
    covered: bool = False
    defocused: bool = False
    moved: bool = False
    mean: float = 0.0
    std: float = 0.0
    sharpness: float = 0.0
    sharpness_baseline: float | None = None
    moved_fraction: float = 0.0
    relearned: bool = False


def sharpness(grey: Grey) -> float:
    """Variance of the Laplacian divided by the image variance (independent of lighting gain)."""
    img = grey.astype(np.float32)
    var = float(img.var())
    if var < 1e-3:
        return 0.0
    return float(cv2.Laplacian(img, cv2.CV_32F).var()) / var


def cell_ncc(a: NDArray[Any], b: NDArray[Any], grid: int = GRID) -> list[float | None]:
    """Zero-mean normalised cross-correlation per grid cell (None where the reference has no texture)."""
    h, w = a.shape
    out: list[float | None] = []
    for gy in range(grid):
        for gx in range(grid):
            ys, ye = gy * h // grid, (gy + 1) * h // grid
            xs, xe = gx * w // grid, (gx + 1) * w // grid
            ca = a[ys:ye, xs:xe] - a[ys:ye, xs:xe].mean()
            cb = b[ys:ye, xs:xe] - b[ys:ye, xs:xe].mean()
            sb = float(np.sqrt((cb * cb).mean()))
            if sb < 3.0:
                out.append(None)
                continue
            sa = float(np.sqrt((ca * ca).mean()))
            out.append(float((ca * cb).mean()) / (sa * sb) if sa > 1e-3 else 0.0)
    return out


class TamperDetector:
    def __init__(self, config: TamperConfig) -> None:
        self._cfg = config
        self._started: float | None = None
        self._baseline: float | None = None
        self._reference: NDArray[Any] | None = None
        self._reference_at = 0.0
        self._moved_since: float | None = None

    def check(self, small: Grey, mid: Grey, ts: float, *, motion_active: bool) -> TamperState:
        cfg = self._cfg
        if self._started is None:
            self._started = ts
        mean, std = float(small.mean()), float(small.std())
        sharp = sharpness(mid)
        covered = std < cfg.covered_std or (mean < cfg.blackout_mean and std < cfg.covered_std * 2)
        current = cv2.GaussianBlur(small, (5, 5), 0).astype(np.float32)
        warm = ts - self._started >= cfg.warmup_s

        if self._reference is None and not covered:
            self._reference, self._reference_at = current, ts
        moved_fraction = 0.0
        if self._reference is not None and not covered:
            scores = [s for s in cell_ncc(current, self._reference) if s is not None]
            if scores:
                moved_fraction = sum(1 for s in scores if s < cfg.moved_cell_ncc) / len(scores)
        moved = warm and not covered and moved_fraction >= cfg.moved_fraction

        relearned = False
        if moved:
            self._moved_since = self._moved_since if self._moved_since is not None else ts
            if ts - self._moved_since >= cfg.relearn_after_s:
                self._reference, self._reference_at = current, ts
                self._baseline = sharp
                self._moved_since, moved, relearned = None, False, True
        else:
            self._moved_since = None

        defocused = False
        if not covered and not moved:
            if self._baseline is None:
                self._baseline = sharp
            defocused = warm and sharp < cfg.defocus_ratio * self._baseline
            if not defocused:
                # learn the scene's own sharpness (fast during warm-up, slowly afterwards)
                rate = 0.2 if not warm else 0.01
                self._baseline += rate * (sharp - self._baseline)
                if (
                    not motion_active
                    and self._reference is not None
                    and ts - self._reference_at >= cfg.reference_refresh_s
                ):
                    self._reference = 0.5 * self._reference + 0.5 * current
                    self._reference_at = ts
        return TamperState(
            covered=warm and covered,
            defocused=defocused,
            moved=moved,
            mean=mean,
            std=std,
            sharpness=sharp,
            sharpness_baseline=self._baseline,
            moved_fraction=moved_fraction,
            relearned=relearned,
        )
