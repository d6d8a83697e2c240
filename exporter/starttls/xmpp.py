"""XMPP: open a stream, read its features, <starttls/>, wait for <proceed/> (RFC 6120 5.4).

The stream is one XML document that never ends, so it is read tag by tag: bytes up to each '>'
go to an incremental parser, and nothing past <proceed/> is consumed (what follows is the
TLS handshake, or injected bytes the caller discards).
"""

from __future__ import annotations

import asyncio
from xml.etree.ElementTree import Element, ParseError, XMLPullParser

from exporter.starttls.base import MAX_REPLY, closed, read_exactly, send, shown
from exporter.support.errors import NotTLS, StartTLSUnsupported

STREAMS = "{http://etherx.jabber.org/streams}"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
TLS = "{" + TLS_NS + "}"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-streams"


def stream_header(server_name: str, namespace: str) -> bytes:
    return (
        f"<?xml version='1.0'?><stream:stream xmlns='{namespace}' xmlns:stream='http://etherx.jabber.org/streams'"
        f" to={_quoteattr(server_name)} version='1.0'>"
    ).encode()


class _Stream:
    """The server's stream: yields each complete child of <stream:stream>, reading no further."""

    def __init__(self, reader: asyncio.StreamReader, proto: str) -> None:
        self.reader, self.proto = reader, proto
        self.parser: XMLPullParser[Element] = XMLPullParser(events=("start", "end"))
        self.depth = 0  # 1 inside <stream:stream>, 2 inside a top-level element
        self.pending: list[tuple[str, Element]] = []
        self.size = 0

    async def next_element(self) -> Element:
        while True:
            while self.pending:
                event, element = self.pending.pop(0)
                if event == "start":
                    self.depth += 1
                    if self.depth == 1 and element.tag != f"{STREAMS}stream":
                        raise NotTLS(f"{self.proto}: expected <stream:stream>, got <{element.tag}>")
                    continue
                self.depth -= 1
                if self.depth == 0:
                    raise StartTLSUnsupported(f"{self.proto}: server closed the XMPP stream")
                if self.depth == 1:
                    return element
            self.pending = self._events(await self._read_tag())

    async def _read_tag(self) -> bytes:
        """Bytes up to the next '>'; at stream level anything but whitespace before '<' fails fast."""
        chunk = bytearray()
        while not chunk or chunk[-1:].isspace():
            chunk += await read_exactly(self.reader, 1, self.proto)
            self._count(1)
        if self.depth <= 1 and chunk[-1:] != b"<":  # only elements (and whitespace) live between elements
            raise NotTLS(f"{self.proto}: not an XML stream: {shown(bytes(chunk))}")
        if chunk[-1:] != b">":
            try:
                rest = await self.reader.readuntil(b">")
            except asyncio.LimitOverrunError as exc:
                raise NotTLS(f"{self.proto}: tag longer than the reader's limit") from exc
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                raise closed(self.proto) from exc
            self._count(len(rest))
            chunk += rest
        return bytes(chunk)

    def _count(self, n: int) -> None:
        self.size += n
        if self.size > MAX_REPLY:
            raise NotTLS(f"{self.proto}: more than {MAX_REPLY} bytes without the expected element")

    def _events(self, data: bytes) -> list[tuple[str, Element]]:
        try:
            self.parser.feed(data)
            flush = getattr(self.parser, "flush", None)  # 3.12.3+/3.11.9+: defeat expat's reparse deferral
            if flush is not None:
                flush()
            # start and end events (the only ones asked for) carry the element
            return [(str(e[0]), e[-1]) for e in self.parser.read_events() if isinstance(e[-1], Element)]
        except ParseError as exc:
            raise NotTLS(f"{self.proto}: not XML: {exc}") from exc


def _check_error(element: Element, proto: str) -> None:
    if element.tag == f"{STREAMS}error":
        conditions = [child.tag.split("}")[-1] for child in element if child.tag.startswith("{" + STANZAS_NS)]
        raise StartTLSUnsupported(f"{proto}: stream error: {', '.join(conditions) or 'unspecified'}")


async def _dialogue(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str, namespace: str, proto: str
) -> None:
    stream = _Stream(reader, proto)
    await send(writer, stream_header(server_name, namespace), proto)
    features = await stream.next_element()
    _check_error(features, proto)
    if features.tag != f"{STREAMS}features":
        raise NotTLS(f"{proto}: expected <stream:features>, got <{features.tag}>")
    if features.find(f"{TLS}starttls") is None:
        raise StartTLSUnsupported(f"{proto}: STARTTLS not in the stream features")
    await send(writer, f"<starttls xmlns='{TLS_NS}'/>".encode(), proto)
    answer = await stream.next_element()
    _check_error(answer, proto)
    if answer.tag == f"{TLS}failure":
        raise StartTLSUnsupported(f"{proto}: server answered <failure/> to <starttls/>")
    if answer.tag != f"{TLS}proceed":
        raise NotTLS(f"{proto}: expected <proceed/>, got <{answer.tag}>")


async def xmpp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    await _dialogue(reader, writer, server_name, "jabber:client", "XMPP")


async def xmpp_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    await _dialogue(reader, writer, server_name, "jabber:server", "XMPP")


def _quoteattr(value: str) -> str:
    # xml.sax.saxutils pulls in urllib.request: imported only when an XMPP probe runs.
    from xml.sax.saxutils import quoteattr

    return quoteattr(value)
