"""Judge x509-limbo cases as ``tls-exporter check`` would, on loopback TLS servers.

For one case (from ``tests/data/limbo/cases.json``, made by ``scripts/limbo/generate.py``): a
TLS server on 127.0.0.1 serves the peer certificate and the untrusted intermediates with the
leaf key (``@SECLEVEL=0``, so limbo's weak test keys load), and the case is judged by the code
path of

    tls-exporter check 127.0.0.1:PORT --protocol tls --server-name PEER --ca-file TRUSTED.pem

in process: ``adhoc_target`` with the profile's ``trust`` set to the case's trusted
certificates (as ``run_check`` does), ``Pipeline.probe`` (the TLS source's handshake, the leaf
judgement, ``Assessor.assess``: chain, revocation), then ``outputs.verdict.verdict``, the
findings ``check`` prints. Two departures, neither touching the chain verdict:

- time: the assessment is made at the case's ``validation_time`` when limbo gives one (the
  ``now`` parameter of ``Assessor.assess``, which becomes the ``at`` of ``verify_chain``; the
  ``Pipeline`` does not pass it on, so the harness's ``Assessor`` takes it from a context
  variable), and the findings are made at that moment too. Without one, at the current time
  (limbo's certificates are valid from 1970 for a thousand years).
- no version scan: it only feeds the grade and the legacy-protocol finding.

Classification (``Verdict`` below), limbo's expectation against ours:

- we *accept* when the chain judgement passes: the assessment says ``chain_valid`` True, the
  leaf covers the server name (``hostname_match`` True), and ``check`` shows no finding about
  the chain (``chain_invalid``, ``hostname_mismatch``, ``revoked``, ``expired``,
  ``not_yet_valid``). Other findings (a weak key, a weak signature hash, an expiry tier) are
  policy warnings about a chain a client would still accept, so they do not make a reject; they
  are listed with the result;
- we *reject* when the chain step completed and any of those fails;
- a handshake the probe refuses because the server's key is one no client negotiates (a DSA or
  P-192 leaf: the server finds no shared cipher) is a *reject*: `check` says critical,
  ``handshake_failed``, as a browser would fail;
- ``no_verdict``: no judgement at all: the probe failed otherwise, the chain step could not be
  judged (an error on our side, e.g. a trust bundle without certificates), an exception, or
  the server name was refused as an argument;
- ``unservable``: the case cannot be put on a TLS server (a client-validation case, no leaf
  key, OpenSSL refuses the certificate or the key): not counted.

``agree`` / ``false_accept`` (limbo FAILURE, we accept) / ``false_reject`` (limbo SUCCESS, we
reject) / ``no_verdict`` / ``unservable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import datetime as dt
import json
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from exporter.config.model import Config
from exporter.judge.assess import Assessor
from exporter.judge.fetch import Fetcher
from exporter.outputs.verdict import verdict
from exporter.pipeline import Pipeline
from exporter.results import Assessment, Step, StepStatus
from exporter.sources.adhoc import adhoc_target
from exporter.support.netpolicy import FetchPolicy

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "data" / "limbo" / "cases.json"

Verdict = Literal["agree", "false_accept", "false_reject", "no_verdict", "unservable"]
VERDICTS: tuple[Verdict, ...] = ("agree", "false_accept", "false_reject", "no_verdict", "unservable")
# Findings of `check` that are a judgement of the chain (a reject); others are policy warnings.
CHAIN_FINDINGS = frozenset({"chain_invalid", "hostname_mismatch", "revoked", "expired", "not_yet_valid"})
PROBE_TIMEOUT = 20.0


def policy_of(case: Case) -> str:
    """The validation policy a case is judged under: limbo's webpki:: cases test the CA/Browser
    Forum rules (`--validation-policy webpki`); every other namespace RFC 5280 (the default with
    `--ca-file`)."""
    return "webpki" if case.id.startswith("webpki::") else "rfc5280"


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    id: str
    namespace: str
    description: str
    expected_result: str  # SUCCESS | FAILURE
    validation_kind: str
    peer_kind: str | None
    peer_name: str | None
    unservable: str | None  # why, when the case cannot be served (from the generator)
    validation_time: dt.datetime | None = None
    trusted_certs: tuple[str, ...] = ()
    untrusted_intermediates: tuple[str, ...] = ()
    peer_certificate: str = ""
    leaf_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # EKU, max depth...: limbo's other fields

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Case:
        peer = d.get("peer_name") or {}
        when = d.get("validation_time")
        known = {
            "id",
            "namespace",
            "description",
            "expected_result",
            "validation_kind",
            "peer_name",
            "unservable",
            "validation_time",
            "trusted_certs",
            "untrusted_intermediates",
            "peer_certificate",
            "leaf_key",
        }
        return cls(
            id=d["id"],
            namespace=d["namespace"],
            description=d["description"],
            expected_result=d["expected_result"],
            validation_kind=d["validation_kind"],
            peer_kind=peer.get("kind"),
            peer_name=peer.get("value"),
            unservable=d["unservable"],
            validation_time=None if when is None else dt.datetime.fromisoformat(when),
            trusted_certs=tuple(d.get("trusted_certs") or ()),
            untrusted_intermediates=tuple(d.get("untrusted_intermediates") or ()),
            peer_certificate=d.get("peer_certificate") or "",
            leaf_key=d.get("leaf_key") or "",
            extra={k: v for k, v in d.items() if k not in known},
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    id: str
    namespace: str
    expected: str  # limbo's SUCCESS | FAILURE
    verdict: Verdict
    accepted: bool | None = None  # our judgement (None: none)
    chain_valid: bool | None = None
    hostname_match: bool | None = None
    issues: tuple[str, ...] = ()  # the assessment's chain issues
    reasons: tuple[str, ...] = ()  # why we reject (chain reasons, findings), or why there is no verdict
    other_findings: tuple[str, ...] = ()  # findings that are not a judgement of the chain
    at: str = "now"  # the moment judged: the case's validation_time, or "now"
    notes: tuple[str, ...] = ()  # what limbo asks of the validator that `check` cannot be told
    seconds: float = 0.0

    @property
    def summary(self) -> str:
        """One line: what we said and why."""
        if self.verdict == "unservable" or self.accepted is None:
            return "; ".join(self.reasons)
        head = "accepted" if self.accepted else "rejected"
        parts = [f"chain_valid={self.chain_valid}", f"hostname_match={self.hostname_match}"]
        if self.issues:
            parts.append("issues: " + ", ".join(self.issues))
        line = f"{head} ({'; '.join(parts)})"
        if self.reasons:
            line += ": " + " | ".join(self.reasons)
        if self.other_findings:
            line += " [also: " + " | ".join(self.other_findings) + "]"
        if self.notes:
            line += " [" + "; ".join(self.notes) + "]"
        return line


def load_cases(path: Path = CASES) -> list[Case]:
    return [Case.from_json(d) for d in json.loads(path.read_text())["cases"]]


def limbo_commit(path: Path = CASES) -> str:
    return str(json.loads(path.read_text())["limbo"]["commit"])


# -- the judge --------------------------------------------------------------------------------------

_JUDGED_AT: contextvars.ContextVar[float | None] = contextvars.ContextVar("limbo_judged_at", default=None)


class _AtAssessor(Assessor):
    """The real ``Assessor``, judging at the case's validation time (a context variable: one
    assessor and one pipeline serve every case, each task with its own time)."""

    async def assess(self, *, now: float | None = None, **rest: Any) -> Assessment:
        # Every other argument passes through untouched, whatever the real assess() takes.
        at = _JUDGED_AT.get()
        return await super().assess(now=at if now is None else now, **rest)


def _classify(expected: str, accepted: bool | None) -> Verdict:
    if accepted is None:
        return "no_verdict"
    if accepted == (expected == "SUCCESS"):
        return "agree"
    return "false_accept" if accepted else "false_reject"


class Harness:
    """One pipeline (as ``check`` builds it) for many cases; use ``async with``."""

    def __init__(self, workdir: Path, *, at_now: bool = False) -> None:
        self.workdir = workdir
        self.at_now = at_now  # ignore limbo's validation_time: judge at the current time, as `check` does
        self.config = Config()
        self.pipeline = Pipeline(
            assessor=_AtAssessor(
                # No fetch leaves the harness: limbo's AIA and OCSP URLs name hosts that do not
                # exist here, and a name lookup under load must not decide a case.
                fetcher=Fetcher(policy=FetchPolicy.of([], ["*"]))
            )
        )

    async def __aenter__(self) -> Harness:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pipeline.close()

    async def run(self, case: Case) -> CaseResult:
        t0 = time.monotonic()
        base = _start(case)
        if case.unservable is not None:
            return dataclasses.replace(base, verdict="unservable", reasons=(case.unservable,))
        depth = case.extra.get("max_chain_depth")
        if depth is not None:
            # A limit the validator is given, not a property of the chain: no TLS client has one.
            why = f"limbo validates with max_chain_depth={depth}, a limit no TLS client (and no check option) sets"
            return dataclasses.replace(base, verdict="unservable", reasons=(why,))
        d = self.workdir / case.id.replace("::", "__")
        d.mkdir(parents=True, exist_ok=True)
        try:
            server_ctx = server_context(case, d)
        except (ssl.SSLError, ValueError, OSError) as e:
            return dataclasses.replace(
                base, verdict="unservable", reasons=(f"OpenSSL refuses the leaf key or certificate: {e}",)
            )
        trust = d / "trusted.pem"
        trust.write_text("".join(case.trusted_certs))
        when = None if self.at_now else case.validation_time
        at = None if when is None else when.timestamp()
        async with _serve(server_ctx) as server:
            token = _JUDGED_AT.set(at)
            try:
                result = await self._judge(case, server, trust, at)
            except Exception as e:  # a bug of ours is a result too: no verdict
                result = dataclasses.replace(
                    base, verdict="no_verdict", reasons=(f"exception: {type(e).__name__}: {e}",)
                )
            finally:
                _JUDGED_AT.reset(token)
        return dataclasses.replace(result, at=iso_time(when), notes=_notes(case), seconds=time.monotonic() - t0)

    async def _judge(self, case: Case, server: Server, trust: Path, at: float | None) -> CaseResult:
        base = _start(case)
        try:
            target = adhoc_target(
                f"127.0.0.1:{server.port}", protocol="tls", server_name=case.peer_name, profile=None, config=self.config
            )
        except ValueError as e:
            return dataclasses.replace(base, verdict="no_verdict", reasons=(f"check refuses the argument: {e}",))
        target = dataclasses.replace(target, timeout=PROBE_TIMEOUT)
        # As run_check does for --ca-file (and --validation-policy): the target's profile,
        # trusting the bundle alone, under the policy the case's namespace tests.
        profile = dataclasses.replace(
            self.config.profile(target.profile), trust=str(trust), validation_policy=policy_of(case)
        )
        config = dataclasses.replace(self.config, profiles={**self.config.profiles, target.profile: profile})
        results = await self.pipeline.probe(target, config)
        if len(results) != 1:
            return dataclasses.replace(base, verdict="no_verdict", reasons=(f"{len(results)} results for one address",))
        r = results[0]
        judgement = verdict(r, target, profile, time.time() if at is None else at)
        chain_findings = tuple(f"{f.code}: {f.text}" for f in judgement.findings if f.code in CHAIN_FINDINGS)
        others = tuple(f"{f.code}: {f.text}" for f in judgement.findings if f.code not in CHAIN_FINDINGS)
        report = r.report
        if report is None or not r.success:
            why = f"probe failed: {r.outcome.value}: {r.detail}"
            if server.errors:
                why += f" (the loopback server said: {'; '.join(dict.fromkeys(server.errors))})"
            if r.outcome.value == "handshake_failed" and "NO_SHARED_CIPHER" in why:
                # The certificate's key is one no client negotiates (DSA, P-192): like a browser,
                # the probe refuses the server, and check says so (critical, handshake_failed).
                return dataclasses.replace(
                    base, verdict=_classify(case.expected_result, False), reasons=(why,), other_findings=others
                )
            return dataclasses.replace(base, verdict="no_verdict", reasons=(why,), other_findings=others)
        a = report.assessment
        if a is None or a.chain_valid is None:
            errors = [] if a is None else [f"{s}: {st.reason}" for s, st in a.steps if st.status is StepStatus.ERROR]
            why = "chain not judged: " + ("; ".join(e for e in errors if e.startswith(str(Step.CHAIN))) or "no detail")
            return dataclasses.replace(
                base,
                verdict="no_verdict",
                hostname_match=report.hostname_match,
                reasons=(why,),
                other_findings=others,
            )
        accepted = a.chain_valid is True and report.hostname_match is True and not chain_findings
        reasons: tuple[str, ...] = ()
        if not accepted:
            # The chain's reasons, then the findings that do not repeat one of them.
            told = tuple(a.chain_reasons)
            reasons = (*told, *(f for f in chain_findings if not any(t in f for t in told)))
        return dataclasses.replace(
            base,
            verdict=_classify(case.expected_result, accepted),
            accepted=accepted,
            chain_valid=a.chain_valid,
            hostname_match=report.hostname_match,
            issues=tuple(sorted(a.chain_issues)),
            reasons=reasons,
            other_findings=others,
        )


def _notes(case: Case) -> tuple[str, ...]:
    """Limbo's expectations beyond the chain and the name, which `check` has no option for."""
    notes = []
    if case.extra.get("max_chain_depth") is not None:
        notes.append(f"limbo validates with max_chain_depth={case.extra['max_chain_depth']}, check has no such limit")
    return tuple(notes)


