"""An edge-only box: ``pip install 'market-sentinel[edge]'`` in a fresh virtualenv runs the example pharmacy
configuration against the embedded broker and the cloud acknowledges every reading it sends.

Real parts: a fresh virtualenv with only the ``[edge]`` extra (no FastAPI, no ORM, no amqtt), the example
``firmware-config/sites/pharmacy.toml`` with its serial buses on pty pairs served by the device simulators (RTU
probe + power monitor on one line, ASCII probes on the other), the embedded amqtt broker (MQTT 3.1.1 only: the
agent must fall back on its own) and the real cloud ingest. Only the site's addresses are rewritten: broker
host/port, no TLS, the pty paths, shorter poll intervals.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from sqlmodel import Session

from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine
from cloud.registry.models import Site
from cloud.telemetry.store import open_store
from sentinel_cli.servers import ServerUnavailable, start_embedded_broker
from simulators.scenario import Scenario
from simulators.serial_bus import AsciiBus, RtuBus
from tests.cloud.conftest import running_ingest, wait_until
from tests.utils.approvals import approving

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "firmware-config" / "sites" / "pharmacy.toml"

RTU_LINE = Scenario.model_validate(
    {
        "scenario": {"id": "pharmacy_rtu", "duration_s": 3600},
        "devices": [
            {"id": "fridge1", "kind": "probe", "unit_id": 1, "values": {"temperature": 5.0, "humidity": 50.0}},
            {
                "id": "power1",
                "kind": "equipment",
                "unit_id": 10,
                "register_map": "power_monitor",
                "values": {"mains_voltage": 229.0},
            },
        ],
    }
)
ASCII_LINE = Scenario.model_validate(
    {
        "scenario": {"id": "pharmacy_ascii", "duration_s": 3600},
        "devices": [
            {"id": "store1", "kind": "probe", "unit_id": 1, "values": {"temperature": 21.0, "humidity": 55.0}},
            {"id": "store2", "kind": "probe", "unit_id": 2, "values": {"temperature": 22.0, "humidity": 56.0}},
        ],
    }
)


@pytest.fixture(scope="module")
def edge_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with ``market-sentinel[edge]`` only (pinned by constraints.txt)."""
    box = tmp_path_factory.mktemp("edge-box")
    source = box / "source"  # pip builds in the source tree: build from a copy, never litter the checkout
    ignore = shutil.ignore_patterns("__pycache__", "node_modules", "*.egg-info", "build")
    for name in ("protocols", "edge", "cloud", "simulators", "sentinel_cli", "firmware-config"):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "constraints.txt"):
        shutil.copy(ROOT / name, source / name)
    venv = box / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "-c", str(ROOT / "constraints.txt"), f"{source}[edge]"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv


def site_config(rtu_port: str, ascii_port: str, data_dir: Path, mqtt_port: int) -> dict[str, Any]:
    site = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    site["agent"].update(data_dir=str(data_dir), batch_interval_s=1)
    site["mqtt"] = {"host": "127.0.0.1", "port": mqtt_port}
    ports = {"rs485-1": rtu_port, "rs485-2": ascii_port}
    for bus in site["buses"]:
        bus["port"] = ports[bus["id"]]
    for device in site["devices"]:
        device["poll_interval_s"] = 1
    return site


def unacked(outbox: Path) -> int:
    with sqlite3.connect(outbox) as db:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


@pytest.mark.slow
async def test_edge_only_install_runs_the_example_pharmacy_and_is_acknowledged(edge_venv: Path, tmp_path: Path) -> None:
    python = edge_venv / "bin" / "python"
    web = subprocess.run([str(python), "-c", "import fastapi"], capture_output=True, timeout=60)  # noqa: ASYNC221
    assert web.returncode != 0, "the edge-only install must not contain the cloud's web framework"

    try:
        broker = start_embedded_broker(tmp_path / "amqtt")
    except ServerUnavailable as exc:  # amqtt is a declared cloud dependency: never absent after make install
        pytest.fail(str(exc))
    settings = Settings(
        data_dir=tmp_path / "cloud",
        jwt_secret="edge-box-" + "x" * 32,
        admin_password="Admin-Passw0rd!",
        ingest_enabled=False,
        presence_enabled=False,
        mqtt_port=broker.port,
        mqtt_client_id="edge-box-ingest",
        ingest_max_wait_ms=2,
    )
    engine = make_engine(settings)
    init_db(engine)
    with Session(engine) as session:  # the site is registered before its box is installed
        session.add(Site(site_id="pharmacy-0201", name="示例大药房", category="drug"))
        session.commit()
    store = open_store(settings, engine)
    agent: subprocess.Popen[bytes] | None = None
    log = tmp_path / "agent.log"
    try:
        async with (
            running_ingest(settings, engine, store) as service,
            approving(engine, store, "pharmacy-0201"),  # the admin approves the box's announced devices
        ):
            assert service.protocol == "3.1.1"  # type: ignore[attr-defined]
            with RtuBus(RTU_LINE) as rtu, AsciiBus(ASCII_LINE) as ascii_bus:
                data_dir = tmp_path / "edge-data"
                config = tmp_path / "pharmacy.toml"
                config.write_text(tomli_w.dumps(site_config(rtu.port, ascii_bus.port, data_dir, broker.port)))
                with log.open("wb") as out:
                    agent = subprocess.Popen(  # noqa: ASYNC220 - the box is a separate process
                        [str(edge_venv / "bin" / "sentinel"), "edge", "run", str(config)],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, "PYTHONPATH": ""},
                        cwd=tmp_path,
                    )

                def sensors() -> set[str]:
                    return {row.sensor_id.split(".")[0] for row in store.latest(site_id="pharmacy-0201")}

                def agent_log() -> str:
                    return log.read_text(errors="replace")[-3000:]

                try:
                    await wait_until(
                        lambda: {"fridge1", "power1", "store1", "store2"} <= sensors(),
                        timeout=90,
                        what="readings of every pharmacy device in the cloud",
                    )
                    outbox = data_dir / "edge.db"
                    await wait_until(lambda: unacked(outbox) == 0, timeout=60, what="acks for every outbox entry")
                except AssertionError as exc:
                    raise AssertionError(f"{exc}; sensors seen: {sensors()}; agent log:\n{agent_log()}") from None
                assert "MQTT 3.1.1" in agent_log()  # negotiated by the agent, not configured
                assert agent.poll() is None, agent_log()
                agent.send_signal(signal.SIGTERM)
                assert agent.wait(timeout=30) == 0, agent_log()
                agent = None
    finally:
        if agent is not None:
            agent.kill()
            agent.wait(10)
        store.close()
        engine.dispose()
        broker.stop()
