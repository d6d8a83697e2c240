"""`bundles:`: PEM (or DER, PKCS#7) certificate bundles published at HTTPS URLs, as a job and its parser.

A trust bundle a team publishes for its clients, a CA's own download: certificates at rest that
nobody serves in a handshake. Each entry is one location; every certificate in the bundle is
judged on its own, with its position, as for a file. The source is ``exporter.sources.bundle``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from exporter.config.model import Defaults, Expect, ScanKey
from exporter.config.reader import Reader, _or
from exporter.support.errors import FileOutcome, Outcome

BUNDLE_KEYS = ("url", "name", "owner", "labels", "interval", "timeout", "profile", "max_certificates")


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleURL:
    url: str  # https://...
    name: str
    owner: str
    labels: tuple[tuple[str, str], ...] = ()
    interval: float = 300.0
    timeout: float = 10.0
    profile: str = "default"  # its `trust:` verifies the HTTPS server that publishes the bundle
    max_certificates: int = 100
    key: str = field(init=False, repr=False, compare=False)

    source: ClassVar[str] = "bundle"
    kind: ClassVar[str] = "bundle"
    served: ClassVar[bool] = False  # certificates at rest: each judged with its position
    unparsable: ClassVar[Outcome | FileOutcome] = FileOutcome.PARSE_ERROR
    sharded: ClassVar[bool] = True  # a URL is the same for every instance: one of them fetches it
    protocol: ClassVar[str] = "bundle"
    server_name: ClassVar[str | None] = None
    expect: ClassVar[Expect | None] = None
    label_server_name: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"bundle+{self.url}")

    @property
    def target(self) -> str:
        return self.url

    def location_target(self, location: str) -> str:
        return self.url

    def scan_key(self, location: str) -> ScanKey | None:
        return None


def parse_bundles(reader: Reader, raw: object, defaults: Defaults) -> tuple[BundleURL, ...]:
    result: list[BundleURL] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(reader.sequence(raw, "bundles")):
        path = f"bundles[{index}]"
        m = reader.mapping(item, path, BUNDLE_KEYS)
        if m is None:
            continue
        if "url" not in m:
            reader.error(path, "missing required key 'url'")
        url = reader.string(m, "url", path)
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme != "https" or not parts.hostname:
                reader.error(f"{path}.url", f"'{url}' is not an https:// URL with a host")
                url = None
        interval = reader.duration(m, "interval", path)
        timeout = reader.duration(m, "timeout", path)
        entry = BundleURL(
            url=url or "",
            name=_or(reader.string(m, "name", path), url or ""),
            owner=_or(reader.string(m, "owner", path, empty_ok=True), defaults.owner),
            labels=_or(reader.labels(m, path), ()),
            interval=_or(interval, defaults.interval),
            timeout=_or(timeout, defaults.timeout),
            profile=_or(reader.profile_ref(m, "profile", path), defaults.profile),
            max_certificates=_or(reader.count(m, "max_certificates", path), defaults.max_certificates_per_file),
        )
        if reader.timing_given(m, interval, timeout):
            reader.check_timeout(entry.timeout, entry.interval, path)
        if url is None:
            continue
        if url in seen:
            reader.error(path, f"duplicate of bundles[{seen[url]}] (same url)")
            continue
        seen[url] = index
        result.append(entry)
    return tuple(result)
