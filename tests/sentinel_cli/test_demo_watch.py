"""``sentinel demo`` while it runs: a county process that exits, or a cloud that stops answering, is reported in one
line, never as a traceback (the stranger's walk killed the demo's cloud: the demo then asked the dead cloud for
its summary and printed a 100-line URLError traceback). Real child processes and a real refused HTTP connection."""

from __future__ import annotations

import sys
from pathlib import Path

from sentinel_cli import servers
from sentinel_cli.demo import Api, Processes, watch


def test_an_exited_process_ends_the_watch_without_asking_the_cloud(tmp_path: Path) -> None:
    procs = Processes()
    try:
        procs.spawn("cloud", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path).wait()
        lines: list[str] = []
        dead = watch(procs, Api(f"http://127.0.0.1:{servers.free_port()}"), 0.5, lines.append)
        assert dead == ["cloud (exit 3)"] and lines == []
    finally:
        procs.stop()


def test_a_cloud_that_does_not_answer_is_one_line_per_tick(tmp_path: Path) -> None:
    procs = Processes()
    try:
        procs.spawn("cloud", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path)
        lines: list[str] = []
        dead = watch(procs, Api(f"http://127.0.0.1:{servers.free_port()}"), 0.5, lines.append)
        assert dead == []
        assert len(lines) == 1 and "云端无响应 cloud not answering" in lines[0], lines
    finally:
        procs.stop()
