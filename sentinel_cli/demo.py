"""``sentinel demo``: a whole demo county on one machine.

Starts a real MQTT broker (mosquitto when installed, otherwise the embedded amqtt broker), the cloud core
(API + ingest, SQLite in a data dir), and for each demo site a device simulator and its own edge agent process.
Prints where to look, then progress; with ``--duration`` it stops by itself and exits non-zero if the pipeline
did not work (no readings stored, or no clue for the drug-fridge excursion).

This module only orchestrates processes; it imports none of edge/cloud/simulators.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from sentinel_cli import servers

app = typer.Typer(help="运行演示县 (run the demo county)", add_completion=False, no_args_is_help=False)

REPO_CONFIG = Path(__file__).resolve().parent.parent / "firmware-config"


@dataclass(frozen=True)
class DemoSite:
    site_id: str
    name: str
    scenario: str  # simulator scenario file (firmware-config/demo/...)
    template: str  # edge config template (firmware-config/demo/...)


DEMO_SITES = (
    DemoSite(
        "pharmacy-01",
        "仁和大药房（药品冷藏柜 2–8 °C）",
        "demo/pharmacy.scenario.toml",
        "demo/pharmacy.edge.toml",
    ),
    DemoSite("restaurant-01", "老街面馆（冷藏库）", "demo/restaurant.scenario.toml", "demo/restaurant.edge.toml"),
)


@dataclass
class Processes:
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    servers: list[servers.Server] = field(default_factory=list)

    def spawn(
        self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def check_alive(self) -> list[str]:
        return [f"{name} (exit {p.returncode})" for name, p in self.procs if p.poll() is not None]

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for server in reversed(self.servers):
            server.stop()


def sentinel(*args: str) -> list[str]:
    return [sys.executable, "-m", "sentinel_cli.main", *args]


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.token: str | None = None

    def login(self, username: str, password: str) -> None:
        body = urllib.parse.urlencode({"username": username, "password": password}).encode()
        request = urllib.request.Request(f"{self.base}/api/v1/auth/token", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            self.token = json.load(response)["access_token"]

    def get(self, path: str) -> Any:
        request = urllib.request.Request(f"{self.base}{path}")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)


def wait_http(url: str, timeout: float, procs: Processes) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = procs.check_alive()
        if dead:
            raise RuntimeError(f"process exited during start-up: {', '.join(dead)}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def render_template(template: Path, target: Path, values: dict[str, object]) -> Path:
    text = template.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    target.write_text(text, encoding="utf-8")
    return target


def summarise(api: Api) -> dict[str, Any]:
    stats = api.get("/api/v1/ingest/stats")
    alerts = api.get("/api/v1/alerts?limit=500")
    clues = api.get("/api/v1/clues?limit=500")
    alert_items = alerts["items"] if isinstance(alerts, dict) else alerts
    clue_items = clues["items"] if isinstance(clues, dict) else clues
    return {"stats": stats, "alerts": alert_items, "clues": clue_items}


@app.command()
def demo(
    duration: float = typer.Option(0, help="秒；>0 时运行该时长后自动退出并打印摘要 (seconds; 0 = until Ctrl-C)"),
    data_dir: Path = typer.Option(Path("demo-data"), help="数据目录 (data dir; wiped at start)"),
    api_port: int = typer.Option(8800, help="云端 API 端口 (cloud API port on 127.0.0.1)"),
    time_scale: float = typer.Option(1.0, help="模拟场景时间倍率 (simulator time scale)"),
    broker: str = typer.Option("auto", help="auto | mosquitto | embedded"),
) -> None:
    """启动演示县：broker、云端、模拟设备与边缘代理。Start broker, cloud, simulators and edge agents."""
    import shutil

    if data_dir.exists():
        shutil.rmtree(data_dir)
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True)
    password = os.environ.get("SENTINEL_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    procs = Processes()
    ok = False
    try:
        typer.echo("[1/4] 启动 MQTT broker …")
        prefer = "embedded" if broker == "embedded" else "mosquitto"
        mqtt = servers.start_broker(data_dir / "broker", prefer=prefer)
        procs.servers.append(mqtt)
        typer.echo(f"      {mqtt.name} on 127.0.0.1:{mqtt.port}")

        typer.echo("[2/4] 启动云端核心 (API + 接入) …")
        cloud_env = {
            "SENTINEL_DATA_DIR": str((data_dir / "cloud").resolve()),
            "SENTINEL_API_HOST": "127.0.0.1",
            "SENTINEL_API_PORT": str(api_port),
            "SENTINEL_MQTT_HOST": "127.0.0.1",
            "SENTINEL_MQTT_PORT": str(mqtt.port),
            "SENTINEL_ADMIN_PASSWORD": password,
            "SENTINEL_PRESENCE_CHECK_INTERVAL_S": "5",
        }
        procs.spawn("cloud", sentinel("cloud", "serve"), log_dir, cloud_env)
        base = f"http://127.0.0.1:{api_port}"
        wait_http(f"{base}/api/v1/health", 60, procs)

        typer.echo("[3/4] 启动设备模拟器与边缘代理 …")
        for site in DEMO_SITES:
            modbus_port = servers.free_port()
            procs.spawn(
                f"sim-{site.site_id}",
                sentinel(
                    "sim",
                    "site",
                    str(REPO_CONFIG / site.scenario),
                    "--modbus-port",
                    str(modbus_port),
                    "--time-scale",
                    str(time_scale),
                ),
                log_dir,
            )
            servers.wait_for_port(modbus_port, 20)
            site_dir = data_dir / "edge" / site.site_id
            site_dir.mkdir(parents=True)
            config = render_template(
                REPO_CONFIG / site.template,
                site_dir / "site.toml",
                {"mqtt_port": mqtt.port, "modbus_port": modbus_port, "data_dir": site_dir.resolve()},
            )
            procs.spawn(f"edge-{site.site_id}", sentinel("edge", "run", str(config)), log_dir)
            typer.echo(f"      {site.site_id} {site.name}: 模拟器 modbus 127.0.0.1:{modbus_port}")

        api = Api(base)
        api.login("admin", password)
        typer.echo("[4/4] 运行中。")
        typer.echo("")
        typer.echo(f"  控制台 Console   {base}/")
        typer.echo(f"  API 文档 OpenAPI {base}/docs")
        typer.echo(f"  登录 Login       admin / {password}")
        typer.echo(f"  MQTT broker      127.0.0.1:{mqtt.port}   日志 logs: {log_dir}")
        typer.echo(f"  试一试 Try: curl -s -H 'Authorization: Bearer <token>' {base}/api/v1/clues")
        typer.echo("")
        started = time.monotonic()
        summary: dict[str, Any] = {}
        while duration <= 0 or time.monotonic() - started < duration:
            time.sleep(min(10.0, max(0.5, duration - (time.monotonic() - started))) if duration > 0 else 10.0)
            dead = procs.check_alive()
            if dead:
                typer.echo(f"进程意外退出 process exited: {', '.join(dead)} (see {log_dir})", err=True)
                break
            summary = summarise(api)
            typer.echo(
                f"  t={time.monotonic() - started:5.0f}s"
                f"  读数 readings stored={summary['stats'].get('readings_stored', 0)}"
                f"  告警 alerts={len(summary['alerts'])}  线索 clues={len(summary['clues'])}"
            )
        summary = summarise(api)
        readings = int(summary["stats"].get("readings_stored", 0))
        fridge_clues = [c for c in summary["clues"] if c.get("site_id") == "pharmacy-01"]
        typer.echo("")
        typer.echo("== 摘要 Summary ==")
        typer.echo(f"  读数入库 readings stored : {readings}")
        typer.echo(f"  告警 alerts               : {len(summary['alerts'])}")
        typer.echo(f"  线索 clues                : {len(summary['clues'])}")
        for clue in summary["clues"]:
            typer.echo(f"    - #{clue.get('id')} [{clue.get('severity')}] {clue.get('site_id')} {clue.get('title')}")
        ok = readings > 0 and bool(fridge_clues)
        if duration > 0 and not ok:
            typer.echo("演示未达预期：没有读数入库或没有药品冷藏柜线索 (pipeline did not work)", err=True)
    except KeyboardInterrupt:
        ok = True
    finally:
        typer.echo("停止所有进程 stopping …")
        procs.stop()
    if duration > 0 and not ok:
        raise typer.Exit(1)
