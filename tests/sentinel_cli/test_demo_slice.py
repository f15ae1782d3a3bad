"""The foundation slice end to end, exactly as `make demo` runs it: a real broker (the embedded amqtt broker a
newcomer gets, and mosquitto when installed), the cloud as a process, a Modbus TCP site simulator and an edge
agent process per site. On amqtt the agents must find MQTT 3.1.1 on their own (it never answers an MQTT 5 CONNECT).

The pharmacy's drug refrigerator (2–8 °C) warms to 12 °C; the edge raises a GSP alert, the cloud commits it
and turns it into a clue visible at GET /api/v1/clues with the right site, sensor, value and severity.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from sentinel_cli import servers
from sentinel_cli.demo import DemoCounty
from tests.conftest import missing_system_package

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _poll(fn: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
def test_drug_fridge_excursion_becomes_a_clue(tmp_path: Path, broker: str) -> None:
    if broker == "mosquitto" and servers.find_binary("mosquitto") is None:
        missing_system_package("mosquitto is not installed")
    banner: list[str] = []
    with DemoCounty(
        tmp_path / "demo", api_port=servers.free_port(), broker=broker, echo=lambda *a: banner.append(str(a[0]))
    ) as county:
        assert county.mqtt is not None and county.mqtt.name == ("amqtt" if broker == "embedded" else "mosquitto")
        stated = "\n".join(banner)
        assert ("共享订阅" in stated) == (broker == "embedded"), stated  # the embedded broker's limits are stated
        api = county.api

        def fridge_clue() -> dict[str, Any] | None:
            clues = api.get("/api/v1/clues?limit=100")["data"]
            return next(
                (c for c in clues if c["site_id"] == "pharmacy-01" and c.get("category") == "drug_storage"), None
            )

        clue = _poll(fridge_clue, 150, "a drug-storage clue for pharmacy-01")
        assert clue["sensor_id"].startswith("fridge1")
        assert clue["severity"] in {"critical", "major", "minor", "warning"}
        assert clue["value"] is not None
        # the alert that made it carries the reading that broke the limit
        alerts = api.get("/api/v1/alerts?site_id=pharmacy-01&limit=100")["data"]
        high = [a for a in alerts if a["rule_id"].endswith("temp_high")]
        if not high:
            high = _poll(
                lambda: [
                    a
                    for a in api.get("/api/v1/alerts?site_id=pharmacy-01&limit=100")["data"]
                    if a["rule_id"].endswith("temp_high")
                ],
                120,
                "the temp_high alert",
            )
        assert high[0]["sensor_id"] == "fridge1.temperature"
        assert high[0]["value"] >= 8.0  # GSP alarms on reaching the limit, not only above it
        assert high[0]["limit"] == pytest.approx(8.0)
        # readings of BOTH sites flowed (their agents are separate identities) and were stored
        stats = api.get("/api/v1/ingest/stats")
        assert stats["readings_stored"] > 0
        for site in ("pharmacy-01", "restaurant-01"):
            latest = _poll(lambda site=site: api.get(f"/api/v1/telemetry/sites/{site}/latest"), 60, f"{site} readings")
            assert {r["unit"] for r in latest} >= {"°C"}
        assert not county.procs.check_alive(), "a demo process died"
