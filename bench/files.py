"""Bench the file source: N certificate files in a temp dir, one probe of a glob (observe and judge).

    python bench/files.py [-n 1000] [--passes 3]

Prints the time of each pass, files per second and the peak RSS of the process; removes the
files afterwards. Each file holds a distinct leaf plus the intermediate (PEM), like a typical
appliance's server.pem.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exporter.config.model import Config, FileTarget
from exporter.pipeline import Pipeline


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write_files(directory: Path, count: int) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Bench CA"))
        .issuer_name(_name("Bench CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    leaf_key = ec.generate_private_key(ec.SECP256R1()).public_key()  # one key: signing is the cost, not keygen
    for i in range(count):
        host = f"host{i:05d}.bench.test"
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(host))
            .issuer_name(ca.subject)
            .public_key(leaf_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1 + i % 365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{host}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_pem)


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


async def bench(count: int, passes: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="tls-exporter-bench-files-"))
    try:
        started = time.perf_counter()
        write_files(directory, count)
        print(f"wrote {count} files in {time.perf_counter() - started:.2f} s to {directory}")
        print(f"peak RSS before reading: {peak_rss_mib():.1f} MiB")
        target = FileTarget(path=str(directory / "*.pem"), name="bench", owner="bench")
        for n in range(1, passes + 1):
            started = time.perf_counter()
            results = await Pipeline().probe(target, Config(files=(target,)))
            elapsed = time.perf_counter() - started
            outcomes = Counter(r.outcome.value for r in results)
            certs = sum(len(r.report.chain) for r in results if r.report)
            print(
                f"pass {n}: {len(results)} files, {certs} certificates in {elapsed:.3f} s "
                f"= {len(results) / elapsed:,.0f} files/s; outcomes {dict(outcomes)}; "
                f"peak RSS {peak_rss_mib():.1f} MiB"
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--count", type=int, default=1000, help="number of files (default 1000)")
    parser.add_argument("--passes", type=int, default=3, help="passes over the glob (default 3)")
    args = parser.parse_args()
    asyncio.run(bench(args.count, args.passes))


if __name__ == "__main__":
    main()
