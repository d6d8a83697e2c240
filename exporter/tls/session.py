"""Connect, run the STARTTLS dialogue if any, shake hands, and report what was served.

Every failure leaves as a ``ProbeError`` whose outcome says why; the probe's one ``Deadline``
covers the whole sequence, close included, so a silent or endless server costs one bounded probe.
"""

from __future__ import annotations

import asyncio

from OpenSSL.SSL import Error as SSLError

from exporter.results import Session, normalize_version
from exporter.starttls import NEGOTIATORS
from exporter.starttls.base import discard_buffered
from exporter.support.deadline import Deadline
from exporter.support.errors import NotTLS, Outcome, ProbeError
from exporter.support.proxyurl import ProxyURL
from exporter.support.steplog import StepLog
from exporter.tls.client import ClientCertificate, TLSClient, TLSFailure
from exporter.tls.proxy import open_tunnel

MAX_HTTP_HEADER_BYTES = 16 * 1024


def format_address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


CLOSE_GRACE = 1.0  # at most this long for a polite close; then (or past the deadline) the socket is dropped


async def close(writer: asyncio.StreamWriter, deadline: Deadline | None = None) -> None:
    """Close politely within what is left of the deadline, else abort: closing is part of the budget."""
    grace = CLOSE_GRACE if deadline is None else deadline.left(CLOSE_GRACE)
    if grace <= 0:
        writer.transport.abort()
        return
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), grace)
    except TimeoutError:
        writer.transport.abort()
    except Exception:  # the peer may reset while we close; the probe is already over
        writer.transport.abort()


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_plain(ip: str, port: int, deadline: Deadline, steps: StepLog, proxy: ProxyURL | None = None) -> Stream:
    """A TCP connection to ``ip`` (a name when through ``proxy``, which resolves it)."""
    address = format_address(ip, port)
    if proxy is not None:
        steps(f"connecting to {address} through the proxy {proxy}")
        try:
            return await open_tunnel(proxy, ip, port, deadline)
        except TimeoutError:
            raise ProbeError(
                f"connect to {address} through the proxy {proxy.address} timed out", Outcome.CONNECT_TIMEOUT
            ) from None
    steps(f"connecting to {address}")
    try:
        return await deadline.run(asyncio.open_connection(ip, port))
    except TimeoutError:
        raise ProbeError(f"connect to {address} timed out", Outcome.CONNECT_TIMEOUT) from None
    except ConnectionRefusedError:
        raise ProbeError(f"connection to {address} refused", Outcome.CONNECTION_REFUSED) from None
    except OSError as exc:
        raise ProbeError(f"connect to {address} failed: {exc.strerror or exc}", Outcome.NETWORK_ERROR) from None


async def negotiate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    starttls: str | None,
    server_name: str,
    deadline: Deadline,
    steps: StepLog,
) -> None:
    """Run the plaintext dialogue that precedes TLS (nothing for implicit TLS)."""
    if starttls is None:
        return
    steps(f"{starttls} dialogue: asking for STARTTLS")
    try:
        await deadline.run(NEGOTIATORS[starttls](reader, writer, server_name))
        await deadline.run(writer.drain())
    except TimeoutError:
        raise ProbeError(f"{starttls} dialogue timed out (server silent)", Outcome.HANDSHAKE_TIMEOUT) from None
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        raise ProbeError(f"connection lost during the {starttls} dialogue: {exc}", Outcome.NETWORK_ERROR) from None
    dropped = discard_buffered(reader)
    if dropped:
        steps(f"discarded {dropped} bytes the server sent before the TLS handshake")
    steps(f"{starttls} dialogue: server agreed to start TLS")


async def open_for_hello(
    ip: str, port: int, *, starttls: str | None, server_name: str, timeout: float, proxy: ProxyURL | None = None
) -> Stream:
    """A fresh connection ready for a ClientHello: used by version scans."""
    deadline, steps = Deadline(timeout), StepLog()
    reader, writer = await open_plain(ip, port, deadline, steps, proxy)
    try:
        await negotiate(reader, writer, starttls=starttls, server_name=server_name, deadline=deadline, steps=steps)
    except BaseException:
        await close(writer, deadline)
        raise
    return reader, writer


