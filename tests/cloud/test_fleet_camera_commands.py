"""``logs``, ``snapshot`` and ``export_range`` end to end (issue 15): from the cloud's API to a real agent process
over a real mosquitto and the cloud's real ingest, and the evidence back through the real upload path.

One world for the module: mosquitto, the cloud app on uvicorn with its ingest (delivery of commands, results) and
its evidence store, and one agent process with a file-backed camera (a real video file, looped) whose site file is
provisioned with the cloud's command key and an evidence upload URL + device account token. The recording of a
past range is written into the agent's recordings directory beforehand by the real ``SegmentRecorder`` (the
camera's own segments close only after ``segment_s`` ≥ 10 s, too slow for a test).

Proves: ``logs`` returns the agent's real last N lines (the same lines its log file has, ending with the command
itself); ``snapshot`` puts the camera's last frame into the agent's evidence store, the agent uploads it (device
token, by content hash) and the cloud serves bytes whose SHA-256 is the one the command result names, under the
link the command's API row gives (`evidence[].url`); ``export_range`` does the same with a WebM of the range; an
unknown camera is refused with the reason.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from edge.vision.recording import RecordingStore
from sentinel_cli import servers
from tests.cloud.web.conftest import LiveCloud, live_cloud
from tests.conftest import start_or_skip
from tests.edge.harness import AgentProcess
from tests.edge.vision.test_recording import record
from tests.edge.vision.test_rough_edges import short_video
from tests.utils.threads import no_leaked_threads  # noqa: F401 (the module server's worker pool is not a leak)

pytestmark = [pytest.mark.broker, pytest.mark.slow]  # one agent start with a camera (~10 s) shared by the module
WAIT_S = 120  # generous: a loaded machine is slow, a passing run never waits this long
DEVICE_PASSWORD = "Device-Passw0rd!"

SITE = """
[agent]
site_id = "restaurant-01"
agent_id = "edge-1"
command_key = "{command_key}"
data_dir = '{data_dir}'
heartbeat_interval_s = 1
batch_interval_s = 0.5
fsync = "normal"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
reconnect_min_s = 0.2
reconnect_max_s = 1

[evidence]
upload_url = "{cloud_url}"
token_env = "SENTINEL_AGENT_TOKEN"

[[cameras]]
camera_id = "cam1"
name = "后厨摄像头1"
source = '{source}'
loop_file = true
analysis_fps = 2

