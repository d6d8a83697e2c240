#!/usr/bin/env python3
"""Generate tests/data/limbo/cases.json from x509-limbo's own test-case generators.

x509-limbo (https://github.com/C2SP/x509-limbo, Apache-2.0) publishes its cases as limbo.json,
but that file does not carry the leaf's private key, and a chain can only be *served* on a TLS
server with it. So this script runs limbo's Python generators (``limbo.testcases.registry``) at
the pinned commit and keeps, for every case of the counted namespaces, what the harness needs:
the certificates, the expectation, and the leaf key. The key is captured where limbo's
``Builder.peer_certificate`` records it (``Testcase.peer_certificate_key``: set when the peer
is a ``CertificatePair`` built by the Builder); for a peer loaded from limbo's assets, a key file
of the same assets that matches the certificate is used (the explicit-curve leaf has one).

Usage (from the repository root; needs git and PyPI):

    scripts/limbo/generate.py                       # clone the pinned commit from GitHub
    scripts/limbo/generate.py --limbo-src DIR       # a checkout (tree) of the pinned commit
    scripts/limbo/generate.py --venv DIR            # reuse a venv with limbo's dependencies

Limbo's generators import only pydantic and cryptography (its pyproject pins both; the versions
are read from it); they are installed into a throw-away venv unless --venv is given. Keys and
serial numbers are random, so each run writes different bytes with the same cases; the judge's
expected results (tests/limbo/expected.py) do not depend on them.

The script runs itself a second time inside that venv (``--worker``) to import limbo; that part
uses nothing of this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LIMBO_REPOSITORY = "https://github.com/C2SP/x509-limbo"
LIMBO_COMMIT = "8a2e6f41023b1716dc16fe63335e4bb972e4c3f6"
LIMBO_LICENCE = "Apache-2.0"
# The namespaces counted (the issue's): the rest (crl::, bettertls::, online::) are left out.
NAMESPACES = ("webpki", "rfc5280", "pathlen", "pathological", "cve", "invalid")
# What limbo's generators import besides the standard library (versions from its pyproject).
GENERATOR_DEPENDENCIES = ("pydantic", "cryptography")

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "data" / "limbo" / "cases.json"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limbo-src", type=Path, help=f"a checkout of x509-limbo at {LIMBO_COMMIT[:12]} (default: clone)")
    p.add_argument("--venv", type=Path, help="a venv with limbo's generator dependencies (default: a new one)")
    p.add_argument("--output", type=Path, default=OUTPUT)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        cases = generate(args.limbo_src)
        json.dump(cases, sys.stdout)
        return 0
    with tempfile.TemporaryDirectory(prefix="limbo-gen-") as tmp:
        src = args.limbo_src or clone(Path(tmp) / "x509-limbo")
        source = "given with --limbo-src" if args.limbo_src else f"cloned from {LIMBO_REPOSITORY}"
        if not (src / "limbo" / "testcases" / "_core.py").is_file():
            p.error(f"{src} is not an x509-limbo checkout (no limbo/testcases/_core.py)")
        python = venv_python(args.venv or Path(tmp) / "venv", src, create=args.venv is None)
        env = {**os.environ, "PYTHONPATH": str(src), "PYTHONWARNINGS": "ignore"}
        out = subprocess.run(
            [str(python), str(Path(__file__).resolve()), "--worker", "--limbo-src", str(src)],
            env=env,
            check=True,
            stdout=subprocess.PIPE,
        ).stdout
    cases = json.loads(out)
    doc = {
        "limbo": {
            "repository": LIMBO_REPOSITORY,
            "commit": LIMBO_COMMIT,
            "licence": LIMBO_LICENCE,
            "source": source,
        },
        "generated_by": "scripts/limbo/generate.py",
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "namespaces": list(NAMESPACES),
        "cases": cases,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=1) + "\n")
    servable = sum(1 for c in cases if c["unservable"] is None)
    print(f"{args.output}: {len(cases)} cases, {servable} servable", file=sys.stderr)
    return 0


def clone(dest: Path) -> Path:
    """The pinned commit alone, from the public repository."""
    dest.mkdir(parents=True)
    git = ["git", "-C", str(dest)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "fetch", "-q", "--depth", "1", LIMBO_REPOSITORY, LIMBO_COMMIT], check=True)
    subprocess.run([*git, "checkout", "-q", "FETCH_HEAD"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    if head != LIMBO_COMMIT:
        raise SystemExit(f"fetched {head}, wanted {LIMBO_COMMIT}")
    return dest


def venv_python(venv: Path, src: Path, *, create: bool) -> Path:
    """A venv with the generators' dependencies, at the versions limbo's pyproject asks for."""
    python = venv / "bin" / "python"
    if not create:
        return python
    pins = tomllib.loads((src / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = [d for d in pins if d.split()[0].split("~")[0].split("=")[0] in GENERATOR_DEPENDENCIES]
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], check=True)
    return python


# -- the worker: runs inside the venv with limbo importable ---------------------------------------


def generate(src: Path) -> list[dict[str, Any]]:
    from limbo.testcases import registry  # type: ignore[import-not-found]  # limbo's own, in the worker venv

    cases = []
    for case_id in sorted(registry):
        namespace = case_id.split("::")[0]
        if namespace in NAMESPACES:
            cases.append(_case(case_id, namespace, registry[case_id](), src))
    return cases


def _case(case_id: str, namespace: str, tc: Any, src: Path) -> dict[str, Any]:
    peer = tc.expected_peer_name
    out: dict[str, Any] = {
        "id": case_id,
        "namespace": namespace,
        "description": tc.description,
        "expected_result": str(tc.expected_result),
        "validation_kind": str(tc.validation_kind),
        "peer_name": None if peer is None else {"kind": str(peer.kind), "value": peer.value},
        "unservable": None,
    }
    why = None
    if str(tc.validation_kind) != "SERVER":
        why = f"validation kind {tc.validation_kind} (the harness judges servers)"
    elif peer is None:
        why = "no expected peer name"
    elif str(peer.kind) not in ("DNS", "IP"):
        why = f"peer name of kind {peer.kind} (only DNS and IP names can be asked for)"
    if why is not None:
        out["unservable"] = why
        return out
    key, key_source = _leaf_key(tc, src)
    if key is None:
        out["unservable"] = "no leaf key: the peer certificate comes from limbo's assets without its key"
    else:
        refused = _openssl_refuses(tc.peer_certificate, key)
        if refused:
            out["unservable"] = (
                f"OpenSSL refuses to load the peer certificate and leaf key into a TLS server: {refused}"
            )
    out.update(
        {
            "validation_time": None if tc.validation_time is None else tc.validation_time.isoformat(),
            "trusted_certs": list(tc.trusted_certs),
            "untrusted_intermediates": list(tc.untrusted_intermediates),
            "peer_certificate": tc.peer_certificate,
            "leaf_key": key,
            "leaf_key_source": key_source,
            "extended_key_usage": [str(u) for u in tc.extended_key_usage],
            "key_usage": [str(u) for u in tc.key_usage],
            "signature_algorithms": [str(a) for a in tc.signature_algorithms],
            "max_chain_depth": tc.max_chain_depth,
            "features": [str(f) for f in tc.features],
            "importance": str(tc.importance),
            "conflicts_with": list(tc.conflicts_with),
            "crls": list(tc.crls),
        }
    )
    return out


def _leaf_key(tc: Any, src: Path) -> tuple[str | None, str | None]:
    """The leaf key as unencrypted PKCS#8 PEM, and where it came from."""
    from cryptography.hazmat.primitives import serialization

    if tc.peer_certificate_key is not None:
        key = serialization.load_pem_private_key(tc.peer_certificate_key.encode(), password=None)
        pkcs8 = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return pkcs8.decode(), "Builder.peer_certificate (the CertificatePair the case built)"
    for path in sorted((src / "limbo" / "_assets").glob("*.key")):
        if not _openssl_refuses(tc.peer_certificate, path.read_text()):
            text = path.read_text()
            try:  # explicit-curve keys: cryptography cannot read them; OpenSSL can, as they are
                key = serialization.load_pem_private_key(text.encode(), password=None)
                text = key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ).decode()
            except (ValueError, TypeError):
                pass
            return text, f"limbo asset {path.relative_to(src)} (matches the peer certificate)"
    return None, None


def _openssl_refuses(cert_pem: str, key_pem: str) -> str:
    """Why OpenSSL would not load this certificate and key into a TLS server ("" if it would)."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert.write_text(cert_pem)
        key.write_text(key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        try:
            ctx.load_cert_chain(cert, key)
        except ssl.SSLError as e:
            return str(e)
    return ""


if __name__ == "__main__":
    sys.exit(main())
