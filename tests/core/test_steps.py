"""The judgement's steps (chain, revocation, protocol scan, grade) each carry their own status:
completed, skipped with why, or an error on our side with why; one failing never hides the others.
Real TLS on loopback, certificates from the fixture PKI."""

from __future__ import annotations

from helpers import make_config, make_target
from pki import PKI
from servers import LoopbackServers

from exporter.config.model import Profile, RevocationMode
from exporter.judge.assess import Assessor
from exporter.judge.scan import Scanner
from exporter.pipeline import Pipeline
from exporter.results import Assessment, Step, StepResult, StepStatus

DONE = StepResult(StepStatus.COMPLETED)


async def _assessment(pipeline: Pipeline, port: int, profile: Profile) -> Assessment:
    target = make_target(port)
    try:
        [result] = await pipeline.probe(target, make_config(target, profiles=[profile]))
    finally:
        await pipeline.close()
    assert result.report is not None and result.report.assessment is not None
    return result.report.assessment


async def test_every_step_completes_in_order(servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki.issue("steps-ok").server_context())
    pipeline = Pipeline(assessor=Assessor(), scanner=Scanner(), scan_inline=True)
    a = await _assessment(pipeline, port, Profile(trust=str(pki.root.cert_path)))
    assert a.steps == ((Step.CHAIN, DONE), (Step.REVOCATION, DONE), (Step.PROTOCOL_SCAN, DONE), (Step.GRADE, DONE))
    assert a.chain_valid is True and a.grade is not None and a.errors == frozenset()


async def test_steps_that_do_not_apply_say_why(servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki.issue("steps-skipped").server_context())
    profile = Profile(trust=str(pki.root.cert_path), revocation=RevocationMode.NONE, scan_protocol_versions=False)
    a = await _assessment(Pipeline(assessor=Assessor(), scanner=Scanner()), port, profile)
    assert a.steps == (
        (Step.CHAIN, DONE),
        (Step.REVOCATION, StepResult(StepStatus.SKIPPED, "the profile says revocation: none")),
        (Step.PROTOCOL_SCAN, StepResult(StepStatus.SKIPPED, "the profile does not scan versions")),
        (Step.GRADE, DONE),  # graded by the handshake alone, as the profile asks
    )


async def test_the_grade_waits_for_the_first_scan(servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki.issue("steps-waiting").server_context())
    scanner = Scanner()
    scanner.hold(3600)  # the background scan does not start: the first probe has none
    a = await _assessment(Pipeline(assessor=Assessor(), scanner=scanner), port, Profile(trust=str(pki.root.cert_path)))
    assert a.step(Step.PROTOCOL_SCAN) == StepResult(StepStatus.SKIPPED, "the first scan runs in the background")
    assert a.step(Step.GRADE) == StepResult(StepStatus.SKIPPED, "no version scan yet")
    assert a.grade is None and a.step(Step.CHAIN) == DONE


async def test_a_failed_step_is_an_error_and_the_others_still_run(servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki.issue("steps-error").server_context())

    def broken_trust(path: str) -> tuple[object, tuple[object, ...]]:
        raise OSError(f"cannot read {path}")

    pipeline = Pipeline(assessor=Assessor(store_loader=broken_trust), scanner=Scanner(), scan_inline=True)  # type: ignore[arg-type]
    a = await _assessment(pipeline, port, Profile(trust="/nonexistent/ca.pem"))
    chain = a.step(Step.CHAIN)
    assert chain is not None and chain.status is StepStatus.ERROR and "cannot read /nonexistent/ca.pem" in chain.reason
    assert a.chain_valid is None and a.errors == frozenset({Step.CHAIN})
    assert [(s, r.status) for s, r in a.steps[1:]] == [
        (Step.REVOCATION, StepStatus.COMPLETED),
        (Step.PROTOCOL_SCAN, StepStatus.COMPLETED),
        (Step.GRADE, StepStatus.COMPLETED),
    ]