def _start(case: Case) -> CaseResult:
    return CaseResult(id=case.id, namespace=case.namespace, expected=case.expected_result, verdict="no_verdict")


def iso_time(when: dt.datetime | None) -> str:
    """``CaseResult.at``: the moment judged, in UTC (milliseconds when limbo gives them), or "now"."""
    if when is None:
        return "now"
    when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond // 1000:03d}Z" if when.microsecond else "Z")


def server_context(case: Case, d: Path) -> ssl.SSLContext:
    """The peer certificate and the untrusted intermediates, served with the leaf key."""
    chain, key = d / "chain.pem", d / "key.pem"
    chain.write_text(case.peer_certificate + "".join(case.untrusted_intermediates))
    key.write_text(case.leaf_key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # no legacy_protocol finding from the harness's own server
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(chain, key)
    return ctx


class Server:
    """A blocking TLS server on 127.0.0.1 in threads of its own, one connection at a time.

    Not asyncio's: in memory-BIO mode CPython takes an error OpenSSL leaves queued while
    handshaking (limbo's malformed issuer key: "EVP: DECODE_ERROR") for a failed handshake,
    where a blocking socket completes it. The server's own handshake errors are kept: they
    tell a case our client could not talk to from one the server could not serve."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.errors: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(PROBE_TIMEOUT)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                while tls.recv(4096):
                    pass
        except ssl.SSLError as e:
            self.errors.append(f"{e.reason or e}")
        except OSError:
            pass  # the client went away
        finally:
            conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(2.0)


@contextlib.asynccontextmanager
async def _serve(ctx: ssl.SSLContext) -> AsyncIterator[Server]:
    server = Server(ctx)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.close)


async def run_cases(
    cases: Sequence[Case],
    *,
    concurrency: int = 32,
    at_now: bool = False,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Every case, ``concurrency`` at a time, in one event loop; results in the order of ``cases``."""
    slots = asyncio.Semaphore(concurrency)
    with tempfile.TemporaryDirectory(prefix="limbo-") as tmp:
        async with Harness(Path(tmp), at_now=at_now) as harness:

            async def one(case: Case) -> CaseResult:
                async with slots:
                    r = await harness.run(case)
                if on_result is not None:
                    on_result(r)
                return r

            return list(await asyncio.gather(*(one(c) for c in cases)))


def run_all(cases: Sequence[Case], *, concurrency: int = 32, at_now: bool = False) -> list[CaseResult]:
    return asyncio.run(run_cases(cases, concurrency=concurrency, at_now=at_now))


def figures(results: Sequence[CaseResult]) -> dict[str, dict[str, int]]:
    """Per namespace (in limbo's order of the counted ones, then "total"): cases and each verdict."""
    out: dict[str, dict[str, int]] = {}
    for r in results:
        for key in (r.namespace, "total"):
            row = out.setdefault(key, {"cases": 0, **dict.fromkeys(VERDICTS, 0)})
            row["cases"] += 1
            row[r.verdict] += 1
    total = out.pop("total", None)
    if total is not None:
        out["total"] = total
    return out
