"""``sentinel sim camera …``: serve a camera scenario as MJPEG, render it to a file, list scenarios."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from simulators.camera.mjpeg import MjpegServer, write_video
from simulators.camera.scenario import Scenario

DEFAULT_DIR = Path("firmware-config/cameras/scenarios")
camera_app = typer.Typer(help="摄像头模拟器 (camera simulator: MJPEG over HTTP, video files)", no_args_is_help=True)


def _load(scenario: str) -> Scenario:
    path = Path(scenario)
    if not path.exists():
        path = DEFAULT_DIR / f"{scenario}.toml"
    if not path.exists():
        raise typer.BadParameter(f"no scenario file {scenario!r} (nor {path})")
    return Scenario.load(path)


@camera_app.command("list")
def list_scenarios(directory: Path = DEFAULT_DIR) -> None:
    """列出场景 (list scenarios with their ground truth)."""
    for path in sorted(directory.glob("*.toml")):
        s = Scenario.load(path)
        expect = ", ".join(e.rule_id for e in s.expect) or "无告警 (no alert)"
        typer.echo(f"{path.stem:24} {s.duration_s:5.0f}s  {expect}  — {s.description}")


@camera_app.command("serve")
def serve(
    scenario: Annotated[str, typer.Argument(help="scenario name or TOML path")],
    port: int = 8554,
    host: str = "127.0.0.1",
    width: int | None = None,
    height: int | None = None,
    loop: bool = True,
) -> None:
    """以 MJPEG 提供场景视频流 (serve a scenario as MJPEG over HTTP until Ctrl-C)."""
    s = _load(scenario)
    if width and height:
        s = s.with_size(width, height)
    server = MjpegServer(s, host=host, port=port, loop=loop).start()
    typer.echo(f"serving {s.name} at {server.url} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@camera_app.command("render")
def render(
    scenario: Annotated[str, typer.Argument(help="scenario name or TOML path")],
    out: Annotated[Path, typer.Option(help="output video file (.avi with MJPG)")],
    width: int | None = None,
    height: int | None = None,
) -> None:
    """渲染场景为视频文件 (write a scenario to a video file)."""
    s = _load(scenario)
    if width and height:
        s = s.with_size(width, height)
    n = write_video(s, out)
    typer.echo(f"wrote {n} frames to {out}")
