"""Limits as the regulations word them, on the shipped rule packs (expected values from the text, not the pack):

* GSP alarms when a limit is *reached*: a refrigerated point at exactly 8.0 °C or 2.0 °C alarms, 7.9 °C does
  not; relative humidity at exactly 75 % alarms. Chilled food must stay *below* 8 °C (GB/T 24616): 8.0 alarms.
  Frozen food ≤ −18 °C: exactly −18.0 is compliant.
* GSP: each measuring point is updated at least once a minute, so a drug point polled every 61 s (or 3,600 s)
  is refused when the site file is loaded, with the file, the key and the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.config.loader import load_rule_pack, load_site
from edge.drivers.base import Sample
from edge.errors import ConfigError
from edge.outbox import Outbox
from edge.rules.engine import RuleEngine, build_instances
from protocols.messages import AlertEvent, AlertPhase, decode

REPO = Path(__file__).resolve().parents[2]
PACKS = REPO / "firmware-config" / "rulepacks"


def raised(tmp_path: Path, pack: str, profile: str | None, point: str, unit: str, value: float) -> set[str]:
    rules = load_rule_pack(PACKS / f"{pack}.toml")
    box = Outbox(tmp_path / f"{pack}-{profile}-{value}.db", fsync="normal")
    try:
        instances = build_instances(rules, profile, "p1", "测点", {point: unit}, {})
        engine = RuleEngine(box, "s1", "a1", instances, clock=lambda: 1_000_000.0)
        engine.observe("p1", [Sample("p1", point, value, unit, datetime.now(UTC))])
        alerts = [decode(e.payload, AlertEvent) for e in box.pending(0, 1000) if e.is_alert]
        return {a.rule_id.split(".", 1)[1] for a in alerts if a.phase is AlertPhase.RAISE}
    finally:
        box.close()


@pytest.mark.parametrize(
    ("pack", "profile", "point", "unit", "value", "expected"),
    [
        ("gsp", "refrigerated", "temperature", "°C", 8.0, {"temp_high"}),
        ("gsp", "refrigerated", "temperature", "°C", 7.9, set()),
        ("gsp", "refrigerated", "temperature", "°C", 2.0, {"temp_low"}),
        ("gsp", "refrigerated", "temperature", "°C", 2.1, set()),
        ("gsp", "cool", "temperature", "°C", 20.0, {"cool_high"}),
        ("gsp", "normal", "humidity", "%RH", 75.0, {"humidity_high"}),
        ("gsp", "normal", "humidity", "%RH", 35.0, {"humidity_low"}),
        ("gsp", "normal", "humidity", "%RH", 74.9, set()),
        ("cold_chain", "frozen", "temperature", "°C", -18.0, set()),
    ],
)
def test_limit_reached_alarms_where_the_rule_says_reach(
    tmp_path: Path, pack: str, profile: str, point: str, unit: str, value: float, expected: set[str]
) -> None:
    assert raised(tmp_path, pack, profile, point, unit, value) == expected


def test_chilled_food_at_8_degrees_is_out_of_range() -> None:
    rules = load_rule_pack(PACKS / "cold_chain.toml")
    high = next(r for r in rules.rules if r.id == "chilled_high")
    assert high.limit == 8.0 and high.inclusive  # type: ignore[union-attr]


SITE = """
[agent]
site_id = "s1"

[[buses]]
kind = "tcp"
id = "b"
host = "127.0.0.1"

[[devices]]
type = "modbus_probe"
id = "ok"
bus = "b"
address = 1
poll_interval_s = 60

[[devices]]
type = "modbus_probe"
id = "fridge"
bus = "b"
address = 2
poll_interval_s = {interval}

[[rules]]
pack = "gsp"
profile = "refrigerated"
devices = ["ok", "fridge"]
"""


@pytest.mark.parametrize("interval", [61, 3600])
def test_drug_point_record_interval_capped_at_load(tmp_path: Path, interval: int) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(interval=interval), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert info.value.source == str(path) and info.value.key == "devices[1].poll_interval_s"
    assert f"{interval} s exceeds" in info.value.reason and "60 s" in info.value.reason


def test_drug_point_at_one_minute_loads(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(interval=60), encoding="utf-8")
    assert load_site(path).config.devices


def test_every_elevator_event_and_fault_code_maps_to_something_deliberate() -> None:
    """GB/T 24476 lineage: faults 01–08 and events 40–47, 90 each raise an alert or are documented as recorded."""
    from edge.rules.models import CodeRule, FlagRule

    pack = load_rule_pack(PACKS / "elevator.toml")
    flags = {r.input for r in pack.rules if isinstance(r, FlagRule)}
    assert {f"fault_{n:02d}" for n in range(1, 9)} <= flags
    alerted = {v for r in pack.rules if isinstance(r, CodeRule) and r.input == "event_code" for v in r.values}
    recorded = {int(code) for code in pack.recorded_only}
    table = set(range(40, 48)) | {90}
    assert table <= alerted | recorded and not alerted & recorded
    assert {41, 44, 45, 46, 47, 90} <= alerted  # power loss, fire, firefighter, emergency power, earthquake, button


@pytest.mark.parametrize(("code", "rule"), [(44, "event_44"), (47, "event_47"), (43, None), (40, None)])
def test_elevator_event_codes_raise_their_alert(tmp_path: Path, code: int, rule: str | None) -> None:
    got = raised(tmp_path, "elevator", None, "event_code", "", float(code))
    assert got == ({rule} if rule else set())
