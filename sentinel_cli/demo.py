"""``sentinel demo``: a whole demo county on one machine.

Starts a real MQTT broker (mosquitto when installed, otherwise the embedded amqtt broker), the cloud core
(API + ingest, SQLite in a data dir), and for each demo site a device simulator and its own edge agent process.
Prints where to look, then progress; with ``--duration`` it stops by itself and exits non-zero if the pipeline
did not work (no readings stored, or no clue for the drug-fridge excursion).

This module only orchestrates processes; it imports none of edge/cloud/simulators.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from sentinel_cli import county as county_seed
from sentinel_cli import servers

app = typer.Typer(help="运行演示县 (run the demo county)", add_completion=False, no_args_is_help=False)

REPO_CONFIG = Path(__file__).resolve().parent.parent / "firmware-config"
COUNTY_FILE = REPO_CONFIG / "demo" / "county.toml"
COUNTY_BOUNDARY_FILE = REPO_CONFIG.parent / "cloud" / "geo" / "data" / "demo_county.geojson"  # fictional boundary


#: What the embedded broker cannot do (also in docs/operations.md), printed in the demo banner when it is used.
EMBEDDED_BROKER_LIMITS = (
    "注意：内置 broker (amqtt) 只支持 MQTT 3.1.1 —— 无共享订阅（只能运行一个接入进程）、无会话过期；",
    "      适合演示与小型部署，生产请安装 mosquitto（make system-deps）。",
    "      边缘代理与云端自动改用 3.1.1，应用层确认 (Ack) 照常保证不丢不重。",
    "Note: embedded broker (amqtt) = MQTT 3.1.1 only: no shared subscriptions (one ingest worker), no session expiry.",
)


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
        """Stop every child (reverse start order), then the servers. A second SIGINT/SIGTERM arriving while this
        runs is ignored, so that an impatient Ctrl-C cannot leave half of the county running."""
        with _signals_ignored():
            self._stop()

    def _stop(self) -> None:
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


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Stopped(KeyboardInterrupt):
    """Raised in the main thread when the demo receives SIGTERM or SIGHUP: unwinds like Ctrl-C, so that every
    ``finally`` and ``__exit__`` stops the processes it started."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_stopped(signum: int, _frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


def install_stop_handlers() -> None:
    """SIGTERM and SIGHUP behave as SIGINT does (children run in their own sessions, so a terminal's or a service
    manager's signal reaches only us: we must pass it on)."""
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGHUP, _raise_stopped)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def sentinel(*args: str) -> list[str]:
    return [sys.executable, "-m", "sentinel_cli.main", *args]


def staff_lines(staff: list[dict[str, Any]], duty_labels: dict[str, str]) -> list[str]:
    """One banner line per seeded person: login, name, post and duties in the console's words (the cloud's label
    vocabulary, ``GET /console/labels``), never the duty codes."""
    lines = []
    for person in staff:
        duties = "、".join(duty_labels.get(duty, duty) for duty in person["duties"])
        lines.append(f"{person['username']:<10} {person['full_name']} {person.get('post', '')}（{duties}）")
    return lines


class Api:
    """The demo's HTTP client of its own cloud on loopback. The timeouts only guard against a hang: a busy machine
    (a 2-core box running the whole demo, or the test suite beside it) answers a seeding call in seconds, not
    milliseconds, and a seed that gives up halfway leaves a county nobody can walk."""

    TIMEOUT_S = 60.0

    def __init__(self, base: str) -> None:
        self.base = base
        self.token: str | None = None

    def login(self, username: str, password: str) -> None:
        self._credentials = (username, password)  # access tokens live 15 minutes: log in again on 401
        body = urllib.parse.urlencode({"username": username, "password": password}).encode()
        request = urllib.request.Request(f"{self.base}/api/v1/auth/token", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=self.TIMEOUT_S) as response:
            self.token = json.load(response)["access_token"]

    def call(self, method: str, path: str, body: Any = None, *, retry: bool = True) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.TIMEOUT_S) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            credentials = getattr(self, "_credentials", None)
            if exc.code != 401 or not retry or credentials is None:
                raise
        self.login(*credentials)
        return self.call(method, path, body, retry=False)

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def as_user(self, username: str, password: str) -> Api:
        """Another session on the same cloud, logged in as ``username``."""
        other = Api(self.base)
        other.login(username, password)
        return other


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
    alert_items = alerts["data"] if isinstance(alerts, dict) else alerts
    clue_items = clues["data"] if isinstance(clues, dict) else clues
    return {"stats": stats, "alerts": alert_items, "clues": clue_items}


