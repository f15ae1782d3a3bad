"""Precision and recall per event type on the camera simulator's labelled scenarios.

Every scenario in firmware-config/cameras/scenarios is run with several seeds (different kitchens,
jar colours, noise) at 320×240 and 640×480, frames JPEG round-tripped like a stream, through the
analysis pipeline with the scenario clock. Baseline in the same run: "motion = alert" (a camera that
raises whenever the bare absdiff motion check fires, as a cheap NVR does) scored the same way.

    .venv/bin/python benchmarks/camera_accuracy.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulators.camera.groundtruth import Evaluation, ObservedAlert  # noqa: E402
from simulators.camera.scenario import Scenario, load_scenarios  # noqa: E402
from tests.edge.vision.helpers import SCENARIOS, run_offline  # noqa: E402


def naive_motion_alerts(sc: Scenario) -> list[ObservedAlert]:
    """Baseline: any frame with >0.5 % changed pixels is an 'event' (one alert per burst)."""
    alerts: list[ObservedAlert] = []
    prev = None
    open_at: float | None = None
    quiet = 0
    for f in sc.frames():
        if f.image is None:
            continue
        small = cv2.cvtColor(cv2.resize(f.image, (160, 120)), cv2.COLOR_BGR2GRAY)
        moving = prev is not None and (cv2.absdiff(small, prev) > 25).mean() > 0.005
        prev = small
        if moving and open_at is None:
            open_at, quiet = f.t, 0
        elif not moving and open_at is not None:
            quiet += 1
            if quiet >= 10:
                alerts.append(ObservedAlert("motion", open_at, f.t))
                open_at = None
    if open_at is not None:
        alerts.append(ObservedAlert("motion", open_at, None))
    return alerts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    scenarios = load_scenarios(SCENARIOS)
    ours, baseline = Evaluation(), Evaluation()
    no_event_alerts = 0
    runs = 0
    t0 = time.perf_counter()
    for size in ((320, 240), (640, 480)):
        for seed in range(args.seeds):
            for base in scenarios:
                sc = base.with_size(*size).model_copy(update={"seed": base.seed + seed * 17})
                alerts = run_offline(sc).alerts()
                ours.add(sc, alerts)
                if not sc.expect:
                    no_event_alerts += len(alerts)
                naive = naive_motion_alerts(sc)
                # the baseline "detects" an expected event when any motion burst starts in its window
                relabelled = [
                    ObservedAlert(
                        next((e.rule_id for e in sc.expect if e.start_s - 0.5 <= a.raised_s <= e.end_s + 3), "motion"),
                        a.raised_s,
                        a.cleared_s,
                    )
                    for a in naive
                ]
                baseline.add(sc, relabelled)
                runs += 1
    elapsed = time.perf_counter() - t0
    print(
        f"camera accuracy: {runs} scenario runs ({len(scenarios)} scenarios × {args.seeds} seeds × 2 sizes) "
        f"in {elapsed:.0f} s"
    )
    print(f"{'event type':26} {'TP':>4} {'FP':>4} {'FN':>4} {'precision':>9} {'recall':>7}  late-clear")
    for kind, s in sorted(ours.per_type.items()):
        print(
            f"{kind:26} {s.true_positive:4} {s.false_positive:4} {s.false_negative:4} "
            f"{s.precision:9.2f} {s.recall:7.2f}  {s.cleared_late}"
        )
    print(f"alerts on no-event scenarios: {no_event_alerts}")
    tp = sum(s.true_positive for s in ours.per_type.values())
    fp = sum(s.false_positive for s in ours.per_type.values())
    btp = sum(s.true_positive for s in baseline.per_type.values())
    bfp = sum(s.false_positive for s in baseline.per_type.values())
    print(
        f"overall precision: ours {tp / max(1, tp + fp):.2f} vs baseline 'motion = alert' "
        f"{btp / max(1, btp + bfp):.2f} "
        f"({bfp} false alerts vs our {fp})"
    )
    for name, a in ours.unexpected[:10]:
        print(f"  unexpected: {name} {a}")
    for name, rule in ours.missed[:10]:
        print(f"  missed: {name} {rule}")


if __name__ == "__main__":
    main()
