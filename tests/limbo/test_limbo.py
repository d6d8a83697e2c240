"""x509-limbo (tests/data/limbo/cases.json, scripts/limbo/generate.py) through our chain verdict:
every servable case is served on a loopback TLS server and judged as `check` would
(tests/limbo/harness.py), and the verdicts must be those recorded in tests/limbo/expected.py.

A change of the judge that moves a case fails here until expected.py is recorded again
(`scripts/limbo/run.py --write-expected`): fewer false accepts or rejects is progress to record,
more is a regression. The figures are in docs/limbo.md."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from limbo.expected import EXPECTED
from limbo.harness import CHAIN_FINDINGS, CaseResult, Server, iso_time, load_cases, policy_of, run_all, server_context

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def results() -> list[CaseResult]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography's deprecation warnings on limbo's odd certificates
        return run_all(load_cases())


def test_every_servable_case_has_its_recorded_verdict(results: list[CaseResult]) -> None:
    got = {r.id: r.verdict for r in results if r.verdict != "unservable"}
    changed = {
        case_id: f"{EXPECTED.get(case_id, 'not recorded')} -> {got.get(case_id, 'not served')}"
        for case_id in sorted(set(got) | set(EXPECTED))
        if got.get(case_id) != EXPECTED.get(case_id)
    }
    why = {r.id: r.summary for r in results if r.id in changed}
    assert not changed, "\n".join(f"{k}: {v}\n    {why.get(k, '')}" for k, v in changed.items())


def test_each_namespace_has_servable_cases(results: list[CaseResult]) -> None:
    """The harness cannot silently serve nothing: every counted namespace has a case judged."""
    namespaces = {c.namespace for c in load_cases()}
    judged = {r.namespace for r in results if r.verdict in ("agree", "false_accept", "false_reject")}
    assert namespaces == {"webpki", "rfc5280", "pathlen", "pathological", "cve", "invalid"}
    assert judged == namespaces


def test_cases_are_judged_at_limbo_validation_time(results: list[CaseResult]) -> None:
    """A case with a validation time is judged at it (limbo's validity cases depend on it)."""
    timed = {c.id: c.validation_time for c in load_cases() if c.validation_time is not None and c.unservable is None}
    assert timed
    for r in results:
        if r.id in timed:
            assert r.at == iso_time(timed[r.id]), r.id
        else:
            assert r.at == "now", r.id


# One case of each kind, without a validation time (the CLI judges at the current time).
CLI_SAMPLE = (
    "pathlen::ee-with-intermediate-pathlen-0",  # agree (accepted)
    "cve::cve-2024-0567",  # agree (rejected)
    "webpki::eku::ee-without-eku",  # false_accept
    "rfc5280::ca-as-leaf",  # false_reject
    "rfc5280::san::underscore-dns",  # no_verdict (check refuses the name)
)


@pytest.mark.parametrize("case_id", CLI_SAMPLE)
def test_the_real_check_command_says_what_the_harness_says(
    case_id: str, results: list[CaseResult], tmp_path: Path
) -> None:
    """`tls-exporter check --json` on the same server: the harness judges as the command does."""
    case = next(c for c in load_cases() if c.id == case_id)
    mine = next(r for r in results if r.id == case_id)
    assert case.validation_time is None and case.peer_name is not None
    trusted = tmp_path / "trusted.pem"
    trusted.write_text("".join(case.trusted_certs))
    server = Server(server_context(case, tmp_path))
    try:
        argv = ["check", f"127.0.0.1:{server.port}", "--protocol", "tls", "--server-name", case.peer_name]
        argv += ["--ca-file", str(trusted), "--validation-policy", policy_of(case), "--json", "--timeout", "20s"]
        run = subprocess.run(
            [sys.executable, "-W", "ignore", "-m", "exporter", *argv], capture_output=True, text=True, timeout=60
        )
    finally:
        server.close()
    if mine.verdict == "no_verdict":
        assert run.returncode == 3, run.stderr
        return
    (target,) = json.loads(run.stdout)["targets"]
    (r,) = target["results"]
    codes = {f["code"] for f in r["findings"]} & CHAIN_FINDINGS
    accepted = r["chain_valid"] is True and r["hostname_match"] is True and not codes
    assert (r["chain_valid"], r["hostname_match"], accepted) == (mine.chain_valid, mine.hostname_match, mine.accepted)
    assert tuple(r["chain_issues"]) == mine.issues
    assert run.returncode == (0 if accepted else 2), run.stdout
