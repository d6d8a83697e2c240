"""Chain verdicts remembered, so an unchanged chain is not verified again on every probe.

``verify_chain`` is a pure function of the certificates served (and fetched), the server name,
the trust store and the time. Time matters only through the validity windows of the
certificates involved, so a verdict holds from the last window boundary at or before the
moment it was computed to the next boundary after it (the horizon), and for ``MAX_AGE`` at
most (a trust anchor the verdict did not use could start or stop being valid in between).
A store is immutable and replaced when its bundle changes, so its identity is the object
itself (an entry keeps it alive, so the id is not reused while the entry lives).

Two levels. The verdict for a name is keyed by a digest of the DER bytes, the server name and
the store. Under it, the name-independent part (path, signatures, validity, trust:
``chain.verify_trust``) is keyed by the digest, the store and the subject the verifier is given;
that subject is the leaf's own SAN for every name the leaf does not cover, and also for a name
it covers when both are plain DNS names or IP addresses (then the verifier's matching and
``identity.hostname_matches`` agree, so the name cannot change what the verifier says). The
first sight of a new name for a known chain costs a name match, not a verification.

An entry does not keep the certificates of its chain: a parsed ``x509.Certificate`` costs about
3.6 KB plus what it parses on demand, and with 10,000 distinct chains the leaves and
intermediates of every verifying probe stayed alive in the cache (about 140 MB). It keeps the
path as positions in the certificates it was asked about (the same bytes on every hit: they are
the key) and the anchors as objects (the store holds them anyway), and a hit returns the path
made of the caller's own certificates, so ``path[0] is certs[0]`` as after a fresh verification
(the revocation step finds the leaf's issuer by identity). Without their paths, the verdicts of
chains judged alike are equal, and held once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import Store, Subject

from exporter.certs.chain import ChainVerdict, Rules, leaf_subject, name_ok, named, subject_for, verify_trust
from exporter.certs.facts import sans_of
from exporter.certs.identity import SanMatcher, ip_of
from exporter.support.intern import Interner

MAX_ENTRIES = 32_768  # about one per distinct (chain, server name): 10,000 endpoints fit twice over
MAX_AGE = dt.timedelta(hours=1)
RFC5280 = Rules()  # the default policy: RFC 5280 alone, as for a `trust:` bundle


@dataclass(frozen=True, slots=True)
class _Entry:
    store: Store
    start: dt.datetime
    end: dt.datetime
    verdict: ChainVerdict  # with path=(): the path is ``path``
    path: tuple[int | x509.Certificate, ...] = ()  # position in certs + extra, or an anchor of the store

    def restore(self, given: Sequence[x509.Certificate]) -> ChainVerdict:
        """The verdict with its path made of ``given`` (the caller's certificates, then extras)."""
        if not self.path:
            return self.verdict
        path = tuple(given[r] if isinstance(r, int) else r for r in self.path)
        return dataclasses.replace(self.verdict, path=path)


def _positions(
    path: Sequence[x509.Certificate], given: Sequence[x509.Certificate]
) -> tuple[int | x509.Certificate, ...]:
    out: list[int | x509.Certificate] = []
    for cert in path:
        at = next((i for i, c in enumerate(given) if c is cert), None)
        if at is None:  # the verifier may hand back its own objects: compare the bytes
            at = next((i for i, c in enumerate(given) if c == cert), None)
        out.append(cert if at is None else at)
    return tuple(out)


def _digest(
    certs: Sequence[x509.Certificate], extra: Sequence[x509.Certificate], ders: Sequence[bytes] | None = None
) -> bytes:
    h = hashlib.sha256()
    served = ders if ders is not None else [c.public_bytes(Encoding.DER) for c in certs]
    for part in (served, [c.public_bytes(Encoding.DER) for c in extra]):
        for der in part:
            h.update(len(der).to_bytes(4, "big") + der)
        h.update(b"\0")  # served and fetched certificates never run together
    return h.digest()


# A name cryptography's verifier takes as a DNS name (labels of letters, digits and inner
# hyphens), as a wildcard SAN pattern may precede it with "*.".
_PLAIN_DNS = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*", re.IGNORECASE)


def _plain(name: str) -> bool:
    return len(name) <= 253 and _PLAIN_DNS.fullmatch(name) is not None and ip_of(name) is None


def _plain_sans(leaf: x509.Certificate) -> bool:
    """Every DNS SAN a plain name or wildcard, every IP SAN an address, at least one of them."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    dns = san.get_values_for_type(x509.DNSName)
    ips = san.get_values_for_type(x509.IPAddress)
    return (
        bool(dns or ips)
        and all(_plain(d[2:] if d.startswith("*.") else d) for d in dns)
        and all(isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address) for a in ips)
    )


@dataclass(frozen=True, slots=True)
class _Leaf:
    """What the name's verdict needs of a leaf, read once per chain."""

    matcher: SanMatcher
    own: Subject | None  # chain.leaf_subject
    plain: bool  # _plain_sans


def _leaf(leaf: x509.Certificate) -> _Leaf:
    sans = sans_of(leaf)
    return _Leaf(SanMatcher(sans), leaf_subject(leaf, sans), _plain_sans(leaf))


def _trust_key(leaf: _Leaf, server_name: str) -> tuple[object, Subject | None, bool]:
    """(key of the name-independent verdict, the subject to compute it under, name_ok)."""
    ok = name_ok(leaf.matcher, server_name)
    subject = subject_for(server_name, ok, leaf.own)
    if subject == leaf.own:
        return "leaf", leaf.own, ok
    if ok and leaf.plain and (_plain(server_name.rstrip(".")) or ip_of(server_name) is not None):
        return "leaf", leaf.own, ok  # the verifier would say the same under the leaf's own name
    return ("name", server_name), subject, ok


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
        self._entries: OrderedDict[tuple[bytes, str, int, Rules], _Entry] = OrderedDict()
        self._trust: OrderedDict[tuple[bytes, int, object, Rules], _Entry] = OrderedDict()
        self._leaves: OrderedDict[bytes, _Leaf] = OrderedDict()  # by chain digest
        self._verdicts = Interner[ChainVerdict]()  # path-less verdicts, held once
        self.hits = self.misses = 0  # verdicts for a (chain, name, store)
        self.trust_hits = self.trust_misses = 0  # name-independent parts, on a miss above

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
        ders: Sequence[bytes] | None = None,
        rules: Rules = RFC5280,
    ) -> ChainVerdict:
        """``verify_chain(certs, store, server_name, at, extra=extra, anchors=anchors)`` under
        ``rules`` (the validation policy), from memory when it still holds (``anchors`` are the
        store's certificates: the same store, the same anchors).

        ``ders``: the DER bytes of ``certs`` as received, so the key needs no re-encoding.
        """
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        digest = _digest(certs, extra, ders)
        key = (digest, server_name, id(store), rules)
        given = [*certs, *extra]
        hit = self._entries.get(key)
        if hit is not None and hit.store is store and hit.start <= at < hit.end:
            self._entries.move_to_end(key)
            self.hits += 1
            return hit.restore(given)
        self.misses += 1
        if not certs:
            verdict = verify_trust(certs, store, None, at, extra=extra, anchors=anchors, rules=rules)  # no certificate
            _put(self._entries, key, self._entry(store, *horizon(verdict, extra, at), verdict, given), self.max_entries)
            return verdict
        leaf = self._leaves.get(digest)
        if leaf is None:
            leaf = _leaf(certs[0])
            _put(self._leaves, digest, leaf, self.max_entries)
        trust_key, subject, ok = _trust_key(leaf, server_name)
        tkey = (digest, id(store), trust_key, rules)
        cached = self._trust.get(tkey)
        if cached is not None and cached.store is store and cached.start <= at < cached.end:
            self._trust.move_to_end(tkey)
            self.trust_hits += 1
            trust = cached
        else:
            self.trust_misses += 1
            verdict = verify_trust(certs, store, subject, at, extra=extra, anchors=anchors, rules=rules)
            trust = self._entry(store, *horizon(verdict, given, at), verdict, given)
            _put(self._trust, tkey, trust, self.max_entries)
        # the name's verdict holds as long as the part it was made from, and has its path
        name = self._verdicts(named(trust.verdict, certs, server_name, ok))
        entry = _Entry(store, trust.start, trust.end, name, trust.path)
        _put(self._entries, key, entry, self.max_entries)
        self._sweep()
        return entry.restore(given)

    def _entry(
        self,
        store: Store,
        start: dt.datetime,
        end: dt.datetime,
        verdict: ChainVerdict,
        given: Sequence[x509.Certificate],
    ) -> _Entry:
        """What the cache keeps of ``verdict``: no certificate of the caller's, equal verdicts once."""
        kept = dataclasses.replace(verdict, path=()) if verdict.path else verdict
        return _Entry(store, start, end, self._verdicts(kept), _positions(verdict.path, given))

    def _sweep(self) -> None:
        if self._verdicts.due(len(self._entries) + len(self._trust)):
            held = [e.verdict for e in (*self._entries.values(), *self._trust.values())]
            self._verdicts.sweep(held)


def _put(entries: OrderedDict[Any, Any], key: Any, entry: object, cap: int) -> None:
    entries[key] = entry
    entries.move_to_end(key)
    while len(entries) > cap:
        entries.popitem(last=False)
