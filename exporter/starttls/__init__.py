"""STARTTLS negotiators by name: the ``starttls`` keys of ``exporter.protocols.PROTOCOLS``.

Adding a protocol is one small module and one line here.
"""

from __future__ import annotations

from exporter.starttls.base import Negotiator, discard_buffered
from exporter.starttls.ftp import ftp
from exporter.starttls.imap import imap
from exporter.starttls.ldap import ldap
from exporter.starttls.mysql import mysql
from exporter.starttls.nntp import nntp
from exporter.starttls.pop3 import pop3
from exporter.starttls.postgres import postgres
from exporter.starttls.sieve import sieve
from exporter.starttls.smtp import lmtp, smtp
from exporter.starttls.xmpp import xmpp, xmpp_server

NEGOTIATORS: dict[str, Negotiator] = {
    "smtp": smtp,
    "lmtp": lmtp,
    "imap": imap,
    "pop3": pop3,
    "ftp": ftp,
    "ldap": ldap,
    "postgres": postgres,
    "mysql": mysql,
    "xmpp": xmpp,
    "xmpp-server": xmpp_server,
    "sieve": sieve,
    "nntp": nntp,
}

__all__ = ["NEGOTIATORS", "Negotiator", "discard_buffered"]
