"""Trust anchors: a profile's ``trust`` ("system" or a PEM bundle path) as a verification ``Store``.

Bundles are parsed block by block, so one unparsable (or deprecated-looking) root does not
cost the whole store. Stores are immutable and cached per path; a bundle that changes on disk
(size or modification time) is read again.
"""

from __future__ import annotations

import os
import ssl
import threading
import warnings

from cryptography import x509
from cryptography.x509.verification import Store

from exporter.support.fileio import read_regular
from exporter.support.limits import MAX_BUNDLE_BYTES

SYSTEM_FALLBACK = "/etc/ssl/certs/ca-certificates.crt"
_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"


class TrustError(ValueError):
    """The trust source cannot be read or holds no certificate."""


def system_bundle_path() -> str:
    """The CA file OpenSSL would use (``SSL_CERT_FILE`` honoured), else the Debian bundle."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, SYSTEM_FALLBACK):
        if candidate and os.path.isfile(candidate):
            return candidate
    return SYSTEM_FALLBACK


def parse_bundle(data: bytes) -> list[x509.Certificate]:
    """Every parsable certificate of a PEM bundle, in order; bad blocks are skipped."""
    out: list[x509.Certificate] = []
    for block in data.split(_END):
        start = block.find(_BEGIN)
        if start < 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-positive serials in some real roots
            try:
                out.append(x509.load_pem_x509_certificate(block[start:] + _END + b"\n"))
            except ValueError:
                continue
    return out


def resolve(trust: str) -> str:
    return system_bundle_path() if trust == "system" else trust


_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int], Store, tuple[x509.Certificate, ...]]] = {}


def load_store(trust: str) -> Store:
    """The Store for a profile's ``trust`` value; raises ``TrustError``."""
    return load_trust(trust)[0]


def load_store_counted(trust: str) -> tuple[Store, int]:
    """The Store and how many anchors it holds."""
    store, anchors = load_trust(trust)
    return store, len(anchors)


def load_trust(trust: str) -> tuple[Store, tuple[x509.Certificate, ...]]:
    """The Store and its anchors (to tell a refused chain from an unknown root); raises ``TrustError``."""
    path = resolve(trust)
    try:
        st = os.stat(path)
    except OSError as e:
        raise TrustError(f"trust bundle {path}: {e.strerror or e}") from None
    stamp = (st.st_mtime_ns, st.st_size)
    with _lock:
        hit = _cache.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1], hit[2]
    try:
        data = read_regular(path, MAX_BUNDLE_BYTES, what="trust bundle")
    except OSError as e:
        raise TrustError(f"trust bundle {path}: {e.strerror or e}") from None
    certs = parse_bundle(data)
    if not certs:
        raise TrustError(f"trust bundle {path}: no PEM certificate found")
    store = Store(certs)
    with _lock:
        _cache[path] = (stamp, store, tuple(certs))
    return store, tuple(certs)
