"""Strict validation: a YAML document in, a frozen ``Config`` out, or every error at once.

Each error is one line ``dotted.path: reason`` with 0-based list indices
(``targets[3].protocol: unknown protocol 'smpt'``). Parsing goes on after an error so that one
run of ``--config.check`` lists all of them. An explicit ``null`` on an optional key means
"not set" (a value commented out), so the default applies.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from exporter.config.durations import format_duration, parse_duration
from exporter.config.model import (
    Config,
    Defaults,
    Expect,
    ExpiryTiers,
    FetchSettings,
    FileTarget,
    OwnerRule,
    ProbeSettings,
    Profile,
    RevocationMode,
    SeriesSet,
    Target,
    Threshold,
)
from exporter.config.parse_notify import parse_notifications, parse_reports
from exporter.errors import ConfigError
from exporter.fileio import read_regular
from exporter.limits import MAX_BUNDLE_BYTES
from exporter.netpolicy import is_network
from exporter.protocols import PROTOCOLS
from exporter.proxyurl import ProxyURL, parse_proxy_url
from exporter.tls.client import ClientCertificate, client_context

TOP_KEYS = (
    "defaults",
    "profiles",
    "targets",
    "files",
    "certificate_owners",
    "probe",
    "fetch",
    "notifications",
    "reports",
)
DEFAULTS_KEYS = ("interval", "timeout", "profile", "owner", "max_certificates_per_file")
PROFILE_KEYS = (
    "expiry_tiers",
    "trust",
    "min_key_bits",
    "weak_signature_hashes",
    "min_tls_version",
    "max_validity",
    "revocation",
    "scan_protocol_versions",
    "scan_interval",
    "revocation_interval",
    "log_repeat",
    "proxy_url",
    "client_cert",
    "client_key",
    "series",
)
TIER_KEYS = ("info", "warning", "critical")
KEY_TYPES = ("rsa", "ec", "dsa")
HASHES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
TLS_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
REVOCATION_MODES = ("ocsp", "crl", "none")
TARGET_KEYS = (
    "address",
    "protocol",
    "server_name",
    "name",
    "owner",
    "labels",
    "all_addresses",
    "expect",
    "interval",
    "timeout",
    "profile",
)
EXPECT_KEYS = ("certificate", "serial", "fingerprint_sha256")
FILE_KEYS = (
    "path",
    "name",
    "owner",
    "labels",
    "interval",
    "profile",
    "password_env",
    "password_file",
    "max_certificates_per_file",
)
OWNER_RULE_KEYS = ("match", "owner")
MATCH_KEYS = ("subject_cn", "san", "issuer_cn", "fingerprint_sha256")
PROBE_KEYS = ("allow",)
FETCH_KEYS = ("allow", "deny")

# Labels the exporter sets itself (or Prometheus adds): an extra label of that name would clash.
RESERVED_LABELS = frozenset(
    {
        "target", "address", "protocol", "name", "owner", "position", "outcome", "tier", "check",
        "key_type", "algorithm", "hash", "issue", "role", "subject", "issuer", "serial",
        "fingerprint_sha256", "sans", "version", "cipher", "status", "grade", "instance", "job",
        "server_owner", "server_name", "key_usage", "extended_key_usage", "step", "minimum",
    }
)  # fmt: skip

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")
_HEX = re.compile(r"[0-9a-f]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# An IPv6 zone (scope id) as an interface name or number: nothing that could end a header line.
_SCOPE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)

MAX_CERTIFICATE_BYTES = 1024 * 1024  # an expected certificate file
ADDRESS_HINT = "use host, host:port, an IPv4 address, ::1 or [::1]:443"
SECONDS_PER_DAY = 86400.0

T = TypeVar("T")
Raw = dict[str, object]


def parse_config(data: object, *, base_dir: Path) -> Config:
    """Validate a loaded YAML document; relative paths in it are taken from ``base_dir``."""
    parser = _Parser(base_dir)
    config = parser.config(data)
    if parser.errors:
        raise ConfigError(parser.errors)
    return config


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Parser:
    """Walks the document once; every check appends to ``errors`` and carries on."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.errors: list[str] = []
        self.profile_names: set[str] = {"default"}

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path or '(top level)'}: {message}")

    def split_address(self, text: str) -> tuple[str, int | None]:
        return split_address(text)

    # ---- the document -------------------------------------------------------------------

    def config(self, data: object) -> Config:
        if data is None:
            return Config()
        top = self.mapping(data, "", TOP_KEYS)
        if top is None:
            return Config()
        # Profile names are known before anything refers to them, wherever they appear.
        profiles = top.get("profiles")
        if isinstance(profiles, dict):
            self.profile_names |= {k for k in profiles if isinstance(k, str)}
        defaults = self.defaults(top.get("defaults"))
        return Config(
            defaults=defaults,
            profiles=MappingProxyType(self.profiles(top.get("profiles"))),
            targets=self.targets(top.get("targets"), defaults),
            files=self.files(top.get("files"), defaults),
            certificate_owners=self.owner_rules(top.get("certificate_owners")),
            probe=self.probe(top.get("probe")),
            fetch=self.fetch(top.get("fetch")),
            notifications=parse_notifications(self, top.get("notifications")),
            reports=parse_reports(self, top.get("reports")),
        )

    def defaults(self, raw: object) -> Defaults:
        base = Defaults()
        m = self.mapping(raw, "defaults", DEFAULTS_KEYS) if raw is not None else None
        if m is None:
            return base
        interval = self.duration(m, "interval", "defaults")
        timeout = self.duration(m, "timeout", "defaults")
        defaults = Defaults(
            interval=_or(interval, base.interval),
            timeout=_or(timeout, base.timeout),
            profile=_or(self.profile_ref(m, "profile", "defaults"), base.profile),
            owner=_or(self.string(m, "owner", "defaults", empty_ok=True), base.owner),
            max_certificates_per_file=_or(
                self.count(m, "max_certificates_per_file", "defaults"), base.max_certificates_per_file
            ),
        )
        if self.timing_given(m, interval, timeout):
            self.check_timeout(defaults.timeout, defaults.interval, "defaults")
        return defaults

    # ---- profiles -----------------------------------------------------------------------

    def profiles(self, raw: object) -> dict[str, Profile]:
        result = {"default": Profile()}
        if raw is None:
            return result
        if not isinstance(raw, dict):
            self.error("profiles", "expected a mapping")
            return result
        for name, body in raw.items():
            if not isinstance(name, str) or not name.strip():
                self.error("profiles", f"invalid profile name '{name}'")
                continue
            result[name] = self.profile(name, {} if body is None else body, f"profiles.{name}")
        return result

    def profile(self, name: str, body: object, path: str) -> Profile:
        # Every profile, `default` included, overlays the built-in default profile.
        base = Profile(name=name)
        m = self.mapping(body, path, PROFILE_KEYS)
        if m is None:
            return base
        # Evaluated in key order so that errors come out in that order too.
        tiers = self.tiers(m["expiry_tiers"], _join(path, "expiry_tiers")) if "expiry_tiers" in m else None
        trust = self.trust(m, path)
        min_key_bits = self.min_key_bits(m, path, base)
        weak_hashes = self.choices(m, "weak_signature_hashes", path, HASHES)
        min_tls_version = self.choice(m, "min_tls_version", path, TLS_VERSIONS)
        max_validity = self.duration(m, "max_validity", path)
        revocation = self.choice(m, "revocation", path, REVOCATION_MODES)
        scan = self.boolean(m, "scan_protocol_versions", path)
        scan_interval = self.duration(m, "scan_interval", path)
        revocation_interval = self.duration(m, "revocation_interval", path)
        log_repeat = self.duration(m, "log_repeat", path)
        proxy_url = self.proxy_url(m, path)
        client_cert, client_key = self.client_certificate(m, path)
        series = self.choice(m, "series", path, tuple(SeriesSet))
        return Profile(
            name=name,
            expiry_tiers=_or(tiers, base.expiry_tiers),
            trust=_or(trust, base.trust),
            min_key_bits=_or(min_key_bits, base.min_key_bits),
            weak_signature_hashes=_or(weak_hashes, base.weak_signature_hashes),
            min_tls_version=_or(min_tls_version, base.min_tls_version),
            max_validity=_or(max_validity, base.max_validity),
            revocation=base.revocation if revocation is None else RevocationMode(revocation),
            revocation_interval=_or(revocation_interval, base.revocation_interval),
            log_repeat=_or(log_repeat, base.log_repeat),
            client_cert=client_cert,
            client_key=client_key,
            scan_protocol_versions=_or(scan, base.scan_protocol_versions),
            scan_interval=_or(scan_interval, base.scan_interval),
            proxy_url=proxy_url,
            series=base.series if series is None else SeriesSet(series),
        )

    def proxy_url(self, m: Raw, path: str) -> ProxyURL | None:
        value = self.string(m, "proxy_url", path)
        if value is None:
            return None
        try:
            return parse_proxy_url(value)
        except ValueError as exc:
            self.error(_join(path, "proxy_url"), str(exc))
            return None

    def tiers(self, raw: object, path: str) -> ExpiryTiers | None:
        # Given tiers replace the defaults as a whole: an omitted tier is disabled.
        m = self.mapping(raw, path, TIER_KEYS)
        if m is None:
            return None
        found: dict[str, Threshold] = {}
        for tier in TIER_KEYS:
            if tier in m and (threshold := self.threshold(m[tier], _join(path, tier))) is not None:
                found[tier] = threshold
        for kind in ("days", "percent"):
            present = [(t, found[t], str(m[t]).strip()) for t in TIER_KEYS if getattr(found.get(t), kind, None)]
            for (upper, a, a_text), (lower, b, b_text) in pairwise(present):
                if getattr(a, kind) < getattr(b, kind):
                    self.error(path, f"{upper} ({a_text}) must not be less than {lower} ({b_text})")
        return ExpiryTiers(info=found.get("info"), warning=found.get("warning"), critical=found.get("critical"))

    def threshold(self, value: object, path: str) -> Threshold | None:
        text = value.strip() if isinstance(value, str) else ""
        if match := _PERCENT.fullmatch(text):
            percent = float(match[1])
            if 0 < percent <= 100:
                return Threshold(percent=percent)
            self.error(path, f"invalid percentage '{text}' (more than 0% and at most 100%)")
            return None
        try:
            seconds = parse_duration(text)
        except ValueError:
            hint = "use days left like 30d, or a share of the lifetime like 33%"
            self.error(path, f"invalid threshold '{value}' ({hint})")
            return None
        if seconds <= 0:
            self.error(path, f"must be greater than 0 (got '{text}')")
            return None
        return Threshold(days=seconds / SECONDS_PER_DAY)

    def trust(self, m: Raw, path: str) -> str | None:
        value = self.string(m, "trust", path)
        if value is None or value == "system":
            return value
        bundle = self.resolve(value)
        where = _join(path, "trust")
        try:
            data = read_regular(bundle, MAX_BUNDLE_BYTES, what="trust bundle")
        except OSError as exc:
            self.error(where, f"cannot read '{bundle}': {exc.strerror or exc}")
            return None
        if not any(_parses(block) for block in _PEM_CERT.findall(data)):
            self.error(where, f"'{bundle}' contains no PEM certificate")
            return None
        return str(bundle)

    def client_certificate(self, m: Raw, path: str) -> tuple[str | None, str | None]:
        """``client_cert`` and ``client_key``: both or neither; the certificate and the key must
        load and belong together (checked now, so a probe never fails for a typo)."""
        cert, key = self.string(m, "client_cert", path), self.string(m, "client_key", path)
        if (cert is None) != (key is None):
            self.error(path, "give both client_cert and client_key, or neither")
            return None, None
        if cert is None or key is None:
            return None, None
        cert_path, key_path = self.resolve(cert), self.resolve(key)
        for key_name, file, what in (
            ("client_cert", cert_path, "client certificate"),
            ("client_key", key_path, "client key"),
        ):
            try:  # OpenSSL would block on a FIFO and read a device for ever: regular files only
                read_regular(file, MAX_BUNDLE_BYTES, what=what)
            except OSError as exc:
                self.error(_join(path, key_name), f"cannot read '{file}': {exc.strerror or exc}")
                return None, None
        try:
            client_context(ClientCertificate(str(cert_path), str(key_path)))
        except Exception as exc:  # pyOpenSSL names the file and the reason
            reason = "; ".join(str(a) for a in getattr(exc, "args", ()) if a) or type(exc).__name__
            self.error(_join(path, "client_cert"), f"cannot use '{cert_path}' with '{key_path}': {reason}")
            return None, None
        return str(cert_path), str(key_path)

    def min_key_bits(self, m: Raw, path: str, base: Profile) -> MappingProxyType[str, int] | None:
        if "min_key_bits" not in m:
            return None
        where = _join(path, "min_key_bits")
        bits = self.mapping(m["min_key_bits"], where, KEY_TYPES)
        if bits is None:
            return None
        # Key types not named keep the built-in minimum.
        merged = dict(base.min_key_bits)
        for key_type, value in bits.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                self.error(_join(where, key_type), "expected a positive integer")
            else:
                merged[key_type] = value
        return MappingProxyType(merged)

    # ---- targets ------------------------------------------------------------------------

    def targets(self, raw: object, defaults: Defaults) -> tuple[Target, ...]:
        items = self.sequence(raw, "targets")
        result: list[Target] = []
        seen: dict[tuple[str, str, int, str], int] = {}
        for index, item in enumerate(items):
            path = f"targets[{index}]"
            target = self.target(item, path, defaults)
            if target is None:
                continue
            # One endpoint, however it is spelt (case, trailing dot, default port written or not);
            # the server name is part of it: one address with two server names is two targets.
            key = (target.protocol, _canonical_host(target.host), target.port, _canonical_host(target.server_name))
            if key in seen:
                self.error(path, f"duplicate of targets[{seen[key]}] (same protocol, address and server name)")
                continue
            seen[key] = index
            result.append(target)
        endpoints = Counter((t.protocol, _canonical_host(t.host), t.port) for t in result)
        return tuple(
            dataclasses.replace(t, label_server_name=True)
            if endpoints[(t.protocol, _canonical_host(t.host), t.port)] > 1
            else t
            for t in result
        )

    def target(self, item: object, path: str, defaults: Defaults) -> Target | None:
        m = self.mapping(item, path, TARGET_KEYS)
        if m is None:
            return None
        protocol = self.protocol(m, path)
        address = self.address(m, path, protocol)
        server_name = self.server_name(m, path)
        name = self.string(m, "name", path)
        owner = self.string(m, "owner", path, empty_ok=True)
        labels = self.labels(m, path)
        all_addresses = self.boolean(m, "all_addresses", path)
        expect = self.expect(m, path)
        interval = self.duration(m, "interval", path)
        timeout = self.duration(m, "timeout", path)
        profile = self.profile_ref(m, "profile", path)
        if self.timing_given(m, interval, timeout):
            self.check_timeout(_or(timeout, defaults.timeout), _or(interval, defaults.interval), path)
        if address is None or protocol is None:
            return None
        text, host, port = address
        return Target(
            target=text,
            host=host,
            port=port,
            protocol=protocol,
            server_name=_or(server_name, host),
            name=_or(name, text),
            owner=_or(owner, defaults.owner),
            labels=_or(labels, ()),
            all_addresses=_or(all_addresses, True),
            expect=expect,
            interval=_or(interval, defaults.interval),
            timeout=_or(timeout, defaults.timeout),
            profile=_or(profile, defaults.profile),
        )

    def protocol(self, m: Raw, path: str) -> str | None:
        if "protocol" not in m:
            return "https"
        value = self.string(m, "protocol", path)
        if value is None:
            return None
        if value.lower() not in PROTOCOLS:
            self.error(_join(path, "protocol"), f"unknown protocol '{value}'")
            return None
        return value.lower()

    def address(self, m: Raw, path: str, protocol: str | None) -> tuple[str, str, int] | None:
        if "address" not in m:
            self.error(path, "missing required key 'address'")
            return None
        text = self.string(m, "address", path)
        if text is None:
            return None
        where = _join(path, "address")
        try:
            host, port = split_address(text)
        except ValueError as exc:
            self.error(where, str(exc))
            return None
        if protocol is None:  # already reported; the port cannot be judged
            return None
        if port is None:
            port = PROTOCOLS[protocol].default_port
            if port is None:
                self.error(where, f"protocol '{protocol}' has no default port: write host:port")
                return None
        return text, host, port

    def server_name(self, m: Raw, path: str) -> str | None:
        value = self.string(m, "server_name", path)
        if value is None:
            return None
        try:
            check_server_name(value)
        except ValueError:
            self.error(_join(path, "server_name"), f"invalid server name {_visible(value)}")
            return None
        return value

    def expect(self, m: Raw, path: str) -> Expect | None:
        if "expect" not in m:
            return None
        where = _join(path, "expect")
        e = self.mapping(m["expect"], where, EXPECT_KEYS)
        if e is None:
            return None
        if len(e) != 1:
            self.error(where, "give exactly one of certificate, serial, fingerprint_sha256")
            return None
        key, value = next(iter(e.items()))
        if not isinstance(value, str):
            # Unquoted YAML turns 1234 or 0x1f into numbers; the serial's digits would be lost.
            hint = " (quote it)" if isinstance(value, int | float) else ""
            self.error(_join(where, key), f"expected a string{hint}")
            return None
        if key == "certificate":
            return self.expected_certificate(value.strip(), _join(where, key))
        if key == "serial":
            serial = normalise_serial(value)
            if serial is None:
                self.error(_join(where, key), f"invalid serial '{value}' (hex digits, colons or 0x allowed)")
                return None
            return Expect(serial=serial)
        fingerprint = normalise_fingerprint(value)
        if fingerprint is None:
            self.error(_join(where, key), f"invalid fingerprint '{value}' (64 hex digits, colons allowed)")
            return None
        return Expect(fingerprint_sha256=fingerprint)

    def expected_certificate(self, value: str, where: str) -> Expect | None:
        if not value:
            self.error(where, "must not be empty")
            return None
        path = self.resolve(value)
        try:
            data = read_regular(path, MAX_CERTIFICATE_BYTES, what="expected certificate")
        except OSError as exc:
            self.error(where, f"cannot read '{path}': {exc.strerror or exc}")
            return None
        cert = _first_certificate(data)
        if cert is None:
            self.error(where, f"'{path}' is not a PEM or DER certificate")
            return None
        return Expect(
            serial=format(cert.serial_number, "x"),
            fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        )

    # ---- files, owners, probe -----------------------------------------------------------

    def files(self, raw: object, defaults: Defaults) -> tuple[FileTarget, ...]:
        result: list[FileTarget] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(self.sequence(raw, "files")):
            path = f"files[{index}]"
            entry = self.file(item, path, defaults)
            if entry is None:
                continue
            if entry.path in seen:
                self.error(path, f"duplicate of files[{seen[entry.path]}] (same path)")
                continue
            seen[entry.path] = index
            result.append(entry)
        return tuple(result)

    def file(self, item: object, path: str, defaults: Defaults) -> FileTarget | None:
        m = self.mapping(item, path, FILE_KEYS)
        if m is None:
            return None
        if "path" not in m:
            self.error(path, "missing required key 'path'")
        pattern = self.string(m, "path", path)
        name = self.string(m, "name", path)
        owner = self.string(m, "owner", path, empty_ok=True)
        labels = self.labels(m, path)
        interval = self.duration(m, "interval", path)
        profile = self.profile_ref(m, "profile", path)
        password_env = self.string(m, "password_env", path)
        if password_env is not None and not _ENV_NAME.fullmatch(password_env):
            self.error(_join(path, "password_env"), f"invalid environment variable name '{password_env}'")
        password_file = self.string(m, "password_file", path)
        if password_env is not None and password_file is not None:
            self.error(path, "give at most one of password_env, password_file")
        if pattern is None:
            return None
        resolved = str(self.resolve(pattern))
        return FileTarget(
            path=resolved,
            name=_or(name, resolved),
            owner=_or(owner, defaults.owner),
            labels=_or(labels, ()),
            interval=_or(interval, defaults.interval),
            timeout=defaults.timeout,
            profile=_or(profile, defaults.profile),
            password_env=password_env,
            password_file=None if password_file is None else str(self.resolve(password_file)),
            max_certificates=_or(self.count(m, "max_certificates_per_file", path), defaults.max_certificates_per_file),
        )

    def owner_rules(self, raw: object) -> tuple[OwnerRule, ...]:
        rules: list[OwnerRule] = []
        for index, item in enumerate(self.sequence(raw, "certificate_owners")):
            path = f"certificate_owners[{index}]"
            m = self.mapping(item, path, OWNER_RULE_KEYS)
            if m is None:
                continue
            for required in OWNER_RULE_KEYS:
                if required not in m:
                    self.error(path, f"missing required key '{required}'")
            match = self.match(m, path)
            owner = self.string(m, "owner", path)
            if match is not None and owner is not None:
                rules.append(OwnerRule(field=match[0], pattern=match[1], owner=owner))
        return tuple(rules)

    def match(self, m: Raw, path: str) -> tuple[str, str] | None:
        if "match" not in m:
            return None
        where = _join(path, "match")
        match = self.mapping(m["match"], where, MATCH_KEYS)
        if match is None:
            return None
        if len(match) != 1:
            self.error(where, "give exactly one of subject_cn, san, issuer_cn, fingerprint_sha256")
            return None
        field = next(iter(match))
        pattern = self.string(match, field, where)
        return None if pattern is None else (field, pattern)

    def probe(self, raw: object) -> ProbeSettings:
        m = self.mapping(raw, "probe", PROBE_KEYS) if raw is not None else None
        if m is None or "allow" not in m:
            return ProbeSettings()
        return ProbeSettings(allow=self.patterns(m["allow"], "probe.allow"))

    def fetch(self, raw: object) -> FetchSettings:
        base = FetchSettings()
        m = self.mapping(raw, "fetch", FETCH_KEYS) if raw is not None else None
        if m is None:
            return base
        allow = self.patterns(m["allow"], "fetch.allow") if m.get("allow") is not None else base.allow
        deny = self.patterns(m["deny"], "fetch.deny") if m.get("deny") is not None else base.deny
        return FetchSettings(allow=allow, deny=deny)

    def patterns(self, raw: object, path: str) -> tuple[str, ...]:
        """Host globs and CIDR ranges (probe.allow, fetch.allow, fetch.deny)."""
        found: list[str] = []
        for index, entry in enumerate(self.sequence(raw, path)):
            where = f"{path}[{index}]"
            if not isinstance(entry, str):
                self.error(where, "expected a string")
            elif not entry.strip():
                self.error(where, "must not be empty")
            elif "/" in entry and not is_network(entry.strip()):
                self.error(where, f"invalid CIDR range '{entry.strip()}'")
            else:
                found.append(entry.strip())
        return tuple(found)

    def count(self, m: Raw, key: str, path: str) -> int | None:
        value = m.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.error(_join(path, key), "expected a positive integer")
            return None
        return value

    # ---- shared value readers: each returns None when absent or wrong (and reports) ------

    def mapping(self, value: object, path: str, keys: Sequence[str]) -> Raw | None:
        if not isinstance(value, dict):
            self.error(path, "expected a mapping")
            return None
        result: Raw = {}
        for key, item in value.items():
            if not isinstance(key, str) or key not in keys:
                self.error(path, f"unknown key '{key}'")
            elif item is not None:
                result[key] = item
        return result

    def sequence(self, value: object, path: str) -> list[object]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(path, "expected a list")
            return []
        return value

    def string(self, m: Raw, key: str, path: str, *, empty_ok: bool = False) -> str | None:
        if key not in m:
            return None
        value = m[key]
        if not isinstance(value, str):
            self.error(_join(path, key), "expected a string")
            return None
        if not value.strip() and not empty_ok:
            self.error(_join(path, key), "must not be empty")
            return None
        if not _utf8(value):
            self.error(_join(path, key), f"not valid UTF-8 text: {_visible(value)}")
            return None
        return value.strip()

    def boolean(self, m: Raw, key: str, path: str) -> bool | None:
        if key not in m:
            return None
        value = m[key]
        if not isinstance(value, bool):
            self.error(_join(path, key), "expected a boolean")
            return None
        return value

    def duration(self, m: Raw, key: str, path: str) -> float | None:
        if key not in m:
            return None
        try:
            seconds = parse_duration(m[key])
        except ValueError as exc:
            self.error(_join(path, key), str(exc))
            return None
        if seconds <= 0:
            self.error(_join(path, key), f"must be greater than 0 (got '{m[key]}')")
            return None
        return seconds

    @staticmethod
    def timing_given(m: Raw, interval: float | None, timeout: float | None) -> bool:
        """Compare timeout with interval only when one is set here and neither was rejected."""
        rejected = ("interval" in m and interval is None) or ("timeout" in m and timeout is None)
        return not rejected and (interval is not None or timeout is not None)

    def check_timeout(self, timeout: float, interval: float, path: str) -> None:
        if timeout > interval:
            self.error(
                path, f"timeout ({format_duration(timeout)}) must not exceed interval ({format_duration(interval)})"
            )

    def choice(self, m: Raw, key: str, path: str, options: Sequence[str]) -> str | None:
        value = self.string(m, key, path)
        return None if value is None else self.option(value, _join(path, key), options)

    def choices(self, m: Raw, key: str, path: str, options: Sequence[str]) -> tuple[str, ...] | None:
        if key not in m:
            return None
        where = _join(path, key)
        chosen: list[str] = []
        for index, value in enumerate(self.sequence(m[key], where)):
            if not isinstance(value, str):
                self.error(f"{where}[{index}]", "expected a string")
            elif (option := self.option(value.strip(), f"{where}[{index}]", options)) and option not in chosen:
                chosen.append(option)
        return tuple(chosen)

    def option(self, value: str, where: str, options: Sequence[str]) -> str | None:
        # Case is forgiven (tlsv1.2, SHA1); the stored value is the canonical spelling.
        for option in options:
            if option.lower() == value.lower():
                return option
        self.error(where, f"unknown value '{value}' (one of {', '.join(options)})")
        return None

    def profile_ref(self, m: Raw, key: str, path: str) -> str | None:
        value = self.string(m, key, path)
        if value is not None and value not in self.profile_names:
            self.error(_join(path, key), f"unknown profile '{value}'")
            return None
        return value

    def labels(self, m: Raw, path: str) -> tuple[tuple[str, str], ...] | None:
        if "labels" not in m:
            return None
        where = _join(path, "labels")
        raw = m["labels"]
        if not isinstance(raw, dict):
            self.error(where, "expected a mapping")
            return None
        labels: list[tuple[str, str]] = []
        for key, value in raw.items():
            if not isinstance(key, str) or not _LABEL_NAME.fullmatch(key):
                self.error(where, f"invalid label name '{key}' (letters, digits and _, not starting with a digit)")
            elif key.startswith("__"):
                self.error(where, f"invalid label name '{key}' (names starting with __ are reserved)")
            elif key in RESERVED_LABELS:
                self.error(where, f"label '{key}' is set by the exporter; choose another name")
            elif not isinstance(value, str):
                self.error(_join(where, key), "expected a string")
            elif not _utf8(value):
                self.error(_join(where, key), f"not valid UTF-8 text: {_visible(value)}")
            else:
                labels.append((key, value))
        return tuple(labels)

    def resolve(self, value: str) -> Path:
        # Absolute even when parse_config was given a relative base_dir: the cwd may change later.
        return (self.base_dir / Path(value).expanduser()).absolute()