[cameras.recording]
mode = "continuous"
"""


@dataclass
class World:
    cloud: LiveCloud
    admin: httpx.Client
    agent: AgentProcess
    recorded: tuple[datetime, datetime]

    def wait(self, predicate: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + WAIT_S
        while True:
            if self.agent.proc is not None and self.agent.proc.poll() is not None:
                raise AssertionError(f"the agent exited while waiting for {what}:\n{self.agent.tail()}")
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n--- agent log ---\n{self.agent.tail()}")
            time.sleep(0.1)

    def run(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Create the command through the API and wait for its result."""
        r = self.admin.post(
            "/fleet/agents/restaurant-01/edge-1/commands", json={"name": name, "payload": payload, "why": "远程检查"}
        )
        assert r.status_code == 201, r.text
        command_id = r.json()["id"]

        def finished() -> dict[str, Any] | None:
            row: dict[str, Any] = self.admin.get(f"/fleet/commands/{command_id}").json()
            return row if row["state"] not in ("pending", "sent") else None

        return dict(self.wait(finished, f"the result of {name}"))

    def download(self, url: str) -> bytes:
        """The cloud's copy of an evidence file, once the agent's upload arrived (the API link, staff token)."""
        path = url.removeprefix("/api/v1")

        def fetched() -> bytes | None:
            r = self.admin.get(path)
            return r.content if r.status_code == 200 else None

        return bytes(self.wait(fetched, f"the upload of {url}"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("fleet-camera")
    broker = start_or_skip(lambda d: servers.start_mosquitto(d, persistence=True), root / "mosquitto")
    try:
        overrides = {"ingest_enabled": True, "mqtt_port": broker.port, "fleet_command_poll_s": 0.2}
        with live_cloud(root / "cloud", **overrides) as cloud:
            admin = cloud.client()
            r = admin.post(
                "/users",
                json={
                    "username": "edge-restaurant-01",
                    "password": DEVICE_PASSWORD,
                    "full_name": "边缘代理",
                    "role": "device",
                },
            )
            assert r.status_code == 201, r.text
            device = cloud.client("edge-restaurant-01", DEVICE_PASSWORD)
            token = str(device.headers["Authorization"]).removeprefix("Bearer ")
            device.close()
            command_key = admin.get("/fleet/command-key").json()["command_key"]
            data_dir = root / "edge"
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
            record(
                RecordingStore(data_dir / "recordings", retention_days=7, max_bytes=10**9, min_free_bytes=0), start, 30
            )
            video = root / "kitchen.avi"
            short_video(video)
            config = root / "site.toml"
            config.write_text(
                SITE.format(
                    command_key=command_key,
                    data_dir=data_dir,
                    mqtt_port=broker.port,
                    cloud_url=cloud.base,
                    source=video,
                ),
                encoding="utf-8",
            )
            agent = AgentProcess(config, root / "agent.log", env={"SENTINEL_AGENT_TOKEN": token})
            agent.start()
            world = World(cloud, admin, agent, (start, start + timedelta(seconds=6)))
            try:
                world.wait(lambda: world.run("ping", {})["state"] == "done", "the agent answering a ping")
                yield world
            finally:
                agent.stop()
                admin.close()
    finally:
        broker.stop()


def test_logs_returns_the_agents_real_last_lines(world: World) -> None:
    row = world.run("logs", {"lines": 3})
    assert row["state"] == "done", row
    lines = row["output"].split("\n")
    assert len(lines) == 3 and row["reason"] == "最近 3 行日志", row
    on_disk = world.agent.log.read_text(errors="replace")
    assert all(line in on_disk for line in lines), f"not the agent's own lines: {lines}"
    assert f"command logs ({row['id']})" in lines[-1], "the newest line is the command itself"


def test_snapshot_arrives_in_the_cloud_evidence_store_with_its_hash(world: World) -> None:
    row = world.wait(lambda: (r := world.run("snapshot", {"camera": "cam1"}))["state"] == "done" and r, "a frame")
    (ev,) = row["evidence"]
    assert (ev["content_type"], ev["kind_label"], ev["label"]) == ("image/jpeg", "抓拍画面", "remote_snapshot")
    assert ev["sha256"] in row["reason"] and ev["url"] == f"/api/v1/evidence/{ev['sha256']}"
    blob = world.download(ev["url"])
    assert hashlib.sha256(blob).hexdigest() == ev["sha256"] and len(blob) == ev["size"]
    assert blob[:3] == b"\xff\xd8\xff", "a JPEG"

    unknown = world.run("snapshot", {"camera": "cam9"})
    assert unknown["state"] == "failed" and "没有摄像头 cam9" in unknown["reason"] and not unknown["evidence"]


def test_export_range_arrives_in_the_cloud_evidence_store_with_its_hash(world: World) -> None:
    start, end = world.recorded
    row = world.run("export_range", {"camera": "cam1", "start": start.isoformat(), "end": end.isoformat()})
    assert row["state"] == "done", row
    (ev,) = row["evidence"]
    assert (ev["content_type"], ev["kind_label"], ev["label"]) == ("video/webm", "录像片段", "remote_export")
    blob = world.download(ev["url"])
    assert hashlib.sha256(blob).hexdigest() == ev["sha256"] and len(blob) == ev["size"]
    assert blob[:4] == b"\x1a\x45\xdf\xa3", "a WebM (EBML header)"

    empty = world.run(
        "export_range",
        {
            "camera": "cam1",
            "start": (start - timedelta(hours=3)).isoformat(),
            "end": (start - timedelta(hours=2, minutes=50)).isoformat(),
        },
    )
    assert empty["state"] == "failed" and "无录像可导出" in empty["reason"], empty
