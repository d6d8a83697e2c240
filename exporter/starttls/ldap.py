"""LDAP: the StartTLS extended operation (RFC 4511 4.14), encoded and decoded as BER.

Request:  LDAPMessage ::= SEQUENCE { messageID 1, [APPLICATION 23] ExtendedRequest {
          [0] requestName "1.3.6.1.4.1.1466.20037" } }
Response: LDAPMessage ::= SEQUENCE { messageID, [APPLICATION 24] ExtendedResponse {
          resultCode ENUMERATED, matchedDN, diagnosticMessage, ... } }
"""

from __future__ import annotations

import asyncio

from exporter.starttls.base import read_exactly, send, shown
from exporter.support.errors import NotTLS, StartTLSUnsupported

PROTO = "LDAP"
START_TLS_OID = b"1.3.6.1.4.1.1466.20037"
MESSAGE_ID = 1
MAX_MESSAGE = 64 * 1024  # a StartTLS response is a few dozen bytes

SEQUENCE, INTEGER, ENUMERATED, OCTET_STRING = 0x30, 0x02, 0x0A, 0x04
EXTENDED_REQUEST, EXTENDED_RESPONSE, REQUEST_NAME = 0x77, 0x78, 0x80


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def start_tls_request() -> bytes:
    operation = tlv(EXTENDED_REQUEST, tlv(REQUEST_NAME, START_TLS_OID))
    return tlv(SEQUENCE, tlv(INTEGER, bytes([MESSAGE_ID])) + operation)


def _decode_length(first: int, more: bytes) -> int:
    if first == 0x80 or first & 0x7F > 4:  # indefinite (forbidden in LDAP) or absurd
        raise NotTLS(f"{PROTO}: unsupported BER length")
    return int.from_bytes(more, "big")


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, value) items laid one after the other in ``data``."""
    items, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise NotTLS(f"{PROTO}: truncated BER")
        tag, first = data[pos], data[pos + 1]
        pos += 2
        if first & 0x80:
            count = first & 0x7F
            length = _decode_length(first, data[pos : pos + count])
            pos += count
        else:
            length = first
        if pos + length > len(data):
            raise NotTLS(f"{PROTO}: truncated BER")
        items.append((tag, data[pos : pos + length]))
        pos += length
    return items


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    tag, first = await read_exactly(reader, 2, PROTO)
    if tag != SEQUENCE:
        raise NotTLS(f"{PROTO}: not an LDAP message: {shown(bytes([tag, first]))}")
    length = first
    if first & 0x80:
        length = _decode_length(first, await read_exactly(reader, first & 0x7F, PROTO))
    if length > MAX_MESSAGE:
        raise NotTLS(f"{PROTO}: message of {length} bytes is too long")
    return await read_exactly(reader, length, PROTO)


def _integer(item: tuple[int, bytes], tag: int) -> int:
    if item[0] != tag or not item[1]:
        raise NotTLS(f"{PROTO}: malformed ExtendedResponse")
    return int.from_bytes(item[1], "big", signed=True)


async def ldap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    await send(writer, start_tls_request(), PROTO)
    message = parse(await _read_message(reader))
    if len(message) < 2 or message[1][0] != EXTENDED_RESPONSE:
        raise NotTLS(f"{PROTO}: expected an ExtendedResponse")
    message_id = _integer(message[0], INTEGER)
    response = parse(message[1][1])
    if len(response) < 3 or response[2][0] != OCTET_STRING:
        raise NotTLS(f"{PROTO}: malformed ExtendedResponse")
    result = _integer(response[0], ENUMERATED)
    diagnostic = response[2][1].decode("utf-8", "replace")
    if message_id == 0:  # unsolicited notification, in practice Notice of Disconnection
        raise StartTLSUnsupported(f"{PROTO}: server disconnects us, resultCode {result}: {shown(diagnostic)}")
    if message_id != MESSAGE_ID:
        raise NotTLS(f"{PROTO}: answer to message {message_id}, we sent {MESSAGE_ID}")
    if result != 0:
        raise StartTLSUnsupported(f"{PROTO}: StartTLS refused, resultCode {result}: {shown(diagnostic)}")
