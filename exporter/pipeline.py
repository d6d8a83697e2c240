"""One probe of one job, the same for every source and every caller:
observe (the job's source) -> judge (pure) -> assess (network chains) -> results.

The scheduler, ``/probe`` and ``check`` all call ``Pipeline.probe``, so they cannot disagree.
One ``Deadline`` covers the whole probe: the source's resolve, connect, dialogue, handshake and
close, then the assessment; whatever runs out reports the outcome it reached, never late.
The version scan is not part of a probe: a probe asks the ``Scanner`` for one when it is due,
and uses the latest scan there is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping

from exporter.certs.judge import judge
from exporter.config.model import Config, Job, Profile
from exporter.judge.assess import Assessor
from exporter.judge.fetch import fetch_via
from exporter.judge.scan import Scanner
from exporter.results import Assessment, Observation, Result, Step, StepResult, StepStatus
from exporter.sources import PROBERS, Source
from exporter.support.deadline import Deadline
from exporter.support.steplog import StepLog

JUDGE_IN_THREAD = 16  # judging many files' certificates is CPU work: off the event loop


def _with_step(a: Assessment, step: Step, status: StepResult) -> Assessment:
    """``a`` with ``step``'s status in its place: before the grade, which depends on it."""
    steps = list(a.steps)
    at = next((i for i, (s, _) in enumerate(steps) if s is Step.GRADE), len(steps))
    steps.insert(at, (step, status))
    errors = a.errors | {step} if status.status is StepStatus.ERROR else a.errors
    return dataclasses.replace(a, steps=tuple(steps), errors=errors)


def _port_of(location: str) -> int | None:
    """The port of a served location (``192.0.2.1:25``, ``[2001:db8::1]:25``): the TLSA name's port."""
    _, colon, port = location.rpartition(":")
    return int(port) if colon and port.isdigit() else None


class Pipeline:
    def __init__(
        self,
        *,
        probers: Mapping[str, Source] | None = None,
        assessor: Assessor | None = None,
        scanner: Scanner | None = None,
        scan_inline: bool = False,
    ) -> None:
        self.probers: Mapping[str, Source] = dict(probers) if probers else PROBERS
        self.assessor = assessor  # None: leaf analysis only (no chain, revocation or grade)
        self.scanner = scanner  # None: no version scans
        # `check`: scan inside the probe's deadline and grade with it; the daemon scans in the background.
        self.scan_inline = scan_inline

    def source(self, job: Job) -> Source:
        return self.probers[job.source]

    async def probe(self, job: Job, config: Config, *, timeout: float | None = None) -> list[Result]:
        deadline = Deadline(job.timeout if timeout is None else min(timeout, job.timeout))
        source = self.source(job)
        profile = config.profile(job.profile)
        observations = await source.observe(job, deadline, profile)
        rules = config.certificate_owners
        if len(observations) > JUDGE_IN_THREAD:
            results = await asyncio.to_thread(lambda: [judge(o, job, profile, rules) for o in observations])
        else:
            results = [judge(o, job, profile, rules) for o in observations]
        if job.served:
            pairs = zip(observations, results, strict=True)
            results = list(
                await asyncio.gather(*(self._network(job, config, profile, o, r, deadline) for o, r in pairs))
            )
        return results

    async def _network(
        self, job: Job, config: Config, profile: Profile, obs: Observation, result: Result, deadline: Deadline
    ) -> Result:
        """Assess a served chain and ask for a version scan when one is due."""
        if result.report is None or result.session is None:
            return result
        steps = StepLog()
        scan = None
        scanned = False  # a grade needs the version scan it depends on
        scan_status = StepResult(StepStatus.SKIPPED, "nothing to scan at this location")
        key, opener = job.scan_key(result.location), None
        if self.scanner is not None and profile.scan_protocol_versions and key is not None:
            opener = self.probers[job.source].opener(job, result.location, self.scanner.hello_timeout, profile)
        if self.scanner is not None and key is not None and opener is not None:
            if self.scan_inline:
                try:
                    latest = await deadline.run(self.scanner.scan_now(key, opener))
                    steps("version scan done")
                except TimeoutError:
                    latest = None
                    steps("version scan: not finished inside the timeout; no grade")
                    scan_status = StepResult(StepStatus.ERROR, "not finished inside the timeout")
            else:
                latest = self.scanner.latest(key)
                if latest is not None:
                    steps(f"version scan of {time.time() - latest.at:.0f}s ago is used")
                if self.scanner.request(key, opener, profile.scan_interval):
                    steps("version scan started in the background")
                if latest is None:
                    scan_status = StepResult(StepStatus.SKIPPED, "the first scan runs in the background")
            if latest is not None:
                scan, scanned = latest.hellos, True
                scan_status = StepResult(StepStatus.COMPLETED)
        elif not profile.scan_protocol_versions:
            scanned = True  # the profile grades by the handshake alone
            scan_status = StepResult(StepStatus.SKIPPED, "the profile does not scan versions")
        report = result.report
        if self.assessor is not None:
            with fetch_via(profile.proxy_url):
                a = await self.assessor.assess(
                    certificates=obs.certificates,
                    session=result.session,
                    server_name=job.server_name or "",
                    profile=profile,
                    scan=scan or (),
                    graded=scanned,
                    deadline=deadline,
                    port=_port_of(result.location),
                    dns=config.dns,
                    caa_issuers=config.caa_issuer_domains,
                )
            a = _with_step(a, Step.PROTOCOL_SCAN, scan_status)
            steps.extend(a.log)
            steps("steps: " + ", ".join(f"{step} {status}" for step, status in a.steps))
            chain = "not judged" if a.chain_valid is None else ("valid" if a.chain_valid else "invalid")
            steps(
                f"chain {chain} {', '.join(sorted(a.chain_issues))}; OCSP {a.ocsp_status or 'not judged'}; "
                f"grade {a.grade or 'none'} ({'' if a.score is None else f'{a.score:g}'})"
            )
            report = dataclasses.replace(report, assessment=a)
        leaf = report.leaf
        expires = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(leaf.not_after))
        steps(f"leaf {leaf.subject} serial {leaf.serial} expires {expires} UTC")
        return dataclasses.replace(result, report=report, log=(*result.log, *steps.lines))

    async def close(self) -> None:
        if self.scanner is not None:
            await self.scanner.close()
        if self.assessor is not None:
            await self.assessor.close()


__all__ = ["Pipeline"]
