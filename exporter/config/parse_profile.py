"""The `profiles:` section: validation rules and alarm thresholds; a profile names only what it
changes, the rest comes from the built-in default."""

from __future__ import annotations

import re
from itertools import pairwise
from types import MappingProxyType

from exporter.config.durations import parse_duration
from exporter.config.model import (
    ExpiryTiers,
    Profile,
    RevocationMode,
    SeriesSet,
    Threshold,
)
from exporter.config.reader import _PEM_CERT, Raw, Reader, _join, _or, _parses
from exporter.support.fileio import read_regular
from exporter.support.limits import MAX_BUNDLE_BYTES
from exporter.support.proxyurl import ProxyURL, parse_proxy_url
from exporter.tls.client import ClientCertificate, client_context

PROFILE_KEYS = (
    "expiry_tiers",
    "trust",
    "validation_policy",
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
    "dane",
    "caa",
)
TIER_KEYS = ("info", "warning", "critical")
KEY_TYPES = ("rsa", "ec", "dsa")
HASHES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
TLS_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
REVOCATION_MODES = ("ocsp", "crl", "none")
VALIDATION_POLICIES = ("webpki", "rfc5280")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")
SECONDS_PER_DAY = 86400.0


class ProfileParser(Reader):
    """`profiles:` and the profile keys."""

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
        validation_policy = self.choice(m, "validation_policy", path, VALIDATION_POLICIES)
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
        dane = self.boolean(m, "dane", path)
        caa = self.boolean(m, "caa", path)
        return Profile(
            name=name,
            expiry_tiers=_or(tiers, base.expiry_tiers),
            trust=_or(trust, base.trust),
            validation_policy=validation_policy,
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
            dane=_or(dane, base.dane),
            caa=_or(caa, base.caa),
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
