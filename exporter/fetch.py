"""HTTP fetches for revocation and chain completion: OCSP, CRLs, AIA caIssuers.

One aiohttp session, plain ``http://`` only (these URLs are http by design; following https
would need the very trust being judged), a timeout and a size cap on every fetch, and caches:
OCSP responses and CRLs until their nextUpdate (at most the caller's ``max_age``, the profile's
``revocation_interval``), AIA certificates for ``aia_ttl``. One download per URL at a time
(single-flight): probes that need the same answer wait for the one request in flight. A CRL is
parsed once per download, in a worker thread (a large CRL takes a while), and cached parsed.
Failures raise ``FetchError`` and are never cached. Times are unix seconds passed in by the caller.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp

from exporter.certs.revocation import load_crl

if TYPE_CHECKING:  # aiohttp is imported on the first fetch: `check` of an endpoint without AIA/OCSP never needs it
    import aiohttp

MiB = 1024 * 1024
T = TypeVar("T")


class FetchError(Exception):
    """A fetch failed: bad URL, network, HTTP status, size, or content."""


@dataclass(slots=True)
class _Entry:
    expires: float
    value: object


class _Cache:
    def __init__(self, limit: int) -> None:
        self._data: dict[object, _Entry] = {}
        self._limit = limit

    def get(self, key: object, now: float) -> object | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            del self._data[key]
            return None
        return entry.value

    def put(self, key: object, value: object, expires: float, now: float) -> None:
        if expires <= now:
            return
        if len(self._data) >= self._limit:
            for k in [k for k, e in self._data.items() if e.expires <= now]:
                del self._data[k]
            while len(self._data) >= self._limit:
                del self._data[next(iter(self._data))]
        self._data[key] = _Entry(expires, value)

    def __len__(self) -> int:
        return len(self._data)


class Fetcher:
    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = MiB,
        crl_max_bytes: int = 8 * MiB,
        aia_ttl: float = 86400.0,
        default_ttl: float = 3600.0,
        max_ttl: float = 7 * 86400.0,
        cache_entries: int = 4096,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.crl_max_bytes = crl_max_bytes
        self.aia_ttl = aia_ttl
        self.default_ttl = default_ttl  # when a response has no nextUpdate
        self.max_ttl = max_ttl
        self._cache = _Cache(cache_entries)
        self._session: aiohttp.ClientSession | None = None
        self._inflight: dict[object, asyncio.Future[Any]] = {}
        self.requests = 0  # HTTP requests made (cache misses), for logs and tests

    async def _once(self, key: object, fetch: Callable[[], Awaitable[T]]) -> T:
        """Single-flight: the first caller for ``key`` starts the fetch, later ones await the same one.

        The fetch runs as its own task, shielded: a caller whose probe deadline ends stops waiting
        without cancelling the download the others (and the cache) still want.
        """
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._inflight[key] = task
            task.add_done_callback(lambda t: (self._inflight.pop(key, None), t.cancelled() or t.exception()))
        return await asyncio.shield(task)

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            import aiohttp

            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "tls-exporter"},
            )
        return self._session

    async def _request(self, method: str, url: str, *, data: bytes | None = None, limit: int) -> bytes:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme.lower() != "http" or not parsed.hostname:
            raise FetchError(f"only http:// URLs are fetched: {url}")
        headers = {"Content-Type": "application/ocsp-request"} if data is not None else {}
        self.requests += 1
        import aiohttp

        try:
            async with self._http().request(method, url, data=data, headers=headers, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise FetchError(f"{url}: HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > limit:
                    raise FetchError(f"{url}: {resp.content_length} bytes, over the {limit} byte cap")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > limit:
                        raise FetchError(f"{url}: over the {limit} byte cap")
                return bytes(body)
        except FetchError:
            raise
        except TimeoutError:
            raise FetchError(f"{url}: timed out after {self.timeout:g}s") from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise FetchError(f"{url}: {type(e).__name__}: {e}") from None

    def _ttl_until(self, next_update: dt.datetime | None, now: float, max_age: float | None) -> float:
        cap = now + (self.max_ttl if max_age is None else min(max_age, self.max_ttl))
        if next_update is None:
            return min(now + self.default_ttl, cap)
        return min(next_update.timestamp(), cap)

    async def ocsp(self, url: str, request_der: bytes, *, now: float, max_age: float | None = None) -> bytes:
        """The responder's answer (DER) to ``request_der``: GET when short (RFC 6960 A.1), else POST."""
        key = ("ocsp", url, request_der)
        hit = self._cache.get(key, now)
        if isinstance(hit, bytes):
            return hit
        return await self._once(key, lambda: self._ocsp(key, url, request_der, now, max_age))

    async def _ocsp(self, key: object, url: str, request_der: bytes, now: float, max_age: float | None) -> bytes:
        encoded = urllib.parse.quote(base64.b64encode(request_der).decode(), safe="")
        if len(encoded) < 255:
            body = await self._request("GET", url.rstrip("/") + "/" + encoded, limit=self.max_bytes)
        else:
            body = await self._request("POST", url, data=request_der, limit=self.max_bytes)
        try:
            resp = ocsp.load_der_ocsp_response(body)
        except ValueError as e:
            raise FetchError(f"{url}: not an OCSP response: {e}") from None
        if resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
            self._cache.put(key, body, self._ttl_until(resp.next_update_utc, now, max_age), now)
        return body

    async def crl(self, url: str, *, now: float, max_age: float | None = None) -> x509.CertificateRevocationList:
        """The CRL at ``url``, parsed once per download."""
        key = ("crl", url)
        hit = self._cache.get(key, now)
        if isinstance(hit, x509.CertificateRevocationList):
            return hit
        return await self._once(key, lambda: self._crl(key, url, now, max_age))

    async def _crl(self, key: object, url: str, now: float, max_age: float | None) -> x509.CertificateRevocationList:
        body = await self._request("GET", url, limit=self.crl_max_bytes)
        try:
            crl = await asyncio.to_thread(load_crl, body)
        except ValueError as e:
            raise FetchError(f"{url}: not a CRL: {e}") from None
        self._cache.put(key, crl, self._ttl_until(crl.next_update_utc, now, max_age), now)
        return crl

    async def ca_issuers(self, url: str, *, now: float) -> tuple[x509.Certificate, ...]:
        """The certificates at an AIA caIssuers URL: DER, PKCS#7 (.p7c) or PEM."""
        key = ("aia", url)
        hit = self._cache.get(key, now)
        if isinstance(hit, tuple):
            return hit
        return await self._once(key, lambda: self._ca_issuers(key, url, now))

    async def _ca_issuers(self, key: object, url: str, now: float) -> tuple[x509.Certificate, ...]:
        body = await self._request("GET", url, limit=self.max_bytes)
        certs = parse_certificates(body)
        if not certs:
            raise FetchError(f"{url}: no certificate in the answer")
        self._cache.put(key, certs, now + self.aia_ttl, now)
        return certs


def parse_certificates(data: bytes) -> tuple[x509.Certificate, ...]:
    try:
        if data[:1] == b"\x30":
            try:
                return (x509.load_der_x509_certificate(data),)
            except ValueError:
                return tuple(pkcs7.load_der_pkcs7_certificates(data))
        if b"-----BEGIN PKCS7-----" in data:
            return tuple(pkcs7.load_pem_pkcs7_certificates(data))
        return tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        return ()
