"""The value readers every section parser uses: each check appends an error naming the key's
path and carries on, so one run of ``--config.check`` lists every error."""

from __future__ import annotations

import difflib
import ipaddress
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from cryptography import x509

from exporter.config.durations import format_duration, parse_duration
from exporter.support.netpolicy import is_network

# Labels the exporter sets itself (or Prometheus adds): an extra label of that name would clash.
RESERVED_LABELS = frozenset(
    {
        "target", "address", "protocol", "name", "owner", "position", "outcome", "tier", "check",
        "key_type", "algorithm", "hash", "issue", "role", "subject", "issuer", "serial",
        "fingerprint_sha256", "sans", "version", "cipher", "status", "grade", "instance", "job",
        "server_owner", "server_name", "key_usage", "extended_key_usage", "step", "minimum",
        "issuewild", "iodef", "discovery",
    }
)  # fmt: skip
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Letters, digits, hyphens, and the underscore: not in RFC 1123's host names, but in real ones
# (internal names, `_acme`-style service names), and a certificate for one is judged, not refused.
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")
# Exactly the texts ipaddress.IPv4Address takes: four decimal octets 0-255, no leading zeros.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_HEX = re.compile(r"[0-9a-f]+")
# An IPv6 zone (scope id) as an interface name or number: nothing that could end a header line.
_SCOPE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
ADDRESS_HINT = "use host, host:port, an IPv4 address, ::1 or [::1]:443"
T = TypeVar("T")
Raw = dict[str, object]


def did_you_mean(given: object, choices: Sequence[str]) -> str:
    """`` (did you mean 'server_name'?)`` for the closest valid spelling, if one is close."""
    if not isinstance(given, str):
        return ""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(given.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Reader:
    """Reads values out of the document; every check appends to ``errors`` and carries on."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.errors: list[str] = []
        self.profile_names: set[str] = {"default"}
        self.discovery_names: set[str] = set()  # `discovery:` scans, known before `reports:` refer to them

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path or '(top level)'}: {message}")

    def split_address(self, text: str) -> tuple[str, int | None]:
        return split_address(text)

    def count(self, m: Raw, key: str, path: str) -> int | None:
        value = m.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.error(_join(path, key), "expected a positive integer")
            return None
        return value

    def mapping(self, value: object, path: str, keys: Sequence[str]) -> Raw | None:
        if not isinstance(value, dict):
            self.error(path, "expected a mapping")
            return None
        result: Raw = {}
        for key, item in value.items():
            if not isinstance(key, str) or key not in keys:
                self.error(path, f"unknown key '{key}'{did_you_mean(key, keys)}")
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
        self.error(where, f"unknown value '{value}'{did_you_mean(value, options)} (one of {', '.join(options)})")
        return None

    def profile_ref(self, m: Raw, key: str, path: str) -> str | None:
        value = self.string(m, key, path)
        if value is not None and value not in self.profile_names:
            names = sorted(self.profile_names)
            hint = did_you_mean(value, names)
            self.error(_join(path, key), f"unknown profile '{value}'{hint} (one of {', '.join(names)})")
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


def is_ipv4(text: str) -> bool:
    """``text`` is an IPv4 address in the dotted-quad form the parser takes as it is."""
    return _IPV4.fullmatch(text) is not None


def check_host(host: str) -> None:
    """A host name (labels of letters, digits, hyphens, underscores; trailing dot allowed) or IPv4 literal."""
    if not host:
        raise ValueError("missing host name")
    if _IPV4.fullmatch(host):
        return
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
    """One spelling per host: an IP address compressed, a name in lower case. ``_IPV4`` matches what
    ``IPv4Address`` takes and is already canonical; only a text with a colon can be IPv6 (parsing
    every address with ``ipaddress`` was most of the load time of 100,000 targets). A name already
    in lower case is returned as it is: the duplicate check of every shard's targets keeps it, and
    the YAML reader's copy is shared (a million server names `localhost` were 58 MB)."""
    if ":" not in host:
        return host if _IPV4.fullmatch(host) else _lower(host)
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return _lower(host)


def _lower(text: str) -> str:
    lowered = text.lower()
    return text if lowered == text else lowered


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
