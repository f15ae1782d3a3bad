"""Stateful schemathesis over real HTTP against a served instance (``sentinel cloud serve``), as one user.

Used by tests/cloud/security/test_api_fuzz_served.py (short) and benchmarks/fuzz_api.py (long). The state machine
chains operations through the links schemathesis infers (a POST's id feeds the GET/PATCH of that object), so a
request that stores something bad is followed by the reads it would break. Failures are collected, not raised, so a
run is not spent shrinking; after the run every parameterless GET is replayed as a sweep: a write that broke a
later read shows there even if the state machine did not happen to read it back.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    use_after_free,
    ensure_resource_availability,
]

# Not fuzzed, each for a stated reason:
EXCLUDED = [
    r"/(stream|live)$",  # SSE streams never end
    r"^/api/v1/auth/(logout|password|totp/.*)$",  # ends or re-keys the fuzzer's own session: not a defect
    r"^/api/v1/users/\{user_id\}/revoke-sessions$",  # would revoke the fuzzer's own session (user 1)
    r"^/api/v1/admin/backup.*$|^/api/v1/admin/restore.*$",  # whole-database operations, tested on their own
]


@dataclass
class FuzzReport:
    role: str
    calls: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # one example per distinct failure
    notes: list[str] = field(default_factory=list)

    def add_failure(self, key: str, detail: str) -> None:
        self.failures.setdefault(key, detail[:1500])

    def summary(self) -> str:
        lines = [
            f"{self.role}: {sum(self.calls.values())} calls over {len(self.calls)} operations; "
            f"statuses {dict(sorted(self.statuses.items()))}; {len(self.failures)} distinct failures"
        ] + [f"  note: {n}" for n in self.notes]
        lines += [f"  - {k}\n      {v.splitlines()[0] if v else ''}" for k, v in sorted(self.failures.items())]
        return "\n".join(lines)


def login(base: str, username: str, password: str) -> dict[str, str]:
    resp = httpx.post(f"{base}/auth/token", data={"username": username, "password": password}, timeout=60)
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def _failure_key(case: Any, exc: BaseException) -> str:
    titles = sorted({type(f).__name__ + ":" + str(getattr(f, "title", "")) for f in getattr(exc, "exceptions", [])})
    return f"{case.method} {case.path} {'; '.join(titles) or type(exc).__name__}"


def sweep(base: str, headers: dict[str, str], schema: Any, report: FuzzReport) -> None:
    """GET every operation without path parameters: none may answer 5xx after the run."""
    host = base.removesuffix("/api/v1")
    with httpx.Client(timeout=60, headers=headers) as client:
        for result in schema.get_all_operations():
            op = result.ok()
            if op.method.upper() != "GET" or "{" in op.path or re.search(r"/(stream|live)$", op.path):
                continue
            report.calls[f"sweep GET {op.path}"] += 1
            try:
                resp = client.get(host + op.path)
            except httpx.HTTPError as exc:
                report.add_failure(f"sweep GET {op.path} (transport)", repr(exc))
                continue
            if resp.status_code >= 500:
                report.add_failure(f"sweep GET {op.path} {resp.status_code}", resp.text)


def _validate(case: Any, response: Any, headers: dict[str, str], report: FuzzReport) -> None:
    report.calls[f"{case.method} {case.path}"] += 1
    report.statuses[response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except (FailureGroup, AssertionError) as exc:
        report.add_failure(_failure_key(case, exc), str(exc))


def _schema(base: str) -> Any:
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", timeout=60)
    for pattern in EXCLUDED:
        schema = schema.exclude(path_regex=pattern)
    return schema


def seed_objects(base: str, headers: dict[str, str]) -> dict[str, Any]:
    """One object of each registry kind, so fuzzed updates hit real rows; returns path-parameter values."""
    from cloud.registry.uscc import make

    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        dep = c.post("/registry/departments", json={"code": "fz-seed", "name": "种子所"}).json()
        subject = c.post(
            "/registry/subjects",
            json={"name": "种子药房", "uscc": make("91320583MA1Y8K3T0"), "department_id": dep["id"]},
        ).json()
        site = {"site_id": "fz-site", "name": "种子场所", "subject_id": subject["id"], "heartbeat_timeout_s": 120}
        c.post("/registry/sites", json=site | {"department_id": dep["id"]}).raise_for_status()
        c.post("/registry/devices", json={"site_id": "fz-site", "device_id": "fz-dev"}).raise_for_status()
        c.post("/registry/sensors", json={"site_id": "fz-site", "sensor_id": "fz-t1", "device_id": "fz-dev"})
        point = c.post("/registry/points", json={"site_id": "fz-site", "location": "阴凉库"}).json()
    return {
        "department_id": dep["id"],
        "subject_id": subject["id"],
        "site_id": "fz-site",
        "device_id": "fz-dev",
        "sensor_id": "fz-t1",
        "point_id": point.get("id", 1),
    }


def run_seeded(
    base: str, headers: dict[str, str], ids: dict[str, Any], *, max_examples: int, report: FuzzReport
) -> FuzzReport:
    """Every operation with a path parameter, generated input, its path parameters naming the seeded objects (so a
    PATCH really changes a stored row); then the sweep: an update that stored what a read cannot serve shows there."""
    from hypothesis import given

    schema = _schema(base)
    config = settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
        database=None,
    )
    operations = [r.ok() for r in schema.get_all_operations()]
    host = base.removesuffix("/api/v1")

    def family(path: str) -> str:
        return path.removeprefix("/api/v1/").split("/")[0]

    reads = {
        op.path
        for op in operations
        if op.method.upper() == "GET" and "{" not in op.path and not re.search(r"/(stream|live)$", op.path)
    }
    client = httpx.Client(timeout=60, headers=headers)

    def seeded_call(case: Any, op: Any, followers: list[str]) -> None:
        case.path_parameters = {k: ids.get(k, v) for k, v in (case.path_parameters or {}).items()}
        try:
            response = case.call(headers=headers, timeout=60)
        except Exception as exc:  # the server dropped the connection: as bad as a 5xx
            report.add_failure(f"{case.method} {case.path} transport error", f"{type(exc).__name__}: {exc}")
            return
        _validate(case, response, headers, report)
        if case.method.upper() in {"GET", "HEAD"} or response.status_code >= 300:
            return
        # a write that was accepted: the reads of the same resource family (and the object itself) must still work
        for path in [*followers, *([case.formatted_path] if op.method.upper() == "PATCH" else [])]:
            report.calls[f"after-write GET {path}"] += 1
            try:
                after = client.get(host + path)
            except httpx.HTTPError as exc:
                report.add_failure(f"{case.method} {case.path} broke GET {path} (transport)", repr(exc))
                continue
            if after.status_code >= 500:
                report.add_failure(
                    f"{case.method} {case.path} broke GET {path} ({after.status_code})",
                    f"{case.method} {case.formatted_path} body={case.body!r:.600} -> later GET {path}: "
                    f"{after.status_code} {after.text[:600]}",
                )

    def fuzz(op: Any) -> None:
        followers = sorted(p for p in reads if family(p) == family(op.path))

        @given(case=op.as_strategy())
        @config
        def one(case: Any) -> None:
            seeded_call(case, op, followers)

        one()

    with client:
        for op in operations:
            if "{" in op.path:
                fuzz(op)
    sweep(base, headers, schema, report)
    return report


def run_stateful(
    base: str,
    headers: dict[str, str],
    *,
    role: str,
    max_examples: int,
    step_count: int = 8,
    seed: int | None = 13,
) -> FuzzReport:
    """One stateful run as the user whose ``headers`` are given; returns what it found."""
    schema = _schema(base)
    report = FuzzReport(role)

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers, "timeout": 60}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            _validate(case, response, headers, report)

    config = settings(
        max_examples=max_examples,
        stateful_step_count=step_count,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],  # no shrinking: failures are collected, not raised
        database=None,
    )
    try:
        (hypothesis_seed(seed) if seed is not None else (lambda f: f))(lambda: Machine.run(settings=config))()
    except FlakyStrategyDefinition:
        # The server's state steers generation (links need stored objects); Hypothesis then sometimes cannot
        # replay a prefix. That ends the run early; it is not a finding about the API.
        report.notes.append("hypothesis ended the run early (FlakyStrategyDefinition: server state steers data)")
    sweep(base, headers, schema, report)
    return report
