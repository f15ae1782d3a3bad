"""A small PKI for TLS on MQTT and HTTPS: one CA, server certificates, agent (client) certificates.

``sentinel pki init DIR --host mqtt.example.gov.cn --host 127.0.0.1`` creates ``ca.crt``/``ca.key`` and a
server pair; ``sentinel pki issue-agent DIR SITE AGENT`` a client pair whose CN is the agent's MQTT username
(mosquitto ``use_identity_as_username true`` then maps the certificate to the same ACL entries).
Keys are EC P-256, written 0600. The CA key should then move offline (docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud.security.mqtt_auth import write_private

ORG = "Market Sentinel"


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(key_path, key_pem.decode())
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Pair(cert_path, key_path)


def init_ca(directory: Path, *, common_name: str = f"{ORG} CA", days: int = 3650, force: bool = False) -> Pair:
    if (directory / "ca.key").exists() and not force:
        raise FileExistsError(f"{directory / 'ca.key'} exists: refusing to replace the CA (use force)")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory, "ca", cert, key)


def load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an EC key")
    return cert, key


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue(
    directory: Path,
    stem: str,
    *,
    common_name: str,
    hosts: list[str] | None = None,
    client: bool = False,
    days: int = 825,
) -> Pair:
    """A leaf certificate signed by the CA in ``directory`` (server: SANs from ``hosts``; client: clientAuth)."""
    ca_cert, ca_key = load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usage = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    return _write(directory, stem, builder.sign(ca_key, hashes.SHA256()), key)


def issue_server(directory: Path, hosts: list[str], *, stem: str = "server") -> Pair:
    return issue(directory, stem, common_name=hosts[0], hosts=hosts)


def issue_agent(directory: Path, site_id: str, agent_id: str) -> Pair:
    from cloud.security.mqtt_auth import agent_username

    username = agent_username(site_id, agent_id)
    return issue(directory, f"agent-{username}", common_name=username, client=True)


def mosquitto_listener(directory: Path, port: int, *, mutual: bool, bind: str = "0.0.0.0") -> str:
    """The mosquitto.conf block of a TLS listener using the files in ``directory``."""
    lines = [
        f"listener {port} {bind}",
        f"cafile {directory / 'ca.crt'}",
        f"certfile {directory / 'server.crt'}",
        f"keyfile {directory / 'server.key'}",
        "tls_version tlsv1.2",
    ]
    if mutual:
        lines += ["require_certificate true", "use_identity_as_username true"]
    return "\n".join(lines) + "\n"
