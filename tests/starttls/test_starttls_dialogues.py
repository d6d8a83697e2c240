"""Every STARTTLS negotiator against scripted servers on loopback.

Each protocol has one happy dialogue (a script ending with the server's go-ahead); the failure
cases are derived from it: garbage instead of a server message, a connection closed before
the go-ahead, silence, a flood. Refusals are listed per protocol with what the detail must say.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

import pytest
from fakes import (
    GARBAGE,
    Close,
    Expect,
    Flood,
    ScriptedServer,
    Send,
    StartTLS,
    Step,
    client_context,
    connect,
    peer_serial,
)
from pki import PKI

from exporter.starttls import NEGOTIATORS, discard_buffered
from exporter.support.errors import NotTLS, Outcome, ProbeError, StartTLSUnsupported
from exporter.support.protocols import PROTOCOLS

SERVER_NAME = "localhost"


@dataclass(frozen=True)
class Dialogue:
    key: str  # NEGOTIATORS key
    script: tuple[Step, ...]  # the server's side up to and including its go-ahead
    endless: tuple[Step, ...] | None = None  # a server that never stops answering

    def sends(self) -> list[int]:
        return [i for i, step in enumerate(self.script) if isinstance(step, Send)]

    def with_send(self, index: int, data: bytes) -> tuple[Step, ...]:
        return (*self.script[:index], Send(data), *self.script[index + 1 :])


# -- the wire, protocol by protocol ------------------------------------------------------------

EHLO, LHLO = b"EHLO tls-exporter.invalid\r\n", b"LHLO tls-exporter.invalid\r\n"
LDAP_START_TLS = bytes.fromhex("301d02010177188016") + b"1.3.6.1.4.1.1466.20037"
LDAP_SUCCESS = bytes.fromhex("300c02010178070a010004000400")
PG_SSL_REQUEST = bytes.fromhex("0000000804d2162f")
MYSQL_SSL = 0x0800
MYSQL_CAPS = 0x81FFFFFE  # what MariaDB 10.11 announced, CLIENT_SSL included
MYSQL_SSL_REQUEST = bytes.fromhex("20000001058a08000000000121") + bytes(23)
XMPP_TLS = b"urn:ietf:params:xml:ns:xmpp-tls"
XMPP_STREAMS = b"urn:ietf:params:xml:ns:xmpp-streams"


def mysql_packet(payload: bytes, sequence: int = 0) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([sequence]) + payload


def mysql_greeting(caps: int, version: bytes = b"5.5.5-10.11.19-MariaDB-0+deb12u1", sequence: int = 0) -> bytes:
    payload = (
        b"\x0a" + version + b"\x00" + struct.pack("<I", 42) + b"abcdefgh" + b"\x00"
        + struct.pack("<HBHH", caps & 0xFFFF, 0x21, 0x0002, caps >> 16)
        + b"\x15" + bytes(10) + b"ijklmnopqrst\x00" + b"mysql_native_password\x00"
    )  # fmt: skip
    return mysql_packet(payload, sequence)


def xmpp_open(namespace: bytes) -> bytes:
    return (
        b"<?xml version='1.0'?><stream:stream xmlns='"
        + namespace
        + b"' xmlns:stream='http://etherx.jabber.org/streams'"
        b" to=\"localhost\" version='1.0'>"
    )


def xmpp_answer(namespace: bytes, features: bytes) -> bytes:
    return (
        b"<?xml version='1.0'?><stream:stream xmlns='"
        + namespace
        + b"' xmlns:stream='http://etherx.jabber.org/streams'"
        b" id='f00d' from='localhost' version='1.0' xml:lang='en'><stream:features>" + features + b"</stream:features>"
    )


XMPP_FEATURES = (
    b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"
)
XMPP_STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
XMPP_PROCEED = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
SIEVE_GREETING = (  # what dovecot-managesieved 2.3 (Pigeonhole 0.5) sends
    b'"IMPLEMENTATION" "Dovecot Pigeonhole"\r\n"SIEVE" "fileinto reject envelope"\r\n'
    b'"NOTIFY" "mailto"\r\n"SASL" ""\r\n"STARTTLS"\r\n"VERSION" "1.0"\r\nOK "Dovecot ready."\r\n'
)


def xmpp_dialogue(key: str, namespace: bytes) -> Dialogue:
    return Dialogue(
        key,
        (
            Expect(xmpp_open(namespace)),
            Send(xmpp_answer(namespace, XMPP_FEATURES)),
            Expect(XMPP_STARTTLS),
            Send(XMPP_PROCEED),
        ),
        endless=(
            Expect(xmpp_open(namespace)),
            Send(xmpp_answer(namespace, b"")[: -len(b"</stream:features>")]),
            Flood(b"<x/>"),
        ),
    )


DIALOGUES = {
    "smtp": Dialogue(
        "smtp",
        (
            Send(b"220-mail.test ESMTP\r\n220 no UCE\r\n"),
            Expect(EHLO),
            Send(b"250-mail.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
            Expect(b"STARTTLS\r\n"),
            Send(b"220 2.0.0 Ready to start TLS\r\n"),
        ),
        endless=(Flood(b"220-still greeting\r\n"),),
    ),
    "lmtp": Dialogue(
        "lmtp",
        (
            Send(b"220 vm Dovecot (Debian) ready.\r\n"),
            Expect(LHLO),
            Send(b"250-vm\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n"),
            Expect(b"STARTTLS\r\n"),
            Send(b"220 2.0.0 Begin TLS negotiation now.\r\n"),
        ),
        endless=(Send(b"220 ready\r\n"), Expect(LHLO), Flood(b"250-PIPELINING\r\n")),
    ),
    "imap": Dialogue(
        "imap",
        (
            Send(b"* OK IMAP4rev1 server ready\r\n"),
            Expect(b"a1 CAPABILITY\r\n"),
            Send(b"* CAPABILITY IMAP4rev1 LITERAL+ STARTTLS LOGINDISABLED\r\na1 OK Capability completed.\r\n"),
            Expect(b"a2 STARTTLS\r\n"),
            Send(b"a2 OK Begin TLS negotiation now.\r\n"),
        ),
        endless=(Send(b"* OK ready\r\n"), Expect(b"a1 CAPABILITY\r\n"), Flood(b"* CAPABILITY IMAP4rev1\r\n")),
    ),
    "pop3": Dialogue(
        "pop3",
        (
            Send(b"+OK Dovecot ready.\r\n"),
            Expect(b"CAPA\r\n"),
            Send(b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nSTLS\r\nSASL PLAIN\r\n.\r\n"),
            Expect(b"STLS\r\n"),
            Send(b"+OK Begin TLS negotiation now.\r\n"),
        ),
        endless=(Send(b"+OK ready\r\n"), Expect(b"CAPA\r\n"), Send(b"+OK\r\n"), Flood(b"UIDL\r\n")),
    ),
    "ftp": Dialogue(
        "ftp",
        (
            Send(b"220-Welcome to the test FTP\r\n  lines of a banner need no code\r\n220 ready\r\n"),
            Expect(b"AUTH TLS\r\n"),
            Send(b"234 AUTH TLS successful.\r\n"),
        ),
        endless=(Flood(b"220-welcome\r\n"),),
    ),
    "ldap": Dialogue(
        "ldap",
        (Expect(LDAP_START_TLS), Send(LDAP_SUCCESS)),
        endless=(
            Expect(LDAP_START_TLS),
            Send(bytes.fromhex("3084") + (10 * 2**20).to_bytes(4, "big")),
            Flood(bytes(65536)),
        ),
    ),
    "postgres": Dialogue("postgres", (Expect(PG_SSL_REQUEST), Send(b"S"))),  # the answer is one byte by design
    "mysql": Dialogue(
        "mysql",
        (Send(mysql_greeting(MYSQL_CAPS)), Expect(MYSQL_SSL_REQUEST)),
        endless=(Send(b"\xff\xff\xff\x00"), Flood(bytes(65536))),
    ),
    "xmpp": xmpp_dialogue("xmpp", b"jabber:client"),
    "xmpp-server": xmpp_dialogue("xmpp-server", b"jabber:server"),
    "sieve": Dialogue(
        "sieve",
        (
            Send(SIEVE_GREETING),
            Expect(b"STARTTLS\r\n"),
            Send(b'OK "Begin TLS negotiation now."\r\n'),
        ),
        endless=(Flood(b'"SIEVE" "fileinto reject envelope"\r\n'),),
    ),
    "nntp": Dialogue(
        "nntp",
        (
            Send(b"200 news.interop.test InterNetNews NNRP server INN 2.7.1 ready (posting ok)\r\n"),
            Expect(b"STARTTLS\r\n"),
            Send(b"382 Begin TLS negotiation now\r\n"),
        ),
        endless=(Flood(b"200-still greeting\r\n"),),
    ),
}

# More happy dialogues: real servers vary in what the first version leaves out.
VARIANTS = {
    "imap capabilities in the greeting": Dialogue(
        "imap",
        (
            Send(b"* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=PLAIN] Dovecot ready.\r\n"),
            Expect(b"a2 STARTTLS\r\n"),
            Send(b"* BYE not really, just an untagged line\r\na2 OK Begin TLS negotiation now.\r\n"),
        ),
    ),
    "pop3 without CAPA": Dialogue(
        "pop3",
        (
            Send(b"+OK\r\n"),
            Expect(b"CAPA\r\n"),
            Send(b"-ERR unknown command\r\n"),
            Expect(b"STLS\r\n"),
            Send(b"+OK\r\n"),
        ),
    ),
    "ftp repeating its banner": Dialogue(
        "ftp", (Send(b"220 ready\r\n"), Expect(b"AUTH TLS\r\n"), Send(b"220 ready\r\n234 AUTH TLS successful.\r\n"))
    ),
    "ldap long-form lengths and a response name": Dialogue(
        "ldap",
        (
            Expect(LDAP_START_TLS),
            Send(
                bytes.fromhex("30840000002802010178840000001f")
                + bytes.fromhex("0a0100040004008a16")
                + b"1.3.6.1.4.1.1466.20037"
            ),
        ),
    ),
    "mysql greeting with sequence 3": Dialogue(
        "mysql",
        (Send(mysql_greeting(MYSQL_CAPS, sequence=3)), Expect(MYSQL_SSL_REQUEST[:3] + b"\x04" + MYSQL_SSL_REQUEST[4:])),
    ),
    "sieve lowercase capability, bare OK": Dialogue(
        "sieve",
        (Send(b'"starttls"\r\nOK\r\n'), Expect(b"STARTTLS\r\n"), Send(b"OK\r\n")),
    ),
    "sieve OK with a response code": Dialogue(
        "sieve",
        (Send(b'"STARTTLS"\r\nok (x) "ready"\r\n'), Expect(b"STARTTLS\r\n"), Send(b"OK (TAG {2}) go\r\n")),
    ),
    "nntp posting prohibited": Dialogue(
        "nntp", (Send(b"201 read only\r\n"), Expect(b"STARTTLS\r\n"), Send(b"382 Continue with TLS negotiation\r\n"))
    ),
    "smtp lowercase keyword": Dialogue(
        "smtp",
        (
            Send(b"220 x\r\n"),
            Expect(EHLO),
            Send(b"250-x\r\n250 starttls\r\n"),
            Expect(b"STARTTLS\r\n"),
            Send(b"220 go\r\n"),
        ),
    ),
}

# Dialogue openings the refusals below continue.
SMTP_HELLO = (Send(b"220 x\r\n"), Expect(EHLO))
LMTP_HELLO = (Send(b"220 x\r\n"), Expect(LHLO))
STARTTLS_OFFERED = (Send(b"250-x\r\n250 STARTTLS\r\n"), Expect(b"STARTTLS\r\n"))
IMAP_TLS_LISTED = (Send(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] x\r\n"), Expect(b"a2 STARTTLS\r\n"))
POP3_CAPA = (Send(b"+OK\r\n"), Expect(b"CAPA\r\n"))
FTP_AUTH = (Send(b"220 x\r\n"), Expect(b"AUTH TLS\r\n"))
XMPP_ASKED = (
    Expect(xmpp_open(b"jabber:client")),
    Send(xmpp_answer(b"jabber:client", XMPP_FEATURES)),
    Expect(XMPP_STARTTLS),
)
XMPP_SERVER_HEADER = xmpp_answer(b"jabber:server", b"")[: -len(b"<stream:features></stream:features>")]
SIEVE_ASKED = (Send(b'"STARTTLS"\r\nOK "ready"\r\n'), Expect(b"STARTTLS\r\n"))
NNTP_ASKED = (Send(b"200 ready\r\n"), Expect(b"STARTTLS\r\n"))
LDAP_OPENLDAP_NO_TLS = bytes.fromhex("302a02010178250a01020400041e") + b"unsupported extended operation"
LDAP_AD_UNAVAILABLE = bytes.fromhex("3084000000110201017884000000080a0134040004014e")  # long form, code 52
LDAP_NOTICE_OF_DISCONNECTION = bytes.fromhex("300c02010078070a010204000400")  # messageID 0


def refusal(key: str, case: str, script: tuple[Step, ...], detail: str) -> object:
    """A server that refuses TLS, and what the StartTLSUnsupported detail must contain."""
    return pytest.param(key, script, detail, id=f"{key}-{case}")


REFUSALS = [
    refusal("smtp", "no STARTTLS", (*SMTP_HELLO, Send(b"250-x\r\n250 8BITMIME\r\n")), "STARTTLS not offered"),
    refusal("smtp", "454", (*SMTP_HELLO, *STARTTLS_OFFERED, Send(b"454 4.7.0 TLS not available\r\n")), "454 4.7.0"),
    refusal("smtp", "busy", (Send(b"421 4.3.2 too busy\r\n"),), "greeting: '421 4.3.2 too busy'"),
    refusal("smtp", "refused", (Send(b"554 5.7.1 no service\r\n"),), "greeting: '554 5.7.1 no service'"),
    refusal("smtp", "EHLO refused", (*SMTP_HELLO, Send(b"502 5.5.2 HELO only\r\n")), "EHLO refused: '502"),
    refusal("lmtp", "no STARTTLS", (*LMTP_HELLO, Send(b"250-x\r\n250 PIPELINING\r\n")), "not offered in the LHLO"),
    refusal("lmtp", "502", (*LMTP_HELLO, *STARTTLS_OFFERED, Send(b"502 5.5.1 TLS not enabled.\r\n")), "502 5.5.1"),
    refusal("imap", "no STARTTLS", (Send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] x\r\n"),), "STARTTLS not in the"),
    refusal(
        "imap",
        "no STARTTLS when asked",
        (Send(b"* OK ready\r\n"), Expect(b"a1 CAPABILITY\r\n"), Send(b"* CAPABILITY IMAP4rev1\r\na1 OK\r\n")),
        "capabilities: 'IMAP4REV1'",
    ),
    refusal("imap", "BAD", (*IMAP_TLS_LISTED, Send(b"a2 BAD TLS support isn't enabled.\r\n")), "a2 BAD TLS"),
    refusal("imap", "BYE", (Send(b"* BYE too many connections\r\n"),), "too many connections"),
    refusal("imap", "PREAUTH", (Send(b"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] in\r\n"),), "greeting: '* PREAUTH"),
    refusal("pop3", "no STLS", (*POP3_CAPA, Send(b"+OK\r\nUSER\r\n.\r\n")), "STLS not in the capabilities: 'USER'"),
    refusal(
        "pop3",
        "-ERR",
        (*POP3_CAPA, Send(b"+OK\r\nSTLS\r\n.\r\n"), Expect(b"STLS\r\n"), Send(b"-ERR TLS not enabled\r\n")),
        "STLS refused: '-ERR TLS not enabled'",
    ),
    refusal("pop3", "greeting", (Send(b"-ERR go away\r\n"),), "greeting: '-ERR go away'"),
    refusal("ftp", "500", (*FTP_AUTH, Send(b'500 Command "AUTH" not understood.\r\n')), "AUTH TLS refused: '500"),
    refusal("ftp", "busy", (Send(b"421 Too many users\r\n"),), "greeting: '421 Too many users'"),
    refusal(
        "ldap",
        "OpenLDAP without TLS",
        (Expect(LDAP_START_TLS), Send(LDAP_OPENLDAP_NO_TLS)),
        "resultCode 2: 'unsupported extended operation'",
    ),
    refusal("ldap", "AD unavailable", (Expect(LDAP_START_TLS), Send(LDAP_AD_UNAVAILABLE)), "resultCode 52: 'N'"),
    refusal(
        "ldap", "notice", (Expect(LDAP_START_TLS), Send(LDAP_NOTICE_OF_DISCONNECTION)), "disconnects us, resultCode 2"
    ),
    refusal("postgres", "ssl off", (Expect(PG_SSL_REQUEST), Send(b"N")), "answered N"),
    refusal("postgres", "error", (Expect(PG_SSL_REQUEST), Send(b"E")), "answered an error"),
    refusal(
        "mysql", "no CLIENT_SSL", (Send(mysql_greeting(MYSQL_CAPS & ~MYSQL_SSL)),), "'5.5.5-10.11.19-MariaDB-0+deb12u1'"
    ),
    refusal(
        "mysql",
        "ERR packet",
        (Send(mysql_packet(bytes.fromhex("ff6a04") + b"Host '127.0.0.1' is not allowed")),),
        "error 1130: Host '127.0.0.1' is not allowed",
    ),
    refusal(
        "xmpp",
        "no starttls feature",
        (Expect(xmpp_open(b"jabber:client")), Send(xmpp_answer(b"jabber:client", b"<bind/>"))),
        "STARTTLS not in the stream features",
    ),
    refusal("xmpp", "failure", (*XMPP_ASKED, Send(b"<failure xmlns='" + XMPP_TLS + b"'/>")), "<failure/>"),
    refusal("xmpp", "stream closed", (*XMPP_ASKED, Send(b"</stream:stream>")), "closed the XMPP stream"),
    refusal(
        "xmpp-server",
        "stream error",
        (
            Expect(xmpp_open(b"jabber:server")),
            Send(XMPP_SERVER_HEADER + b"<stream:error><host-unknown xmlns='" + XMPP_STREAMS + b"'/></stream:error>"),
        ),
        "stream error: host-unknown",
    ),
    refusal(
        "sieve",
        "no STARTTLS",
        (Send(b'"IMPLEMENTATION" "Dovecot Pigeonhole"\r\n"SASL" "PLAIN"\r\nOK "Dovecot ready."\r\n'),),
        "STARTTLS not in the capabilities: 'IMPLEMENTATION SASL'",
    ),
    refusal("sieve", "NO", (*SIEVE_ASKED, Send(b'NO "TLS is not enabled."\r\n')), "STARTTLS refused: 'NO \"TLS"),
    refusal("sieve", "BYE", (*SIEVE_ASKED, Send(b'BYE "shutting down"\r\n')), "STARTTLS refused: 'BYE"),
    refusal("sieve", "greeting BYE", (Send(b'"STARTTLS"\r\nBYE "Too many connections"\r\n'),), "greeting: 'BYE"),
    refusal("sieve", "greeting NO", (Send(b'NO (TRYLATER) "busy"\r\n'),), "greeting: 'NO (TRYLATER)"),
    refusal("nntp", "500", (*NNTP_ASKED, Send(b"500 What?\r\n")), "STARTTLS refused: '500 What?'"),
    refusal("nntp", "502", (*NNTP_ASKED, Send(b"502 Already authenticated\r\n")), "STARTTLS refused: '502"),
    refusal("nntp", "580", (*NNTP_ASKED, Send(b"580 Can not initiate TLS negotiation\r\n")), "'580 Can not"),
    refusal("nntp", "busy", (Send(b"400 loadav [innwatch:load] 1300 gt 1200\r\n"),), "greeting: '400 loadav"),
    refusal("nntp", "denied", (Send(b"502 You have no permission to talk.\r\n"),), "greeting: '502 You have no"),
]

ALL = sorted(DIALOGUES)


async def negotiate(port: int, key: str) -> None:
    async with connect(port) as (reader, writer):
        await NEGOTIATORS[key](reader, writer, SERVER_NAME)


# -- the table ---------------------------------------------------------------------------------


def test_every_starttls_protocol_has_a_negotiator_and_a_dialogue() -> None:
    keys = {spec.starttls for spec in PROTOCOLS.values() if spec.starttls}
    assert set(NEGOTIATORS) == keys
    assert set(DIALOGUES) == keys


# -- success ---------------------------------------------------------------------------------


async def handshake_after(dialogue: Dialogue, pki: PKI, extra: bytes = b"") -> tuple[int, str, ScriptedServer]:
    """Play the dialogue (with ``extra`` after the go-ahead), then TLS; return (discarded, serial, fake)."""
    last = dialogue.sends()[-1]
    go_ahead = dialogue.script[last]
    assert isinstance(go_ahead, Send)
    script = (*dialogue.with_send(last, go_ahead.data + extra), StartTLS())
    async with ScriptedServer(script, tls=pki["good"].server_context()) as fake, connect(fake.port) as (reader, writer):
        await NEGOTIATORS[dialogue.key](reader, writer, SERVER_NAME)
        discarded = discard_buffered(reader)
        await writer.start_tls(client_context())
        return discarded, peer_serial(writer), fake


@pytest.mark.parametrize("dialogue", [*DIALOGUES.values(), *VARIANTS.values()], ids=[*DIALOGUES, *VARIANTS])
async def test_happy_path_ends_in_the_servers_certificate(dialogue: Dialogue, pki: PKI) -> None:
    discarded, serial, fake = await handshake_after(dialogue, pki)
    assert fake.failures == []
    assert discarded == 0
    assert serial == pki["good"].serial_hex


@pytest.mark.parametrize("key", ALL)
async def test_bytes_after_the_go_ahead_are_discarded(key: str, pki: PKI) -> None:
    discarded, serial, fake = await handshake_after(DIALOGUES[key], pki, extra=b"INJECTED COMMAND\r\n")
    assert fake.failures == []
    assert discarded == len(b"INJECTED COMMAND\r\n")
    assert serial == pki["good"].serial_hex


# -- refusal -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "script", "detail"), REFUSALS)
async def test_refusal_is_starttls_unsupported(key: str, script: tuple[Step, ...], detail: str) -> None:
    async with ScriptedServer(script) as fake:
        with pytest.raises(StartTLSUnsupported) as caught:
            await negotiate(fake.port, key)
    assert fake.failures == []
    assert caught.value.outcome is Outcome.STARTTLS_UNSUPPORTED
    assert detail in caught.value.detail


# -- not the protocol --------------------------------------------------------------------------


def garbage_cases() -> list[object]:
    """Garbage instead of the server's first message, and instead of its go-ahead."""
    cases = []
    for key, dialogue in sorted(DIALOGUES.items()):
        first, last = dialogue.sends()[0], dialogue.sends()[-1]
        cases.append(pytest.param(key, dialogue.with_send(first, GARBAGE), id=f"{key}-first"))
        if last != first:
            cases.append(pytest.param(key, dialogue.with_send(last, GARBAGE), id=f"{key}-go-ahead"))
    return cases