# ---- pure helpers ---------------------------------------------------------------------------


def split_address(text: str) -> tuple[str, int | None]:
    """``(host, port or None)`` of a target address; ValueError says what is wrong."""
    if "://" in text:
        raise ValueError(f"invalid address '{text}' (no URL scheme: set protocol instead)")
    if text.startswith("["):
        match = re.fullmatch(r"\[([^\]]*)\](?::(.*))?", text)
        if match is None or not _is_ipv6(match[1]):
            raise ValueError(f"invalid address '{text}' ({ADDRESS_HINT})")
        return match[1], None if match[2] is None else _port(match[2])
    if text.count(":") > 1:
        if not _is_ipv6(text):
            raise ValueError(f"invalid address '{text}' ({ADDRESS_HINT})")
        return text, None
    host, colon, port = text.partition(":")
    check_host(host)
    return host.removesuffix("."), _port(port) if colon else None


def check_server_name(name: str) -> None:
    """A DNS name or an IP literal, nothing else: it goes into the SNI and the HSTS `Host:` header."""
    if "%" in name:  # an IPv6 zone is local to this machine, never a name to present
        raise ValueError(f"invalid server name {name!r}")
    try:
        check_host(name)
    except ValueError:
        if not _is_ipv6(name):
            raise


def check_host(host: str) -> None:
    """A host name (labels of letters, digits, hyphens; trailing dot allowed) or IPv4 literal."""
    if not host:
        raise ValueError("missing host name")
    try:
        ipaddress.IPv4Address(host)
        return
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if len(host) > 254 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"invalid host name '{host}'")
    if all(label.isdigit() for label in labels):
        raise ValueError(f"invalid IPv4 address '{host}'")


