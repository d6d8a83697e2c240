"""STARTTLS negotiators by name: the ``starttls`` keys of ``exporter.support.protocols.PROTOCOLS``.

Adding a protocol is one small module and one line here. A dialogue's module is imported the
first time it is needed (`check` of an https endpoint imports none of them).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from exporter.starttls.base import Negotiator, discard_buffered

_WHERE: dict[str, str] = {  # name -> module:function
    "smtp": "smtp:smtp",
    "lmtp": "smtp:lmtp",
    "imap": "imap:imap",
    "pop3": "pop3:pop3",
    "ftp": "ftp:ftp",
    "ldap": "ldap:ldap",
    "postgres": "postgres:postgres",
    "mysql": "mysql:mysql",
    "xmpp": "xmpp:xmpp",
    "xmpp-server": "xmpp:xmpp_server",
    "sieve": "sieve:sieve",
    "nntp": "nntp:nntp",
}


class _Negotiators(Mapping[str, Negotiator]):
    def __init__(self) -> None:
        self._loaded: dict[str, Negotiator] = {}

    def __getitem__(self, name: str) -> Negotiator:
        found = self._loaded.get(name)
        if found is None:
            module, _, attr = _WHERE[name].partition(":")
            found = self._loaded[name] = getattr(importlib.import_module(f"exporter.starttls.{module}"), attr)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)


NEGOTIATORS: Mapping[str, Negotiator] = _Negotiators()

__all__ = ["NEGOTIATORS", "Negotiator", "discard_buffered"]
