"""What the validation policy's own rules cost, beside a chain verification and a cached verdict.

    python bench/pathrules.py [-n 2000]

Builds one chain (an EC P-256 leaf with a wildcard SAN, an intermediate, a root) and times, best
of 5 runs of N each: ``pathrules.path_findings`` on the verified path under webpki (the rules
alone), ``verify_chain`` under rfc5280 and under webpki (a verdict-cache miss: the library's
verification, then the rules), and ``VerdictCache.verify`` on a chain it already holds (what a
probe of an unchanged chain pays: the rules do not run). Prints microseconds per call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import Store

from exporter.certs.chain import Rules, verify_chain
from exporter.certs.pathrules import path_findings
from exporter.certs.verdicts import VerdictCache

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


def _cert(cn: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
          ca: bool, sans: list[str]) -> x509.Certificate:  # fmt: skip
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]) if issuer else name
    signer = issuer[1] if issuer else key
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 90 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    if ca:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    return b.sign(signer, hashes.SHA256())


def best(label: str, n: int, fn: Callable[[], object]) -> float:
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n * 1e6)
    print(f"{label:<58} {min(runs):9.1f} us")
    return min(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    n = ap.parse_args().n
    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("Bench Root", root_key, None, True, [])
    mid = _cert("Bench CA", mid_key, ("Bench Root", root_key), True, [])
    leaf = _cert("www.example.com", leaf_key, ("Bench CA", mid_key), False, ["www.example.com", "*.example.com"])
    store, chain = Store([root]), [leaf, mid]
    path = verify_chain(chain, store, "www.example.com", NOW, anchors=[root]).path
    assert len(path) == 3
    best("path_findings, webpki (the rules alone)", n, lambda: path_findings(path, chain, "webpki"))
    best("verify_chain, rfc5280 (a cache miss)", n // 4, lambda: verify_chain(chain, store, "www.example.com", NOW))
    best(
        "verify_chain, webpki (a cache miss)",
        n // 4,
        lambda: verify_chain(chain, store, "www.example.com", NOW, policy="webpki"),
    )
    cache = VerdictCache()
    rules = Rules("webpki")
    cache.verify(chain, store, "www.example.com", NOW, anchors=[root], rules=rules)
    best(
        "VerdictCache.verify, webpki, held (an unchanged chain)",
        n,
        lambda: cache.verify(chain, store, "www.example.com", NOW, anchors=[root], rules=rules),
    )


if __name__ == "__main__":
    main()
