"""Start and stop the servers Market Sentinel talks to, on 127.0.0.1, from a temp dir.

Used by ``sentinel demo``, by the tests and by the benchmarks: one mechanism for all three.
Each launcher returns a :class:`Server` that stops its process by PID. Nothing here imports our
other packages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """The binary for a server is not installed on this machine."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)
    cleanup: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL, for fault-injection tests."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def find_binary(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name) or next(
            (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
        )
        if path:
            return path
    return None


def _spawn(name: str, argv: list[str], workdir: Path, port: int, timeout: float = 20.0) -> Server:
    log_path = workdir / f"{name}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    log.close()
    server = Server(name, port, proc, workdir, log_path)
    try:
        wait_for_port(port, timeout, proc)
    except Exception as exc:
        server.stop()
        raise RuntimeError(f"{name} did not start: {exc}\n{server.log_tail()}") from exc
    return server


def start_mosquitto(
    workdir: Path,
    port: int | None = None,
    *,
    persistence: bool = False,
    password_file: Path | None = None,
    acl_file: Path | None = None,
    extra_conf: str = "",
) -> Server:
    """A real mosquitto on 127.0.0.1. Subscriber queues are unbounded so QoS 1 is never dropped."""
    binary = find_binary("mosquitto")
    if binary is None:
        raise ServerUnavailable("mosquitto is not installed (apt-get install mosquitto)")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()  # servers get absolute paths: they run with cwd=workdir
    port = port or free_port()
    auth = f"allow_anonymous false\npassword_file {password_file}\n" if password_file else "allow_anonymous true\n"
    conf = (
        f"listener {port} 127.0.0.1\n{auth}"
        + (f"acl_file {acl_file}\n" if acl_file else "")
        + "max_queued_messages 0\nmax_inflight_messages 0\nmax_keepalive 120\n"
        + "persistent_client_expiration 1d\nset_tcp_nodelay true\n"
        + (f"persistence true\npersistence_location {workdir}/\nautosave_interval 1\n" if persistence else "")
        # as root, mosquitto drops to user 'mosquitto', which cannot write into our 0700 temp dir: no persistence
        + ("user root\n" if persistence and os.geteuid() == 0 else "")
        + "log_dest stdout\nlog_type error\nlog_type warning\n"
        + extra_conf
    )
    conf_path = workdir / "mosquitto.conf"
    conf_path.write_text(conf)
    return _spawn("mosquitto", [binary, "-c", str(conf_path)], workdir, port)