def normalise_serial(value: str) -> str | None:
    """Lowercase hex without leading zeros; accepts any case, colons and a 0x prefix."""
    digits = value.strip().lower().replace(":", "").removeprefix("0x")
    return format(int(digits, 16), "x") if _HEX.fullmatch(digits) else None


def normalise_fingerprint(value: str) -> str | None:
    digits = value.strip().lower().replace(":", "")
    return digits if len(digits) == 64 and _HEX.fullmatch(digits) else None


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ValueError(f"invalid port '{text}' (1-65535)")
    return int(text)


def _is_ipv6(text: str) -> bool:
    address, percent, zone = text.partition("%")
    if percent and not _SCOPE_ID.fullmatch(zone):
        return False  # ipaddress takes any zone text, CR and LF included
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def _utf8(text: str) -> bool:
    """False for text that cannot be written as UTF-8 (lone surrogates, e.g. from `"\\udc80"`)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _visible(text: str) -> str:
    """``text`` quoted for an error message, control characters and undecodable bytes escaped."""
    return ascii(text) if not text.isprintable() or not _utf8(text) else f"'{text}'"


def _canonical_host(host: str) -> str:
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower()


def _parses(pem: bytes) -> bool:
    return _load_pem(pem) is not None


def _load_pem(pem: bytes) -> x509.Certificate | None:
    # System bundles hold roots with non-positive serials, which cryptography warns about.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return x509.load_pem_x509_certificate(pem)
        except ValueError:
            return None


def _first_certificate(data: bytes) -> x509.Certificate | None:
    """The first certificate of a PEM file (the leaf, by convention) or of a DER file."""
    blocks = _PEM_CERT.findall(data)
    if blocks:
        return _load_pem(blocks[0])
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        return None
