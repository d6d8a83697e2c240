"""Hostile files: FIFOs, devices, huge bundles, thousands of certificates, legacy string types.
Each is an error naming the path (or a bounded outcome), returned at once, never a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from pki import PKI

from exporter.certs.judge import judge
from exporter.certs.trust import TrustError, load_store
from exporter.config import parse_config
from exporter.config.model import FileTarget, Profile
from exporter.sources.file import FileSource
from exporter.support.deadline import Deadline
from exporter.support.errors import ConfigError, FileOutcome
from hostile.kit import legacy_subject_der


async def _observe(target: FileTarget) -> list:  # type: ignore[type-arg]
    observations = await FileSource().observe(target, Deadline(30.0))
    return [judge(o, target, Profile(), ()) for o in observations]


def _file(path: Path, **kw: object) -> FileTarget:
    return FileTarget(path=str(path), name="hostile", owner="", **kw)  # type: ignore[arg-type]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)  # nobody ever writes: a blocking open would hang for good
    return path


def test_trust_bundle_must_be_a_regular_file(fifo: Path, tmp_path: Path) -> None:
    with pytest.raises(TrustError) as err:
        load_store(str(fifo))
    assert str(err.value) == f"trust bundle {fifo}: trust bundle is a FIFO, not a regular file"
    with pytest.raises(TrustError) as err:
        load_store("/dev/zero")
    assert str(err.value) == "trust bundle /dev/zero: trust bundle is a character device, not a regular file"
    huge = tmp_path / "huge.pem"
    with huge.open("wb") as f:
        f.truncate(17 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(TrustError) as err:
        load_store(str(huge))
    assert "over the 16777216 byte limit" in str(err.value)


async def test_certificate_file_fifo_and_device_are_unreadable(fifo: Path) -> None:
    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a character device")):
        [result] = await _observe(_file(path))
        assert result.outcome is FileOutcome.UNREADABLE
        assert result.detail == f"certificate file is {kind}, not a regular file (EINVAL)"


async def test_password_file_fifo_is_named_in_the_outcome(pki: PKI, fifo: Path, tmp_path: Path) -> None:
    issued = pki.issue("hostile-p12")
    p12 = tmp_path / "a.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"a", issued.key, issued.cert, None, serialization.BestAvailableEncryption(b"secret")
        )
    )
    [result] = await _observe(_file(p12, password_file=str(fifo)))
    assert result.outcome is FileOutcome.PARSE_ERROR
    assert f"password file {fifo}: PKCS#12 password file is a FIFO, not a regular file (EINVAL)" in result.detail


def test_expected_certificate_fifo_is_a_config_error(fifo: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {"targets": [{"address": "127.0.0.1:443", "expect": {"certificate": str(fifo)}}]}, base_dir=Path(".")
        )
    assert err.value.errors == [
        f"targets[0].expect.certificate: cannot read '{fifo}': expected certificate is a FIFO, not a regular file"
    ]


@pytest.mark.parametrize(("copies", "limit"), [(101, 100), (5000, 100), (30, 20)])
async def test_max_certificates_per_file(pki: PKI, tmp_path: Path, copies: int, limit: int) -> None:
    pem = pki.issue("hostile-many").cert_path.read_bytes()
    path = tmp_path / "many.pem"
    path.write_bytes(pem * copies)
    [result] = await _observe(_file(path, max_certificates=limit))
    assert result.outcome is FileOutcome.PARSE_ERROR
    assert result.detail == f"{copies} certificates, over max_certificates_per_file ({limit})"
    assert result.report is None  # no certificate series at all
    path.write_bytes(pem * limit)
    [result] = await _observe(_file(path, max_certificates=limit))
    assert result.outcome is FileOutcome.CERTIFICATE_FOUND
    assert len(result.report.chain) == limit


def test_max_certificates_per_file_from_the_config() -> None:
    config = parse_config(
        {
            "defaults": {"max_certificates_per_file": 7},
            "files": [{"path": "/a"}, {"path": "/b", "max_certificates_per_file": 3}],
        },
        base_dir=Path("/"),
    )
    assert [f.max_certificates for f in config.files] == [7, 3]
    with pytest.raises(ConfigError) as err:
        parse_config({"files": [{"path": "/a", "max_certificates_per_file": 0}]}, base_dir=Path("/"))
    assert err.value.errors == ["files[0].max_certificates_per_file: expected a positive integer"]


async def test_legacy_t61_subject_is_read_with_escapes(pki: PKI, tmp_path: Path) -> None:
    path = tmp_path / "legacy.der"
    path.write_bytes(legacy_subject_der(pki))
    [result] = await _observe(_file(path))
    assert result.outcome is FileOutcome.CERTIFICATE_FOUND
    leaf = result.report.chain[0]
    assert leaf.subject == "CN=Caf\u00e9\\x1b[2J"  # T.61 read as Latin-1, ESC shown as an escape
    assert leaf.subject_cn == "Caf\u00e9\\x1b[2J"
    assert leaf.issuer == pki.intermediate.cert.subject.rfc4514_string()  # the same text cryptography gives
    assert leaf.sans == ("legacy.example",)
