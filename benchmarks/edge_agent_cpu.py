"""Agent with 50 sensors (25 two-point probes on a Modbus TCP gateway) polled at 1 Hz, through mosquitto to a
cloud stand-in: CPU % of one core and RSS of the agent process over a measuring window. Baseline in the same
run: an idle Python process that imports the same agent modules (the interpreter's floor).

Usage: .venv/bin/python benchmarks/edge_agent_cpu.py [seconds]   (default 60)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sentinel_cli import servers  # noqa: E402
from tests.edge.cloud_standin import CloudStandIn  # noqa: E402

PROBES = 25


def scenario() -> str:
    out = '[scenario]\nid = "bench50"\nduration_s = 100000\n'
    for n in range(1, PROBES + 1):
        out += f'[[devices]]\nid = "p{n}"\nkind = "probe"\nunit_id = {n}\nnoise = 0.1\n'
        out += "values = { temperature = 5.0, humidity = 50.0 }\n"
    return out


def site(data_dir: Path, mqtt_port: int, modbus_port: int) -> str:
    out = f"""[agent]
site_id = "bench"
data_dir = '{data_dir}'
heartbeat_interval_s = 10

[mqtt]
port = {mqtt_port}

[[buses]]
kind = "tcp"
id = "gw"
host = "127.0.0.1"
port = {modbus_port}
"""
    for n in range(1, PROBES + 1):
        out += f'[[devices]]\ntype = "modbus_probe"\nid = "p{n}"\nbus = "gw"\naddress = {n}\npoll_interval_s = 1\n'
    out += f'[[rules]]\npack = "gsp"\nprofile = "refrigerated"\ndevices = {[f"p{n}" for n in range(1, PROBES + 1)]}\n'
    return out.replace("'", '"').replace(f'data_dir = "{data_dir}"', f"data_dir = '{data_dir}'")


def measure(pid: int, seconds: float) -> tuple[float, float]:
    proc = psutil.Process(pid)
    proc.cpu_percent(None)
    time.sleep(seconds)
    return proc.cpu_percent(None), proc.memory_info().rss / 1_048_576


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seconds", nargs="?", type=float, default=60, help="measuring window (default 60)")
    seconds = ap.parse_args().seconds
    work = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    broker = servers.start_mosquitto(work / "mosquitto")
    modbus_port = servers.free_port()
    (work / "scenario.toml").write_text(scenario(), encoding="utf-8")
    (work / "site.toml").write_text(site(work / "edge", broker.port, modbus_port), encoding="utf-8")
    py = sys.executable
    procs: list[subprocess.Popen[bytes]] = []
    cloud = CloudStandIn(broker.port).start()
    try:
        procs.append(
            subprocess.Popen(
                [
                    py,
                    "-m",
                    "sentinel_cli.main",
                    "sim",
                    "site",
                    str(work / "scenario.toml"),
                    "--modbus-port",
                    str(modbus_port),
                ],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
            )
        )
        servers.wait_for_port(modbus_port, 20)
        agent = subprocess.Popen(
            [py, "-m", "sentinel_cli.main", "edge", "run", str(work / "site.toml"), "--log-level", "WARNING"], cwd=REPO
        )
        procs.append(agent)
        idle = subprocess.Popen([py, "-c", "import edge.agent, time\nwhile True: time.sleep(1)"], cwd=REPO)
        procs.append(idle)
        time.sleep(8)  # warm-up
        cpu, rss = measure(agent.pid, seconds)
        idle_cpu, idle_rss = measure(idle.pid, 5)
        readings = sum(len(i.readings) for i in cloud.committed.values() if hasattr(i, "readings"))
        print(f"agent, {PROBES * 2} sensors at 1 Hz, {seconds:.0f}s: CPU {cpu:.2f} % of one core, RSS {rss:.1f} MB")
        print(f"baseline idle interpreter with the same imports: CPU {idle_cpu:.2f} %, RSS {idle_rss:.1f} MB")
        print(f"ratio RSS agent/idle: {rss / idle_rss:.2f}; readings acked by the cloud stand-in: {readings:,}")
        print(f"aims: CPU < 5 % {'met' if cpu < 5 else 'NOT met'}, RSS < 80 MB {'met' if rss < 80 else 'NOT met'}")
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        cloud.stop()
        broker.stop()


if __name__ == "__main__":
    main()
