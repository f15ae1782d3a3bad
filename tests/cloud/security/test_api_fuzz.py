"""schemathesis against the OpenAPI schema, in process (ASGI), authenticated as the system admin: no operation
answers 5xx, whatever the generated input. SSE streams are excluded (they never end)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings

from cloud.app import create_app
from cloud.core.config import Settings
from cloud.core.security import create_token

STREAMS = r"/(stream|live)$"
MAX_EXAMPLES = 15  # the long run: benchmarks/fuzz_api.py (and the served stateful fuzz in the suite)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    data = Path(tmp_path_factory.mktemp("fuzz"))
    app = create_app(
        Settings(
            data_dir=data,
            jwt_secret="fuzz-" + "x" * 40,
            admin_password="Admin-Passw0rd!",
            ingest_enabled=False,
            presence_enabled=False,
        ),
        run_background=False,
    )
    app.state.security_settings.rate_limit_per_minute = 100_000  # fuzzing is not a brute-force attack
    yield app
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def api_schema(api: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", api).exclude(path_regex=STREAMS)


@pytest.fixture(scope="module")
def admin_headers(api: FastAPI) -> dict[str, str]:
    s = api.state.settings
    token = create_token(subject="admin", role="admin", key=s.jwt_key(), lifetime=timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


def test_no_server_errors(api_schema: Any, admin_headers: dict[str, str]) -> None:
    """Every operation with generated inputs (schemathesis strategies, driven by hypothesis here because the
    schemathesis pytest plugin does not support pytest 9 yet)."""
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            try:
                response = case.call(headers=admin_headers)
            except Exception as exc:  # the in-process client re-raises what would be a 500
                failures.append(f"{case.method} {case.formatted_path} {case.query or ''} → {type(exc).__name__}: {exc}")
                return
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query or ''} → {response.status_code}: "
                    f"{response.text[:300]}"
                )

        run()
    assert operations > 50
    assert not failures, "\n".join(sorted(set(failures))[:40])
