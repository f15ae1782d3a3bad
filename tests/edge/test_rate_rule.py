"""The rate-of-change rule uses only fresh, consecutive readings (issue 15): an outside tester saw it fire
"每分钟上升 13.125°C" 66 s after a probe went silent (slope across the gap) and miss real step changes."""

from __future__ import annotations

from pathlib import Path

from edge.outbox import Outbox
from edge.rules.engine import RuleEngine, build_instances
from edge.rules.models import RulePack
from protocols.messages import AlertPhase
from tests.edge.test_outbox_and_engine import Clock, events, feed

PACK = RulePack.model_validate(
    {
        "id": "t",
        "title": "t",
        "category": "drug_storage",
        "rules": [
            {
                "id": "rise",
                "kind": "rate_of_change",
                "title": "升温快",
                "input": "temperature",
                "max_per_min": 2,
                "direction": "rise",
                "window_s": 300,
                "message": "每分钟上升 {value}{unit}",
            }
        ],
    }
)


def engine_for(tmp_path: Path, clock: Clock) -> tuple[Outbox, RuleEngine]:
    box = Outbox(tmp_path / "o.db", fsync="normal")
    instances = build_instances(PACK, None, "f1", "冷藏柜", {"temperature": "°C"}, {})
    return box, RuleEngine(box, "s1", "a1", instances, clock=clock)


def run(engine: RuleEngine, clock: Clock, values: list[float], every_s: float = 5) -> None:
    for v in values:
        feed(engine, clock, v)
        clock.t += every_s


def raised(box: Outbox) -> list[float | None]:
    return [e.value for e in events(box) if e.rule_id == "t.rise" and e.phase is AlertPhase.RAISE]


def test_no_slope_across_a_gap_nor_from_a_silent_probe(tmp_path: Path) -> None:
    clock = Clock()
    box, engine = engine_for(tmp_path, clock)
    run(engine, clock, [4.0 + 0.01 * i for i in range(12)])  # slowly warming, well under 2 °C/min
    clock.t += 66  # the probe goes silent
    engine.tick()
    assert raised(box) == [], "a silent probe has no rate"
    run(engine, clock, [18.4])  # it comes back far away: not consecutive with the old readings
    assert raised(box) == [], "no slope across a gap"
    box.close()


def test_a_step_change_is_caught(tmp_path: Path) -> None:
    clock = Clock()
    box, engine = engine_for(tmp_path, clock)
    run(engine, clock, [4.0] * 50)  # 250 s steady
    run(engine, clock, [10.0] * 4)  # a door left open: +6 °C at once (first-to-last over 300 s: 1.4 °C/min)
    values = raised(box)
    assert len(values) == 1 and values[0] is not None and values[0] > 2, values
    box.close()
