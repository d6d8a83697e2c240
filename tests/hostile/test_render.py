"""Rendering never fails for everyone: undecodable file names, lone surrogates, a job whose lines
cannot be rendered."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from helpers import parse, value
from pki import PKI

from exporter.config import load_config
from exporter.support.errors import ConfigError
from hostile.kit import settled

FAST = "defaults: {interval: 2s, timeout: 2s}\n"  # first probes within 2 s


async def test_non_utf8_file_name_is_escaped_and_every_series_stays(make_client, pki: PKI, tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    good = pki.issue("render-good").cert_path.read_bytes()
    (certs / "good.pem").write_bytes(good)
    bad = certs / os.fsdecode(b"bad\xff\xfe.pem")  # not UTF-8: surrogate escapes in Python
    bad.write_bytes(good)
    exporter, client = await make_client(f"{FAST}files: [{{path: '{certs}/*.pem', name: bundle}}]\n")
    await settled(exporter, 2)
    for path in ("/metrics", "/"):
        resp = await client.get(path)
        assert resp.status == 200, path
    text = await (await client.get("/metrics")).text()
    s = parse(text)
    assert value(s, "tls_file_outcome", target=f"{certs}/good.pem", outcome="certificate_found") == 1
    # The undecodable bytes are shown as \xNN escapes (the exposition escapes the backslash).
    assert value(s, "tls_file_outcome", target=f"{certs}/bad\\xff\\xfe.pem", outcome="certificate_found") == 1
    assert value(s, "tls_exporter_errors_total", step="render") == 0


async def test_a_job_that_cannot_render_is_dropped_alone(
    make_client, pki: PKI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = tmp_path / "a.pem", tmp_path / "b.pem"
    a.write_bytes(pki.issue("render-a").cert_path.read_bytes())
    b.write_bytes(pki.issue("render-b").cert_path.read_bytes())
    exporter, client = await make_client(f"{FAST}files: [{{path: '{a}', name: a}}, {{path: '{b}', name: boom}}]\n")
    await settled(exporter, 2)
    source = exporter.probers["file"]
    labels = source.labels

    def broken(job, location, owner):  # type: ignore[no-untyped-def]
        if job.name == "boom":
            raise RuntimeError("label source broke")
        return labels(job, location, owner)

    source.labels = broken  # type: ignore[method-assign]
    exporter.renderer.forget()  # render afresh
    with caplog.at_level(logging.ERROR, logger="exporter.metrics.render"):
        resp = await client.get("/metrics")
    assert resp.status == 200
    s = parse(await resp.text())
    assert value(s, "tls_file_outcome", target=str(a), outcome="certificate_found") == 1
    # The broken job's series are gone from this scrape, the other job's stay.
    assert not [labels for samples in s.values() for labels, _ in samples if labels.get("target") == str(b)]
    assert value(s, "tls_exporter_errors_total", step="render") == 1
    assert any("label source broke" in str(getattr(r, "fields", {})) for r in caplog.records)


def test_lone_surrogate_in_a_label_value_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text('targets: [{address: "127.0.0.1:443", labels: {site: "fra\\udc80"}}]\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.errors == [f"{path}:1:47: targets[0].labels.site: not valid UTF-8 text: 'fra\\udc80'"]
