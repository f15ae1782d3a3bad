"""Shared fixtures: real servers on 127.0.0.1 started from temp dirs, stopped by PID.

A server whose binary is absent makes its tests skip with the reason (:func:`missing_system_package`), except
under ``CI=true`` where a missing binary fails the run (CI installs everything). The run then ends with one line
naming what was skipped and the single command that installs it all (``make system-deps``).
"""

from __future__ import annotations

import os

# Cheap password hashing for the hundreds of users the suite creates (and the servers it starts, which inherit
# the environment); tests/cloud/security/test_password_cost.py checks that the service default stays standard.
os.environ.setdefault("SENTINEL_PASSWORD_HASH_COST", "test")

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis import HealthCheck, settings

from sentinel_cli import servers
from sentinel_cli.servers import Server, ServerUnavailable

# No timing assertions, Hypothesis's included: on a shared 2-core machine (CI, or the suite beside other jobs)
# generating inputs or running one example can take seconds; the properties are what the tests check.
settings.register_profile("shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-machine")

IN_CI = os.environ.get("CI", "").lower() == "true"
#: The one command that installs every Debian package the tests use (the Makefile keeps the list).
INSTALL_COMMAND = "make system-deps"
SKIP_TAG = "needs a system package"


def missing_system_package(reason: str) -> NoReturn:
    """Skip (fail under ``CI=true``) a test whose Debian server, browser or tool is not installed."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(f"{SKIP_TAG}: {reason}")


def start_or_skip(start: Callable[[Path], Server], workdir: Path) -> Server:
    try:
        return start(workdir)
    except ServerUnavailable as exc:
        missing_system_package(str(exc))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line: how many tests were skipped for a missing system package, which ones, and how to install them."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        if SKIP_TAG in message:
            reasons[message.split(f"{SKIP_TAG}: ", 1)[-1].split(" (")[0]] += 1
    if reasons:
        what = "; ".join(f"{reason} ({count})" for reason, count in sorted(reasons.items()))
        terminalreporter.write_line(
            f"skipped {sum(reasons.values())} tests, system packages missing: {what}. "
            f"Install them all with: {INSTALL_COMMAND}",
            yellow=True,
            bold=True,
        )


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
