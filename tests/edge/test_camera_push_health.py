"""Cameras in a push's health verdict (issue 15), on a real agent with a real file-backed camera.

The agent runs in-process (its real pollers, camera worker, rule engine and command handler; its uplink points at
a port where no broker listens, so the cloud's acknowledgements are not judged — that part is proved with a real
broker in tests/cloud/test_fleet_commands.py). One agent, three pushes:

1. the running site's camera cannot be opened (its file is missing): a push of an otherwise healthy change (a
   label) is applied and stays — the camera was broken before the push, so it is not the new version's fault; the
   result names it as excused;
2. a push pointing the camera at a real video file: applied, healthy (the camera decodes frames);
3. a push pointing it at a missing file again: the camera worked before, so the push fails its health deadline
   with the camera's reason and the agent rolls back by itself to version 2 (the file is back, frames again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from edge.agent import Agent
from edge.commands import version_of
from edge.config.loader import load_site
from protocols.messages import Command, CommandName
from sentinel_cli.servers import free_port
from tests.edge.vision.test_rough_edges import short_video

SITE = """
[agent]
site_id = "restaurant-01"
agent_id = "edge-1"
data_dir = '{data_dir}'
heartbeat_interval_s = 1
batch_interval_s = 0.5
fsync = "normal"
config_health_deadline_s = {deadline}

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
reconnect_min_s = 0.2
reconnect_max_s = 1

[[cameras]]
camera_id = "cam1"
name = "{name}"
source = '{source}'
loop_file = true
analysis_fps = 2

[cameras.health]
offline_after_s = 2
read_timeout_s = 0.5
reopen_backoff_s = 0.5
reopen_backoff_max_s = 1
"""


async def wait_for(predicate: Callable[[], object], what: str, timeout_s: float = 60) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def push(command_id: str, text: str) -> Command:
    return Command(
        command_id=command_id, name=CommandName.PUSH_CONFIG, issued_at=datetime.now(UTC), payload={"config": text}
    )


async def test_a_camera_that_cannot_open_fails_the_trial_unless_it_was_failing_before(tmp_path: Path) -> None:
    video, missing = tmp_path / "kitchen.avi", tmp_path / "gone.avi"
    short_video(video)
    site_path, mqtt_port = tmp_path / "site.toml", free_port()

    def site(source: Path, name: str = "后厨摄像头1", deadline: float = 30) -> str:
        return SITE.format(data_dir=tmp_path / "data", mqtt_port=mqtt_port, source=source, name=name, deadline=deadline)

    site_path.write_text(site(missing), encoding="utf-8")
    agent = Agent(load_site(site_path))
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    handler = agent.uplink.on_command
    try:
        await wait_for(lambda: "camera:cam1" in agent.failing(), "the missing camera to be down")
        assert "gone.avi" in agent.failing()["camera:cam1"], agent.failing()

        relabelled = site(missing, name="后厨摄像头一")
        excused = await handler(push("p1", relabelled))
        assert excused.ok, excused.detail
        assert "推送前已故障、未计入健康判定：摄像头 cam1" in excused.detail, excused.detail
        assert excused.version == version_of(relabelled) and site_path.read_text(encoding="utf-8") == relabelled

        working = site(video, deadline=2)
        fixed = await handler(push("p2", working))
        assert fixed.ok and "推送前已故障" not in fixed.detail, fixed.detail
        assert "1 路摄像头" in fixed.detail and agent.cameras.without_frame() == {}

        broken = site(missing, deadline=2)
        refused = await handler(push("p3", broken))
        assert not refused.ok and refused.rolled_back, refused.detail
        assert "摄像头 cam1 无画面" in refused.detail and "gone.avi" in refused.detail, refused.detail
        assert "已自动回滚" in refused.detail and refused.version == version_of(working)
        assert site_path.read_text(encoding="utf-8") == working, "the previous file is back"
        assert agent.site.version == version_of(working)
        await wait_for(lambda: agent.cameras.without_frame() == {}, "frames again from the restored camera")
    finally:
        stop.set()
        await running
