"""The client TLS context: verify nothing during the handshake, so that broken certificates
(expired, self-signed, misnamed, weak) are still read; judgement happens afterwards in certs/."""

from __future__ import annotations

import ssl
import warnings
from functools import lru_cache


@lru_cache(maxsize=1)
def probe_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Security level 0 so that a server with an RSA-1024 or SHA-1 certificate still completes
    # the handshake and is reported, rather than hidden behind a handshake failure.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 is deprecated: that is the point
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx
