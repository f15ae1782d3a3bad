"""Replacing an edge box (or wiping its data dir) loses nothing (issue 15).

Real mosquitto, the real ingest (SQLite), a real agent process polling a real Modbus TCP simulator. The agent
runs, is stopped, its data dir is wiped (as on a replacement box provisioned with the same ids) and it starts
again: a new incarnation, seqs from 1 again, and every batch of both incarnations is committed and stored — no
batch of the new box is taken for a duplicate of the old one (before incarnations, the first batches of the
new box were acked as duplicates and deleted on the edge: data lost with no log line).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from cloud.core.config import Settings
from cloud.telemetry.store import TelemetryStore
from sentinel_cli.servers import Server
from simulators.clock import ScenarioClock
from simulators.modbus_tcp import SiteServer
from simulators.scenario import load_scenario
from tests.cloud.conftest import running_ingest, wait_until
from tests.edge.harness import AgentProcess
from tests.edge.test_delivery import SCENARIO, write_site
from tests.utils.approvals import approving

pytestmark = [pytest.mark.broker, pytest.mark.slow]  # ~14 s: two agent starts


def ledger(engine: Engine) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    with engine.connect() as conn:
        for incarnation, seq in conn.execute(
            text("SELECT incarnation, seq FROM ingest_seq WHERE site_id='pharmacy-01' AND agent_id='edge-1'")
        ):
            out.setdefault(str(incarnation), set()).add(int(seq))
    return out


def edge_state(data_dir: Path) -> tuple[str, int, set[int]]:
    """(incarnation, last seq written, seqs still queued) from the agent's outbox file."""
    db = sqlite3.connect(data_dir / "edge.db", timeout=5)
    try:
        incarnation = db.execute("SELECT value FROM identity WHERE key='incarnation'").fetchone()[0]
        next_seq = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]
        queued = {int(r[0]) for r in db.execute("SELECT seq FROM outbox")}
        return str(incarnation), int(next_seq) - 1, queued
    finally:
        db.close()


async def test_a_wiped_box_reconnecting_with_the_same_ids_loses_nothing(
    mosquitto: Server, tmp_path: Path, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    cloud_settings.mqtt_port = mosquitto.port
    modbus_port, data_dir, config = write_site(tmp_path, mosquitto.port)
    runs: list[tuple[str, int, set[int]]] = []
    async with (
        running_ingest(cloud_settings, cloud_engine, cloud_store) as service,
        approving(cloud_engine, cloud_store, "pharmacy-01"),
        SiteServer(load_scenario(SCENARIO), modbus_port, clock=ScenarioClock(1)),
    ):
        for run in range(2):
            agent = AgentProcess(config, tmp_path / f"agent{run}.log")
            agent.start()
            try:
                want = 8 * (run + 1)
                await wait_until(lambda: sum(map(len, ledger(cloud_engine).values())) >= want, 40, "batches")  # noqa: B023
            finally:
                agent.stop()
            runs.append(edge_state(data_dir))
            if run == 0:
                shutil.rmtree(data_dir)  # the box is replaced: same site and agent ids, empty data dir
        stats = service.stats.snapshot()  # type: ignore[attr-defined]
    (old, old_last, old_queued), (new, new_last, new_queued) = runs
    assert old != new, "a wiped data dir starts a new incarnation"
    committed = ledger(cloud_engine)
    assert set(committed) == {old, new}
    # every seq each incarnation wrote is committed, except what was still queued at its stop (unsent/unacked)
    assert committed[old] >= set(range(1, old_last + 1)) - old_queued
    assert committed[new] >= set(range(1, new_last + 1)) - new_queued
    assert min(committed[new]) == 1 and len(committed[new] & committed[old]) >= 1, "seqs overlap, both kept"
    assert stats["seq_conflicts"] == 0 and stats["dead_letters_total"] == 0, stats
    with cloud_engine.connect() as conn:
        readings = conn.execute(text("SELECT count(*) FROM reading WHERE site_id='pharmacy-01'")).scalar_one()
    # committed directly, plus those held in quarantine until the approval replayed them
    assert stats["readings"] > 0
    assert stats["readings"] <= readings <= stats["readings"] + stats["quarantined"], "every committed reading stored"
