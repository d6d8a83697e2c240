"""HTTP fetches for revocation and chain completion: OCSP, CRLs, AIA caIssuers.

One aiohttp session, plain ``http://`` only (these URLs are http by design; following https
would need the very trust being judged), a timeout and a size cap on every fetch, and caches:
OCSP responses and CRLs until their nextUpdate (at most the caller's ``max_age``, the profile's
``revocation_interval``), AIA certificates for ``aia_ttl``. One download per URL at a time
(single-flight): probes that need the same answer wait for the one request in flight. Every URL
passes the fetch policy (``exporter.support.netpolicy``) on its name and on every address it resolves to,
and the connection goes to an address so checked; redirects are never followed. The cache is
bounded in bytes (least recently used out first). A CRL is
parsed once per download, in a worker thread (a large CRL takes a while), and cached parsed.
Failures raise ``FetchError`` and are never cached. Times are unix seconds passed in by the caller.

Proxies: inside ``fetch_via(proxy)`` (the pipeline wraps a profile's assessment in it) requests go
through that proxy (``exporter.judge.proxyfetch``); without one, the environment's ``HTTP_PROXY`` (else
``HTTPS_PROXY``, else ``ALL_PROXY``) and ``NO_PROXY`` apply, as read when the Fetcher was made.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import datetime as dt
import os
import socket
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography import x509
from cryptography.x509 import ocsp

from exporter.judge.proxyfetch import ProxyFetchError
from exporter.judge.proxyfetch import request as proxied_request
from exporter.support.netpolicy import PROBE_SCOPE, FetchPolicy, parse_ip
from exporter.support.proxyurl import ProxyURL, bypass, env_proxy

if TYPE_CHECKING:  # aiohttp is imported on the first fetch: `check` of an endpoint without AIA/OCSP never needs it
    import aiohttp

MiB = 1024 * 1024
T = TypeVar("T")


class FetchError(Exception):
    """A fetch failed: bad URL, network, HTTP status, size, or content."""


# The profile's proxy_url for the fetches of the assessment running in this task (None: environment).
_VIA: contextvars.ContextVar[ProxyURL | None] = contextvars.ContextVar("fetch_via", default=None)


@contextlib.contextmanager
def fetch_via(proxy: ProxyURL | None) -> Iterator[None]:
    token = _VIA.set(proxy)
    try:
        yield
    finally:
        _VIA.reset(token)


class FetchDenied(FetchError):
    """The fetch policy (`fetch.allow`, `fetch.deny`, and for /probe `probe.allow`) refuses the host."""


@dataclass(slots=True)
class _Entry:
    expires: float
    value: object
    size: int


class _Cache:
    """Answers until they expire, at most ``max_bytes`` of them (sizes as downloaded), least
    recently used out first; one answer over ``max_item`` is not kept at all."""

    def __init__(self, max_bytes: int, max_item: int) -> None:
        self._data: OrderedDict[object, _Entry] = OrderedDict()
        self.max_bytes, self.max_item = max_bytes, max_item
        self.bytes = 0

    def get(self, key: object, now: float) -> object | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return entry.value

    def put(self, key: object, value: object, size: int, expires: float, now: float) -> None:
        if expires <= now or size > self.max_item:
            return
        if key in self._data:
            self._drop(key)
        while self._data and self.bytes + size > self.max_bytes:
            self._drop(next(iter(self._data)))
        self._data[key] = _Entry(expires, value, size)
        self.bytes += size

    def _drop(self, key: object) -> None:
        self.bytes -= self._data.pop(key).size

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._data)


class _PolicyResolver:
    """Resolves a fetch's host and refuses it unless every address passes the fetch policy: the
    connection then goes to one of the addresses just checked, never to a second lookup's.
    (aiohttp's resolver interface, by duck typing: aiohttp is imported on the first fetch only.)"""

    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[Any]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        except UnicodeError as exc:
            raise FetchError(f"cannot resolve {host}: {exc}") from None
        found = [(info[0], str(info[4][0])) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
        if not found:
            raise OSError(f"{host} has no A or AAAA record")
        why = self._fetcher.effective_policy().refuses(host, [ip for _, ip in found])
        if why is not None:
            raise FetchDenied(f"not fetched: {why}")
        return [
            {"hostname": host, "host": ip, "port": port, "family": fam, "proto": 0, "flags": socket.AI_NUMERICHOST}
            for fam, ip in found
        ]

    async def close(self) -> None:
        return None


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
        cache_bytes: int = 64 * MiB,
        cache_item_bytes: int = 8 * MiB,
        policy: FetchPolicy | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.crl_max_bytes = crl_max_bytes
        self.aia_ttl = aia_ttl
        self.default_ttl = default_ttl  # when a response has no nextUpdate
        self.max_ttl = max_ttl
        self._cache = _Cache(cache_bytes, cache_item_bytes)
        self._policy = policy or FetchPolicy()
        self._session: aiohttp.ClientSession | None = None
        self._inflight: dict[object, asyncio.Future[Any]] = {}
        self.requests = 0  # HTTP requests made (cache misses), for logs and tests
        self.env_proxy = env_proxy(os.environ)

    @property
    def policy(self) -> FetchPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: FetchPolicy) -> None:
        if policy != self._policy:
            self._cache.clear()  # answers fetched under the old policy may come from hosts now denied
        self._policy = policy

    def effective_policy(self) -> FetchPolicy:
        scope = PROBE_SCOPE.get()
        return self._policy if scope is None else FetchPolicy(self._policy.allow, self._policy.deny, scope)

    async def _admit(self, url: str) -> None:
        """Refuse, before any cache or download, a URL the policy in effect denies.

        An IP literal is judged here in full (aiohttp does not resolve it); a name by its globs,
        and for /probe (whose ranges must hold for every address, cached answer or not) by its
        addresses too. The addresses of a download are checked again by ``_PolicyResolver``."""
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme.lower() != "http" or not parsed.hostname:
            raise FetchError(f"only http:// URLs are fetched: {url}")
        host = parsed.hostname
        policy = self.effective_policy()
        addresses: list[str] = []
        if parse_ip(host) is None and policy.also is not None and policy.also.networks:
            try:
                resolved = await _PolicyResolver(self).resolve(host, parsed.port or 80, socket.AF_UNSPEC)
            except OSError as exc:
                raise FetchError(f"{url}: cannot resolve {host}: {exc}") from None
            addresses = [str(r["host"]) for r in resolved]
        why = policy.refuses(host, addresses)
        if why is not None:
            raise FetchDenied(f"{url}: not fetched: {why}")

    async def _once(self, key: object, fetch: Callable[[], Awaitable[T]]) -> T:
        """Single-flight: the first caller for ``key`` starts the fetch, later ones await the same one.

        The fetch runs as its own task, shielded: a caller whose probe deadline ends stops waiting
        without cancelling the download the others (and the cache) still want.
        """
        # A /probe download is checked against its own probe.allow; one through a profile's proxy is
        # another download than a direct one.
        key = (key, PROBE_SCOPE.get(), _VIA.get())
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
        import aiohttp

        if self._session is None or self._session.closed:
            # No DNS cache: every connection's addresses pass the policy when it is made.
            resolver: Any = _PolicyResolver(self)  # duck-typed AbstractResolver
            connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, limit=64)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "tls-exporter"},
            )
        return self._session

    async def _request(self, method: str, url: str, *, data: bytes | None = None, limit: int) -> bytes:
        import aiohttp

        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme.lower() != "http" or not parsed.hostname:
            raise FetchError(f"only http:// URLs are fetched: {url}")
        headers = {"Content-Type": "application/ocsp-request"} if data is not None else {}
        self.requests += 1
        proxy = self._proxy_for(url, parsed.hostname)
        if proxy is not None:
            return await self._proxied(proxy, method, url, data, headers, limit)
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
        except FetchDenied as e:
            raise FetchDenied(f"{url}: {e}") from None  # raised by the resolver, which has no URL
        except FetchError:
            raise
        except TimeoutError:
            raise FetchError(f"{url}: timed out after {self.timeout:g}s") from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise FetchError(f"{url}: {type(e).__name__}: {e}") from None

    def _proxy_for(self, url: str, host: str) -> ProxyURL | None:
        """The profile's proxy, else the environment's unless NO_PROXY names ``host``."""
        via, env = _VIA.get(), self.env_proxy
        if via is not None:
            return via
        if env.error and not bypass(host, env.no_proxy):
            raise FetchError(f"{url}: {env.error}")  # never silently direct when a proxy was meant
        return env.for_host(host)

    async def _proxied(
        self, proxy: ProxyURL, method: str, url: str, data: bytes | None, headers: dict[str, str], limit: int
    ) -> bytes:
        try:
            status, body = await proxied_request(
                proxy, method, url, data=data, headers=headers, limit=limit, timeout=self.timeout
            )
        except ProxyFetchError as e:
            raise FetchError(f"{url}: {e}") from None
        if status != 200:
            raise FetchError(f"{url}: HTTP {status} (through the proxy {proxy})")
        return body

    def _ttl_until(self, next_update: dt.datetime | None, now: float, max_age: float | None) -> float:
        cap = now + (self.max_ttl if max_age is None else min(max_age, self.max_ttl))
        if next_update is None:
            return min(now + self.default_ttl, cap)
        return min(next_update.timestamp(), cap)

    async def ocsp(self, url: str, request_der: bytes, *, now: float, max_age: float | None = None) -> bytes:
        """The responder's answer (DER) to ``request_der``: GET when short (RFC 6960 A.1), else POST."""
        await self._admit(url)
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
            self._cache.put(key, body, len(body), self._ttl_until(resp.next_update_utc, now, max_age), now)
        return body

    async def crl(self, url: str, *, now: float, max_age: float | None = None) -> x509.CertificateRevocationList:
        """The CRL at ``url``, parsed once per download."""
        await self._admit(url)
        key = ("crl", url)
        hit = self._cache.get(key, now)
        if isinstance(hit, x509.CertificateRevocationList):
            return hit
        return await self._once(key, lambda: self._crl(key, url, now, max_age))

    async def _crl(self, key: object, url: str, now: float, max_age: float | None) -> x509.CertificateRevocationList:
        from exporter.certs.revocation import load_crl  # (imported at first use: `check` starts faster)

        body = await self._request("GET", url, limit=self.crl_max_bytes)
        try:
            crl = await asyncio.to_thread(load_crl, body)
        except ValueError as e:
            raise FetchError(f"{url}: not a CRL: {e}") from None
        self._cache.put(key, crl, len(body), self._ttl_until(crl.next_update_utc, now, max_age), now)
        return crl

    async def ca_issuers(self, url: str, *, now: float) -> tuple[x509.Certificate, ...]:
        """The certificates at an AIA caIssuers URL: DER, PKCS#7 (.p7c) or PEM."""
        await self._admit(url)
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
        self._cache.put(key, certs, len(body), now + self.aia_ttl, now)
        return certs


def parse_certificates(data: bytes) -> tuple[x509.Certificate, ...]:
    from cryptography.hazmat.primitives.serialization import pkcs7  # (it imports email: only for an AIA answer)

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
