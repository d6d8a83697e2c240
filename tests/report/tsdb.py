"""A real Prometheus whose TSDB is written from OpenMetrics text by `promtool tsdb create-blocks-from`:
the history the report tests (and the sources' report test) query."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from e2e.harness import free_port, http, require_binary, running, wait_for, wait_ready


@dataclass
class History:
    url: str
    end: float  # the last sample, a multiple of STEP
    workdir: Path


@contextlib.contextmanager
def prometheus_serving(
    workdir: Path, source_text: str, end: float, ready: str = "count(tls_probe_success)"
) -> Iterator[History]:
    """A real Prometheus serving ``source_text`` (OpenMetrics) as its TSDB, once ``ready`` has a result at ``end``."""
    prometheus = require_binary("prometheus", "prometheus")
    promtool = require_binary("promtool", "prometheus")
    source = workdir / "history.om"
    source.write_text(source_text)
    tsdb = workdir / "tsdb"
    made = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(tsdb)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    config = workdir / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1m}\n")
    port = free_port()
    argv = [
        prometheus, f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
        "--storage.tsdb.retention.time=400d", f"--web.listen-address=127.0.0.1:{port}",
    ]  # fmt: skip
    with running("prometheus", argv, workdir) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc, timeout=120)
        wait_for(
            lambda: http(f"{url}/api/v1/query?query={ready}&time={end}").json()["data"]["result"],
            timeout=60,
            what="the history blocks loaded",
            proc=proc,
        )
        yield History(url, end, workdir)