def start_embedded_broker(workdir: Path, port: int | None = None) -> Server:
    """The pure-Python amqtt broker in a child process (MQTT 3.1.1 only, no shared subscriptions)."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()  # servers get absolute paths: they run with cwd=workdir
    port = port or free_port()
    conf_path = workdir / "amqtt.yaml"
    conf_path.write_text(
        "listeners:\n  default:\n    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
    )
    amqtt = Path(sys.executable).parent / "amqtt"
    if not amqtt.exists():
        raise ServerUnavailable("neither mosquitto nor the amqtt broker (market-sentinel[cloud]) is installed")
    server = _spawn("amqtt", [str(amqtt), "-c", str(conf_path)], workdir, port)
    server.extra["mqtt_version"] = "3.1.1"
    return server


def start_broker(workdir: Path, port: int | None = None, *, prefer: str = "mosquitto") -> Server:
    """mosquitto when installed, otherwise the embedded amqtt broker."""
    if prefer == "mosquitto" and find_binary("mosquitto"):
        return start_mosquitto(workdir, port, persistence=True)
    return start_embedded_broker(workdir, port)


def start_postgres(workdir: Path, port: int | None = None) -> Server:
    """A throw-away PostgreSQL cluster (initdb + postgres) owned by the current user, trust auth on loopback."""
    bindir = next((d for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
    initdb = str(bindir / "initdb") if bindir else find_binary("initdb")
    postgres = str(bindir / "postgres") if bindir else find_binary("postgres")
    if not initdb or not postgres or not Path(initdb).exists():
        raise ServerUnavailable("PostgreSQL server is not installed (apt-get install postgresql)")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()  # servers get absolute paths: they run with cwd=workdir
    port = port or free_port()
    run_as: list[str] = []
    cleanup: list[Path] = []
    if os.geteuid() == 0:
        # postgres refuses to run as root: run it as the 'postgres' system user, with its cluster and socket in a
        # directory of its own (the caller's temp dir, e.g. pytest's, is usually not reachable by that user).
        import pwd
        import tempfile

        pw = pwd.getpwnam("postgres")
        workdir = Path(tempfile.mkdtemp(prefix="sentinel-pg-"))
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
        cleanup.append(workdir)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = workdir / "pgdata"
    subprocess.run(
        [*run_as, initdb, "-D", str(data), "-U", "sentinel", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        cwd=workdir,
    )
    argv = [
        *run_as,
        postgres,
        "-D",
        str(data),
        "-p",
        str(port),
        "-k",
        str(workdir),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
    ]
    server = _spawn("postgres", argv, workdir, port, timeout=30)
    server.cleanup.extend(cleanup)
    # wait until it accepts connections (the port opens a moment before that)
    for _ in range(100):
        probe = subprocess.run(
            [
                *run_as,
                str(Path(postgres).parent / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "sentinel",
                "-d",
                "postgres",
                "-c",
                "CREATE DATABASE sentinel",
            ],
            capture_output=True,
        )
        if probe.returncode == 0 or b"already exists" in probe.stderr:
            break
        time.sleep(0.1)
    server.extra["dsn"] = f"postgresql://sentinel@127.0.0.1:{port}/sentinel"
    return server


NGINX_CONF = """\
worker_processes 1;
daemon off;
{user}
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/tmp/body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;
    upstream sentinel_api {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 64m;
        location / {{
            proxy_pass http://sentinel_api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
            proxy_buffering off;
            proxy_read_timeout 3600s;
        }}
    }}
}}
"""


def nginx_config(workdir: Path, port: int, upstreams: list[int]) -> str:
    """A reverse proxy on 127.0.0.1:``port`` balancing over API instances on ``upstreams`` (round robin;
    a dead instance is skipped for 2 s, SSE passes unbuffered). ``deploy/nginx/sentinel.conf`` is its production
    sibling."""
    servers = "\n".join(f"        server 127.0.0.1:{u} max_fails=1 fail_timeout=2s;" for u in upstreams)
    user = "user root;" if os.geteuid() == 0 else ""  # as root, workers would otherwise run as nobody
    return NGINX_CONF.format(user=user, workdir=workdir, servers=servers, port=port)


def start_nginx(workdir: Path, upstreams: list[int], port: int | None = None) -> Server:
    """Debian's nginx from ``workdir`` (its own config, pid and logs), proxying to ``upstreams``."""
    nginx = find_binary("nginx")
    if not nginx:
        raise ServerUnavailable("nginx is not installed (apt-get install nginx)")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()
    (workdir / "tmp").mkdir(exist_ok=True)
    port = port or free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_config(workdir, port, upstreams))
    server = _spawn(
        "nginx", [nginx, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")], workdir, port
    )
    server.extra["url"] = f"http://127.0.0.1:{port}"
    return server


def start_victoriametrics(workdir: Path, port: int | None = None) -> Server:
    binary = find_binary("victoria-metrics", "victoria-metrics-prod")
    if binary is None:
        raise ServerUnavailable("VictoriaMetrics is not installed (apt-get install victoria-metrics)")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()  # servers get absolute paths: they run with cwd=workdir
    port = port or free_port()
    argv = [
        binary,
        f"-storageDataPath={workdir / 'vm'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-retentionPeriod=100y",
    ]
    return _spawn("victoria-metrics", argv, workdir, port)


def start_influxdb1(workdir: Path, port: int | None = None) -> Server:
    binary = find_binary("influxd")
    if binary is None:
        raise ServerUnavailable("InfluxDB 1.x is not installed (apt-get install influxdb)")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()  # servers get absolute paths: they run with cwd=workdir
    port = port or free_port()
    bind_port = free_port()
    conf = workdir / "influxdb.conf"
    conf.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{bind_port}"\n'
        f'[meta]\n  dir = "{workdir}/meta"\n'
        f'[data]\n  dir = "{workdir}/data"\n  wal-dir = "{workdir}/wal"\n  query-log-enabled = false\n'
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
        "[monitor]\n  store-enabled = false\n"
        "[continuous_queries]\n  enabled = false\n"
    )
    return _spawn("influxdb", [binary, "-config", str(conf)], workdir, port)
