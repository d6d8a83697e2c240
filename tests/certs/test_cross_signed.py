"""A real cross-signed chain, served both ways on loopback: an old root cross-signs a new root (the
way a new CA reaches clients that trust only the old one). `check` and the /probe exposition name
the path the verifier built, its length, its root and whether it went through the cross-sign."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from helpers import make_config, make_target
from servers import LoopbackServers

from exporter.config.model import Profile
from exporter.judge.assess import Assessor
from exporter.metrics.render import probe_text
from exporter.pipeline import Pipeline

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


@dataclass
class World:
    old_root: x509.Certificate
    new_root: x509.Certificate  # self-signed
    new_root_by_old: x509.Certificate  # the same subject and key, issued by the old root
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 900 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if signer is not key:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    return b.sign(signer, hashes.SHA256())


def world() -> World:
    old_key, new_key, int_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    old_root = _ca("Old Root", old_key, "Old Root", old_key)
    new_root = _ca("New Root", new_key, "New Root", new_key)
    new_root_by_old = _ca("New Root", new_key, "Old Root", old_key)
    intermediate = _ca("New Issuing CA", int_key, "New Root", new_key)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(intermediate.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 90 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(int_key.public_key()), critical=False)
        .sign(int_key, hashes.SHA256())
    )
    return World(old_root, new_root, new_root_by_old, intermediate, leaf, leaf_key)


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def serve(servers: LoopbackServers, w: World, chain: list[x509.Certificate], tmp: Path, label: str) -> int:
    chain_file, key_file = tmp / f"{label}.pem", tmp / f"{label}.key"
    chain_file.write_bytes(pem(*chain))
    key_file.write_bytes(
        w.leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain_file, key_file)
    return servers.tls(ctx)


def check_json(port: int, trust: Path) -> dict[str, object]:
    run = subprocess.run(
        [sys.executable, "-m", "exporter", "check", f"127.0.0.1:{port}", "--server-name", "localhost",
         "--ca-file", str(trust), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(run.stdout)
    (result,) = doc["targets"][0]["results"]
    return result  # type: ignore[no-any-return]


def check_text(port: int, trust: Path) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "exporter", "check", f"127.0.0.1:{port}", "--server-name", "localhost",
         "--ca-file", str(trust)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return run.stdout


def test_through_the_cross_sign_to_the_old_root(servers: LoopbackServers, tmp_path: Path) -> None:
    """Served with the cross-signed certificate (and the new root itself, as servers often do) to a
    client that trusts only the old root: four certificates to Old Root, cross-signed."""
    w = world()
    port = serve(servers, w, [w.leaf, w.intermediate, w.new_root_by_old, w.new_root], tmp_path, "old")
    trust = tmp_path / "old-root.pem"
    trust.write_bytes(pem(w.old_root))
    result = check_json(port, trust)
    assert result["verdict"] == "ok" and result["chain_valid"] is True
    assert result["chain_path"] == {
        "root": "Old Root",
        "length": 4,
        "cross_signed": True,
        "certificates": ["CN=localhost", "CN=New Issuing CA", "CN=New Root", "CN=Old Root"],
    }
    assert "  path:      4 certificates to Old Root via a cross-signed certificate" in check_text(port, trust)


def test_straight_to_the_new_root(servers: LoopbackServers, tmp_path: Path) -> None:
    """The same leaf served without the cross-sign to a client that trusts the new root: three
    certificates to New Root, not cross-signed."""
    w = world()
    port = serve(servers, w, [w.leaf, w.intermediate], tmp_path, "new")
    trust = tmp_path / "new-root.pem"
    trust.write_bytes(pem(w.new_root))
    result = check_json(port, trust)
    assert result["chain_path"] == {
        "root": "New Root",
        "length": 3,
        "cross_signed": False,
        "certificates": ["CN=localhost", "CN=New Issuing CA", "CN=New Root"],
    }
    assert "  path:      3 certificates to New Root\n" in check_text(port, trust)


async def test_the_probe_exposition_carries_the_path(servers: LoopbackServers, tmp_path: Path) -> None:
    """Both roots trusted, the cross-sign served: whichever path the verifier takes, the series
    says it consistently (four certificates through the cross-sign to Old Root, or three to New Root)."""
    w = world()
    port = await asyncio.to_thread(serve, servers, w, [w.leaf, w.intermediate, w.new_root_by_old], tmp_path, "both")
    trust = tmp_path / "both.pem"
    await asyncio.to_thread(trust.write_bytes, pem(w.old_root, w.new_root))
    target = make_target(port)
    config = make_config(target, profiles=[Profile(trust=str(trust))])
    pipeline = Pipeline(assessor=Assessor())
    try:
        results = await pipeline.probe(target, config)
    finally:
        await pipeline.close()
    text = probe_text(results, target, config)
    found = [
        (dict(re.findall(r'(\w+)="([^"]*)"', line)), float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("tls_chain_path_info{")
    ]
    assert found in (
        [({"root": "Old Root", "length": "4", "cross_signed": "true"}, 1.0)],
        [({"root": "New Root", "length": "3", "cross_signed": "false"}, 1.0)],
    ), text