async def _read_hsts(tls: TLSClient, server_name: str, deadline: Deadline, steps: StepLog) -> str | None:
    """One HEAD request for the Strict-Transport-Security header; any failure means "none seen"."""
    if not server_name.isascii() or not server_name.isprintable() or " " in server_name:
        return None  # never reached through the config's checks; a header line must stay one line
    request = f"HEAD / HTTP/1.1\r\nHost: {server_name}\r\nUser-Agent: tls-exporter\r\nConnection: close\r\n\r\n"
    try:
        await tls.send(request.encode(), deadline)
        head = await deadline.run(tls.read_until(b"\r\n\r\n", MAX_HTTP_HEADER_BYTES, deadline), 3.0)
    except (ConnectionError, TimeoutError, OSError, SSLError, ValueError):
        steps("no HTTP response headers read (HSTS unknown)")
        return None
    if b"\r\n\r\n" not in head:
        steps("no HTTP response headers read (HSTS unknown)")
        return None
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "strict-transport-security":
            steps(f"HSTS: {value.strip()}")
            return value.strip()
    steps("no HSTS header")
    return None


async def handshake(
    ip: str,
    port: int,
    *,
    server_name: str,
    starttls: str | None,
    deadline: Deadline,
    steps: StepLog,
    read_hsts: bool = False,
    client: ClientCertificate | None = None,
    proxy: ProxyURL | None = None,
    opened: Stream | None = None,
) -> tuple[Session, tuple[bytes, ...]]:
    """Probe one address: connect, STARTTLS if any, TLS handshake; the session and the served chain.
    ``opened``: a connection to it the caller made (a discovery scan tells refused from accepted);
    it is closed here like one made here."""
    reader, writer = opened or await open_plain(ip, port, deadline, steps, proxy)
    tls: TLSClient | None = None
    try:
        await negotiate(reader, writer, starttls=starttls, server_name=server_name, deadline=deadline, steps=steps)
        sni = server_name or None
        steps(f"TLS handshake (SNI {sni or 'none'}{', client certificate' if client else ''})")
        tls = TLSClient(reader, writer, sni, client)
        try:
            await tls.handshake(deadline)
        except TimeoutError:
            raise ProbeError("TLS handshake timed out", Outcome.HANDSHAKE_TIMEOUT) from None
        except TLSFailure as exc:
            if exc.not_tls:
                raise NotTLS(f"not a TLS server: {exc.detail}") from None
            if exc.chain:
                steps(f"the handshake failed after the server sent {len(exc.chain)} certificate(s): {exc.detail}")
            raise ProbeError(
                f"handshake failed: {exc.detail}", Outcome.HANDSHAKE_FAILED, certificates=exc.chain
            ) from None
        except OSError as exc:
            raise ProbeError(
                f"connection lost during the TLS handshake: {exc or type(exc).__name__}", Outcome.HANDSHAKE_FAILED
            ) from None
        chain = tls.chain()
        cipher, bits = tls.cipher
        version = normalize_version(tls.version)  # "TLSv1.0", as in every other label
        staple = tls.staple
        steps(
            f"negotiated {version} {cipher}; server sent {len(chain)} certificate(s)"
            + (f" and a stapled OCSP response ({len(staple)} bytes)" if staple else "")
        )
        if not chain:
            raise ProbeError("the server sent no certificate", Outcome.NO_CERTIFICATE)
        hsts = await _read_hsts(tls, server_name, deadline, steps) if read_hsts else None
        session = Session(version=version, cipher=cipher, cipher_bits=bits, ocsp_staple=staple, hsts=hsts)
        return session, chain
    finally:
        if tls is not None and not deadline.expired:
            tls.close_notify()
        await close(writer, deadline)
