"""Server launchers: what `make demo` and the tests rely on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sentinel_cli import servers
from tests.conftest import start_or_skip


def test_broker_starts_from_a_relative_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make demo` passes the relative `demo-data/broker`; the broker runs with its own cwd: paths must be absolute."""
    monkeypatch.chdir(tmp_path)
    server = start_or_skip(lambda d: servers.start_mosquitto(d, persistence=True), Path("demo-data") / "broker")
    try:
        assert server.workdir.is_absolute()
        conf = (server.workdir / "mosquitto.conf").read_text()
        assert f"persistence_location {server.workdir}/" in conf
        servers.wait_for_port(server.port, 5)
    finally:
        server.stop()


def test_stop_is_idempotent_and_kills_the_process(tmp_path: Path) -> None:
    server = start_or_skip(servers.start_mosquitto, tmp_path / "m")
    server.stop()
    server.stop()
    assert server.proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(server.proc.pid, 0)
