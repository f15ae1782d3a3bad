"""Outbox (seq, ack, overflow thinning, reopen) and engine state across a restart (no duplicate, nothing forgotten)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from edge.drivers.base import Sample
from edge.outbox import Outbox
from edge.rules.engine import RuleEngine, build_instances
from edge.rules.models import RulePack
from protocols.messages import AlertEvent, AlertPhase, decode


def payload(seq: int) -> bytes:
    return f'{{"seq": {seq}, "pad": "{"x" * 100}"}}'.encode()


def test_seq_ack_and_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", fsync="normal")
    seqs = [box.append("telemetry", payload, readings=1) for _ in range(10)]
    assert seqs == list(range(1, 11))
    assert box.ack([(1, 4), (6, 6)]) == 5
    assert [e.seq for e in box.pending(0, 100)] == [5, 7, 8, 9, 10]
    box.close()
    again = Outbox(tmp_path / "o.db", fsync="normal")
    assert again.depth == 5 and again.stats().last_acked_seq == 6
    assert again.append("telemetry", payload) == 11, "seq never reused after a restart"
    again.ack([(1, 11)])
    again.close()
    assert Outbox(tmp_path / "o.db").append("events", payload, is_alert=True) == 12


def test_overflow_thins_oldest_telemetry_and_never_drops_alerts(tmp_path: Path) -> None:
    thinned: list[tuple[int, int]] = []
    box = Outbox(tmp_path / "o.db", max_entries=100, fsync="normal", on_thinned=lambda b, r: thinned.append((b, r)))
    alerts = [box.append("events", payload, is_alert=True) for _ in range(5)]
    for _ in range(300):
        box.append("telemetry", payload, readings=50)
    entries = box.pending(0, 10_000)
    assert len(entries) <= 100
    assert [e.seq for e in entries if e.is_alert] == alerts, "alerts are never dropped"
    assert thinned and box.stats().thinned_readings == 50 * box.stats().thinned_batches
    newest = [e.seq for e in entries][-10:]
    assert newest == list(range(296, 306)), "the newest telemetry is kept whole"
    box.close()


PACK = RulePack.model_validate(
    {
        "id": "t",
        "title": "t",
        "category": "drug_storage",
        "rules": [
            {
                "id": "high",
                "kind": "threshold",
                "title": "高温",
                "input": "temperature",
                "op": "above",
                "limit": 8,
                "hysteresis": 0.5,
                "min_duration_s": 10,
                "update_interval_s": 60,
                "message": "{label} {value}{unit} > {limit}",
            },
            {
                "id": "rise",
                "kind": "rate_of_change",
                "title": "升温快",
                "input": "temperature",
                "max_per_min": 2,
                "direction": "rise",
                "window_s": 60,
                "message": "{value}",
            },
        ],
    }
)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def feed(engine: RuleEngine, clock: Clock, value: float) -> None:
    engine.observe("f1", [Sample("f1", "temperature", value, "°C", datetime.now(UTC))])


def events(box: Outbox) -> list[AlertEvent]:
    return [decode(e.payload, AlertEvent) for e in box.pending(0, 1000) if e.is_alert]


def make(box: Outbox, clock: Clock) -> RuleEngine:
    instances = build_instances(PACK, None, "f1", "冷藏柜", {"temperature": "°C"}, {})
    return RuleEngine(box, "s1", "a1", instances, clock=clock)


def test_lifecycle_min_duration_hysteresis_and_restart(tmp_path: Path) -> None:
    clock = Clock()
    box = Outbox(tmp_path / "o.db", fsync="normal")
    engine = make(box, clock)
    feed(engine, clock, 9.0)
    clock.t += 5
    feed(engine, clock, 9.0)
    assert not [e for e in events(box) if e.rule_id == "t.high"], "minimum duration not reached yet"
    box.close()

    box = Outbox(tmp_path / "o.db", fsync="normal")  # restart: the pending timer survives
    engine = make(box, clock)
    clock.t += 6
    feed(engine, clock, 9.2)
    high = [e for e in events(box) if e.rule_id == "t.high"]
    assert [e.phase for e in high] == [AlertPhase.RAISE]
    assert "冷藏柜 9.2°C > 8" == high[0].message
    box.close()

    box = Outbox(tmp_path / "o.db", fsync="normal")  # restart with the alert open: no second raise
    engine = make(box, clock)
    clock.t += 1
    feed(engine, clock, 9.5)
    clock.t += 61
    feed(engine, clock, 9.6)
    feed(engine, clock, 7.8)  # inside the hysteresis band: stays open
    feed(engine, clock, 7.4)
    high = [e for e in events(box) if e.rule_id == "t.high"]
    assert [e.phase for e in high] == [AlertPhase.RAISE, AlertPhase.UPDATE, AlertPhase.CLEAR]
    assert len({e.alert_id for e in high}) == 1
    box.close()


def test_rate_of_change(tmp_path: Path) -> None:
    clock = Clock()
    box = Outbox(tmp_path / "o.db", fsync="normal")
    engine = make(box, clock)
    for i in range(7):
        feed(engine, clock, 4.0 + i * 0.5)  # 0.5 °C per 10 s = 3 °C/min
        clock.t += 10
    for _ in range(8):
        feed(engine, clock, 7.0)
        clock.t += 10
    rise = [e.phase for e in events(box) if e.rule_id == "t.rise"]
    assert rise == [AlertPhase.RAISE, AlertPhase.CLEAR]
    box.close()
