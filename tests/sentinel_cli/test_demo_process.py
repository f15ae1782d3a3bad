"""``sentinel demo`` as a newcomer runs it, end to end, then stopped with a signal (issues #12, #19).

The real command as a process: a real broker (the embedded amqtt broker a newcomer gets, and mosquitto when
installed), the cloud, a Modbus TCP site simulator and an edge agent process per site. On amqtt the agents must
find MQTT 3.1.1 on their own (it never answers an MQTT 5 CONNECT).

The pharmacy's drug refrigerator (2–8 °C) warms to 12 °C; the edge raises a GSP alert, the cloud commits it and
turns it into a clue visible at GET /api/v1/clues with the right site, sensor, value and severity; readings of
both sites are stored. Then the demo gets SIGINT (embedded) or SIGTERM (mosquitto): its children run in their own
sessions, so the signal reaches only the demo, which must stop each of them — every descendant recorded while it
ran must be gone. One demo run per broker proves both (the start-up is the expensive part).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sentinel_cli import servers
from sentinel_cli.demo import Api
from tests.conftest import missing_system_package

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PASSWORD = "Demo-Admin-Passw0rd!"


def _children() -> dict[int, set[int]]:
    tree: dict[int, set[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, set()).add(int(entry))
    return tree


def _descendants(pid: int) -> set[int]:
    tree = _children()
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), set()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _poll(fn: Any, timeout: float, what: str, demo: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        assert demo.poll() is None, log.read_text(errors="replace")
        last = fn()
        if last:
            return last
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}\n{log.read_text(errors='replace')[-3000:]}")


def _check_the_slice(api: Api, wait_for: Callable[[Any, float, str], Any]) -> None:
    def fridge_clue() -> dict[str, Any] | None:
        clues = api.get("/api/v1/clues?limit=100")["data"]
        return next((c for c in clues if c["site_id"] == "pharmacy-01" and c.get("category") == "drug_storage"), None)

    def temp_high() -> list[dict[str, Any]]:
        alerts = api.get("/api/v1/alerts?site_id=pharmacy-01&limit=100")["data"]
        return [a for a in alerts if a["rule_id"].endswith("temp_high")]

    clue = wait_for(fridge_clue, 150, "a drug-storage clue for pharmacy-01")
    assert clue["sensor_id"].startswith("fridge1")
    assert clue["severity"] in {"critical", "major", "minor", "warning"}
    assert clue["value"] is not None
    high = wait_for(temp_high, 120, "the temp_high alert")  # the alert that made it carries the reading
    assert high[0]["sensor_id"] == "fridge1.temperature"
    assert high[0]["value"] >= 8.0  # GSP alarms on reaching the limit, not only above it
    assert high[0]["limit"] == pytest.approx(8.0)
    assert api.get("/api/v1/ingest/stats")["readings_stored"] > 0
    for site in ("pharmacy-01", "restaurant-01"):  # both agents are separate identities, both sites stored
        latest = wait_for(lambda site=site: api.get(f"/api/v1/telemetry/sites/{site}/latest"), 60, f"{site} readings")
        assert {r["unit"] for r in latest} >= {"°C"}


@pytest.mark.parametrize(
    ("broker", "signum"),
    [("embedded", signal.SIGINT), ("mosquitto", signal.SIGTERM)],
    ids=["embedded-SIGINT", "mosquitto-SIGTERM"],
)
def test_demo_county_makes_the_clue_and_stops_every_child(tmp_path: Path, broker: str, signum: int) -> None:
    if broker == "mosquitto" and servers.find_binary("mosquitto") is None:
        missing_system_package("mosquitto is not installed")
    port = servers.free_port()
    log = tmp_path / "demo.out"
    command = [sys.executable, "-m", "sentinel_cli.main", "demo", "--data-dir", str(tmp_path / "county")]
    command += ["--api-port", str(port), "--broker", broker]
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=os.environ | {"SENTINEL_ADMIN_PASSWORD": PASSWORD}
        )
    try:

        def wait_for(fn: Any, timeout: float, what: str) -> Any:
            return _poll(fn, timeout, what, demo, log)

        wait_for(lambda: "[4/4]" in log.read_text(errors="replace"), 180, "the demo to say it is running")
        banner = log.read_text(errors="replace")
        assert ("共享订阅" in banner) == (broker == "embedded"), banner  # the embedded broker's limits are stated
        assert f"http://127.0.0.1:{port}" in banner, banner  # it says where to look
        started = _descendants(demo.pid)
        names = {_cmdline(pid) for pid in started}
        assert sum(" sim site " in n for n in names) == 2, names
        assert sum(" edge run " in n for n in names) == 2, names
        assert any(" cloud serve" in n for n in names), names
        if broker == "mosquitto":
            assert any("mosquitto" in n for n in names), names

        api = Api(f"http://127.0.0.1:{port}")
        api.login("admin", PASSWORD)
        _check_the_slice(api, wait_for)
        assert all(_alive(pid) for pid in started), [_cmdline(p) for p in started if not _alive(p)]

        demo.send_signal(signum)
        assert demo.wait(60) == 0, log.read_text(errors="replace")
        left = {pid for pid in started if _alive(pid)}
        assert not left, [_cmdline(pid) for pid in left]
        assert "停止所有进程" in log.read_text(errors="replace")
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