@pytest.mark.parametrize(("key", "script"), garbage_cases())
async def test_garbage_is_not_tls(key: str, script: tuple[Step, ...]) -> None:
    async with ScriptedServer(script) as fake:
        with pytest.raises(NotTLS) as caught:
            await negotiate(fake.port, key)
    assert caught.value.outcome is Outcome.NOT_TLS


@pytest.mark.parametrize("key", ALL)
async def test_a_ten_megabyte_line_is_not_tls_and_memory_stays_bounded(key: str) -> None:
    dialogue = DIALOGUES[key]
    script = (*dialogue.script[: dialogue.sends()[0]], Flood(b"A" * 65536))
    async with ScriptedServer(script) as fake, connect(fake.port) as (reader, writer):
        with pytest.raises(NotTLS):
            await NEGOTIATORS[key](reader, writer, SERVER_NAME)
        assert discard_buffered(reader) < 1024 * 1024


@pytest.mark.parametrize("key", [k for k in ALL if DIALOGUES[k].endless is not None])
async def test_a_reply_that_never_ends_is_not_tls(key: str) -> None:
    script = DIALOGUES[key].endless
    assert script is not None
    async with ScriptedServer(script) as fake, connect(fake.port) as (reader, writer):
        with pytest.raises(NotTLS):
            await NEGOTIATORS[key](reader, writer, SERVER_NAME)
        assert discard_buffered(reader) < 1024 * 1024
    assert fake.failures == []


# -- the network -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ALL)
async def test_silence_runs_into_the_callers_timeout(key: str) -> None:
    async with ScriptedServer(()) as fake:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await negotiate(fake.port, key)


@pytest.mark.parametrize("key", ALL)
async def test_connection_closed_before_the_go_ahead_is_a_network_error(key: str) -> None:
    dialogue = DIALOGUES[key]
    script = (*dialogue.script[: dialogue.sends()[-1]], Close())
    async with ScriptedServer(script) as fake:
        with pytest.raises(ProbeError) as caught:
            await negotiate(fake.port, key)
    assert fake.failures == []
    assert type(caught.value) is ProbeError
    assert caught.value.outcome is Outcome.NETWORK_ERROR
    assert caught.value.detail.startswith("server closed the connection during the ")
