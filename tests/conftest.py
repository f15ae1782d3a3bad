"""Shared fixtures: real servers on 127.0.0.1 started from temp dirs, stopped by PID.

A server whose binary is absent makes its tests skip with the reason, except under ``CI=true``
where a missing binary fails the run (CI installs everything).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sentinel_cli import servers
from sentinel_cli.servers import Server, ServerUnavailable

IN_CI = os.environ.get("CI", "").lower() == "true"


def start_or_skip(start: Callable[[Path], Server], workdir: Path) -> Server:
    try:
        return start(workdir)
    except ServerUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true but {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Server]:
    """A fresh mosquitto per test (unbounded subscriber queues, persistence on)."""
    server = start_or_skip(lambda d: servers.start_mosquitto(d, persistence=True), tmp_path / "mosquitto")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_or_skip(servers.start_postgres, tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoriametrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_or_skip(servers.start_victoriametrics, tmp_path_factory.mktemp("vm"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_or_skip(servers.start_influxdb1, tmp_path_factory.mktemp("influx"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves non-daemon threads running (every task has an owner that stops it)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    for t in leaked:
        t.join(timeout=5)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"test leaked threads: {still}"
