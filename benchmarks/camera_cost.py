"""Analysis cost per 640×480 frame and cameras per core at 5 fps (excluding / including MJPEG decode).

Baseline measured in the same run: the barest motion check one could write (cv2 resize to 160×120,
greyscale, absdiff against the previous frame). Frames come from the camera simulator: a quiet scene
and a scene with a person walking (motion → HOG on the motion regions), JPEG-encoded like a stream.

    .venv/bin/python benchmarks/camera_cost.py [--frames 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.vision.pipeline import CameraPipeline  # noqa: E402
from simulators.camera.scenario import Scenario  # noqa: E402
from tests.edge.vision.helpers import SCENARIOS, sim_camera_config  # noqa: E402


def frames(name: str, n: int) -> list[tuple[float, bytes]]:
    sc = Scenario.load(SCENARIOS / f"{name}.toml").with_size(640, 480)
    out = []
    for f in sc.frames():
        if f.image is not None:
            _ok, buf = cv2.imencode(".jpg", f.image, [cv2.IMWRITE_JPEG_QUALITY, 80])
            out.append((f.t, buf.tobytes()))
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    args = ap.parse_args()
    cv2.setNumThreads(1)  # one core
    sets = {"quiet": frames("quiet_day", args.frames), "person": frames("after_hours_person", args.frames)}
    decoded = {
        k: [(t, cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR)) for t, j in v] for k, v in sets.items()
    }
    start = Scenario.load(SCENARIOS / "after_hours_person.toml").start

    # baseline
    t0 = time.perf_counter()
    n = 0
    for seq in decoded.values():
        prev = None
        for _, img in seq:
            small = cv2.cvtColor(cv2.resize(img, (160, 120), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
            if prev is not None:
                cv2.absdiff(small, prev)
            prev = small
            n += 1
    base = (time.perf_counter() - t0) / n

    # decode
    t0 = time.perf_counter()
    m = 0
    for seq in sets.values():
        for _, jpeg in seq:
            cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            m += 1
    decode = (time.perf_counter() - t0) / m

    results = {}
    from datetime import timedelta

    for name, seq in decoded.items():
        pipe = CameraPipeline(sim_camera_config())
        hog = 0
        t0 = time.perf_counter()
        for t, img in seq:
            hog += pipe.process(img, t, start + timedelta(seconds=t)).hog_runs
        results[name] = ((time.perf_counter() - t0) / len(seq), hog / len(seq))
    mixed = (results["quiet"][0] * 3 + results["person"][0]) / 4  # a camera sees motion ~25 % of the time

    print("camera analysis cost, 640×480, one core (cv2.setNumThreads(1))")
    print(f"  baseline resize+grey+absdiff : {base * 1e3:7.3f} ms/frame")
    print(f"  MJPEG decode (imdecode)      : {decode * 1e3:7.3f} ms/frame")
    for name, (cost, hog) in results.items():
        print(
            f"  pipeline, {name:7} scene      : {cost * 1e3:7.3f} ms/frame  ({cost / base:5.1f}× baseline, "
            f"HOG on {hog:.0%} of frames)"
        )
    print(f"  pipeline, mixed (25% motion) : {mixed * 1e3:7.3f} ms/frame  ({mixed / base:5.1f}× baseline)")
    for label, cost in (("quiet", results["quiet"][0]), ("person", results["person"][0]), ("mixed", mixed)):
        print(
            f"  cameras/core at 5 fps, {label:6}: {1 / (5 * cost):6.1f} excl. decode, "
            f"{1 / (5 * (cost + decode)):6.1f} incl. decode   "
            f"(baseline: {1 / (5 * base):.0f} / {1 / (5 * (base + decode)):.0f})"
        )


if __name__ == "__main__":
    main()
