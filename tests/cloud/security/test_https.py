"""#13 item 5: ``sentinel cloud serve --certfile/--keyfile`` serves HTTPS; a real client (httpx) verifies the chain
against the project's own CA (cloud/security/pki.py), and refuses a server it cannot verify."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from cloud.security import pki
from sentinel_cli.servers import Server
from tests.utils.served import ADMIN_PASSWORD, start_served_cloud


@pytest.fixture
def tls_cloud(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    pki_dir = tmp_path / "pki"
    pki.init_ca(pki_dir)
    pair = pki.issue_server(pki_dir, ["127.0.0.1", "localhost"])
    server = start_served_cloud(tmp_path / "cloud", args=["--certfile", str(pair.cert), "--keyfile", str(pair.key)])
    yield server, pki_dir
    server.stop()


def test_https_with_the_project_ca(tls_cloud: tuple[Server, Path]) -> None:
    server, pki_dir = tls_cloud
    base = f"https://127.0.0.1:{server.port}/api/v1"
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    with httpx.Client(verify=context, timeout=30) as client:
        assert client.get(f"{base}/health").status_code == 200
        login = client.post(f"{base}/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        me = client.get(f"{base}/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
        assert me.status_code == 200 and me.json()["username"] == "admin"
    # the certificate the server presents is the one the project CA issued, chained to it
    with (
        ssl.create_connection(("127.0.0.1", server.port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        presented = x509.load_der_x509_certificate(der)
        ca = x509.load_pem_x509_certificate((pki_dir / "ca.crt").read_bytes())
        assert presented.issuer == ca.subject
        presented.verify_directly_issued_by(ca)
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_unverifiable_server_and_plain_http_refused(tls_cloud: tuple[Server, Path], tmp_path: Path) -> None:
    server, _ = tls_cloud
    other = tmp_path / "other-ca"
    pki.init_ca(other)  # a different CA: the chain does not verify
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(
            f"https://127.0.0.1:{server.port}/api/v1/health",
            verify=ssl.create_default_context(cafile=str(other / "ca.crt")),
            timeout=30,
        )
    with pytest.raises(httpx.HTTPError):  # no plaintext fallback on the TLS port
        httpx.get(f"http://127.0.0.1:{server.port}/api/v1/health", timeout=30)


def test_serve_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cloud.cli import app

    pki.init_ca(tmp_path)
    pair = pki.issue_server(tmp_path, ["127.0.0.1"])
    result = CliRunner().invoke(app, ["serve", "--certfile", str(pair.cert)], env={"SENTINEL_DATA_DIR": str(tmp_path)})
    assert result.exit_code != 0 and "api_keyfile" in result.output
