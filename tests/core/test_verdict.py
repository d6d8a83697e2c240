"""One verdict: the findings table, its page, its alerts, and the cases where outputs used to disagree
(an expired intermediate, a malformed name constraint, a missing file, a bad argument, a grade
made before the version scan)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from certs.defects import ca_under_root, malformed_name_constraints_ca
from helpers import make_config, make_target
from pki import NOW, PKI
from servers import LoopbackServers

from exporter.certs.findings import OUTCOME_CODES, PROBLEMS, Severity, Verdict, finding, render_markdown, verdict_of
from exporter.judge.assess import Assessor
from exporter.judge.scan import Scanner
from exporter.outputs.inventory import build_inventory
from exporter.pipeline import Pipeline
from exporter.schedule.store import Entry
from exporter.support.errors import FileOutcome, Outcome

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.timedelta(days=1)


def test_problems_page_is_the_table() -> None:
    """docs/problems.md is rendered from the table (regenerate: python -c 'from exporter.certs.findings
    import render_markdown; print(render_markdown(), end="")' > docs/problems.md)."""
    assert (ROOT / "docs" / "problems.md").read_text() == render_markdown()


def test_every_finding_pages_with_its_own_severity() -> None:
    rules = yaml.safe_load((ROOT / "alerting-rules" / "tls-exporter.rules.yml").read_text())
    severity = {r["alert"]: r["labels"]["severity"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    for problem in PROBLEMS.values():
        assert problem.alert in severity, f"{problem.code}: no alert {problem.alert}"
        assert severity[problem.alert] == problem.severity.value, problem.code


def test_every_failed_outcome_has_a_finding() -> None:
    failed = {o.value for o in (*Outcome, *FileOutcome)} - {"certificate_found"}
    assert set(OUTCOME_CODES) == failed
    assert set(OUTCOME_CODES.values()) <= set(PROBLEMS)


def test_the_verdict_is_the_worst_severity() -> None:
    info, warning, critical = (
        finding("expiry_info", "i"),
        finding("weak_key", "w"),
        finding("expired", "c"),
    )
    assert (info.severity, warning.severity, critical.severity) == (Severity.INFO, Severity.WARNING, Severity.CRITICAL)
    assert verdict_of([]) is Verdict.OK
    assert verdict_of([info]) is Verdict.OK  # info is for the record
    assert verdict_of([info, warning]) is Verdict.WARNING
    assert verdict_of([warning, critical, info]) is Verdict.CRITICAL


def _check(port: int, pki: PKI, *extra: str) -> tuple[int, dict[str, object]]:
    where = [f"127.0.0.1:{port}", "--protocol", "tls", "--server-name", "localhost"]
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "check", *where, "--ca-file", str(pki.root.cert_path), "--json", *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    doc = json.loads(out.stdout)
    (entry,) = doc["targets"]
    (result,) = entry["results"]
    return out.returncode, result


def test_an_expired_intermediate_is_critical_in_check(servers: LoopbackServers, pki: PKI) -> None:
    """The leaf has 300 days; the intermediate expired yesterday: every client refuses the chain."""
    ca = ca_under_root(pki, "expired-intermediate", not_after=NOW - DAY)
    leaf = pki.issue("under-expired-ca", issuer=ca, not_after=NOW + 300 * DAY)
    code, result = _check(servers.tls(leaf.server_context()), pki, "--timeout", "20s")
    assert (code, result["verdict"], result["status"]) == (2, "critical", "critical")
    chain = [f for f in result["findings"] if f["code"] == "chain_invalid"]  # type: ignore[attr-defined]
    assert len(chain) == 1 and chain[0]["severity"] == "critical"
    assert "certificate 1 (CN=expired-intermediate) expired on" in chain[0]["text"]
    assert chain[0]["remedy"] == PROBLEMS["chain_invalid"].remedy
    assert not [f for f in result["findings"] if f["code"] == "expired"]  # type: ignore[attr-defined]  # the leaf is fine


def test_a_malformed_name_constraint_is_a_chain_finding(servers: LoopbackServers, pki: PKI) -> None:
    """An IP name constraint whose mask is not a prefix: the certificate cannot be parsed whole."""
    ca = malformed_name_constraints_ca(pki, "malformed-nc")
    leaf = pki.issue("under-malformed-nc", issuer=ca)
    code, result = _check(servers.tls(leaf.server_context()), pki, "--timeout", "20s")
    assert result["assessment_errors"] == []  # judged, not an error on our side
    assert (code, result["verdict"]) == (2, "critical")
    texts = [f["text"] for f in result["findings"] if f["code"] == "chain_invalid"]  # type: ignore[attr-defined]
    assert any("certificate 1 (CN=malformed-nc)" in t and "malformed name constraints" in t for t in texts), texts
    assert not any("basicConstraints" in t for t in texts), texts  # unreadable is not absent


def test_a_missing_file_is_a_warning_everywhere(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "check", str(tmp_path / "absent.pem"), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    (entry,) = json.loads(out.stdout)["files"]
    assert (out.returncode, entry["verdict"]) == (1, "warning")
    assert [f["code"] for f in entry["findings"]] == ["file_missing"]
    assert PROBLEMS["file_missing"].alert == "TLSFileMissing"  # whose severity the rules test holds equal


@pytest.mark.parametrize("argv", [["--no-such-flag"], ["host", "--timeout"], ["host", "--log.level", "loud"]])
def test_a_bad_argument_is_unknown(argv: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "exporter", "check", *argv], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stderr
    assert "error:" in out.stderr


async def test_no_grade_before_the_version_scan(servers: LoopbackServers, pki: PKI) -> None:
    """The daemon grades once a version scan has run; `check` scans inside the probe and grades."""
    target = make_target(servers.tls(pki["good"].server_context()))
    config = make_config(target)
    scanner = Scanner()
    daemon = Pipeline(assessor=Assessor(), scanner=scanner)
    try:
        (first,) = await daemon.probe(target, config)
        assert first.report is not None and first.report.assessment is not None
        assert first.report.assessment.grade is None
        assert any(line.endswith("grade: none until the version scan has run") for line in first.log)
        (listed,) = build_inventory([(target, {first.location: Entry(first, ())})], config)
        assert (listed.grade, listed.grading, listed.as_json()["grading"]) == (None, True, True)
        for _ in range(200):  # the scan the first probe asked for, in the background
            if scanner.latest_for(target, first.location) is not None:
                break
            await asyncio.sleep(0.05)
        (second,) = await daemon.probe(target, config)
        assert second.report is not None and second.report.assessment is not None
        assert second.report.assessment.grade is not None
        (listed,) = build_inventory([(target, {second.location: Entry(second, ())})], config)
        assert (listed.grade, listed.grading) == (second.report.assessment.grade, False)
    finally:
        await daemon.close()
    inline = Pipeline(assessor=Assessor(), scanner=Scanner(), scan_inline=True)
    try:
        (checked,) = await inline.probe(target, config)
        assert checked.report is not None and checked.report.assessment is not None
        assert checked.report.assessment.grade == second.report.assessment.grade
        assert any(line.endswith("version scan done") for line in checked.log)
    finally:
        await inline.close()
