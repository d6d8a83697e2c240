"""The recording rules that give other exporters' series names from ours: they load, pass their
promtool unit tests (the values and labels each old name gets), and read only what we expose."""

from __future__ import annotations

import subprocess

from exporter.metrics.names import EXPOSED

from .artefacts import PROMQL_FUNCTIONS, ROOT, load_yaml, promql_names, require_tool

COMPAT = ROOT / "recording-rules" / "compat.rules.yml"
COMPAT_TESTS = ROOT / "recording-rules" / "tests" / "compat.yml"
# The names dashboards of blackbox_exporter, ssl_exporter and x509-certificate-exporter read.
OLD_NAMES = {
    "probe_ssl_earliest_cert_expiry",
    "ssl_cert_not_after",
    "ssl_file_cert_not_after",
    "x509_cert_not_after",
    "x509_cert_expired",
}


def test_the_recording_rules_load_and_pass_their_unit_tests() -> None:
    promtool = require_tool("promtool")
    check = subprocess.run([promtool, "check", "rules", str(COMPAT)], capture_output=True, text=True, check=False)
    assert check.returncode == 0 and f"SUCCESS: {len(OLD_NAMES)} rules found" in check.stdout, (
        check.stdout + check.stderr
    )
    run = subprocess.run(
        [promtool, "test", "rules", COMPAT_TESTS.name],
        cwd=COMPAT_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0 and "SUCCESS" in run.stdout and "FAILED" not in run.stdout, run.stdout + run.stderr


def test_every_old_name_is_recorded_and_tested_from_exposed_series_only() -> None:
    rules = [r for g in load_yaml(COMPAT)["groups"] for r in g["rules"]]
    assert {r["record"] for r in rules} == OLD_NAMES
    for rule in rules:
        names, functions = promql_names(str(rule["expr"]))
        assert names and names <= EXPOSED, (rule["record"], names - EXPOSED)
        assert functions <= PROMQL_FUNCTIONS, (rule["record"], functions)
    tested = {e["expr"].split("{")[0] for t in load_yaml(COMPAT_TESTS)["tests"] for e in t["promql_expr_test"]}
    assert tested == OLD_NAMES
