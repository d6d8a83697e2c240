"""Proxy URLs: ``http://[user:password@]host:port`` (HTTP CONNECT) and ``socks5://...`` (SOCKS5).

One strict parser for the profile key ``proxy_url`` and for the proxy environment variables
that revocation and AIA fetches honour when no ``proxy_url`` is set (``HTTP_PROXY``, else
``HTTPS_PROXY``, else ``ALL_PROXY``; ``NO_PROXY`` lists the hosts fetched directly).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
HINT = "use http://host:port or socks5://host:port, with an optional user:password@"


class ProxyScheme(StrEnum):
    HTTP = "http"  # HTTP CONNECT for probes; absolute-form requests for http:// fetches
    SOCKS5 = "socks5"  # names are always sent to the proxy (what curl calls socks5h)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyURL:
    scheme: ProxyScheme
    host: str  # a name, an IPv4 or an IPv6 literal (no brackets)
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never logged

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        """The URL without its password: what logs and error details show."""
        user = f"{self.username}:***@" if self.username is not None else ""
        return f"{self.scheme}://{user}{self.address}"


def parse_proxy_url(text: str, *, default_scheme: ProxyScheme | None = None) -> ProxyURL:
    """A validated proxy URL; ValueError says what is wrong (never echoing a password).

    ``default_scheme`` applies to a value without ``scheme://`` (environment variables are often
    written ``proxy:3128``); the configuration always names its scheme.
    """
    raw = text.strip()
    if "://" not in raw and default_scheme is not None:
        raw = f"{default_scheme}://{raw}"
    scheme, sep, rest = raw.partition("://")
    if not sep:
        raise ValueError(f"invalid proxy URL (no scheme: {HINT})")
    if scheme.lower() == "socks5h":
        raise ValueError("use socks5:// (names are always resolved by the proxy)")
    try:
        kind = ProxyScheme(scheme.lower())
    except ValueError:
        raise ValueError(f"unsupported proxy scheme '{scheme}' ({HINT})") from None
    authority, slash, tail = rest.partition("/")
    if (slash and tail) or any(c in authority for c in "?#"):
        raise ValueError("a proxy URL has no path, query or fragment")
    userinfo, at, hostport = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = urllib.parse.unquote(user), urllib.parse.unquote(secret) if colon else ""
        if not username:
            raise ValueError("empty user name in the proxy URL")
        if kind is ProxyScheme.SOCKS5 and (len(username.encode()) > 255 or len(password.encode()) > 255):
            raise ValueError("SOCKS5 user name and password are at most 255 bytes each")
    host, port = _host_port(hostport)
    return ProxyURL(scheme=kind, host=host, port=port, username=username, password=password)


def _host_port(text: str) -> tuple[str, int]:
    if text.startswith("["):
        match = re.fullmatch(r"\[([^\]]*)\]:(.*)", text)
        if match is None:
            raise ValueError("invalid proxy address (an IPv6 proxy is written [::1]:port)")
        host, port = match[1], match[2]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"invalid IPv6 address '{host}' in the proxy URL") from None
    else:
        host, colon, port = text.rpartition(":")
        if not colon:
            raise ValueError("the proxy URL needs a port (http://host:port)")
        if not host:
            raise ValueError("the proxy URL has no host")
        labels = host.removesuffix(".").split(".")
        if len(host) > 254 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ValueError(f"invalid proxy host '{host}'")
        if all(label.isdigit() for label in labels):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f"invalid IPv4 address '{host}' in the proxy URL") from None
    if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise ValueError(f"invalid proxy port '{port}' (1-65535)")
    return host, int(port)


# ---- the environment (fetches only) ---------------------------------------------------------

ENV_ORDER = ("http_proxy", "https_proxy", "all_proxy")  # the fetched URLs are http://


@dataclass(frozen=True, slots=True)
class EnvProxy:
    """The proxy the environment names for http:// fetches, and the hosts that bypass it."""

    proxy: ProxyURL | None = None
    variable: str = ""  # where it came from, for error details
    error: str = ""  # an invalid value: fetches fail saying so rather than silently going direct
    no_proxy: tuple[str, ...] = ()

    def for_host(self, host: str) -> ProxyURL | None:
        return None if self.proxy is None or bypass(host, self.no_proxy) else self.proxy


def env_proxy(environ: Mapping[str, str]) -> EnvProxy:
    """Lower case wins over upper case, as in curl; an empty value means "not set"."""

    def get(name: str) -> tuple[str, str]:
        for variable in (name, name.upper()):
            if environ.get(variable, "").strip():
                return variable, environ[variable].strip()
        return "", ""

    _, no = get("no_proxy")
    entries = tuple(e.strip().lower() for e in no.split(",") if e.strip())
    for name in ENV_ORDER:
        variable, value = get(name)
        if value:
            try:
                proxy = parse_proxy_url(value, default_scheme=ProxyScheme.HTTP)
            except ValueError as exc:
                return EnvProxy(variable=variable, error=f"{variable} is not a usable proxy: {exc}", no_proxy=entries)
            return EnvProxy(proxy, variable, "", entries)
    return EnvProxy(no_proxy=entries)


def bypass(host: str, entries: tuple[str, ...]) -> bool:
    """``NO_PROXY``: ``*``; a name matching itself and its subdomains (a leading dot is optional);
    an IP address or a CIDR range matching IP literal hosts. Ports in entries are ignored."""
    host = host.strip("[]").lower().removesuffix(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for entry in entries:
        if entry == "*":
            return True
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(entry.strip("[]"), strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        name = name.lstrip(".").removeprefix("*.").removesuffix(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False
