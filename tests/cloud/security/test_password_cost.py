"""The password hash cost: standard argon2id in service, a cheap profile only where asked for, hashes portable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from cloud.core import security


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != security.PASSWORD_HASH_COST_ENV} | env
    return subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60)


def test_service_default_is_argon2id_with_rfc9106_parameters() -> None:
    done = _python("from cloud.core.security import hash_password; print(hash_password('x'))")
    assert done.returncode == 0, done.stderr
    # $argon2id$v=19$m=65536,t=3,p=4$... : 64 MiB, 3 passes, 4 lanes (RFC 9106 second recommended option)
    assert "$argon2id$v=19$m=65536,t=3,p=4$" in done.stdout


def test_an_unknown_cost_is_a_configuration_error_naming_the_variable() -> None:
    done = _python("import cloud.core.security", SENTINEL_PASSWORD_HASH_COST="fastest")
    assert done.returncode != 0
    assert "SENTINEL_PASSWORD_HASH_COST='fastest'" in done.stderr


def test_a_cheap_hash_still_verifies_under_standard_and_is_upgraded() -> None:
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("Secret-1")
    standard = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4)
    assert standard.verify(cheap, "Secret-1")
    assert standard.check_needs_rehash(cheap)
    with pytest.raises(VerifyMismatchError):
        standard.verify(cheap, "Secret-2")


def test_serve_warns_when_the_cheap_profile_is_set(tmp_path: Path) -> None:
    done = _python(
        "from typer.testing import CliRunner; from cloud.cli import app; import cloud.cli as c;"
        "import uvicorn; uvicorn.run = lambda *a, **k: None;"
        "r = CliRunner().invoke(app, ['serve', '--no-ingest', '--port', '1']); print(r.output)",
        SENTINEL_PASSWORD_HASH_COST="test",
        SENTINEL_DATA_DIR=str(tmp_path / "data"),
        SENTINEL_JWT_SECRET="test-secret-" + "x" * 32,
    )
    assert done.returncode == 0, done.stderr
    assert "切勿用于生产环境" in done.stdout + done.stderr
