"""Browser-test fixtures: the real cloud app on uvicorn (free port, tmp data dir), seeded through its API, and
headless Debian Chromium driven by Playwright (no browser download: ``executable_path=/usr/bin/chromium``).

Tests here are marked ``browser``; they skip when Chromium or Playwright is absent, except under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.core.config import Settings
from sentinel_cli.servers import free_port
from tests.conftest import missing_system_package

CHROMIUM = os.environ.get("SENTINEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=zh-CN",  # Chinese date pickers and number formats
]
ADMIN_PASSWORD = "Admin-Passw0rd!"
PASSWORD = "Passw0rd!long"
#: Screenshots go to docs/screenshots only when asked (SENTINEL_SCREENSHOTS=1, to refresh the checked-in pictures);
#: otherwise to a temp dir, so that a test run never changes the work tree.
SCREENSHOTS = (
    Path(__file__).parents[3] / "docs" / "screenshots"
    if os.environ.get("SENTINEL_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "sentinel-screenshots"
)
# a valid USCC (check character computed by the registry)
USCC_BODY = "91320508MA1WF0001"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Any]:
    """The workflow test world (in-process app + TestClient) for the console's API tests."""
    from tests.utils.workflow_factories import make_world

    w = make_world(tmp_path)
    with w.client:
        yield w
    w.engine.dispose()


def _need(condition: bool, reason: str) -> None:
    if not condition:
        missing_system_package(reason)


@pytest.fixture(scope="package")  # not session: sync Playwright runs a loop that must end before async tests
def browser() -> Iterator[Any]:
    _need(os.access(CHROMIUM, os.X_OK), f"Chromium is not installed ({CHROMIUM} not found or not executable)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        _need(False, "playwright is not installed (pip install -e '.[dev]')")
        raise
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class LiveCloud:
    """A running cloud app: ``base`` URL, the app, and an admin-authenticated HTTP client."""

    base: str
    app: Any
    settings: Settings
    server: Any
    thread: threading.Thread
    users: dict[str, int] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)

    def client(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Client:
        c = httpx.Client(base_url=f"{self.base}/api/v1", timeout=30)
        r = c.post("/auth/token", data={"username": username, "password": password})
        r.raise_for_status()
        c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        return c

    def stop(self) -> None:
        self.app.state.console_closing = True
        self.server.should_exit = True
        self.thread.join(15)


@contextlib.contextmanager
def live_cloud(tmp_path: Path, **overrides: Any) -> Iterator[LiveCloud]:
    import uvicorn

    from cloud.app import create_app

    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "jwt_secret": "browser-test-secret-" + "x" * 32,
        "admin_password": ADMIN_PASSWORD,
        "ingest_enabled": False,
        "presence_enabled": False,
        "mqtt_client_id": f"web-ingest-{os.getpid()}-{time.monotonic_ns() % 100000}",
        "ingest_max_wait_ms": 2,
    }
    values.update(overrides)
    settings = Settings(**values)
    app = create_app(settings, run_background=True)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        time.sleep(0.05)
    cloud = LiveCloud(f"http://127.0.0.1:{port}", app, settings, server, thread)
    try:
        yield cloud
    finally:
        cloud.stop()


def seed_county(cloud: LiveCloud) -> None:
    """Through the API: a department, a pharmacy subject + drug site, staff with duties, notify contacts, roster."""
    from cloud.registry.uscc import make

    admin = cloud.client()
    dep = admin.post("/registry/departments", json={"code": "gusu-1", "name": "姑苏区第一市场监督管理所"})
    dep.raise_for_status()
    dep_id = dep.json()["id"]
    subject = admin.post(
        "/registry/subjects",
        json={
            "name": "示例大药房有限公司",
            "uscc": make(USCC_BODY),
            "risk_grade": "C",
            "department_id": dep_id,
            "address": "苏州市姑苏区人民路 100 号",
        },
    )
    subject.raise_for_status()
    subject_id = subject.json()["id"]
    site = admin.post(
        "/registry/sites",
        json={
            "site_id": "pharmacy-01",
            "name": "示例大药房人民路店",
            "address": "苏州市姑苏区人民路 100 号",
            "category": "drug",
            "subject_id": subject_id,
            "department_id": dep_id,
        },
    )
    site.raise_for_status()
    people = [
        ("chief", "周科长", "supervisor", ["intake_clerk", "analyst", "dispatcher", "supervisor", "department_head"]),
        ("insp1", "李四", "inspector", ["inspector", "enforcement_officer"]),
        ("insp2", "王五", "inspector", ["inspector", "enforcement_officer"]),
    ]
    for i, (username, name, role, duties) in enumerate(people):
        r = admin.post(
            "/users",
            json={"username": username, "password": PASSWORD, "full_name": name, "role": role, "department": "gusu-1"},
        )
        r.raise_for_status()
        uid = r.json()["id"]
        cloud.users[username] = uid
        r = admin.put(f"/staff/{uid}", json={"duties": duties, "department_id": dep_id, "cert_no": f"3205000{i}"})
        r.raise_for_status()
        rank = "supervisor" if role == "supervisor" else "inspector"
        admin.post(
            "/notifications/contacts",
            json={"key": username, "full_name": name, "department": "gusu-1", "rank": rank, "mqtt": False},
        ).raise_for_status()
        admin.post(
            "/notifications/site-contacts",
            json={"site_id": "pharmacy-01", "contact_key": username, "designation": "gsp_designated"},
        ).raise_for_status()
    now = datetime.now(UTC)
    admin.post(
        "/notifications/roster",
        json=[
            {
                "department": "gusu-1",
                "contact_key": "insp1",
                "starts_at": (now - timedelta(hours=1)).isoformat(),
                "ends_at": (now + timedelta(hours=8)).isoformat(),
            }
        ],
    ).raise_for_status()
    cloud.ids.update(department_id=dep_id, subject_id=subject_id, site_id="pharmacy-01")
    admin.close()


def poll(fn: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Save a screenshot of ``page`` as <name>.png in :data:`SCREENSHOTS`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(
        page.screenshot(full_page=full_page)
    )  # bytes, not path=: Playwright would write from a thread pool
    return path


def charts_built() -> bool:
    from cloud.web import vendor_status

    return bool(vendor_status()["charts"])


def have_mosquitto() -> bool:
    return shutil.which("mosquitto") is not None or os.path.exists("/usr/sbin/mosquitto")
