"""One-off targets for /probe and `check`, validated by the config file's parser of a `targets:`
entry (that one alone: `check TARGET` need not import the whole configuration parser)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from exporter.config.model import Config, Target
from exporter.config.parse_target import parse_target
from exporter.config.reader import check_server_name, is_ipv4, split_address
from exporter.support.errors import ConfigError
from exporter.support.protocols import PROTOCOLS

_PARAMETER = {"address": "target", "protocol": "protocol", "server_name": "server_name"}


_CACHE_SIZE = 1024  # /probe asks for the same few targets again and again: parse each once per config
_cache: dict[tuple[str | None, ...], tuple[Config, Target]] = {}
_bases: dict[tuple[str | None, ...], tuple[Config, Target]] = {}  # the same without the server name
_shapes: dict[tuple[str | None, ...], tuple[Config, Target]] = {}  # the same without the address


def adhoc_target(
    address: str,
    *,
    protocol: str | None,
    server_name: str | None,
    profile: str | None,
    config: Config,
    owner: str | None = None,
    name: str | None = None,
) -> Target:
    """A Target for ``address`` with the defaults of ``config``; ValueError names the bad parameter."""
    key = (address, protocol, server_name, profile, owner, name)
    hit = _cache.get(key)
    if hit is not None and hit[0] is config:
        return hit[1]
    unnamed = (address, protocol, profile, owner, name)
    shape = (protocol, server_name, profile, owner, name)
    target = _renamed(_bases.get(unnamed), config, server_name) or _readdressed(
        _shapes.get(shape), config, address, named=bool(server_name), name=name
    )
    if target is None:
        target = _adhoc_target(
            address, protocol=protocol, server_name=server_name, profile=profile, config=config, owner=owner, name=name
        )
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
        _bases.clear()
        _shapes.clear()
    _cache[key] = (config, target)
    _bases[unnamed] = (config, target)
    _shapes[shape] = (config, target)
    return target


def _renamed(base: tuple[Config, Target] | None, config: Config, server_name: str | None) -> Target | None:
    """The target parsed for the same parameters under another server name, given this one: the
    name is the only field it sets (a new name on every /probe would otherwise cost a parse each).
    None when the parser must have its say: no name (the host is the name), or one it may refuse."""
    if base is None or base[0] is not config or not server_name or server_name != server_name.strip():
        return None
    try:
        check_server_name(server_name)
    except ValueError:
        return None
    return dataclasses.replace(base[1], server_name=server_name)


def _readdressed(
    base: tuple[Config, Target] | None, config: Config, address: str, *, named: bool, name: str | None
) -> Target | None:
    """The target parsed for the same parameters at another IPv4 address, given this one: the
    address sets only the target, host, port and the defaults of the server name and the name (a
    new address on every /probe, as a sweep of a network sends, would otherwise cost a parse each).
    None when the parser must have its say: a host name, IPv6, or anything it may refuse."""
    if base is None or base[0] is not config or not is_ipv4(address.partition(":")[0]):
        return None
    try:
        host, port = split_address(address)
    except ValueError:
        return None
    target = base[1]
    port = PROTOCOLS[target.protocol].default_port if port is None else port
    if port is None:
        return None
    return dataclasses.replace(
        target,
        target=address,
        host=host,
        port=port,
        server_name=target.server_name if named else host,
        name=address if name is None else name,
    )


def _adhoc_target(
    address: str,
    *,
    protocol: str | None,
    server_name: str | None,
    profile: str | None,
    config: Config,
    owner: str | None,
    name: str | None,
) -> Target:
    if not address:
        raise ValueError("target: missing (give host, host:port or [ipv6]:port)")
    if profile is not None and profile not in config.profiles:
        raise ValueError(f"profile: unknown profile '{profile}'")
    entry: dict[str, object] = {"address": address}
    if protocol:
        entry["protocol"] = protocol
    if server_name:
        entry["server_name"] = server_name
    try:
        target = parse_target(entry, "targets[0]", base_dir=Path.cwd())
    except ConfigError as exc:
        messages = []
        for line in exc.errors:
            path, _, reason = line.partition(": ")
            key = path.removeprefix("targets[0]").lstrip(".") or "target"
            messages.append(f"{_PARAMETER.get(key, key)}: {reason}")
        raise ValueError("; ".join(messages)) from None
    d = config.defaults
    return dataclasses.replace(
        target,
        profile=profile or d.profile,
        timeout=d.timeout,
        interval=d.interval,
        owner=d.owner if owner is None else owner,
        name=target.name if name is None else name,
    )
