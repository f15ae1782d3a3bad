"""Analysis cost per 640×480 frame and cameras per core at 5 fps (excluding / including MJPEG decode).

Baseline measured in the same run: the barest motion check one could write (cv2 resize to 160×120,
greyscale, absdiff against the previous frame). Frames come from the camera simulator, JPEG-encoded like a
stream: a quiet scene, a person walking through after hours, and a working kitchen with three people in view
in every frame (the normal case: occupancy rule armed, so people detection runs all the time). The last is
also run with people detection on every frame (``detect_interval_s = 0``, no tracking), the cost before
detection ran at a lower rate than motion.

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

BUSY_KITCHEN = {
    "name": "busy_kitchen",
    "start": "2026-11-26T11:00:00+08:00",
    "duration_s": 60,
    "events": [
        {"kind": "person_walk", "start_s": 0, "end_s": 60, "from_x": 0.05, "to_x": 0.45, "count": 2},
        {"kind": "person_walk", "start_s": 0, "end_s": 60, "from_x": 0.9, "to_x": 0.55, "size": 0.55},
    ],
}


def frames(name: str, n: int) -> list[tuple[float, bytes]]:
    if name == "busy_kitchen":
        sc = Scenario.model_validate(BUSY_KITCHEN).with_size(640, 480)
    else:
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
    sets = {
        "quiet": frames("quiet_day", args.frames),
        "walk-by": frames("after_hours_person", args.frames),
        "in-view": frames("busy_kitchen", args.frames),
    }
    decoded = {
        k: [(t, cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR)) for t, j in v] for k, v in sets.items()
    }
    starts = {
        "quiet": Scenario.load(SCENARIOS / "quiet_day.toml").start,
        "walk-by": Scenario.load(SCENARIOS / "after_hours_person.toml").start,
        "in-view": Scenario.model_validate(BUSY_KITCHEN).start,
    }

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

    results: dict[str, tuple[float, float, float]] = {}
    from datetime import timedelta

    every_frame = {"detect_interval_s": 0, "track_hold_s": 0, "min_hits": 1}
    runs = [(name, name, {}) for name in decoded] + [("in-view, detect every frame", "in-view", every_frame)]
    for label, name, people in runs:
        pipe = CameraPipeline(sim_camera_config(people=people) if people else sim_camera_config())
        hog = counted = 0
        seq = decoded[name]
        t0 = time.perf_counter()
        for t, img in seq:
            report = pipe.process(img, t, starts[name] + timedelta(seconds=t))
            hog += report.hog_runs
            counted += len(report.people)
        results[label] = ((time.perf_counter() - t0) / len(seq), hog / len(seq), counted / len(seq))
    in_view = results["in-view"][0]
    mixed = (results["quiet"][0] * 3 + results["walk-by"][0]) / 4  # a camera sees motion ~25 % of the time

    sizes = ", ".join(f"{k} {len(v)}" for k, v in sets.items())
    print(f"camera analysis cost, 640×480, one core (cv2.setNumThreads(1)); frames: {sizes}")
    print(f"  baseline resize+grey+absdiff : {base * 1e3:7.3f} ms/frame")
    print(f"  MJPEG decode (imdecode)      : {decode * 1e3:7.3f} ms/frame")
    for label, (cost, hog, counted) in results.items():
        print(
            f"  pipeline, {label:28}: {cost * 1e3:7.3f} ms/frame  ({cost / base:5.1f}× baseline, "
            f"people detection on {hog:.0%} of frames, {counted:.1f} people tracked/frame)"
        )
    print(f"  pipeline, mixed (25% motion) : {mixed * 1e3:7.3f} ms/frame  ({mixed / base:5.1f}× baseline)")
    rows = [("quiet", results["quiet"][0]), ("walk-by", results["walk-by"][0]), ("mixed", mixed)]
    rows += [("in-view", in_view), ("in-view, every frame", results["in-view, detect every frame"][0])]
    for label, cost in rows:
        print(
            f"  cameras/core at 5 fps, {label:20}: {1 / (5 * cost):6.1f} excl. decode, "
            f"{1 / (5 * (cost + decode)):6.1f} incl. decode   "
            f"(baseline: {1 / (5 * base):.0f} / {1 / (5 * (base + decode)):.0f})"
        )
    print(
        f"PERSON-IN-VIEW: {1 / (5 * in_view):.1f} cameras/core at 5 fps excl. decode "
        f"({in_view * 1e3:.2f} ms/frame = {in_view / base:.1f}× the baseline of {base * 1e3:.3f} ms in this run)"
    )


if __name__ == "__main__":
    main()
