"""Certificate sources by name: each turns a job of the configuration into observations.

A source has one shape (see ``Source``): which jobs of a ``Config`` are its own, how to observe
one job under a ``Deadline`` (one ``Observation`` per location: an address, a file path), and the
location labels of its series. Adding a source (Kubernetes secrets, remote PEM ...) is one module
here, one entry in ``PROBERS``, one config section; see docs/extending.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from exporter.config.model import Config, Job, Profile
from exporter.results import Observation
from exporter.sources.bundle import BundleSource
from exporter.sources.discovered import Discovery
from exporter.sources.discovery import DiscoverySource
from exporter.sources.file import FileSource
from exporter.sources.tls import TLSSource
from exporter.support.deadline import Deadline
from exporter.tls.hello import Opener


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
    tls = tls or TLSSource()
    return {
        "tls": tls,
        "file": FileSource(),
        "bundle": BundleSource(),
        "discovery": DiscoverySource(discovery, tls),
    }


PROBERS: dict[str, Source] = make_probers()

__all__ = ["PROBERS", "BundleSource", "DiscoverySource", "FileSource", "Source", "TLSSource", "make_probers"]
