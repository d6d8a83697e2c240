"""Chain verdicts remembered, so an unchanged chain is not verified again on every probe.

``verify_chain`` is a pure function of the certificates served (and fetched), the server name,
the trust store and the time. Time matters only through the validity windows of the
certificates involved, so a verdict holds from the last window boundary at or before the
moment it was computed to the next boundary after it (the horizon), and for ``MAX_AGE`` at
most (a trust anchor the verdict did not use could start or stop being valid in between).
The key is a digest of the DER bytes, the server name and the store; a store is immutable
and replaced when its bundle changes, so its identity is the object itself (the entry keeps
it alive, so the id is not reused while the entry lives).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import Store

from exporter.certs.chain import ChainVerdict, verify_chain

MAX_ENTRIES = 32_768  # about one per distinct (chain, server name): 10,000 endpoints fit twice over
MAX_AGE = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class _Entry:
    store: Store
    start: dt.datetime
    end: dt.datetime
    verdict: ChainVerdict


def _digest(certs: Sequence[x509.Certificate], extra: Sequence[x509.Certificate]) -> bytes:
    h = hashlib.sha256()
    for part in (certs, extra):
        for c in part:
            der = c.public_bytes(Encoding.DER)
            h.update(len(der).to_bytes(4, "big") + der)
        h.update(b"\0")  # served and fetched certificates never run together
    return h.digest()


def horizon(
    verdict: ChainVerdict, certs: Sequence[x509.Certificate], at: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The span around ``at`` in which no certificate of ``certs`` or of the path changes validity."""
    start, end = at - MAX_AGE, at + MAX_AGE
    for c in (*certs, *verdict.path):
        for edge in (c.not_valid_before_utc, c.not_valid_after_utc):
            if edge <= at:
                start = max(start, edge)
            else:
                end = min(end, edge)
    return start, end


class VerdictCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[bytes, str, int], _Entry] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def verify(
        self,
        certs: Sequence[x509.Certificate],
        store: Store,
        server_name: str,
        at: dt.datetime,
        *,
        extra: Sequence[x509.Certificate] = (),
        anchors: Sequence[x509.Certificate] = (),
    ) -> ChainVerdict:
        """``verify_chain(certs, store, server_name, at, extra=extra, anchors=anchors)``, from memory
        when it still holds (``anchors`` are the store's certificates: the same store, the same anchors).

        ``ders`` are the DER bytes of ``certs`` (as received: no re-encoding needed).
        """
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        key = (_digest(certs, extra), server_name, id(store))
        hit = self._entries.get(key)
        if hit is not None and hit.store is store and hit.start <= at < hit.end:
            self._entries.move_to_end(key)
            self.hits += 1
            return hit.verdict
        self.misses += 1
        verdict = verify_chain(certs, store, server_name, at, extra=extra, anchors=anchors)
        start, end = horizon(verdict, [*certs, *extra], at)
        self._entries[key] = _Entry(store, start, end, verdict)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return verdict
