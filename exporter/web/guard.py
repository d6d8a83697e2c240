"""What a web config asks of every request: basic authentication, and extra response headers.

bcrypt is slow by design (tens of milliseconds at cost 10), so checks run in a worker thread and
successful ones are remembered (by a SHA-256 of user, password and hash, never the password
itself), as exporter-toolkit does: a scraper sending the same credentials every 15 s costs one
bcrypt check, not one per scrape. An unknown user is checked against a dummy hash so that the
answer takes as long as for a known one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Middleware

from exporter.web.webconfig import WebConfig

REALM = "tls-exporter"
CACHE_SIZE = 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BasicAuth:
    def __init__(self, users: dict[str, bytes] | None = None, *, cache_size: int = CACHE_SIZE) -> None:
        self.users = dict(users or {})
        self.cache_size = cache_size
        self._good: OrderedDict[bytes, None] = OrderedDict()  # least recently used first
        self._dummy: bytes | None = None
        self.bcrypt_checks = 0  # how many slow checks ran (the cache's effect, for tests and logs)

    async def allowed(self, header: str | None) -> bool:
        credentials = _credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        digest = self.users.get(user)
        key = hashlib.sha256(b"\0".join((user.encode(), password, digest or b""))).digest()
        if digest is not None and key in self._good:
            self._good.move_to_end(key)
            return True
        ok = await asyncio.to_thread(self._check, password, digest)
        if ok and digest is not None:
            self._good[key] = None
            if len(self._good) > self.cache_size:
                self._good.popitem(last=False)
        return ok and digest is not None

    def _check(self, password: bytes, digest: bytes | None) -> bool:
        self.bcrypt_checks += 1
        if digest is None:
            if self._dummy is None:
                self._dummy = bcrypt.hashpw(b"tls-exporter dummy", bcrypt.gensalt(10))
            bcrypt.checkpw(password, self._dummy)
            return False
        try:
            return bcrypt.checkpw(password, digest)
        except ValueError:  # a hash that passed validation but bcrypt refuses: deny
            return False


def _credentials(header: str | None) -> tuple[str, bytes] | None:
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode(), password
    except UnicodeDecodeError:
        return None


def unauthorized() -> web.Response:
    return web.Response(
        status=401,
        text="Unauthorized\n",
        headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
    )


def auth_middleware(auth: BasicAuth) -> Middleware:
    """An aiohttp middleware that answers 401 unless the request carries valid credentials."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not await auth.allowed(request.headers.get("Authorization")):
            return unauthorized()
        return await handler(request)

    return middleware


def install(app: web.Application, config: WebConfig) -> BasicAuth | None:
    """Guard every route of ``app`` as ``config`` says; call before the app starts."""
    auth: BasicAuth | None = None
    if config.users:
        auth = BasicAuth(dict(config.users))
        # First, so that nothing else runs for a request that is refused.
        app.middlewares.insert(0, auth_middleware(auth))
    if config.headers:
        headers = config.headers

        # on_response_prepare, not a middleware: /metrics streams its response, whose headers are
        # sent inside the handler; this hook runs for every response just before its headers go.
        async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
            for name, value in headers:
                response.headers[name] = value

        app.on_response_prepare.append(add_headers)
    return auth
