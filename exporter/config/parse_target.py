"""The `targets:` entries: one mapping in, a ``Target`` out, or errors naming its keys.

Apart from ``parse`` (the document's parser takes it in) so that `check TARGET` and ``/probe``
validate one address without importing the whole configuration parser (YAML, discovery,
notifications ...): ``check`` starts faster without them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes

from exporter.config.model import Defaults, Expect, Target, target_key
from exporter.config.parse_targets import Valid
from exporter.config.reader import (
    Raw,
    Reader,
    _canonical_host,
    _first_certificate,
    _join,
    _or,
    _visible,
    check_server_name,
    did_you_mean,
    normalise_fingerprint,
    normalise_serial,
    split_address,
)
from exporter.support.errors import ConfigError
from exporter.support.fileio import read_regular
from exporter.support.protocols import PROTOCOLS

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
MAX_CERTIFICATE_BYTES = 1024 * 1024  # an expected certificate file


def parse_target(entry: object, path: str, *, base_dir: Path, defaults: Defaults | None = None) -> Target:
    """One entry of `targets:` at ``path``, as ``parse_config`` reads it (with ``Defaults()`` unless
    given); ConfigError holds the same error lines it would."""
    parser = TargetParser(base_dir)
    target = parser.target(entry, path, defaults or Defaults())
    if parser.errors or target is None:
        raise ConfigError(parser.errors)
    return target


class TargetParser(Reader):
    """The readers of one `targets:` entry; every check appends to ``errors`` and carries on.
    ``owns``: a shard's test of a target key (None: every target is this instance's)."""

    owns: Callable[[str], bool] | None = None

    def target(self, item: object, path: str, defaults: Defaults) -> Target | None:
        valid = self.checked(item, path, defaults)
        return valid[4] if valid is not None and isinstance(valid[4], Target) else None

    def checked(self, item: object, path: str, defaults: Defaults) -> Valid | None:
        """The entry as the duplicate check sees it, with its target when this shard owns it:
        another shard's entry is checked the same way but never built."""
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
        server_name = _or(server_name, host)
        canonical = _canonical_host(host)
        endpoint_name = canonical if server_name == host else _canonical_host(server_name)
        if self.owns is not None and not self.owns(target_key(protocol, text, host, server_name)):
            unowned = (
                text,
                protocol,
                server_name,
                _or(owner, defaults.owner),
                _or(name, text),
                _or(labels, ()),
                _or(profile, defaults.profile),
            )
            return protocol, canonical, port, endpoint_name, unowned
        target = Target(
            target=text,
            host=host,
            port=port,
            protocol=protocol,
            server_name=server_name,
            name=_or(name, text),
            owner=_or(owner, defaults.owner),
            labels=_or(labels, ()),
            all_addresses=_or(all_addresses, True),
            expect=expect,
            interval=_or(interval, defaults.interval),
            timeout=_or(timeout, defaults.timeout),
            profile=_or(profile, defaults.profile),
        )
        return protocol, canonical, port, endpoint_name, target

    def protocol(self, m: Raw, path: str) -> str | None:
        if "protocol" not in m:
            return "https"
        value = self.string(m, "protocol", path)
        if value is None:
            return None
        if value.lower() not in PROTOCOLS:
            names = sorted(PROTOCOLS)
            hint = did_you_mean(value, names)
            self.error(_join(path, "protocol"), f"unknown protocol '{value}'{hint} (one of {', '.join(names)})")
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
