"""Shared test helpers: build targets and configs, render and parse metrics."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter
from exporter.config.model import Config, Defaults, Expect, Job, OwnerRule, Profile, Target
from exporter.metrics.render import StoreRenderer


def make_target(
    port: int,
    *,
    host: str = "127.0.0.1",
    protocol: str = "tls",
    server_name: str = "localhost",
    timeout: float = 5.0,
    owner: str = "",
    expect: Expect | None = None,
    profile: str = "default",
    labels: tuple[tuple[str, str], ...] = (),
    target: str | None = None,
) -> Target:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Target(
        target=target or address,
        host=host,
        port=port,
        protocol=protocol,
        server_name=server_name,
        name=target or address,
        owner=owner,
        labels=labels,
        expect=expect,
        timeout=timeout,
        interval=60.0,
        profile=profile,
    )


def make_config(
    *targets: Target, owners: Iterable[OwnerRule] = (), profiles: Iterable[Profile] = (), default_owner: str = ""
) -> Config:
    profile_map = {"default": Profile(), **{p.name: p for p in profiles}}
    return Config(
        defaults=Defaults(owner=default_owner),
        profiles=profile_map,
        targets=tuple(targets),
        certificate_owners=tuple(owners),
    )


def render(renderer: StoreRenderer) -> str:
    return renderer.render()


Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    """Sample name -> [(labels, value)], from the exposition text via prometheus_client's parser."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``; fails if there is not exactly one."""
    found = [v for lbls, v in samples.get(name, []) if all(lbls.get(k) == want for k, want in labels.items())]
    assert len(found) == 1, f"{name}{labels}: expected one sample, found {len(found)}: {samples.get(name)}"
    return found[0]


def states(samples: Samples, name: str, label: str, **labels: str) -> dict[str, float]:
    return {
        lbls[label]: v for lbls, v in samples.get(name, []) if all(lbls.get(k) == want for k, want in labels.items())
    }


async def probe_by_hand(exporter: Exporter, jobs: Iterable[Job] | None = None) -> None:
    """Stop the exporter's own schedule, then probe ``jobs`` (default: every configured one) once each.

    A test that drives the probes itself must not share them with the schedule: the first pass
    probes each job at its phase, an instant of its first 30 s taken from the job's key (and so from
    the test's random port), and a count or a render would now and then see both probes."""
    assert exporter.scheduler is not None
    await exporter.scheduler.stop()
    for job in exporter.scheduler.jobs(exporter.config) if jobs is None else jobs:
        await exporter.scheduler.run_once(job)
