"""``sentinel cloud serve`` as a real process on 127.0.0.1 (a temp data dir, ingest and presence off unless asked),
for tests that need real HTTP: TLS, the stateful fuzzer."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sentinel_cli.servers import Server, _spawn, free_port

ADMIN_PASSWORD = "Served-Admin-Passw0rd!"


def start_served_cloud(
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    timeout: float = 60.0,
) -> Server:
    """Start ``python -m sentinel_cli.main cloud serve`` in ``workdir`` and wait until it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = {
        "SENTINEL_DATA_DIR": str(workdir / "data"),
        "SENTINEL_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SENTINEL_JWT_SECRET": "served-test-" + "s" * 40,
        "SENTINEL_INGEST_ENABLED": "false",
        "SENTINEL_PRESENCE_ENABLED": "false",
        "SENTINEL_API_HOST": "127.0.0.1",
        **(env or {}),
    }
    argv = [sys.executable, "-m", "sentinel_cli.main", "cloud", "serve", "--port", str(port), "--no-ingest"]
    saved = {k: os.environ.get(k) for k in environment}
    os.environ.update(environment)  # _spawn inherits the environment
    try:
        return _spawn("cloud", [*argv, *(args or [])], workdir, port, timeout)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
