"""Certificate files through the scheduler's own path, the store and /metrics rendering."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from helpers import parse, states, value
from pki import PKI
from prometheus_client import CollectorRegistry

from exporter.config.model import Config, FileTarget, OwnerRule
from exporter.metrics.internal import SelfMetrics
from exporter.metrics.render import StoreRenderer
from exporter.outputs.eventlog import log_events
from exporter.pipeline import Pipeline
from exporter.schedule.scheduler import Scheduler
from exporter.schedule.store import Store


async def test_file_series_values_missing_and_renewal(
    pki: PKI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bundle = tmp_path / "server.pem"
    bundle.write_bytes(pki["expiring-20d"].chain_path.read_bytes())  # leaf + intermediate
    entry = FileTarget(path=str(tmp_path / "*.pem"), name="appliance", owner="hsm-team", labels=(("site", "fra1"),))
    rule = OwnerRule(field="issuer_cn", pattern="test root*", owner="pki-team")
    config = Config(files=(entry,), certificate_owners=(rule,))
    store = Store()
    store.subscribe(log_events)  # as the application wires its event log
    scheduler = Scheduler(store, Pipeline(), SelfMetrics(CollectorRegistry()))
    scheduler.apply(config)
    await scheduler.stop()  # probed by hand below: the schedule's own first probe must not race them
    try:
        await scheduler.run_once(entry)
        s = parse(StoreRenderer(store, lambda: config).render())
        path = str(bundle)
        assert states(s, "tls_file_outcome", "outcome", target=path) == {
            "certificate_found": 1,
            "missing": 0,
            "unreadable": 0,
            "parse_error": 0,
        }
        leaf = {"target": path, "position": "0", "protocol": "file", "site": "fra1"}
        assert value(s, "tls_cert_days_until_expiry", **leaf) == pytest.approx(20, abs=0.01)
        assert states(s, "tls_cert_expiry_tier", "tier", **leaf)["warning"] == 1
        assert value(s, "tls_cert_key_bits", key_type="ec", **leaf) == 256
        assert s["tls_cert_info"][0][0]["owner"] == "hsm-team"  # the leaf: target owner
        # The intermediate is issued by the root: the certificate rule wins there.
        assert value(s, "tls_cert_info", position="1", owner="pki-team", target=path) == 1
        assert value(s, "tls_cert_last_change_timestamp_seconds", **leaf) == (
            pki["expiring-20d"].cert.not_valid_before_utc.timestamp()
        )

        # Renewed in place: one "new certificate detected" line, last change moves.
        bundle.write_bytes(pki["good"].chain_path.read_bytes())
        before = time.time()
        await scheduler.run_once(entry)
        s = parse(StoreRenderer(store, lambda: config).render())
        assert value(s, "tls_cert_last_change_timestamp_seconds", **leaf) >= round(before, 3) - 0.001  # ms resolution
        assert s["tls_cert_info"][0][0]["serial"] == pki["good"].serial_hex
        assert [r.getMessage() for r in caplog.records].count("new certificate detected") == 1

        # Deleted: the glob matches nothing; one series set with the pattern, outcome missing.
        bundle.unlink()
        await scheduler.run_once(entry)
        await scheduler.run_once(entry)
        s = parse(StoreRenderer(store, lambda: config).render())
        assert states(s, "tls_file_outcome", "outcome", target=entry.path)["missing"] == 1
        assert not any(k.startswith("tls_cert_") for k in s)
        # Once for the file that vanished, once for the glob now matching nothing; not again on the next pass.
        missing = [r.fields["target"] for r in caplog.records if r.getMessage() == "certificate file missing"]
        assert sorted(missing) == sorted([path, entry.path])
        lines = [r.fields for r in caplog.records if r.getMessage() == "certificate file missing"]
        assert {(f["code"], f["severity"]) for f in lines} == {("file_missing", "warning")}  # as check says
    finally:
        await scheduler.stop()
