"""The validated configuration: frozen dataclasses, built only by ``exporter.config.parse``.

Durations are seconds (float). Everything here is already checked: code downstream never
re-validates a value it reads from these classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import Field, dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from exporter.config.notify_model import Notifications, Report
from exporter.support.errors import FileOutcome, Outcome
from exporter.support.netpolicy import DEFAULT_FETCH_DENY
from exporter.support.proxyurl import ProxyURL

if TYPE_CHECKING:  # `check TARGET` starts faster without the discovery modules
    from exporter.config.discovery_model import Scan


class RevocationMode(StrEnum):
    OCSP = "ocsp"
    CRL = "crl"
    NONE = "none"


class SeriesSet(StrEnum):
    """Which series a profile's endpoints expose (``series:``)."""

    DEFAULT = "default"  # everything: per-version, per chain certificate, tiers, key and signature
    MINIMAL = "minimal"  # about 15 per endpoint, like blackbox_exporter's (see metrics.render.MINIMAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class Threshold:
    """An expiry tier threshold: a number of days left, or a share (0-100) of the lifetime left."""

    days: float | None = None
    percent: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiryTiers:
    info: Threshold | None = Threshold(days=90)
    warning: Threshold | None = Threshold(days=30)
    critical: Threshold | None = Threshold(days=7)


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    name: str = "default"
    expiry_tiers: ExpiryTiers = ExpiryTiers()
    trust: str = "system"  # "system" or the path of a PEM CA bundle
    # "webpki" (the CA/Browser Forum rules a browser applies) or "rfc5280"; None: webpki with the
    # system store, rfc5280 with a `trust:` bundle (see ``policy``).
    validation_policy: str | None = None
    min_key_bits: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({"rsa": 2048, "ec": 256, "dsa": 2048})
    )
    weak_signature_hashes: tuple[str, ...] = ("md5", "sha1")
    min_tls_version: str = "TLSv1.2"  # accepting an older version is a finding (tls_protocol_below_minimum)
    max_validity: float | None = None  # seconds; a leaf valid longer is a finding (off by default)
    revocation: RevocationMode = RevocationMode.OCSP
    revocation_interval: float = 3600.0  # an OCSP/CRL answer is reused until nextUpdate, at most this long
    scan_protocol_versions: bool = True
    scan_interval: float = 6 * 3600.0  # version scans run on their own clock, less often than probes
    log_repeat: float = 12 * 3600.0  # "certificate will expire on DATE" again this often while warning or worse
    # Probes and OCSP/CRL/AIA fetches go through this proxy; None: direct (fetches honour HTTP_PROXY).
    proxy_url: ProxyURL | None = None
    client_cert: str | None = None  # PEM certificate (chain) presented to servers that ask for one (mTLS)
    client_key: str | None = None  # its PEM private key
    series: SeriesSet = SeriesSet.DEFAULT
    dane: bool = False  # look up TLSA records (DANE) and match them against the served chain
    caa: bool = False  # look up the closest CAA set and judge the leaf's issuer by it

    @property
    def policy(self) -> str:
        """The path-validation policy chains are judged under."""
        if self.validation_policy is not None:
            return self.validation_policy
        return "webpki" if self.trust == "system" else "rfc5280"


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsSettings:
    """``dns:``: the resolver of the DANE and CAA lookups (targets still resolve through the system)."""

    resolvers: tuple[tuple[str, int], ...] = ()  # (IP address, port); empty: the system's resolver


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    interval: float = 300.0
    timeout: float = 10.0
    profile: str = "default"
    owner: str = ""
    max_certificates_per_file: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Expect:
    """Lowercase hex without colons; from ``{certificate: file}`` both are set."""

    serial: str | None = None
    fingerprint_sha256: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    target: str  # the address as configured: the `target` label
    host: str  # name or IP literal, without brackets
    port: int
    protocol: str
    server_name: str  # SNI and the name verified
    name: str  # display name (label `name`), defaults to `target`
    owner: str  # target owner, else the default owner
    labels: tuple[tuple[str, str], ...] = ()
    all_addresses: bool = True
    expect: Expect | None = None
    interval: float = 300.0
    timeout: float = 10.0
    profile: str = "default"
    # Set when another target probes the same address under another server name: the series then
    # carry a `server_name` label to tell the two apart (and only then, so other series keep theirs).
    label_server_name: bool = False
    # Identity of the target across reloads: protocol, address and (when not the host) server name.
    # Made once here: every scrape reads it for every target.
    key: str = field(init=False, repr=False, compare=False)

    source: ClassVar[str] = "tls"  # the key of exporter.sources.PROBERS that observes it
    kind: ClassVar[str] = "address"
    served: ClassVar[bool] = True
    unparsable: ClassVar[Outcome | FileOutcome] = Outcome.NO_CERTIFICATE
    sharded: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", target_key(self.protocol, self.target, self.host, self.server_name))

    def location_target(self, location: str) -> str:
        return self.target

    def scan_key(self, location: str) -> ScanKey | None:
        return (self.protocol, location, self.server_name)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileTarget:
    path: str  # a path or a glob
    name: str
    owner: str
    labels: tuple[tuple[str, str], ...] = ()
    interval: float = 300.0
    timeout: float = 10.0
    profile: str = "default"
    password_env: str | None = None  # PKCS#12 password from an environment variable
    password_file: str | None = None  # or from a file
    max_certificates: int = 100  # per file: past it the file is a parse_error and its series stop
    key: str = field(init=False, repr=False, compare=False)  # identity across reloads

    source: ClassVar[str] = "file"
    kind: ClassVar[str] = "file"
    served: ClassVar[bool] = False
    unparsable: ClassVar[Outcome | FileOutcome] = FileOutcome.PARSE_ERROR
    sharded: ClassVar[bool] = False  # files are local: every instance watches its own
    protocol: ClassVar[str] = "file"
    server_name: ClassVar[str | None] = None
    expect: ClassVar[Expect | None] = None
    label_server_name: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"file://{self.path}")

    @property
    def target(self) -> str:
        return self.path

    def location_target(self, location: str) -> str:
        return location  # each file's series carry its own path, not the glob

    def scan_key(self, location: str) -> ScanKey | None:
        return None


