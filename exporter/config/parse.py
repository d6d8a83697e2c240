"""Strict validation: a YAML document in, a frozen ``Config`` out, or every error at once.

Each error is one line ``dotted.path: reason`` with 0-based list indices
(``targets[3].protocol: unknown protocol 'smpt'``). Parsing goes on after an error so that one
run of ``--config.check`` lists all of them. An explicit ``null`` on an optional key means
"not set" (a value commented out), so the default applies.

One parser per section, beside its model: the document, defaults, files, owners, probe and fetch
here; a `targets:` entry in ``parse_target``, the list of targets as a whole (duplicates and a
shard's share) in ``parse_targets``; `profiles:` in ``parse_profile``; notifications and reports in
``parse_notify``; the value readers they share (strings, durations, labels, addresses ...) in
``reader``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

from exporter.config.discovery import parse_discovery
from exporter.config.model import (
    Config,
    Defaults,
    DnsSettings,
    FetchSettings,
    FileTarget,
    OwnerRule,
    ProbeSettings,
    Target,
)
from exporter.config.parse_notify import parse_notifications, parse_reports
from exporter.config.parse_profile import ProfileParser
from exporter.config.parse_target import TargetParser
from exporter.config.parse_targets import CheckedTargets, TargetList
from exporter.config.reader import (
    Raw,
    _join,
    _or,
    split_address,
)
from exporter.config.sections import SECTIONS
from exporter.support.errors import ConfigError

TOP_KEYS = (
    "defaults",
    "profiles",
    "targets",
    "files",
    "certificate_owners",
    "probe",
    "fetch",
    "dns",
    "caa_issuer_domains",
    "notifications",
    "reports",
    "discovery",
    *SECTIONS,
)
DEFAULTS_KEYS = ("interval", "timeout", "profile", "owner", "max_certificates_per_file")
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
DNS_KEYS = ("resolver",)
_CAA_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_config(
    data: object, *, base_dir: Path, owns: Callable[[str], bool] | None = None, release: bool = False
) -> Config:
    """Validate a loaded YAML document; relative paths in it are taken from ``base_dir``. With
    ``owns`` (a shard's test of a target key), every target is validated but only those it owns are
    built and kept: the errors are the same for every shard. With ``release`` the caller hands the
    document over: each entry of `targets:` is dropped from it once checked, so that its memory
    serves what is built next (a million entries are 250 MB of dicts)."""
    parser = _Parser(base_dir, owns, release)
    config = parser.config(data)
    if parser.errors:
        raise ConfigError(parser.errors)
    return config


class TargetStream:
    """`targets:` checked entry by entry while load_config's YAML reader builds them, so that the
    document never holds them all (a million entries are 250 MB of dicts). The entries are checked
    against ``top``, the top-level mapping as read so far: the reader reads the file again the
    usual way if one of ``needs`` comes after `targets:`. What ``done`` returns stands in the
    document for the list, and ``parse_config`` reports its errors where the list's would be."""

    needs = ("defaults", "profiles")  # what checking a target reads besides the target

    def __init__(self, top: dict[object, object], *, base_dir: Path, owns: Callable[[str], bool] | None) -> None:
        parser = _Parser(base_dir, owns)
        profiles = top.get("profiles")
        if isinstance(profiles, dict):
            parser.profile_names |= {k for k in profiles if isinstance(k, str)}
        defaults = parser.defaults(top.get("defaults"))
        parser.errors.clear()  # the defaults' own errors are reported by the parse of the document
        self._parser = parser
        sd = defaults.profile if owns is not None else None
        self._list = TargetList(
            lambda item, path: parser.checked(item, path, defaults), parser.error, sd_default_profile=sd
        )

    def add(self, item: object) -> None:
        self._list.add(item)

    def done(self) -> CheckedTargets:
        targets = self._list.targets()
        return CheckedTargets(targets, tuple(self._parser.errors), self._list.in_file, self._list.sd_body())


class _Parser(ProfileParser, TargetParser):
    """Walks the document once; every check appends to ``errors`` and carries on."""

    def __init__(self, base_dir: Path, owns: Callable[[str], bool] | None = None, release: bool = False) -> None:
        super().__init__(base_dir)
        self.owns, self.release = owns, release
        self.targets_in_file = 0
        self.sd_body: bytes | None = None  # a shard's replica: every target's `/sd` group

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
        scans = top.get("discovery")
        if isinstance(scans, list):
            self.discovery_names |= {s["name"] for s in scans if isinstance(s, dict) and isinstance(s.get("name"), str)}
        defaults = self.defaults(top.get("defaults"))
        fetch = self.fetch(top.get("fetch"))
        return Config(
            defaults=defaults,
            profiles=MappingProxyType(self.profiles(top.get("profiles"))),
            targets=self.targets(top.get("targets"), defaults),
            files=self.files(top.get("files"), defaults),
            sections=MappingProxyType(
                {name: parse(self, top.get(name), defaults) for name, parse in SECTIONS.items() if name in top}
            ),
            certificate_owners=self.owner_rules(top.get("certificate_owners")),
            probe=self.probe(top.get("probe")),
            fetch=fetch,
            dns=self.dns(top.get("dns")),
            caa_issuer_domains=MappingProxyType(self.caa_issuer_domains(top.get("caa_issuer_domains"))),
            notifications=parse_notifications(self, top.get("notifications")),
            reports=parse_reports(self, top.get("reports")),
            discovery=parse_discovery(self, top.get("discovery"), defaults, fetch.deny),
            targets_in_file=None if self.owns is None else self.targets_in_file,
            sd_body=self.sd_body,
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

    def targets(self, raw: object, defaults: Defaults) -> tuple[Target, ...]:
        """Every entry is checked, and duplicates are found among every shard's; only this shard's
        targets are kept (``TargetList``)."""
        if isinstance(raw, CheckedTargets):  # checked while load_config read them (TargetStream)
            self.errors.extend(raw.errors)
            self.targets_in_file, self.sd_body = raw.in_file, raw.sd_body
            return raw.targets
        items = self.sequence(raw, "targets")
        sd = defaults.profile if self.owns is not None else None
        checked = TargetList(lambda item, path: self.checked(item, path, defaults), self.error, sd_default_profile=sd)
        for index, item in enumerate(items):
            checked.add(item)
            if self.release:
                items[index] = None
        self.targets_in_file, self.sd_body = checked.in_file, checked.sd_body()
        return checked.targets()

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

    def dns(self, raw: object) -> DnsSettings:
        """``dns: {resolver: "host:port" or a list}``: IP addresses (a name would need a resolver)."""
        m = self.mapping(raw, "dns", DNS_KEYS) if raw is not None else None
        if m is None or "resolver" not in m:
            return DnsSettings()
        value = m["resolver"]
        path = "dns.resolver"
        items = value if isinstance(value, list) else [value]
        if not items:
            self.error(path, "expected an address or a list of addresses")
            return DnsSettings()
        found: list[tuple[str, int]] = []
        for i, item in enumerate(items):
            where = f"{path}[{i}]" if isinstance(value, list) else path
            if not isinstance(item, str) or not item.strip():
                self.error(where, "expected an address like 127.0.0.1:53 or [::1]:53")
                continue
            try:
                host, port = split_address(item.strip())
                ipaddress.ip_address(host)
            except ValueError as exc:
                reason = str(exc) if "port" in str(exc) else "not an IP address"
                self.error(
                    where, f"invalid resolver '{item.strip()}': {reason} (use IP:port, e.g. 127.0.0.1:53 or [::1]:53)"
                )
                continue
            found.append((host, 53 if port is None else port))
        return DnsSettings(resolvers=tuple(found))

    def caa_issuer_domains(self, raw: object) -> dict[str, str]:
        """``caa_issuer_domains: {issuer organizationName: CAA domain}``."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.error("caa_issuer_domains", "expected a mapping of issuer organizationName to CAA domain")
            return {}
        found: dict[str, str] = {}
        seen: dict[str, str] = {}
        # Organization names hold spaces and quotes ("Let's Encrypt"): the name goes into the message,
        # and the error points at the section.
        where = "caa_issuer_domains"
        for name, domain in raw.items():
            if not isinstance(name, str) or not name.strip():
                self.error(where, f"invalid issuer organizationName {name!r} (expected text)")
                continue
            if not isinstance(domain, str) or not _CAA_DOMAIN.fullmatch(domain.strip().rstrip(".").lower()):
                self.error(where, f"invalid CAA domain {domain!r} for {name!r} (a domain name like letsencrypt.org)")
                continue
            key = name.strip().lower()
            if key in seen:
                self.error(where, f"{name!r} repeats {seen[key]!r} (names match case-insensitively)")
                continue
            seen[key] = name
            found[name.strip()] = domain.strip().rstrip(".").lower()
        return found
