"""One scenario per rule of every shipped rule pack (``firmware-config/rulepacks``): readings in, the alert out.

Expected values are written from the regulations (regulations.md), not read from the packs, including the boundary
where the text gives one:

* GSP 2016 (drugs): refrigerated 2–8 °C, cold 2–10 °C, cool ≤ 20 °C, normal 10–30 °C, RH 35–75 %; the alarm is on
  *reaching* a limit (8.0 alarms, 7.9 does not); each point refreshed at least once a minute (two missed minutes:
  stale).
* GB/T 24616-2019 (chilled food): below 8 °C and above freezing (8.0 alarms); frozen ≤ −18 °C (−18.0 is compliant).
* GB/T 24476 elevator codes: faults 01–08 and events 41, 44–47, 90 each raise their alert; trapped passenger: car
  stopped outside the door zone with a passenger inside (after the pack's confirmation time, [r]).
* Boiler (de-facto upload schema): extremely low water, high water, overpressure, flame failure, hardness alarms.
* Mains power lost (GSP: power-failure alarm).

Durations ("for 5 minutes") are the packs' confirmation times, applied by advancing the engine's clock — the real
rule engine over a real outbox file, no simulator. ``test_every_shipped_rule_has_a_scenario`` fails when a rule is
added to a pack without a scenario here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from edge.config.loader import load_rule_pack
from edge.drivers.base import Sample
from edge.outbox import Outbox
from edge.rules.engine import RuleEngine, build_instances
from protocols.messages import AlertEvent, AlertPhase, decode

PACKS = Path(__file__).resolve().parents[2] / "firmware-config" / "rulepacks"
Step = tuple[float, dict[str, float]]  # (seconds since start, readings); an empty dict = time passes, no reading


class Case(NamedTuple):
    pack: str
    rule: str
    profile: str | None
    steps: list[Step]
    fires: bool
    why: str


def held(readings: dict[str, float], for_s: float) -> list[Step]:
    """The same readings at the start and again just after ``for_s`` seconds."""
    return [(0.0, readings), (for_s + 1, readings)]


def flag(pack: str, rule: str, point: str, for_s: float = 0.0, why: str = "") -> list[Case]:
    return [
        Case(pack, rule, None, held({point: 1.0}, for_s), True, why or f"{point} = 1"),
        Case(pack, rule, None, held({point: 0.0}, for_s), False, f"{point} = 0"),
    ]


def code(rule: str, value: int, why: str) -> Case:
    return Case("elevator", rule, None, [(0.0, {"event_code": float(value)})], True, why)


CASES: list[Case] = [
    # ---------------------------------------------------------------- GSP: alarm on reaching the limit
    Case("gsp", "temp_high", "refrigerated", [(0, {"temperature": 8.0})], True, "冷藏 2–8 °C: 8.0 reaches"),
    Case("gsp", "temp_high", "refrigerated", [(0, {"temperature": 7.9})], False, "7.9 inside"),
    Case("gsp", "temp_low", "refrigerated", [(0, {"temperature": 2.0})], True, "冷藏 2–8 °C: 2.0 reaches"),
    Case("gsp", "temp_low", "refrigerated", [(0, {"temperature": 2.1})], False, "2.1 inside"),
    Case("gsp", "cold_high", "cold", [(0, {"temperature": 10.0})], True, "冷处 2–10 °C: 10.0 reaches"),
    Case("gsp", "cold_high", "cold", [(0, {"temperature": 9.9})], False, "9.9 inside"),
    Case("gsp", "cold_low", "cold", [(0, {"temperature": 2.0})], True, "冷处 2–10 °C: 2.0 reaches"),
    Case("gsp", "cool_high", "cool", [(0, {"temperature": 20.0})], True, "阴凉 ≤ 20 °C: 20.0 reaches"),
    Case("gsp", "cool_high", "cool", [(0, {"temperature": 19.9})], False, "19.9 inside"),
    Case("gsp", "normal_high", "normal", [(0, {"temperature": 30.0})], True, "常温 10–30 °C: 30.0 reaches"),
    Case("gsp", "normal_low", "normal", [(0, {"temperature": 10.0})], True, "常温 10–30 °C: 10.0 reaches"),
    Case("gsp", "normal_low", "normal", [(0, {"temperature": 10.1})], False, "10.1 inside"),
    Case("gsp", "humidity_high", "normal", [(0, {"humidity": 75.0})], True, "RH 35–75 %: 75 reaches"),
    Case("gsp", "humidity_high", "normal", [(0, {"humidity": 74.9})], False, "74.9 inside"),
    Case("gsp", "humidity_low", "normal", [(0, {"humidity": 35.0})], True, "RH 35–75 %: 35 reaches"),
    Case("gsp", "humidity_low", "normal", [(0, {"humidity": 35.1})], False, "35.1 inside"),
    Case(
        "gsp",
        "temp_rate",
        "normal",
        [(0, {"temperature": 15.0}), (60, {"temperature": 15.0}), (120, {"temperature": 25.0})],
        True,
        "a 10 °C rise within two minutes (a door left open / cooling lost) before any limit is reached",
    ),
    Case("gsp", "temp_rate", "normal", [(0, {"temperature": 15.0}), (120, {"temperature": 15.2})], False, "steady"),
    Case("gsp", "temp_fault", "normal", [(0, {"temperature": 200.0})], True, "outside any probe's range"),
    Case("gsp", "temp_fault", "normal", [(0, {"temperature": 25.0})], False, "a plausible reading"),
    Case("gsp", "humidity_fault", "normal", [(0, {"humidity": 101.0})], True, "RH above 100 % is impossible"),
    Case(
        "gsp",
        "temp_stale",
        "refrigerated",
        [(0, {"temperature": 5.0}), (181, {})],
        True,
        "refreshed at least every minute: three minutes without a reading",
    ),
    Case("gsp", "temp_stale", "refrigerated", [(0, {"temperature": 5.0}), (55, {})], False, "within the minute"),
    # ---------------------------------------------------------------- food cold chain
    Case("cold_chain", "chilled_high", "chilled", held({"temperature": 8.0}, 300), True, "below 8 °C: 8.0 is out"),
    Case("cold_chain", "chilled_high", "chilled", held({"temperature": 7.9}, 300), False, "7.9 is below 8"),
    Case(
        "cold_chain", "chilled_low", "chilled", held({"temperature": -0.5}, 300), True, "above freezing: −0.5 freezes"
    ),
    Case("cold_chain", "chilled_low", "chilled", held({"temperature": 0.5}, 300), False, "0.5 above freezing"),
    Case("cold_chain", "frozen_high", "frozen", held({"temperature": -17.5}, 300), True, "≤ −18 °C: −17.5 is out"),
    Case("cold_chain", "frozen_high", "frozen", held({"temperature": -18.0}, 300), False, "−18.0 is compliant"),
    Case("cold_chain", "temp_fault", "chilled", [(0, {"temperature": 200.0})], True, "outside any probe's range"),
    Case(
        "cold_chain",
        "temp_stale",
        "chilled",
        [(0, {"temperature": 4.0}), (601, {})],
        True,
        "no record for more than 10 minutes (GB 31605 record interval ≤ 10 min [r])",
    ),
    # ---------------------------------------------------------------- elevator (GB/T 24476 codes)
    Case(
        "elevator",
        "trapped",
        None,
        held({"moving": 0.0, "door_zone": 0.0, "passenger": 1.0}, 30),
        True,
        "stopped outside the door zone with a passenger inside",
    ),
    Case(
        "elevator",
        "trapped",
        None,
        held({"moving": 0.0, "door_zone": 1.0, "passenger": 1.0}, 30),
        False,
        "stopped in the door zone: the passenger can leave",
    ),
    *flag("elevator", "fault_01", "fault_01", why="01 safety circuit open while running"),
    *flag("elevator", "fault_02", "fault_02", why="02 door-close fault"),
    *flag("elevator", "fault_03", "fault_03", why="03 door-open fault"),
    *flag("elevator", "fault_04", "fault_04", why="04 stopped outside the door zone"),
    *flag("elevator", "fault_05", "fault_05", why="05 unintended car movement"),
    *flag("elevator", "fault_06", "fault_06", why="06 motor run-time limiter tripped"),
    *flag("elevator", "fault_07", "fault_07", why="07 floor position lost"),
    *flag("elevator", "fault_08", "fault_08", why="08 restart-prevention fault"),
    code("event_41", 41, "41 main power lost"),
    code("event_44", 44, "44 fire return"),
    code("event_45", 45, "45 firefighter operation"),
    code("event_46", 46, "46 emergency power"),
    code("event_47", 47, "47 earthquake operation"),
    code("event_90", 90, "90 alarm button pressed"),
    Case("elevator", "event_41", None, [(0, {"event_code": 40.0})], False, "40 back to normal"),
    Case("elevator", "event_90", None, [(0, {"event_code": 43.0})], False, "43 inspection: recorded only"),
    Case("elevator", "out_of_service", None, held({"service_mode": 0.0}, 60), True, "service mode 0 out of service"),
    Case("elevator", "out_of_service", None, held({"service_mode": 1.0}, 60), False, "service mode 1 normal"),
    # ---------------------------------------------------------------- boiler
    *flag("boiler", "low_water_extreme", "low_water_extreme", why="extremely low water level"),
    *flag("boiler", "high_water", "high_water", why="high water level"),
    *flag("boiler", "overpressure", "overpressure", why="steam overpressure alarm"),
    *flag("boiler", "flame_failure", "flame_failure", why="flame failure"),
    *flag("boiler", "hardness_high", "hardness_high", why="softened-water hardness"),
    Case("boiler", "pressure_high", None, held({"steam_pressure": 1.30}, 5), True, "steam pressure above the limit"),
    Case("boiler", "pressure_high", None, held({"steam_pressure": 1.00}, 5), False, "normal working pressure"),
    # ---------------------------------------------------------------- mains power (GSP power-failure alarm)
    *flag("mains_power", "mains_lost", "mains_lost", for_s=3, why="power failure"),
]


def _raised(tmp_path: Path, case: Case) -> set[str]:
    pack = load_rule_pack(PACKS / f"{case.pack}.toml")
    points = {p for _, readings in case.steps for p in readings}
    units = {p: "°C" if "temp" in p else "%RH" if p == "humidity" else "" for p in points}
    now = [1_000_000.0]
    box = Outbox(tmp_path / "outbox.db", fsync="normal")
    try:
        engine = RuleEngine(
            box, "s1", "a1", build_instances(pack, case.profile, "d1", "测点", units, {}), clock=lambda: now[0]
        )
        for at, readings in case.steps:
            now[0] = 1_000_000.0 + at
            if readings:
                ts = datetime.fromtimestamp(now[0], UTC)
                engine.observe("d1", [Sample("d1", p, v, units[p], ts) for p, v in readings.items()])
            engine.tick()
        alerts = [decode(e.payload, AlertEvent) for e in box.pending(0, 10_000) if e.is_alert]
        return {a.rule_id.split(".", 1)[1] for a in alerts if a.phase is AlertPhase.RAISE}
    finally:
        box.close()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.pack}.{c.rule}-{'fires' if c.fires else 'quiet'}" for c in CASES])
def test_rule_scenario(tmp_path: Path, case: Case) -> None:
    raised = _raised(tmp_path, case)
    assert (case.rule in raised) is case.fires, f"{case.pack}.{case.rule}: {case.why} → raised {sorted(raised)}"


def test_every_shipped_rule_has_a_scenario() -> None:
    shipped = {(p.stem, r.id) for p in PACKS.glob("*.toml") for r in load_rule_pack(p).rules}
    firing = {(c.pack, c.rule) for c in CASES if c.fires}
    assert not shipped - firing, f"rules without a firing scenario: {sorted(shipped - firing)}"
    assert not {(c.pack, c.rule) for c in CASES} - shipped, "a scenario names a rule no pack ships"


def test_a_rate_alert_says_per_minute(tmp_path: Path) -> None:
    """A rate-of-change alert's value and limit are °C per minute: the event's unit says so (``°C/min``), so the
    cloud never writes the 2 °C/分钟 limit as a 2 ℃ temperature limit; the message keeps the reading's unit."""
    pack = load_rule_pack(PACKS / "gsp.toml")
    units = {"temperature": "°C"}
    now = [1_000_000.0]
    box = Outbox(tmp_path / "outbox.db", fsync="normal")
    try:
        engine = RuleEngine(
            box, "s1", "a1", build_instances(pack, "normal", "d1", "测点", units, {}), clock=lambda: now[0]
        )
        for at, value in ((0, 15.0), (60, 15.0), (120, 25.0)):
            now[0] = 1_000_000.0 + at
            engine.observe("d1", [Sample("d1", "temperature", value, "°C", datetime.fromtimestamp(now[0], UTC))])
            engine.tick()
        alerts = [decode(e.payload, AlertEvent) for e in box.pending(0, 10_000) if e.is_alert]
        rate = next(a for a in alerts if a.rule_id.endswith(".temp_rate") and a.phase is AlertPhase.RAISE)
        assert rate.unit == "°C/min" and rate.limit == 2.0 and rate.value == 10.0
        assert "每分钟上升 10°C，超过 2°C/分钟" in rate.message, rate.message
    finally:
        box.close()