ScanKey = tuple[str, str, str]  # (protocol, address, server name): what a version scan is kept under


def target_key(protocol: str, target: str, host: str, server_name: str) -> str:
    """``Target.key`` from its parts: the loader computes it to decide, before building a target,
    whether this instance's shard owns it."""
    key = f"{protocol}://{target}"
    return key if server_name == host else f"{key}#{server_name}"


class Job(Protocol):
    """What a source observes on a schedule (an entry of `targets:`, `files:` ...), as every stage
    after the source sees it: the source's own class describes its locations, so nothing downstream
    asks which source it came from. See docs/extending.md."""

    source: ClassVar[str]  # the key of exporter.sources.PROBERS that observes it
    kind: ClassVar[str]  # what one location is ("address", "file"): the inventory's kind, the log's noun
    # A live endpoint: the leaf is judged with the chain that was served, and the host name, the
    # expected certificate, the chain, revocation, the version scan and the grade apply. Otherwise every
    # certificate stored is judged on its own, with its position.
    served: ClassVar[bool]
    sharded: ClassVar[bool]  # split between sharded instances (network), or watched by each (local)
    unparsable: ClassVar[Outcome | FileOutcome]  # the outcome of certificates seen that do not parse
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]  # a frozen dataclass: dataclasses.replace works

    @property
    def key(self) -> str: ...  # identity across reloads
    @property
    def name(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def labels(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def interval(self) -> float: ...
    @property
    def timeout(self) -> float: ...
    @property
    def profile(self) -> str: ...
    @property
    def target(self) -> str: ...  # what the configuration names: an address, a path or glob
    @property
    def protocol(self) -> str: ...  # the `protocol` label: the TLS protocol, or the source's name
    @property
    def server_name(self) -> str | None: ...  # the name verified, where one is
    @property
    def expect(self) -> Expect | None: ...
    @property
    def label_server_name(self) -> bool: ...

    def location_target(self, location: str) -> str:
        """The `target` label of one location's series."""
        ...

    def scan_key(self, location: str) -> ScanKey | None:
        """Where the location's version scan is kept; None when it has none."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerRule:
    field: str  # subject_cn | san | issuer_cn | fingerprint_sha256
    pattern: str  # case-insensitive shell-style glob
    owner: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeSettings:
    allow: tuple[str, ...] = ("*",)


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchSettings:
    """Where the AIA, OCSP and CRL URLs of served certificates may be fetched from."""

    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = DEFAULT_FETCH_DENY


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    defaults: Defaults = Defaults()
    profiles: Mapping[str, Profile] = field(default_factory=lambda: MappingProxyType({"default": Profile()}))
    targets: tuple[Target, ...] = ()
    files: tuple[FileTarget, ...] = ()
    # The jobs of plug-in sources' sections (exporter.config.sections): section name -> jobs.
    sections: Mapping[str, tuple[Job, ...]] = field(default_factory=lambda: MappingProxyType({}))
    certificate_owners: tuple[OwnerRule, ...] = ()
    probe: ProbeSettings = ProbeSettings()
    notifications: Notifications = field(default_factory=Notifications)
    reports: tuple[Report, ...] = ()
    fetch: FetchSettings = FetchSettings()
    dns: DnsSettings = DnsSettings()
    # Issuer organizationName -> its CAA domain, before the built-in table of public CAs.
    caa_issuer_domains: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    discovery: tuple[Scan, ...] = ()  # `discovery:` scans (exporter.config.discovery_model)
    source: str | None = None  # the file it came from, for logs
    # Loaded for one shard (`--shard`): `targets` is that shard's share, and this the number of
    # targets in the file (every shard's). None: `targets` is all of them.
    targets_in_file: int | None = None
    # Loaded for one shard: `/sd` of every target in the file, gzip-compressed JSON (the others'
    # targets are not kept, their groups are). None: `/sd` is made from `targets`.
    sd_body: bytes | None = field(default=None, repr=False)

    def profile(self, name: str) -> Profile:
        return self.profiles.get(name) or self.profiles["default"]
