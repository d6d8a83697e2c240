"""The protocol table of the contract: default port and how TLS starts.

``starttls`` names the negotiator in ``exporter.starttls.NEGOTIATORS`` that runs before the
TLS handshake; ``None`` means implicit TLS (the ClientHello is sent right after connecting).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolSpec:
    name: str
    default_port: int | None  # None: the address must carry a port
    starttls: str | None = None
    description: str = "implicit TLS"


def _implicit(name: str, port: int | None) -> ProtocolSpec:
    return ProtocolSpec(name=name, default_port=port)


def _starttls(name: str, port: int, negotiator: str, description: str) -> ProtocolSpec:
    return ProtocolSpec(name=name, default_port=port, starttls=negotiator, description=description)


PROTOCOLS: dict[str, ProtocolSpec] = {
    spec.name: spec
    for spec in (
        _implicit("https", 443),
        _implicit("tls", None),
        _implicit("smtps", 465),
        _starttls("smtp", 25, "smtp", "EHLO, STARTTLS"),
        _starttls("submission", 587, "smtp", "EHLO, STARTTLS"),
        _starttls("lmtp", 24, "lmtp", "LHLO, STARTTLS"),
        _implicit("imaps", 993),
        _starttls("imap", 143, "imap", "STARTTLS"),
        _implicit("pop3s", 995),
        _starttls("pop3", 110, "pop3", "STLS"),
        _implicit("ftps", 990),
        _starttls("ftp", 21, "ftp", "AUTH TLS"),
        _implicit("ldaps", 636),
        _starttls("ldap", 389, "ldap", "StartTLS extended operation"),
        _starttls("postgres", 5432, "postgres", "SSLRequest"),
        _starttls("mysql", 3306, "mysql", "SSL request in the handshake response"),
        _implicit("sips", 5061),
        _starttls("xmpp", 5222, "xmpp", "stream, starttls, proceed (client)"),
        _starttls("xmpp-server", 5269, "xmpp-server", "stream, starttls, proceed (server-to-server)"),
        _starttls("sieve", 4190, "sieve", "capabilities, STARTTLS (ManageSieve)"),
        _starttls("nntp", 119, "nntp", "STARTTLS, 382"),
        _implicit("nntps", 563),
        _implicit("ircs", 6697),
        _implicit("mqtts", 8883),
        _implicit("redis", 6379),  # the tls-port; a plaintext Redis port has no TLS upgrade
    )
}
