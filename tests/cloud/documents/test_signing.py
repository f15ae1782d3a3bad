from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest

from cloud.documents import render_pdf
from cloud.signing import (
    SignatureInvalid,
    SignatureRecord,
    Signer,
    generate_key_file,
    load_public_key,
    load_signing_key,
    sign_document,
    verify_signature,
)
from tests.cloud.documents.factories import rectification_order

CST = dt.timezone(dt.timedelta(hours=8))
SIGNER = Signer(user_id="u-0007", name="李四", role="enforcement_officer")
AT = dt.datetime(2026, 3, 2, 10, 50, tzinfo=CST)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "officer.pem"
    generate_key_file(path, passphrase=b"correct horse")
    return path


def test_signed_pdf_verifies_with_the_public_key_file(key_file: Path) -> None:
    pdf = render_pdf(rectification_order())
    key = load_signing_key(key_file, passphrase=b"correct horse")
    record = sign_document(pdf, key, SIGNER, at=AT)
    # a third party: only the PDF, the stored record (JSON) and the published public key
    stored = SignatureRecord.model_validate_json(record.model_dump_json())
    public = load_public_key((key_file.parent / "officer.pub.pem").read_bytes())
    verify_signature(pdf, stored, public)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_tampered_pdf_fails_verification(key_file: Path) -> None:
    pdf = render_pdf(rectification_order())
    key = load_signing_key(key_file, passphrase=b"correct horse")
    record = sign_document(pdf, key, SIGNER, at=AT)
    tampered = render_pdf(rectification_order(deadline=dt.date(2026, 4, 30)))  # a later deadline, re-rendered
    with pytest.raises(SignatureInvalid) as info:
        verify_signature(tampered, record, key.public_key)
    assert info.value.reason == "hash_mismatch"
    flipped = bytearray(pdf)
    flipped[len(flipped) // 2] ^= 0x01
    with pytest.raises(SignatureInvalid):
        verify_signature(bytes(flipped), record, key.public_key)


def test_record_fields_are_bound_by_the_signature(key_file: Path) -> None:
    pdf = b"%PDF-1.4 minimal"
    key = load_signing_key(key_file, passphrase=b"correct horse")
    record = sign_document(pdf, key, SIGNER, at=AT)
    forged_signer = record.model_copy(update={"signer": Signer(user_id="u-9", name="王五", role="bureau_head")})
    with pytest.raises(SignatureInvalid, match="bad_signature"):
        verify_signature(pdf, forged_signer, key.public_key)
    backdated = record.model_copy(update={"signed_at": AT - dt.timedelta(days=1)})
    with pytest.raises(SignatureInvalid, match="bad_signature"):
        verify_signature(pdf, backdated, key.public_key)


def test_a_different_key_is_not_trusted(tmp_path: Path, key_file: Path) -> None:
    pdf = b"document"
    mallory = generate_key_file(tmp_path / "mallory.pem")
    record = sign_document(pdf, mallory, SIGNER, at=AT)
    verify_signature(pdf, record)  # internally consistent...
    trusted = load_signing_key(key_file, passphrase=b"correct horse").public_key
    with pytest.raises(SignatureInvalid, match="key_mismatch"):
        verify_signature(pdf, record, trusted)  # ...but not by the trusted officer's key


def test_key_file_handling(tmp_path: Path, key_file: Path) -> None:
    with pytest.raises(FileExistsError):
        generate_key_file(key_file)
    with pytest.raises(ValueError):
        load_signing_key(key_file, passphrase=b"wrong")
    with pytest.raises(ValueError):
        sign_document(b"x", load_signing_key(key_file, passphrase=b"correct horse"), SIGNER, at=AT.replace(tzinfo=None))