def watch(procs: Processes, api: Api, duration: float, echo: Callable[[str], Any]) -> list[str]:
    """Print the running figures every 10 s until ``duration`` (0: until Ctrl-C) or until a process of the county
    exits; returns the exited ones (then nothing more is asked of the cloud, which may be the one gone). A cloud
    that stops answering between two checks is reported as such, not as a traceback."""
    started = time.monotonic()
    while duration <= 0 or time.monotonic() - started < duration:
        left = duration - (time.monotonic() - started)
        time.sleep(min(10.0, max(0.5, left)) if duration > 0 else 10.0)
        dead = procs.check_alive()
        if dead:
            return dead
        try:
            summary = summarise(api)
        except (urllib.error.URLError, OSError) as exc:
            echo(f"  t={time.monotonic() - started:5.0f}s  云端无响应 cloud not answering: {exc}")
            continue
        echo(
            f"  t={time.monotonic() - started:5.0f}s"
            f"  读数 readings stored={summary['stats'].get('readings_stored', 0)}"
            f"  告警 alerts={len(summary['alerts'])}  线索 clues={len(summary['clues'])}"
        )
    return []


class DemoCounty:
    """Everything the demo runs, as a context manager: used by ``sentinel demo`` and by the end-to-end test."""

    def __init__(
        self,
        data_dir: Path,
        *,
        api_port: int,
        time_scale: float = 1.0,
        broker: str = "auto",
        password: str | None = None,
        staff_password: str | None = None,
        echo: Any = typer.echo,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.api_port = api_port
        self.time_scale = time_scale
        self.broker = broker
        self.password = password or os.environ.get("SENTINEL_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        #: one password for every seeded staff login (policy: ≥10 characters of ≥3 classes)
        self.staff_password = staff_password or f"Gusu-{secrets.token_hex(4)}-9"
        self.county = county_seed.load(COUNTY_FILE)
        self.seeded: county_seed.Seeded | None = None
        self.echo = echo
        self.procs = Processes()
        self.base = f"http://127.0.0.1:{api_port}"
        self.api = Api(self.base)
        self.log_dir = data_dir / "logs"
        self.mqtt: servers.Server | None = None

    def __enter__(self) -> DemoCounty:
        import shutil

        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.log_dir.mkdir(parents=True)
        try:
            self._start()
        except BaseException:
            self.procs.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.procs.stop()

    def _start(self) -> None:
        echo = self.echo
        echo("[1/4] 启动 MQTT broker …")
        if self.broker == "mosquitto":  # asked for by name: no silent substitute
            mqtt = servers.start_mosquitto(self.data_dir / "broker", persistence=True)
        else:
            prefer = "embedded" if self.broker == "embedded" else "mosquitto"
            mqtt = servers.start_broker(self.data_dir / "broker", prefer=prefer)
        self.mqtt = mqtt
        self.procs.servers.append(mqtt)
        echo(f"      {mqtt.name} on 127.0.0.1:{mqtt.port}")
        if mqtt.extra.get("mqtt_version") == "3.1.1":
            for line in EMBEDDED_BROKER_LIMITS:
                echo(f"      {line}")

        echo("[2/4] 启动云端核心 (API + 接入) …")
        cloud_env = {
            "SENTINEL_DATA_DIR": str((self.data_dir / "cloud").resolve()),
            "SENTINEL_API_HOST": "127.0.0.1",
            "SENTINEL_API_PORT": str(self.api_port),
            "SENTINEL_MQTT_HOST": "127.0.0.1",
            "SENTINEL_MQTT_PORT": str(mqtt.port),
            "SENTINEL_ADMIN_PASSWORD": self.password,
            "SENTINEL_PRESENCE_CHECK_S": "5",
            "SENTINEL_COUNTY_FILE": str(COUNTY_FILE),
            "SENTINEL_COUNTY_BOUNDARY_FILE": str(COUNTY_BOUNDARY_FILE),
        }
        self.procs.spawn("cloud", sentinel("cloud", "serve"), self.log_dir, cloud_env)
        wait_http(f"{self.base}/api/v1/health", 60, self.procs)
        self.api.login("admin", self.password)
        self.seeded = county_seed.seed(self.api, self.county, self.staff_password)
        echo(
            f"      演示县 {self.county['bureau']['agency']}：{len(self.seeded.departments)} 个部门、"
            f"{len(self.seeded.users)} 名人员、{len(self.seeded.subjects)} 个市场主体、{len(self.seeded.sites)} 个场所"
        )

        echo("[3/4] 启动设备模拟器与边缘代理 …")
        for site in DEMO_SITES:
            modbus_port = servers.free_port()
            self.procs.spawn(
                f"sim-{site.site_id}",
                sentinel(
                    "sim",
                    "site",
                    str(REPO_CONFIG / site.scenario),
                    "--modbus-port",
                    str(modbus_port),
                    "--time-scale",
                    str(self.time_scale),
                ),
                self.log_dir,
            )
            servers.wait_for_port(modbus_port, 20)
            site_dir = self.data_dir / "edge" / site.site_id
            site_dir.mkdir(parents=True)
            config = render_template(
                REPO_CONFIG / site.template,
                site_dir / "site.toml",
                {"mqtt_port": mqtt.port, "modbus_port": modbus_port, "data_dir": site_dir.resolve()},
            )
            self.procs.spawn(f"edge-{site.site_id}", sentinel("edge", "run", str(config)), self.log_dir)
            echo(f"      {site.site_id} {site.name}: 模拟器 modbus 127.0.0.1:{modbus_port}")


@app.command()
def demo(
    duration: float = typer.Option(0, help="秒；>0 时运行该时长后自动退出并打印摘要 (seconds; 0 = until Ctrl-C)"),
    data_dir: Path = typer.Option(Path("demo-data"), help="数据目录 (data dir; wiped at start)"),
    api_port: int = typer.Option(8800, help="云端 API 端口 (cloud API port on 127.0.0.1)"),
    time_scale: float = typer.Option(1.0, help="模拟场景时间倍率 (simulator time scale)"),
    broker: str = typer.Option("auto", help="auto | mosquitto | embedded"),
) -> None:
    """启动演示县：broker、云端、模拟设备与边缘代理。Start broker, cloud, simulators and edge agents."""
    ok = False
    install_stop_handlers()
    try:
        with DemoCounty(data_dir, api_port=api_port, time_scale=time_scale, broker=broker) as county:
            api, base = county.api, county.base
            assert county.mqtt is not None
            typer.echo("[4/4] 运行中。")
            typer.echo("")
            typer.echo(f"  控制台 Console   {base}/")
            typer.echo(f"  API 文档 OpenAPI {base}/docs")
            typer.echo(f"  登录 Login       admin / {county.password}（系统管理员 system admin）")
            for line in staff_lines(county.county.get("staff", []), api.get("/api/v1/console/labels")["duties"]):
                typer.echo(f"                   {line}")
            typer.echo(f"                   以上人员密码 staff password: {county.staff_password}")
            typer.echo(f"  MQTT broker      127.0.0.1:{county.mqtt.port}   日志 logs: {county.log_dir}")
            typer.echo(
                f"  试一试 Try: TOKEN=$(curl -s -d username=admin -d password={county.password} "
                f"{base}/api/v1/auth/token | python3 -c "
                "'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
            )
            typer.echo(f'             curl -s -H "Authorization: Bearer $TOKEN" {base}/api/v1/clues')
            typer.echo("")
            dead = watch(county.procs, api, duration, typer.echo)
            if dead:
                typer.echo(
                    f"进程意外退出 process exited: {', '.join(dead)}；演示已停止，未能给出摘要 "
                    f"(demo stopped, no summary; see {county.log_dir})",
                    err=True,
                )
                typer.echo("停止所有进程 stopping …")
                raise typer.Exit(1)
            summary = summarise(api)
            readings = int(summary["stats"].get("readings_stored", 0))
            fridge_clues = [c for c in summary["clues"] if c.get("site_id") == "pharmacy-01"]
            typer.echo("")
            typer.echo("== 摘要 Summary ==")
            typer.echo(f"  读数入库 readings stored : {readings}")
            typer.echo(f"  告警 alerts               : {len(summary['alerts'])}")
            typer.echo(f"  线索 clues                : {len(summary['clues'])}")
            for clue in summary["clues"]:
                typer.echo(
                    f"    - #{clue.get('id')} [{clue.get('severity')}] {clue.get('site_id')} {clue.get('title')}"
                )
            ok = readings > 0 and bool(fridge_clues)
            if duration > 0 and not ok:
                typer.echo("演示未达预期：没有读数入库或没有药品冷藏柜线索 (pipeline did not work)", err=True)
            typer.echo("停止所有进程 stopping …")
    except KeyboardInterrupt:
        typer.echo("停止所有进程 stopping …")
        ok = True
    if duration > 0 and not ok:
        raise typer.Exit(1)
