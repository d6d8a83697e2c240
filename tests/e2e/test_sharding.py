"""Two exporter replicas behind one Prometheus: `GET /sd` lists the targets, `hashmod` spreads the
`/probe` scrapes over the replicas, and every target is scraped exactly once.

Also the replicas' own `--shard=I/N` split of the scheduled targets: disjoint, and together all.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from helpers import make_target
from pki import PKI
from servers import LoopbackServers

from exporter.schedule.shard import bucket

from .harness import (
    exporter_argv,
    free_port,
    http,
    parse_metrics,
    query_url,
    require_binary,
    running,
    select,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.e2e
TARGETS = 8  # at least; more when the ports drawn leave a replica without a share (see _split)


def _hashmod(value: str, modulus: int) -> int:
    """Prometheus' relabel action hashmod: the last 8 bytes of the value's MD5, modulo ``modulus``."""
    return int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % modulus


def _split(addresses: list[str]) -> bool:
    """Both replicas get a share both ways: Prometheus' hashmod of /probe targets, the exporter's
    --shard buckets of scheduled ones. Ports are random: 8 of them all land in one bucket 1 time
    in 128 for each of the two hashes, so the fixture adds targets until both have some, rather
    than fail by chance."""
    relabel = {_hashmod(a, 2) for a in addresses}
    scheduled = {bucket(make_target(int(a.rsplit(":", 1)[1]), server_name="localhost").key, 2) for a in addresses}
    return relabel == scheduled == {0, 1}


def prometheus_config(sd_url: str, replicas: list[str]) -> str:
    jobs = []
    for index, replica in enumerate(replicas):
        jobs.append(
            f"""
  - job_name: tls-probe-{index}
    scrape_interval: 2s
    scrape_timeout: 2s
    metrics_path: /probe
    http_sd_configs: [{{url: "{sd_url}", refresh_interval: 5s}}]
    relabel_configs:
      - {{source_labels: [__param_target], modulus: {len(replicas)}, target_label: __tmp_shard, action: hashmod}}
      - {{source_labels: [__tmp_shard], regex: "{index}", action: keep}}
      - {{source_labels: [__param_target], target_label: target}}
      - {{target_label: __address__, replacement: "{replica}"}}"""
        )
    return "global: {scrape_interval: 2s, evaluation_interval: 2s}\nscrape_configs:" + "".join(jobs) + "\n"


@pytest.fixture(scope="module")
def fleet(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    prometheus_bin = require_binary("prometheus", "prometheus")
    promtool = require_binary("promtool", "prometheus")
    workdir = tmp_path_factory.mktemp("e2e-sharding")
    servers = LoopbackServers()
    with ExitStack() as stack:
        stack.callback(servers.stop)
        addresses = [f"127.0.0.1:{servers.tls(pki['good'].server_context())}" for _ in range(TARGETS)]
        while not _split(addresses):
            addresses.append(f"127.0.0.1:{servers.tls(pki['good'].server_context())}")
        config = workdir / "config.yml"
        config.write_text(
            "defaults: {interval: 5s, timeout: 2s}\n"
            "probe: {allow: ['127.0.0.0/8']}\n"
            "targets:\n"
            + "".join(
                f"  - {{address: '{a}', protocol: tls, server_name: localhost, owner: team-{i % 2}}}\n"
                for i, a in enumerate(addresses)
            )
        )
        urls = []
        procs = []
        for index in range(2):
            port = free_port()
            proc = stack.enter_context(
                running(f"exporter-{index}", exporter_argv(config, port, f"--shard={index}/2"), workdir)
            )
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, proc)
            urls.append(url)
            procs.append(proc)
        prom_config = workdir / "prometheus.yml"
        prom_config.write_text(prometheus_config(f"{urls[0]}/sd", [u.removeprefix("http://") for u in urls]))
        checked = subprocess.run([promtool, "check", "config", str(prom_config)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        prom_port = free_port()
        prometheus = stack.enter_context(
            running(
                "prometheus",
                [
                    prometheus_bin,
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                workdir,
            )
        )
        prometheus_url = f"http://127.0.0.1:{prom_port}"
        wait_ready(prometheus_url, prometheus, timeout=60)
        yield {"addresses": addresses, "exporters": urls, "prometheus": prometheus_url, "proc": prometheus}


def test_sd_lists_every_target_with_its_probe_parameters(fleet: dict[str, object]) -> None:
    urls = fleet["exporters"]
    assert isinstance(urls, list)
    # every replica lists every target (a sharded one too, though it keeps only its share): the
    # split is Prometheus'
    groups = http(f"{urls[1]}/sd").json()
    assert groups == http(f"{urls[0]}/sd").json()
    assert sorted(g["targets"][0] for g in groups) == sorted(fleet["addresses"])  # type: ignore[arg-type]
    labels = groups[0]["labels"]
    assert (labels["__param_protocol"], labels["__param_server_name"]) == ("tls", "localhost")
    assert labels["__param_target"] == groups[0]["targets"][0] and labels["owner"].startswith("team-")


def test_hashmod_over_two_replicas_scrapes_every_target_exactly_once(fleet: dict[str, object]) -> None:
    prometheus, addresses = str(fleet["prometheus"]), fleet["addresses"]
    assert isinstance(addresses, list)

    def scraped() -> dict[str, list[str]] | None:
        doc = http(query_url(prometheus, 'tls_probe_success{job=~"tls-probe-.*"} == 1')).json()
        found: dict[str, list[str]] = {}
        for r in doc["data"]["result"]:
            found.setdefault(r["metric"]["target"], []).append(r["metric"]["job"])
        return found if set(found) == set(addresses) else None

    found = wait_for(scraped, timeout=60, what="every target probed through the replicas", proc=fleet["proc"])  # type: ignore[arg-type]
    assert all(len(jobs) == 1 for jobs in found.values()), json.dumps(found, indent=1)  # exactly once
    per_job = {job for jobs in found.values() for job in jobs}
    assert per_job == {"tls-probe-0", "tls-probe-1"}  # both replicas carry a share


def test_each_replica_schedules_its_own_share(fleet: dict[str, object]) -> None:
    urls, addresses = fleet["exporters"], fleet["addresses"]
    assert isinstance(urls, list) and isinstance(addresses, list)
    counts = []
    for index, url in enumerate(urls):
        samples = parse_metrics(http(f"{url}/metrics").body)
        assert select(samples, "tls_exporter_shard", index=str(index), count="2")[0].value == 1
        counts.append(select(samples, "tls_exporter_targets")[0].value)
    assert sum(counts) == len(addresses) and all(c >= 1 for c in counts)  # a split, and both have some

    def shares() -> list[set[str]] | None:
        found = [
            {s.labels["target"] for s in parse_metrics(http(f"{u}/metrics").body) if s.name == "tls_probe_success"}
            for u in urls
        ]
        return found if [len(f) for f in found] == counts else None

    probed = wait_for(shares, timeout=30, what="each replica's first probes of its share")
    assert not probed[0] & probed[1] and probed[0] | probed[1] == set(addresses)
