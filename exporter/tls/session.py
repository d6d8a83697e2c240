"""Connect, run the STARTTLS dialogue if any, shake hands, and report what was served.

Every failure leaves as a ``ProbeError`` whose outcome says why; the deadline covers the
whole sequence, so a silent or endless server costs one bounded probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time

from exporter.errors import NotTLS, Outcome, ProbeError
from exporter.results import Observation
from exporter.starttls import NEGOTIATORS
from exporter.starttls.base import discard_buffered
from exporter.steplog import StepLog
from exporter.tls.chain import peer_chain_der
from exporter.tls.context import probe_context

MAX_HTTP_HEADER_BYTES = 16 * 1024

# OpenSSL reasons that mean "the peer did not answer with TLS at all".
_NOT_TLS_REASONS = (
    "WRONG_VERSION_NUMBER",
    "PACKET_LENGTH_TOO_LONG",
    "UNKNOWN_PROTOCOL",
    "RECORD_LAYER_FAILURE",
    "HTTP_REQUEST",
    "HTTPS_PROXY_REQUEST",
    "WRONG_SSL_VERSION",
    "RECORD_TOO_LARGE",
)


def format_address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def classify_ssl_error(exc: ssl.SSLError) -> ProbeError:
    reason = str(getattr(exc, "reason", "") or "")
    text = f"{reason} {exc}".upper()
    if any(r in text for r in _NOT_TLS_REASONS):
        return NotTLS(f"not a TLS server: {exc}")
    return ProbeError(f"handshake failed: {exc}", Outcome.HANDSHAKE_FAILED)


class Deadline:
    def __init__(self, timeout: float) -> None:
        self.end = time.monotonic() + timeout

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_plain(ip: str, port: int, deadline: Deadline, log: StepLog) -> Stream:
    address = format_address(ip, port)
    log(f"connecting to {address}")
    try:
        return await asyncio.wait_for(asyncio.open_connection(ip, port), deadline.left())
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
    log: StepLog,
) -> None:
    """Run the plaintext dialogue that precedes TLS (nothing for implicit TLS)."""
    if starttls is None:
        return
    log(f"{starttls} dialogue: asking for STARTTLS")
    try:
        await asyncio.wait_for(NEGOTIATORS[starttls](reader, writer, server_name), deadline.left())
        await asyncio.wait_for(writer.drain(), deadline.left())
    except TimeoutError:
        raise ProbeError(f"{starttls} dialogue timed out (server silent)", Outcome.HANDSHAKE_TIMEOUT) from None
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        raise ProbeError(f"connection lost during the {starttls} dialogue: {exc}", Outcome.NETWORK_ERROR) from None
    dropped = discard_buffered(reader)
    if dropped:
        log(f"discarded {dropped} bytes the server sent before the TLS handshake")
    log(f"{starttls} dialogue: server agreed to start TLS")


async def open_for_hello(ip: str, port: int, *, starttls: str | None, server_name: str, timeout: float) -> Stream:
    """A fresh connection ready for a ClientHello: used by posture scans."""
    deadline, log = Deadline(timeout), StepLog()
    reader, writer = await open_plain(ip, port, deadline, log)
    try:
        await negotiate(reader, writer, starttls=starttls, server_name=server_name, deadline=deadline, log=log)
    except BaseException:
        await _close(writer)
        raise
    return reader, writer


async def _read_hsts(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str, deadline: Deadline, log: StepLog
) -> str | None:
    """One HEAD request for the Strict-Transport-Security header; any failure means "none seen"."""
    request = f"HEAD / HTTP/1.1\r\nHost: {server_name}\r\nUser-Agent: tls-exporter\r\nConnection: close\r\n\r\n"
    writer.write(request.encode())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), min(deadline.left(), 3.0))
    except (
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        ConnectionError,
        ssl.SSLError,
        TimeoutError,
        ValueError,
    ):
        log("no HTTP response headers read (HSTS unknown)")
        return None
    for line in head[:MAX_HTTP_HEADER_BYTES].decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "strict-transport-security":
            log(f"HSTS: {value.strip()}")
            return value.strip()
    log("no HSTS header")
    return None


async def handshake(
    ip: str, port: int, *, server_name: str, starttls: str | None, timeout: float, log: StepLog, read_hsts: bool = False
) -> Observation:
    """Probe one address: connect, STARTTLS if any, TLS handshake, capture the served chain."""
    deadline = Deadline(timeout)
    reader, writer = await open_plain(ip, port, deadline, log)
    try:
        await negotiate(reader, writer, starttls=starttls, server_name=server_name, deadline=deadline, log=log)
        sni = server_name or None
        log(f"TLS handshake (SNI {sni or 'none'})")
        try:
            await asyncio.wait_for(writer.start_tls(probe_context(), server_hostname=sni), deadline.left())
        except TimeoutError:
            raise ProbeError("TLS handshake timed out", Outcome.HANDSHAKE_TIMEOUT) from None
        except ssl.SSLError as exc:
            raise classify_ssl_error(exc) from None
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            raise ProbeError(
                f"connection lost during the TLS handshake: {exc or type(exc).__name__}", Outcome.HANDSHAKE_FAILED
            ) from None
        ssl_object = writer.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject):
            raise ProbeError("no TLS session after the handshake", Outcome.HANDSHAKE_FAILED)
        chain = peer_chain_der(ssl_object)
        cipher = ssl_object.cipher() or ("", "", 0)
        version = ssl_object.version() or ""
        log(f"negotiated {version} {cipher[0]}; server sent {len(chain)} certificate(s)")
        if not chain:
            raise ProbeError("the server sent no certificate", Outcome.NO_CERTIFICATE)
        hsts = await _read_hsts(reader, writer, server_name, deadline, log) if read_hsts else None
        return Observation(
            address=format_address(ip, port),
            version=version,
            cipher=cipher[0],
            cipher_bits=int(cipher[2] or 0),
            chain_der=tuple(chain),
            hsts=hsts,
        )
    finally:
        await _close(writer)
