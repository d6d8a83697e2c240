"""A raw ClientHello prober: which protocol versions a server accepts, without the local OpenSSL.

One probe sends one ClientHello for one version and reads only the answer: a ServerHello (and,
below TLS 1.3, the clear-text messages up to ServerHelloDone: the CertificateStatus staple and
the ServerKeyExchange parameters) or an alert. No key is ever computed, so SSLv3, RC4 and 3DES
are seen even though this machine's OpenSSL cannot speak them.

A version counts as accepted only when the server answers with that very version (a lower
ServerHello is a downgrade: not accepted). An alert, a close or garbage means refused; a timeout
or a connection error means unknown (``accepted is None``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from exporter.support.deadline import Deadline

Opener = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

VERSIONS: dict[str, int] = {"SSLv3": 0x0300, "TLSv1.0": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_NAMES = {v: k for k, v in VERSIONS.items()}
_HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
_MAX_HANDSHAKE = 256 * 1024  # bytes read at most per probe (certificates can be long)
GROUP_BITS = {
    0x0017: ("ECDHE", 256),
    0x0018: ("ECDHE", 384),
    0x0019: ("ECDHE", 521),
    0x001D: ("ECDHE", 253),
    0x001E: ("ECDHE", 448),
}


@dataclass(frozen=True, slots=True)
class Suite:
    name: str  # OpenSSL-style name
    bits: int  # symmetric strength as SSL Labs counts it (3DES: 168)
    kx: str  # ECDHE | DHE | RSA | TLS13


# Our own small table of the suites we offer (IANA ids), strongest first.
SUITES: dict[int, Suite] = {
    0x1301: Suite("TLS_AES_128_GCM_SHA256", 128, "TLS13"),
    0x1302: Suite("TLS_AES_256_GCM_SHA384", 256, "TLS13"),
    0x1303: Suite("TLS_CHACHA20_POLY1305_SHA256", 256, "TLS13"),
    0xC02C: Suite("ECDHE-ECDSA-AES256-GCM-SHA384", 256, "ECDHE"),
    0xC030: Suite("ECDHE-RSA-AES256-GCM-SHA384", 256, "ECDHE"),
    0xCCA9: Suite("ECDHE-ECDSA-CHACHA20-POLY1305", 256, "ECDHE"),
    0xCCA8: Suite("ECDHE-RSA-CHACHA20-POLY1305", 256, "ECDHE"),
    0xC02B: Suite("ECDHE-ECDSA-AES128-GCM-SHA256", 128, "ECDHE"),
    0xC02F: Suite("ECDHE-RSA-AES128-GCM-SHA256", 128, "ECDHE"),
    0x009F: Suite("DHE-RSA-AES256-GCM-SHA384", 256, "DHE"),
    0x009E: Suite("DHE-RSA-AES128-GCM-SHA256", 128, "DHE"),
    0xC024: Suite("ECDHE-ECDSA-AES256-SHA384", 256, "ECDHE"),
    0xC028: Suite("ECDHE-RSA-AES256-SHA384", 256, "ECDHE"),
    0xC023: Suite("ECDHE-ECDSA-AES128-SHA256", 128, "ECDHE"),
    0xC027: Suite("ECDHE-RSA-AES128-SHA256", 128, "ECDHE"),
    0xC00A: Suite("ECDHE-ECDSA-AES256-SHA", 256, "ECDHE"),
    0xC014: Suite("ECDHE-RSA-AES256-SHA", 256, "ECDHE"),
    0xC009: Suite("ECDHE-ECDSA-AES128-SHA", 128, "ECDHE"),
    0xC013: Suite("ECDHE-RSA-AES128-SHA", 128, "ECDHE"),
    0x0039: Suite("DHE-RSA-AES256-SHA", 256, "DHE"),
    0x0033: Suite("DHE-RSA-AES128-SHA", 128, "DHE"),
    0x009D: Suite("AES256-GCM-SHA384", 256, "RSA"),
    0x009C: Suite("AES128-GCM-SHA256", 128, "RSA"),
    0x0035: Suite("AES256-SHA", 256, "RSA"),
    0x002F: Suite("AES128-SHA", 128, "RSA"),
    0xC012: Suite("ECDHE-RSA-DES-CBC3-SHA", 168, "ECDHE"),
    0x000A: Suite("DES-CBC3-SHA", 168, "RSA"),
    0xC011: Suite("ECDHE-RSA-RC4-SHA", 128, "ECDHE"),
    0x0005: Suite("RC4-SHA", 128, "RSA"),
}
TLS13_OFFER = (0x1301, 0x1302, 0x1303)
LEGACY_OFFER = tuple(s for s in SUITES if s not in TLS13_OFFER)


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloResult:
    version: str  # the version offered
    accepted: bool | None  # None: no answer (timeout, connection error)
    server_version: str | None = None  # what the ServerHello said
    suite: int | None = None
    alert: int | None = None  # the alert description, when refused by alert
    staple: bytes | None = None  # the OCSP response in CertificateStatus (TLS <= 1.2 with status_request)
    key_exchange: tuple[str, int] | None = None  # ("ECDHE", 253), ("DHE", 2048) from ServerKeyExchange
    detail: str = ""

    @property
    def suite_info(self) -> Suite | None:
        return SUITES.get(self.suite) if self.suite is not None else None


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def _u16list(values: Sequence[int]) -> bytes:
    data = b"".join(struct.pack("!H", v) for v in values)
    return struct.pack("!H", len(data)) + data


def client_hello(version: str, server_name: str | None = None, *, status_request: bool = False) -> bytes:
    """The bytes of one ClientHello record offering exactly ``version``."""
    v = VERSIONS[version]
    exts = b""
    if v >= 0x0301:
        if server_name and not _is_ip(server_name):
            host = server_name.rstrip(".").encode("idna")
            entry = b"\x00" + struct.pack("!H", len(host)) + host
            exts += _ext(0x0000, struct.pack("!H", len(entry)) + entry)  # server_name
        exts += _ext(0x000A, _u16list([0x001D, 0x0017, 0x0018, 0x0019]))  # supported_groups
        exts += _ext(0x000B, b"\x01\x00")  # ec_point_formats: uncompressed
        sigalgs = [0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201]
        exts += _ext(0x000D, _u16list(sigalgs))  # signature_algorithms
        exts += _ext(0xFF01, b"\x00")  # renegotiation_info
        if status_request:
            exts += _ext(0x0005, b"\x01\x00\x00\x00\x00")  # status_request: OCSP, no ids, no extensions
    if v == 0x0304:
        exts += _ext(0x002B, b"\x02\x03\x04")  # supported_versions: TLS 1.3 only
        share = struct.pack("!HH", 0x001D, 32) + os.urandom(32)  # any 32 bytes are an X25519 point
        exts += _ext(0x0033, struct.pack("!H", len(share)) + share)  # key_share
        exts += _ext(0x002D, b"\x01\x01")  # psk_key_exchange_modes: psk_dhe_ke
    suites = TLS13_OFFER if v == 0x0304 else (*LEGACY_OFFER, 0x00FF)
    session_id = os.urandom(32) if v == 0x0304 else b""
    body = (
        struct.pack("!H", min(v, 0x0303))
        + os.urandom(32)
        + bytes([len(session_id)])
        + session_id
        + _u16list(suites)
        + b"\x01\x00"  # compression: null only
        + (struct.pack("!H", len(exts)) + exts if exts else b"")
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 0x16, 0x0300 if v == 0x0300 else 0x0301, len(handshake)) + handshake


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class _Refused(Exception):
    pass


async def _records(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readexactly(5)
    kind, _, length = struct.unpack("!BHH", header)
    if kind not in (0x14, 0x15, 0x16, 0x17) or length > 18432:
        raise _Refused(f"not a TLS record (first bytes {header.hex()})")
    return kind, await reader.readexactly(length)


def _server_hello(body: bytes) -> tuple[int, int, bool]:
    """(version, suite, is_hello_retry_request) of a ServerHello body."""
    version = struct.unpack("!H", body[0:2])[0]
    random = body[2:34]
    sid_len = body[34]
    pos = 35 + sid_len
    suite = struct.unpack("!H", body[pos : pos + 2])[0]
    pos += 3
    if pos + 2 <= len(body):
        ext_len = struct.unpack("!H", body[pos : pos + 2])[0]
        pos += 2
        end = min(len(body), pos + ext_len)
        while pos + 4 <= end:
            kind, size = struct.unpack("!HH", body[pos : pos + 4])
            if kind == 0x002B and size == 2:
                version = struct.unpack("!H", body[pos + 4 : pos + 6])[0]
            pos += 4 + size
    return version, suite, random == _HRR_RANDOM


def _key_exchange(body: bytes, suite: int | None) -> tuple[str, int] | None:
    info = SUITES.get(suite) if suite is not None else None
    if len(body) >= 3 and body[0] == 3 and (info is None or info.kx == "ECDHE"):
        group = struct.unpack("!H", body[1:3])[0]
        return GROUP_BITS.get(group, ("ECDHE", 0))
    if len(body) >= 2 and (info is None or info.kx == "DHE"):
        p_len = struct.unpack("!H", body[0:2])[0]
        p = body[2 : 2 + p_len].lstrip(b"\x00")
        return "DHE", len(p) * 8
    return None


async def _read_answer(reader: asyncio.StreamReader, version: str, *, want_all: bool) -> HelloResult:
    offered = VERSIONS[version]
    buffer = b""
    total = 0
    result: HelloResult | None = None
    staple: bytes | None = None
    kx: tuple[str, int] | None = None
    while True:
        kind, fragment = await _records(reader)
        total += len(fragment)
        if kind == 0x15:
            if result is not None:  # an alert after our ServerHello: keep what we saw
                return result
            desc = fragment[1] if len(fragment) >= 2 else -1
            return HelloResult(version=version, accepted=False, alert=desc, detail=f"alert {desc}")
        if kind != 0x16:
            if result is not None:
                return _with(result, staple, kx)
            raise _Refused(f"unexpected record type {kind}")
        buffer += fragment
        while len(buffer) >= 4:
            msg_type = buffer[0]
            length = int.from_bytes(buffer[1:4], "big")
            if len(buffer) < 4 + length:
                break
            body, buffer = buffer[4 : 4 + length], buffer[4 + length :]
            if msg_type == 2 and result is None:
                server_version, suite, hrr = _server_hello(body)
                name = _NAMES.get(server_version, f"0x{server_version:04x}")
                accepted = server_version == offered
                result = HelloResult(
                    version=version,
                    accepted=accepted,
                    server_version=name,
                    suite=suite,
                    detail="hello retry request" if hrr else ("" if accepted else f"downgraded to {name}"),
                )
                if not accepted or offered == 0x0304 or not want_all:
                    return result
            elif msg_type == 22 and len(body) >= 4 and body[0] == 1:  # CertificateStatus, ocsp
                staple = body[4 : 4 + int.from_bytes(body[1:4], "big")]
            elif msg_type == 12 and result is not None:
                kx = _key_exchange(body, result.suite)
            elif msg_type == 14 and result is not None:  # ServerHelloDone
                return _with(result, staple, kx)
        if total > _MAX_HANDSHAKE:
            if result is not None:
                return _with(result, staple, kx)
            raise _Refused("no ServerHello in the first 256 KiB")


def _with(result: HelloResult, staple: bytes | None, kx: tuple[str, int] | None) -> HelloResult:
    return HelloResult(
        version=result.version,
        accepted=result.accepted,
        server_version=result.server_version,
        suite=result.suite,
        staple=staple or None,
        key_exchange=kx,
        detail=result.detail,
    )


async def probe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    version: str,
    server_name: str | None,
    *,
    timeout: float = 3.0,
    status_request: bool = False,
) -> HelloResult:
    """Send one ClientHello on an open connection and read the answer; closes the connection."""
    try:
        writer.write(client_hello(version, server_name, status_request=status_request))
        await asyncio.wait_for(writer.drain(), timeout)
        return await asyncio.wait_for(_read_answer(reader, version, want_all=version != "TLSv1.3"), timeout)
    except _Refused as e:
        return HelloResult(version=version, accepted=False, detail=str(e))
    except asyncio.IncompleteReadError:
        return HelloResult(version=version, accepted=False, detail="connection closed")
    except TimeoutError:
        return HelloResult(version=version, accepted=None, detail=f"no answer within {timeout:g}s")
    except ConnectionResetError:
        return HelloResult(version=version, accepted=False, detail="connection reset")
    except (OSError, ValueError, IndexError, struct.error) as e:
        return HelloResult(version=version, accepted=None, detail=f"{type(e).__name__}: {e}")
    finally:
        await close(writer)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def scan(
    opener: Opener,
    server_name: str | None,
    *,
    versions: Sequence[str] = tuple(VERSIONS),
    timeout: float = 3.0,
    deadline: Deadline | None = None,
) -> tuple[HelloResult, ...]:
    """One connection and one ClientHello per version, one after the other (some servers serve one
    connection at a time). The TLS 1.2 hello asks for an OCSP staple.

    ``timeout`` bounds each connection and each hello; ``deadline`` the whole scan (default: both
    for every version), so a server that is slow at every step costs the scan's budget, no more.
    A version the deadline leaves no time for is unknown (``accepted=None``)."""
    deadline = deadline or Deadline(2 * timeout * len(versions))
    results: list[HelloResult] = []
    for version in versions:
        if deadline.expired:
            results.append(HelloResult(version=version, accepted=None, detail="scan deadline passed"))
            continue
        try:
            async with asyncio.timeout(deadline.left(timeout)):
                reader, writer = await opener()
        except TimeoutError:
            results.append(HelloResult(version=version, accepted=None, detail="connect timeout"))
            continue
        except Exception as e:  # the opener is the caller's: any failure is "unknown" here
            results.append(HelloResult(version=version, accepted=None, detail=f"connect: {type(e).__name__}: {e}"))
            continue
        results.append(
            await probe(
                reader,
                writer,
                version,
                server_name,
                timeout=timeout if deadline.left() >= timeout else max(deadline.left(), 0.001),
                status_request=version == "TLSv1.2",
            )
        )
    return tuple(results)
