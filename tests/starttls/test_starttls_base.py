"""The shared pieces of the negotiators: bounded readers, discarding, BER, the XMPP header, imports."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

import exporter.starttls
from exporter.starttls.base import MAX_LINE, MAX_LINES, Reply, discard_buffered, read_line, read_reply
from exporter.starttls.ldap import parse, start_tls_request, tlv
from exporter.starttls.xmpp import stream_header
from exporter.support.errors import NotTLS, Outcome, ProbeError


def fed(data: bytes, *, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_discard_buffered_drops_and_counts_what_is_buffered() -> None:
    reader = fed(b"220 go ahead\r\nINJECTED", eof=False)
    assert await read_line(reader, "SMTP") == "220 go ahead"
    assert discard_buffered(reader) == len(b"INJECTED")
    assert discard_buffered(reader) == 0


async def test_smtp_reply_numbers_every_line() -> None:
    reply = await read_reply(fed(b"250-mail.test\r\n250-SIZE 10240000\r\n250 STARTTLS\r\nNEXT\r\n"), "SMTP")
    assert reply == Reply(250, ["250-mail.test", "250-SIZE 10240000", "250 STARTTLS"])


async def test_smtp_reply_with_an_unnumbered_line_is_not_smtp() -> None:
    with pytest.raises(NotTLS, match="not a SMTP reply: 'hello'"):
        await read_reply(fed(b"250-mail.test\r\nhello\r\n250 OK\r\n"), "SMTP")


async def test_ftp_reply_lines_between_first_and_last_are_free_text() -> None:
    data = b"220-Welcome\r\n 220 is not the end\r\n230 nor this\r\n220 ready\r\n"
    reply = await read_reply(fed(data), "FTP", every_line_coded=False)
    assert reply.code == 220
    assert reply.lines[-1] == "220 ready"
    assert len(reply.lines) == 4


async def test_a_line_over_the_limit_is_not_tls() -> None:
    with pytest.raises(NotTLS, match=f"longer than {MAX_LINE} bytes"):
        await read_line(fed(b"2" * (MAX_LINE + 1) + b"\r\n"), "SMTP")


async def test_a_reply_over_the_line_count_is_not_tls() -> None:
    with pytest.raises(NotTLS, match=f"longer than {MAX_LINES} lines"):
        await read_reply(fed(b"250-x\r\n" * (MAX_LINES + 5)), "SMTP")


async def test_end_of_stream_mid_line_is_a_network_error() -> None:
    with pytest.raises(ProbeError) as caught:
        await read_line(fed(b"220 half a li"), "SMTP")
    assert caught.value.outcome is Outcome.NETWORK_ERROR
    assert caught.value.detail == "server closed the connection during the SMTP dialogue"


def test_ldap_request_is_the_31_bytes_of_rfc_4511() -> None:
    assert start_tls_request() == bytes.fromhex("301d02010177188016") + b"1.3.6.1.4.1.1466.20037"


def test_ber_lengths_short_and_long_form() -> None:
    assert tlv(0x04, b"x" * 5)[:2] == bytes.fromhex("0405")
    assert tlv(0x04, b"x" * 300)[:4] == bytes.fromhex("0482012c")
    assert parse(bytes.fromhex("0484000000026869") + bytes.fromhex("0a0134")) == [(0x04, b"hi"), (0x0A, b"\x34")]


def test_truncated_ber_is_not_tls() -> None:
    with pytest.raises(NotTLS, match="truncated BER"):
        parse(bytes.fromhex("0405686869"))


def test_xmpp_header_names_the_server_and_escapes_it() -> None:
    header = stream_header("chat.example.com", "jabber:client").decode()
    assert " to=\"chat.example.com\" version='1.0'>" in header
    assert "xmlns='jabber:client'" in header
    assert "to='a\"b&lt;'" in stream_header('a"b<', "jabber:server").decode()  # quoteattr picks the quote


FORBIDDEN = {"ssl", "prometheus_client", "aiohttp", "exporter.web", "exporter.metrics", "exporter.tls"}


@pytest.mark.parametrize("path", sorted(Path(exporter.starttls.__file__).parent.glob("*.py")), ids=lambda p: p.name)
def test_a_starttls_dialogue_never_imports_ssl_web_or_metrics(path: Path) -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {name for name in imported for bad in FORBIDDEN if name == bad or name.startswith(bad + ".")}
