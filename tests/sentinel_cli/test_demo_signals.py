"""``sentinel demo`` stopped with SIGTERM or SIGINT leaves nothing running (issue #19).

The real command as a process (real mosquitto, the cloud, two simulators, two edge agents). Its children run in
their own sessions, so a signal reaches only the demo: it must stop each of them. We record every descendant
process once the demo says it is running, send the signal, and check each one is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentinel_cli import servers
from tests.conftest import IN_CI

pytestmark = [pytest.mark.broker, pytest.mark.slow]


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


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_demo_stops_every_child(tmp_path: Path, signum: signal.Signals) -> None:
    if servers.find_binary("mosquitto") is None and not IN_CI:
        pytest.skip("mosquitto is not installed")
    log = tmp_path / "demo.out"
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sentinel_cli.main",
                "demo",
                "--data-dir",
                str(tmp_path / "county"),
                "--api-port",
                str(servers.free_port()),
                "--broker",
                "mosquitto",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "[4/4]" not in log.read_text(errors="replace"):
            assert demo.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        started = _descendants(demo.pid)
        names = {Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in started}
        # broker, cloud, 2 simulators, 2 agents
        assert any("mosquitto" in n for n in names), names
        assert sum(" sim site " in n for n in names) == 2, names
        assert sum(" edge run " in n for n in names) == 2, names
        assert any(" cloud serve" in n for n in names), names
        demo.send_signal(signum)
        assert demo.wait(60) == 0, log.read_text(errors="replace")
        left = {pid for pid in started if _alive(pid)}
        assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left]
        assert "停止所有进程" in log.read_text(errors="replace")
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
