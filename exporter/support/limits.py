"""File descriptors: raise the soft limit where the hard limit allows, and split it in budgets.

Every connection, probe or scrape, costs a descriptor. Without budgets a flood of HTTP clients
takes them all and every probe fails with "Too many open files"; the server's connections are
therefore capped so that the probes' share stays free, and the probes have a cap of their own.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

log = logging.getLogger(__name__)

WANTED_NOFILE = 65536  # plenty for the caps below; more would only hide leaks
RESERVED = 128  # files, fetches, DNS, logs, the listening sockets
# Scheduled probes' connections open at once. A silent endpoint holds its slot for the whole
# timeout: with 20 % of 10,000 targets silent for 10 s, about 700 hang at once during a 30 s first
# pass, and 256 slots made every other probe queue behind them.
MAX_PROBE_CONNECTIONS = 1024
MAX_ADHOC_CONNECTIONS = 256  # /probe connections and fetches
MAX_HTTP_CONNECTIONS = 1024


@dataclass(frozen=True, slots=True)
class FdBudget:
    nofile: int  # the soft limit in force
    probes: int  # scheduled probes' connections at once
    adhoc: int  # /probe connections (one per address of each /probe in flight) and fetches
    http: int  # HTTP server connections open at once


def raise_nofile(wanted: int = WANTED_NOFILE) -> int:
    """Raise RLIMIT_NOFILE's soft limit towards ``wanted`` (never above the hard limit); the soft
    limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit", extra={"fields": {"soft": soft, "error": str(exc)}})
    return WANTED_NOFILE if soft == resource.RLIM_INFINITY else soft


def budget(nofile: int) -> FdBudget:
    """Probes first (a quarter at most), then /probe and fetches, then what is left for HTTP."""
    usable = max(64, nofile - RESERVED)
    probes = max(8, min(MAX_PROBE_CONNECTIONS, usable // 4))
    adhoc = max(8, min(MAX_ADHOC_CONNECTIONS, usable // 4))
    http = max(16, min(MAX_HTTP_CONNECTIONS, usable - probes - adhoc))
    return FdBudget(nofile=nofile, probes=probes, adhoc=adhoc, http=http)


MAX_BUNDLE_BYTES = 16 * 1024 * 1024  # the Debian bundle is 0.2 MiB
