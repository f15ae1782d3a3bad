"""Long schemathesis run over real HTTP against `sentinel cloud serve` (uvicorn on 127.0.0.1, a temp data dir),
as the system admin and as a department inspector (#13 item 6). The short form is in the suite
(tests/cloud/security/test_api_fuzz_served.py); this script runs the same harness (tests/utils/api_fuzz.py) longer:

* seeded pass: every operation with a path parameter, N generated inputs each, path parameters naming seeded
  objects (department, subject, site, device, sensor, measuring point), every accepted write followed by the reads
  of its resource family;
* stateful pass: schemathesis' state machine (links inferred from the schema), M scenarios of up to S calls;
* sweep: every parameterless GET after the run.

Checks: not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
use_after_free, ensure_resource_availability; plus 5xx or a dropped connection on any follow-up read.
Prints one summary per role and exits 1 when anything failed. Record the figures in docs/security.md.

Usage: .venv/bin/python benchmarks/fuzz_api.py [--seeded 20] [--scenarios 200] [--steps 8] [--roles admin,inspector]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.utils.api_fuzz import FuzzReport, login, run_seeded, run_stateful, seed_objects  # noqa: E402
from tests.utils.served import ADMIN_PASSWORD, start_served_cloud  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeded", type=int, default=20, help="generated inputs per operation on seeded objects")
    ap.add_argument("--scenarios", type=int, default=200, help="stateful scenarios per role")
    ap.add_argument("--steps", type=int, default=8, help="calls per scenario at most")
    ap.add_argument("--roles", default="admin,inspector")
    args = ap.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="fuzz-api-") as tmp:
        server = start_served_cloud(Path(tmp), env={"SENTINEL_RATE_LIMIT_PER_MINUTE": "1000000"})
        try:
            base = f"http://127.0.0.1:{server.port}/api/v1"
            admin = login(base, "admin", ADMIN_PASSWORD)
            ids = seed_objects(base, admin)
            inspector = {"username": "fz-inspector", "password": "Fuzz-Insp3ctor!", "role": "inspector"}
            httpx.post(f"{base}/users", json=inspector, headers=admin, timeout=60).raise_for_status()
            for role in args.roles.split(","):
                headers = admin if role == "admin" else login(base, inspector["username"], inspector["password"])
                started = time.monotonic()
                report = run_seeded(base, headers, ids, max_examples=args.seeded, report=FuzzReport(role))
                stateful = run_stateful(base, headers, role=role, max_examples=args.scenarios, step_count=args.steps)
                report.calls.update(stateful.calls)
                report.statuses.update(stateful.statuses)
                report.failures.update(stateful.failures)
                report.notes += stateful.notes
                print(report.summary(), f"\n  {time.monotonic() - started:.0f} s", flush=True)
                for key, detail in sorted(report.failures.items()):
                    print(f"\n=== {key}\n{detail}")
                failed = failed or bool(report.failures)
            tracebacks = server.log_tail(100_000).count("Traceback")
            print(f"server log: {tracebacks} tracebacks")
            failed = failed or tracebacks > 0
        finally:
            server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
