"""`targets:` as a whole: duplicates among every shard's entries, the `server_name` label of two
targets on one endpoint, and the share a shard keeps. Entries come one at a time, from a list of the
document or as load_config's YAML reader builds them (``CheckedTargets`` then stands in the document
for the list it never held).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from exporter.config.model import Target
from exporter.config.sd_body import SdBody

# Another shard's entry, never built as a Target: what its `/sd` group says (target, protocol,
# server name, owner, name, labels, profile).
Unowned = tuple[str, str, str, str, str, tuple[tuple[str, str], ...], str]
# A valid entry as the duplicate check sees it: protocol, canonical host, port, canonical server
# name, and the target when this shard owns it.
Valid = tuple[str, str, int, str, Target | Unowned]


@dataclass(frozen=True, slots=True)
class CheckedTargets:
    """`targets:` checked while it was read: the share kept, the errors in entry order, and the
    number of valid targets in the file (every shard's)."""

    targets: tuple[Target, ...]
    errors: tuple[str, ...]
    in_file: int
    sd_body: bytes | None  # see TargetList.sd_body


class TargetList:
    """Entries added in file order; ``check`` validates one (reporting its errors) and ``error``
    reports a duplicate. A replica of 1,000,000 targets over 10 shards keeps one endpoint string and
    one index for each of the 900,000 it does not own, and no other object of theirs."""

    def __init__(
        self,
        check: Callable[[object, str], Valid | None],
        error: Callable[[str, str], None],
        *,
        sd_default_profile: str | None = None,
    ) -> None:
        self._check, self._error = check, error
        # A shard's replica writes every entry's `/sd` group (its share and the others'), given the
        # default profile (a group names its profile when it is another).
        self._sd = None if sd_default_profile is None else SdBody(sd_default_profile)
        self._index = 0
        self.in_file = 0
        self._kept: list[tuple[Target, str]] = []
        # One endpoint, however it is spelt (case, trailing dot, default port written or not); the
        # server name is part of a target's identity: one address with two server names is two
        # targets, and both then carry a `server_name` label. ``_first`` holds each endpoint's first
        # target: its index, or (index, server name) when the name is not the host's; ``_names``
        # the endpoints probed under more than one server name (rare): name -> index.
        self._first: dict[str, int | tuple[int, str]] = {}
        self._names: dict[str, dict[str, int]] = {}

    def add(self, item: object) -> None:
        index, path = self._index, f"targets[{self._index}]"
        self._index += 1
        valid = self._check(item, path)
        if valid is None:
            return
        protocol, host, port, name, target = valid
        endpoint = f"{protocol}://{host}:{port}"  # the port is last and has no colon: unambiguous
        known = self._first.get(endpoint)
        if known is None:
            self._first[endpoint] = index if name == host else (index, name)
        else:
            before, their_name = (known, host) if isinstance(known, int) else known
            shared = self._names.get(endpoint) or {their_name: before}
            if name in shared:
                self._error(path, f"duplicate of targets[{shared[name]}] (same protocol, address and server name)")
                return
            shared[name] = index
            self._names[endpoint] = shared
        self.in_file += 1
        if isinstance(target, Target):
            self._kept.append((target, endpoint))
            if self._sd is not None:
                self._sd.add_target(target)
        elif self._sd is not None:
            self._sd.add(*target)

    def sd_body(self) -> bytes | None:
        """The `/sd` body of every valid entry in file order, gzip-compressed (None: not asked for)."""
        return None if self._sd is None else self._sd.gzipped()

    def targets(self) -> tuple[Target, ...]:
        names = self._names
        return tuple(dataclasses.replace(t, label_server_name=True) if e in names else t for t, e in self._kept)
