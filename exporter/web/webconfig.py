"""``--web.config.file``: TLS, basic auth and response headers, in the Prometheus exporter-toolkit format.

The file is validated strictly at load time, every error one line naming its key path
(``tls_server_config.min_version: unknown version 'TLS14' ...``), prefixed with the file name so
that ``--config.check`` can list the errors of both files. Relative paths are taken from the
directory of the web config file, as exporter-toolkit does.

Python's ``ssl`` module verifies every client certificate it asks for and has no verification
callback, so the two Go policies that accept a certificate without verifying it
(``RequestClientCert``, ``RequireAnyClientCert``) are refused with a message rather than
silently made stricter.

The certificate, key and client CA files are read again when one of them changes (checked at each
TLS handshake, as exporter-toolkit re-reads them for each connection), so a renewed certificate is
served without a restart; a pair that does not load (a rotation half done) keeps the previous one.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

import yaml

from exporter.config.load import _describe, parse_yaml
from exporter.support.errors import ConfigError
from exporter.support.fileio import read_regular

MAX_WEB_CONFIG_BYTES = 4 * 1024 * 1024  # a few users and TLS settings: a bigger file is a mistake
MAX_FILE_BYTES = 16 * 1024 * 1024  # certificates, keys and CA bundles of the web configuration

log = logging.getLogger("exporter.web")

TOP_KEYS = ("tls_server_config", "basic_auth_users", "http_server_config")
TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version")
# Keys of the exporter-toolkit format that tls-exporter does not implement: named as such, not "unknown".
TLS_UNSUPPORTED = (
    "cert",
    "key",
    "client_ca",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
)
HTTP_KEYS = ("headers", "http2")
TOP_UNSUPPORTED = ("rate_limit",)

# The headers exporter-toolkit lets a web config set, with the values it accepts (None: any).
HEADERS: Mapping[str, tuple[str, ...] | None] = MappingProxyType(
    {
        "Strict-Transport-Security": None,
        "X-Content-Type-Options": ("nosniff",),
        "X-Frame-Options": ("deny", "sameorigin"),
        "X-XSS-Protection": None,
        "Content-Security-Policy": None,
    }
)

TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = MappingProxyType(
    {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }
)
DEFAULT_MIN_VERSION = "TLS12"
# $2a$, $2b$, $2y$: the bcrypt variants htpasswd and the Go and Python libraries write.
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")


class ClientAuth(StrEnum):
    NO_CLIENT_CERT = "NoClientCert"
    REQUEST_CLIENT_CERT = "RequestClientCert"
    REQUIRE_ANY_CLIENT_CERT = "RequireAnyClientCert"
    VERIFY_CLIENT_CERT_IF_GIVEN = "VerifyClientCertIfGiven"
    REQUIRE_AND_VERIFY_CLIENT_CERT = "RequireAndVerifyClientCert"


UNVERIFIED_POLICIES = (ClientAuth.REQUEST_CLIENT_CERT, ClientAuth.REQUIRE_ANY_CLIENT_CERT)
VERIFY_MODES: Mapping[ClientAuth, ssl.VerifyMode] = MappingProxyType(
    {
        ClientAuth.NO_CLIENT_CERT: ssl.CERT_NONE,
        ClientAuth.VERIFY_CLIENT_CERT_IF_GIVEN: ssl.CERT_OPTIONAL,
        ClientAuth.REQUIRE_AND_VERIFY_CLIENT_CERT: ssl.CERT_REQUIRED,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSServerConfig:
    cert_file: str
    key_file: str
    client_auth_type: ClientAuth = ClientAuth.NO_CLIENT_CERT
    client_ca_file: str | None = None
    min_version: str = DEFAULT_MIN_VERSION
    max_version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebConfig:
    source: str
    tls: TLSServerConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))  # user name -> bcrypt hash
    headers: tuple[tuple[str, str], ...] = ()

    def ssl_context(self) -> ssl.SSLContext | None:
        """A server context for the listener, or None when the file sets no TLS. It serves the
        certificate files as they are at each handshake (see the module's docstring)."""
        if self.tls is None:
            return None
        return _Reloading(self.tls).listener


class _Reloading:
    """The listener's context, and the current one: rebuilt when a file's stamp changes, and put on
    each new connection from the listener's SNI callback (which OpenSSL calls for every
    ClientHello, with or without a server name)."""

    def __init__(self, tls: TLSServerConfig) -> None:
        self.tls = tls
        self.listener = _context(tls)
        self.listener.sni_callback = self._on_hello
        self.current = self.listener
        self.stamp = self._stamp()
        self.refused: tuple[tuple[int, int, int], ...] | None = None  # last stamp that did not load

    def _stamp(self) -> tuple[tuple[int, int, int], ...]:
        paths = [p for p in (self.tls.cert_file, self.tls.key_file, self.tls.client_ca_file) if p]
        stats = [os.stat(p) for p in paths]
        return tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in stats)

    def _on_hello(self, conn: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
        self._refresh()
        if self.current is not self.listener:
            conn.context = self.current
        return None

    def _refresh(self) -> None:
        try:
            stamp = self._stamp()
        except OSError:
            return  # a file is missing for a moment: keep serving what is loaded
        if stamp in (self.stamp, self.refused):
            return
        try:
            self.current = _context(self.tls)
        except (ssl.SSLError, OSError) as exc:
            self.refused = stamp  # warn once per change, not at every handshake
            log.warning(
                "TLS certificate files changed but do not load; serving the previous ones",
                extra={"fields": {"cert_file": self.tls.cert_file, "error": str(exc)}},
            )
            return
        self.stamp = stamp
        log.info("TLS certificate files reloaded", extra={"fields": {"cert_file": self.tls.cert_file}})


def _context(tls: TLSServerConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = TLS_VERSIONS[tls.min_version]
    if tls.max_version is not None:
        ctx.maximum_version = TLS_VERSIONS[tls.max_version]
    ctx.load_cert_chain(tls.cert_file, tls.key_file)
    ctx.verify_mode = VERIFY_MODES[tls.client_auth_type]
    if tls.client_ca_file is not None:
        ctx.load_verify_locations(cafile=tls.client_ca_file)
    return ctx


def load_web_config(path: str | Path) -> WebConfig:
    """Read and validate ``path``; raises ``ConfigError`` with every error, each prefixed by the path."""
    source = Path(path)
    try:
        text = read_regular(source, MAX_WEB_CONFIG_BYTES, what="web configuration file").decode("utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: cannot read: not UTF-8 text"]) from exc
    try:
        data = parse_yaml(text)  # safe_load, refusing duplicate keys, deep nesting and alias bombs
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_describe(str(path), exc)]) from exc
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from exc
    except (RecursionError, MemoryError):
        raise ConfigError([f"{path}: invalid YAML: nested too deeply or too large"]) from None
    parser = _Parser(source.parent.absolute())
    config = parser.web_config(data, str(path))
    if parser.errors:
        raise ConfigError([f"{path}: {e}" for e in parser.errors])
    return config


