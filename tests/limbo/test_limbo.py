"""x509-limbo (tests/data/limbo/cases.json, scripts/limbo/generate.py) through our chain verdict:
every servable case is served on a loopback TLS server and judged as `check` would
(tests/limbo/harness.py), and the verdicts must be those recorded in tests/limbo/expected.py.

A change of the judge that moves a case fails here until expected.py is recorded again
(`scripts/limbo/run.py --write-expected`): fewer false accepts or rejects is progress to record,
more is a regression. The figures are in docs/limbo.md."""

from __future__ import annotations

import warnings

import pytest

from limbo.expected import EXPECTED
from limbo.harness import CaseResult, load_cases, run_all

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
            assert r.at == timed[r.id].strftime("%Y-%m-%dT%H:%M:%SZ"), r.id
