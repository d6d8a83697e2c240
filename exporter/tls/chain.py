"""The one place that reads the certificate chain exactly as the server sent it."""

from __future__ import annotations

import _ssl
import ssl
from typing import Any


def peer_chain_der(ssl_object: ssl.SSLObject) -> list[bytes]:
    """Leaf first, as served (junk and wrong order included). Public API from Python 3.13;
    on 3.11 and 3.12 only the private ``_sslobj.get_unverified_chain()`` gives it."""
    public = getattr(ssl_object, "get_unverified_chain", None)
    if public is not None:
        return [bytes(c) for c in (public() or [])]
    inner: Any = ssl_object._sslobj  # type: ignore[attr-defined]
    chain = inner.get_unverified_chain()
    return [c.public_bytes(_ssl.ENCODING_DER) for c in (chain or [])]