class _Parser:
    """One walk over the document; every check appends to ``errors`` and carries on."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path or '(top level)'}: {message}")

    def mapping(
        self, raw: object, path: str, keys: tuple[str, ...], unsupported: tuple[str, ...] = ()
    ) -> dict[str, object] | None:
        if not isinstance(raw, dict):
            self.error(path, "expected a mapping")
            return None
        out: dict[str, object] = {}
        for key, value in raw.items():
            where = f"{path}.{key}" if path else str(key)
            if key in unsupported:
                self.error(where, "not supported by tls-exporter")
            elif key not in keys:
                self.error(path, f"unknown key '{key}'")
            elif value is not None:  # an explicit null means "not set", as in the main config
                out[key] = value
        return out

    def string(self, m: Mapping[str, object], key: str, path: str) -> str | None:
        value = m.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(f"{path}.{key}", "expected a non-empty string")
            return None
        return value

    def readable(self, m: Mapping[str, object], key: str, path: str) -> str | None:
        value = self.string(m, key, path)
        if value is None:
            return None
        file = self.base_dir / value
        try:
            read_regular(file, MAX_FILE_BYTES, what=key)  # a FIFO or a device would hang or flood
        except OSError as exc:
            self.error(f"{path}.{key}", f"cannot read '{file}': {exc.strerror or exc}")
            return None
        return str(file)

    # ---- the document ---------------------------------------------------------------------

    def web_config(self, data: object, source: str) -> WebConfig:
        if data is None:  # an empty file: plain HTTP, no authentication, as exporter-toolkit
            return WebConfig(source=source)
        top = self.mapping(data, "", TOP_KEYS, TOP_UNSUPPORTED)
        if top is None:
            return WebConfig(source=source)
        tls = self.tls(top["tls_server_config"]) if "tls_server_config" in top else None
        users = self.users(top["basic_auth_users"]) if "basic_auth_users" in top else {}
        headers = self.http(top["http_server_config"]) if "http_server_config" in top else ()
        return WebConfig(source=source, tls=tls, users=MappingProxyType(users), headers=headers)

    def tls(self, raw: object) -> TLSServerConfig | None:
        path = "tls_server_config"
        m = self.mapping(raw, path, TLS_KEYS, TLS_UNSUPPORTED)
        if m is None:
            return None
        errors_before = len(self.errors)
        for required in ("cert_file", "key_file"):
            if required not in m:
                self.error(path, f"missing required key '{required}'")
        cert = self.readable(m, "cert_file", path)
        key = self.readable(m, "key_file", path)
        auth = self.client_auth(m, path)
        ca = self.readable(m, "client_ca_file", path)
        min_version = self.version(m, "min_version", path)
        max_version = self.version(m, "max_version", path)
        if auth is not None and auth != ClientAuth.NO_CLIENT_CERT and "client_ca_file" not in m:
            self.error(path, f"client_auth_type {auth} needs client_ca_file (the CA that signs client certificates)")
        if auth == ClientAuth.NO_CLIENT_CERT and "client_ca_file" in m:
            self.error(path, "client_ca_file is set but client_auth_type is NoClientCert (set the policy to use it)")
        if (
            min_version is not None
            and max_version is not None
            and TLS_VERSIONS[min_version] > TLS_VERSIONS[max_version]
        ):
            self.error(path, f"min_version {min_version} is above max_version {max_version}")
        if len(self.errors) > errors_before or cert is None or key is None or auth is None:
            return None
        config = TLSServerConfig(
            cert_file=cert,
            key_file=key,
            client_auth_type=auth,
            client_ca_file=ca,
            min_version=min_version or DEFAULT_MIN_VERSION,
            max_version=max_version,
        )
        # Load the files once now, so that a key that does not match its certificate, or a CA file
        # that holds no certificate, is a load-time error with its key path, not a failed start.
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            probe.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            self.error(path, f"cannot use cert_file '{cert}' with key_file '{key}': {_reason(exc)}")
            return None
        if ca is not None:
            try:
                probe.load_verify_locations(cafile=ca)
            except ssl.SSLError as exc:
                self.error(f"{path}.client_ca_file", f"'{ca}' holds no usable CA certificate: {_reason(exc)}")
                return None
        return config

    def client_auth(self, m: Mapping[str, object], path: str) -> ClientAuth | None:
        value = m.get("client_auth_type", ClientAuth.NO_CLIENT_CERT.value)
        where = f"{path}.client_auth_type"
        choices = ", ".join(c.value for c in ClientAuth)
        if not isinstance(value, str) or value not in {c.value for c in ClientAuth}:
            self.error(where, f"unknown client_auth_type '{value}' (one of {choices})")
            return None
        auth = ClientAuth(value)
        if auth in UNVERIFIED_POLICIES:
            self.error(
                where,
                f"{auth} is not supported: Python's TLS verifies every client certificate it asks for; "
                "use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file",
            )
            return None
        return auth

    def version(self, m: Mapping[str, object], key: str, path: str) -> str | None:
        value = m.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or value not in TLS_VERSIONS:
            self.error(f"{path}.{key}", f"unknown version '{value}' (one of {', '.join(TLS_VERSIONS)})")
            return None
        return value

    def users(self, raw: object) -> dict[str, bytes]:
        path = "basic_auth_users"
        if not isinstance(raw, dict):
            self.error(path, "expected a mapping of user name to bcrypt hash")
            return {}
        users: dict[str, bytes] = {}
        for name, digest in raw.items():
            if not isinstance(name, str) or not name or ":" in name:
                self.error(path, f"invalid user name '{name}' (non-empty, without ':')")
                continue
            where = f"{path}.{name}"
            if not isinstance(digest, str) or not _BCRYPT.fullmatch(digest):
                # Never echo the value: it may be a password written in clear by mistake.
                self.error(where, "not a bcrypt hash (expected $2a$, $2b$ or $2y$, a cost and 53 characters)")
                continue
            users[name] = digest.encode()
        return users

    def http(self, raw: object) -> tuple[tuple[str, str], ...]:
        path = "http_server_config"
        m = self.mapping(raw, path, HTTP_KEYS)
        if m is None:
            return ()
        if "http2" in m and not isinstance(m["http2"], bool):
            self.error(f"{path}.http2", "expected true or false")
        if "headers" not in m:
            return ()
        where = f"{path}.headers"
        if not isinstance(m["headers"], dict):
            self.error(where, "expected a mapping of header name to value")
            return ()
        allowed = {name.lower(): name for name in HEADERS}
        headers: list[tuple[str, str]] = []
        for name, value in m["headers"].items():
            canonical = allowed.get(str(name).lower())
            if canonical is None:
                self.error(where, f"header '{name}' cannot be configured (one of {', '.join(HEADERS)})")
                continue
            if not isinstance(value, str) or not value.strip():
                self.error(f"{where}.{name}", "expected a non-empty string")
                continue
            choices = HEADERS[canonical]
            if choices is not None and value.lower() not in choices:
                self.error(f"{where}.{name}", f"invalid value '{value}' (one of {', '.join(choices)})")
                continue
            headers.append((canonical, value))
        return tuple(headers)


def _reason(exc: ssl.SSLError) -> str:
    if exc.reason == "KEY_VALUES_MISMATCH":
        return "the key does not belong to the certificate"
    if exc.reason:
        return exc.reason.lower().replace("_", " ")
    return "not a PEM certificate and key"  # OpenSSL says only "PEM lib"
