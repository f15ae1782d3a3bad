"""#13 item 6: schemathesis STATEFUL over real HTTP against ``sentinel cloud serve`` (uvicorn on 127.0.0.1, a temp
data dir), as the system admin and as a department inspector. Fails on any 5xx, any response that violates the
OpenAPI document (undocumented status, wrong body or content type), a resource that vanishes after it was created
or answers after it was deleted, and -- through the sweep of every list read after the run -- on any request that
broke a later one. Short form here; the long run is benchmarks/fuzz_api.py (results in docs/security.md)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sentinel_cli.servers import Server
from tests.utils.api_fuzz import FuzzReport, login, run_seeded, run_stateful, seed_objects
from tests.utils.served import ADMIN_PASSWORD, start_served_cloud

pytestmark = pytest.mark.slow

# Short form (the machine is shared): per role, 3 generated inputs for every operation on seeded objects, then
# 10 stateful scenarios of up to 4 chained calls. benchmarks/fuzz_api.py runs the long form.
SEEDED_EXAMPLES = 3
SCENARIOS = 10


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Server]]:
    # the fuzzer is not a brute-force attack on the public paths; the login throttle is tested on its own
    server = start_served_cloud(
        tmp_path_factory.mktemp("fuzz-served"), env={"SENTINEL_RATE_LIMIT_PER_MINUTE": "1000000"}
    )
    yield f"http://127.0.0.1:{server.port}/api/v1", server
    server.stop()


@pytest.fixture(scope="module")
def seeded(served: tuple[str, Server]) -> dict[str, object]:
    base, _ = served
    return seed_objects(base, login(base, "admin", ADMIN_PASSWORD))


@pytest.fixture(scope="module")
def inspector(served: tuple[str, Server], seeded: dict[str, object]) -> dict[str, str]:
    base, _ = served
    admin = login(base, "admin", ADMIN_PASSWORD)
    user = {"username": "fz-inspector", "password": "Fuzz-Insp3ctor!", "role": "inspector", "department": "种子所"}
    created = httpx.post(f"{base}/users", json=user, headers=admin, timeout=60)
    assert created.status_code == 201, created.text
    return login(base, user["username"], user["password"])


@pytest.mark.parametrize("role", ["admin", "inspector"])
def test_stateful_fuzz_over_http(
    served: tuple[str, Server], seeded: dict[str, object], inspector: dict[str, str], role: str
) -> None:
    base, server = served
    headers = login(base, "admin", ADMIN_PASSWORD) if role == "admin" else inspector
    report = run_seeded(base, headers, seeded, max_examples=SEEDED_EXAMPLES, report=FuzzReport(role))
    stateful = run_stateful(base, headers, role=role, max_examples=SCENARIOS, step_count=4)
    report.calls.update(stateful.calls)
    report.statuses.update(stateful.statuses)
    report.failures.update(stateful.failures)
    assert sum(report.calls.values()) > 200, report.summary()
    assert not report.failures, report.summary() + "\n\n" + "\n\n".join(report.failures.values())[:6000]
    assert "Traceback" not in server.log_tail(400), server.log_tail(60)
