"""Certificate sources by name: each turns a job of the configuration into observations.

A source has one shape (see ``Source``): which jobs of a ``Config`` are its own, how to observe
one job under a ``Deadline`` (one ``Observation`` per location: an address, a file path), and the
location labels of its series. Adding a source (Kubernetes secrets, remote PEM ...) is one module
here, one entry in ``make_probers`` and ``NAMES``, one config section; see docs/extending.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from exporter.config.model import Config, Job, Profile
from exporter.results import Observation
from exporter.support.deadline import Deadline
from exporter.tls.hello import Opener

if TYPE_CHECKING:
    from exporter.sources.discovered import Discovery
    from exporter.sources.tls import TLSSource


class Source(Protocol):
    name: str
    every_certificate: bool  # report every certificate with its position (files), or the leaf and its chain

    def jobs(self, config: Config) -> Sequence[Job]: ...

    async def observe(self, job: Job, deadline: Deadline, profile: Profile | None = None) -> list[Observation]: ...

    def labels(self, job: Job, location: str, owner: str) -> dict[str, str]: ...

    def opener(self, job: Job, location: str, timeout: float, profile: Profile | None = None) -> Opener | None:
        """Fresh connections to one location for the version scan; None where there is nothing to scan."""
        ...


def make_probers(tls: TLSSource | None = None, discovery: Discovery | None = None) -> dict[str, Source]:
    """The table of sources; ``tls`` may carry the scheduler's connection cap, ``discovery`` what
    the scans found (its endpoints are jobs of the discovery source, probed through ``tls``)."""
    from exporter.sources.bundle import BundleSource
    from exporter.sources.discovery import DiscoverySource
    from exporter.sources.file import FileSource
    from exporter.sources.tls import TLSSource

    tls = tls or TLSSource()
    return {
        "tls": tls,
        "file": FileSource(),
        "bundle": BundleSource(),
        "discovery": DiscoverySource(discovery, tls),
    }


def _tls() -> TLSSource:
    from exporter.sources.tls import TLSSource

    return TLSSource()


class _Table(Mapping[str, Source]):
    """``make_probers()``, made at the first look-up of a source: `check TARGET` needs the TLS
    source alone, and starts faster without the other sources' modules (discovery ...)."""

    def __init__(self) -> None:
        self._tls: TLSSource | None = None
        self._all: dict[str, Source] | None = None

    def __getitem__(self, name: str) -> Source:
        if self._tls is None:
            self._tls = _tls()
        if name == "tls":
            return self._tls
        if self._all is None:  # the others come together, the discovery source sharing the TLS one
            self._all = make_probers(self._tls)
        return self._all[name]

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)


NAMES = ("tls", "file", "bundle", "discovery")  # the keys of make_probers(), in its order
PROBERS: Mapping[str, Source] = _Table()

__all__ = ["NAMES", "PROBERS", "Source", "make_probers"]
