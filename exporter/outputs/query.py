"""Which inventory entries to show: the filter of `GET /api/v1/inventory?...` and of the `/` page.

Both parse the same query parameters into an ``InventoryQuery`` and keep the entries it
``matches``, so the page and the API cannot disagree on what a filter selects. An unknown
parameter or verdict is an error naming it (a typo must not silently select everything).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from exporter.certs.findings import Verdict
from exporter.outputs.inventory import InventoryEntry

PARAMETERS = ("owner", "verdict", "protocol", "q", "discovery")
NO_OWNER = "(none)"  # owner=(none): the entries without an owner
DISCOVERY_LABEL = "discovery"  # the label discovered targets carry: their scan's name


def _values(text: str) -> frozenset[str]:
    return frozenset(v.strip() for v in text.split(",") if v.strip())


@dataclass(frozen=True, slots=True)
class InventoryQuery:
    owner: str | None = None  # exact; NO_OWNER for ""
    verdicts: frozenset[str] = frozenset()  # any of them; empty: all
    protocols: frozenset[str] = frozenset()
    q: str = ""  # a case-insensitive piece of any text of the entry
    discovery: str | None = None  # the scan that found it

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> InventoryQuery:
        """From query parameters (empty values mean no filter, as an empty form field sends them)."""
        unknown = sorted(k for k in query if k not in PARAMETERS)
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}; the inventory takes {', '.join(PARAMETERS)}")
        verdicts = _values(query.get("verdict", ""))
        known = {v.value for v in Verdict}
        wrong = sorted(verdicts - known)
        if wrong:
            raise ValueError(f"verdict: unknown {', '.join(wrong)} (one of {', '.join(v.value for v in Verdict)})")
        return cls(
            owner=query.get("owner") or None,
            verdicts=verdicts,
            protocols=_values(query.get("protocol", "")),
            q=query.get("q", "").strip(),
            discovery=query.get("discovery") or None,
        )

    @property
    def active(self) -> bool:
        return self != InventoryQuery()

    def matches(self, e: InventoryEntry) -> bool:
        if self.owner is not None and e.owner != ("" if self.owner == NO_OWNER else self.owner):
            return False
        if self.verdicts and e.verdict.value not in self.verdicts:
            return False
        if self.protocols and e.protocol not in self.protocols:
            return False
        if self.discovery is not None and dict(e.labels).get(DISCOVERY_LABEL) != self.discovery:
            return False
        return not self.q or self.q.casefold() in _text(e)

    def select(self, entries: Iterable[InventoryEntry]) -> list[InventoryEntry]:
        return [e for e in entries if self.matches(e)]

    def params(self, **override: str | None) -> str:
        """This query as URL parameters (``override``: a parameter replaced, or dropped with None)."""
        current = {
            "q": self.q or None,
            "owner": self.owner,
            "verdict": ",".join(sorted(self.verdicts)) or None,
            "protocol": ",".join(sorted(self.protocols)) or None,
            "discovery": self.discovery,
        }
        current.update(override)
        return urlencode([(k, v) for k, v in current.items() if v])


def _text(e: InventoryEntry) -> str:
    """Every text of an entry a person may search for, folded once."""
    h = e.headline
    parts = [e.name, e.target, e.location, e.owner, e.protocol, e.outcome or "", e.detail, e.server_name or ""]
    parts += e.problems
    parts += (f.code for f in e.findings)
    parts += (v for _, v in e.labels)
    if h is not None:
        parts += (h.subject, h.issuer, h.serial)
    return "\n".join(parts).casefold()
