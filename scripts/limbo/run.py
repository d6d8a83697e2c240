#!/usr/bin/env python3
"""Run x509-limbo's cases through our chain verdict and print the figures per namespace.

Every servable case of tests/data/limbo/cases.json (scripts/limbo/generate.py) is served on a
loopback TLS server and judged as `tls-exporter check --ca-file TRUSTED --server-name PEER`
would (tests/limbo/harness.py says how, and what counts as accept). Run it where no other
test can see the loopback servers, e.g.

    unshare -n sh -c 'ip link set lo up; .venv/bin/python scripts/limbo/run.py'
    ... scripts/limbo/run.py -k ::cn:: -k pathlen      # only ids containing one of these
    ... scripts/limbo/run.py --all                     # every case, agreements too
    ... scripts/limbo/run.py --markdown                # the table as in docs/limbo.md
    ... scripts/limbo/run.py --write-expected          # record tests/limbo/expected.py

Output: the table (cases, agree, false accepts, false rejects, no verdict, unservable), then
every disagreement with what we said and why, then the unservable cases with why. With -k, the
recorded expectations are compared too: a case whose verdict changed is marked.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(1, str(ROOT))

from limbo.harness import CASES, VERDICTS, CaseResult, figures, limbo_commit, load_cases, run_cases  # noqa: E402

EXPECTED_FILE = ROOT / "tests" / "limbo" / "expected.py"
HEADINGS = {
    "false_accept": "False accepts (limbo: FAILURE; we accept)",
    "false_reject": "False rejects (limbo: SUCCESS; we reject)",
    "no_verdict": "No verdict",
    "agree": "Agreements",
    "unservable": "Unservable (not counted)",
}
COLUMNS = ("cases", "agree", "false_accept", "false_reject", "no_verdict", "unservable")
TITLES = ("cases", "agree", "false accepts", "false rejects", "no verdict", "unservable")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-k", "--filter", action="append", default=[], help="only ids containing this (repeatable: any)")
    p.add_argument("--all", action="store_true", help="list every case, agreements included")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", action="store_true", help="print every result as JSON")
    p.add_argument("--write-expected", action="store_true", help=f"write {EXPECTED_FILE.relative_to(ROOT)}")
    p.add_argument(
        "--at-now", action="store_true", help="ignore limbo's validation_time: judge at the current time, as check does"
    )
    p.add_argument("--cases", type=Path, default=CASES, help="the cases file (default: %(default)s)")
    p.add_argument("-j", "--jobs", type=int, default=32, help="cases judged at once (default 32)")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")  # cryptography's deprecation warnings on limbo's odd certificates

    cases = [c for c in load_cases(args.cases) if not args.filter or any(f in c.id for f in args.filter)]
    if not cases:
        print("no case matches", file=sys.stderr)
        return 2
    if args.write_expected and (args.filter or args.at_now or args.cases != CASES):
        p.error("--write-expected records every case of the committed file at limbo's times: no -k, --at-now, --cases")
    t0 = time.monotonic()
    results = asyncio.run(run_cases(cases, concurrency=args.jobs, at_now=args.at_now))
    took = time.monotonic() - t0

    if args.json:
        print(json.dumps([_as_json(r) for r in results], indent=1))
        return 0
    if args.write_expected:
        write_expected(results)
        print(f"wrote {EXPECTED_FILE.relative_to(ROOT)}", file=sys.stderr)
    recorded = _recorded()
    when = " (judged at the current time, limbo's validation_time ignored)" if args.at_now else ""
    print(f"x509-limbo {limbo_commit(args.cases)[:12]}: {len(results)} cases in {took:.1f}s{when}\n")
    print(markdown_table(results) if args.markdown else text_table(results))
    shown = VERDICTS if args.all else ("false_accept", "false_reject", "no_verdict", "unservable")
    for verdict in shown:
        rows = [r for r in results if r.verdict == verdict]
        if not rows:
            continue
        print(f"\n{HEADINGS[verdict]}: {len(rows)}")
        for r in rows:
            was = recorded.get(r.id)
            mark = "" if verdict == "unservable" or was == r.verdict else f"  [was {was or 'not recorded'}]"
            at = "" if r.at == "now" else f"  (at {r.at})"
            print(f"  {r.id}{at}{mark}")
            print(f"      {r.summary}")
    moved = [r for r in results if r.verdict != "unservable" and recorded.get(r.id) != r.verdict]
    gone = [] if args.filter else sorted(set(recorded) - {r.id for r in results if r.verdict != "unservable"})
    if moved or gone:
        print(f"\nDiffer from {EXPECTED_FILE.relative_to(ROOT)}:")
        for r in moved:
            print(f"  {r.id}: {recorded.get(r.id, 'not recorded')} -> {r.verdict}")
        for case_id in gone:
            print(f"  {case_id}: {recorded[case_id]} -> not judged")
    return 0


def text_table(results: Sequence[CaseResult]) -> str:
    rows = figures(results)
    width = max(len(n) for n in rows)
    lines = [f"{'namespace':<{width}}  " + "  ".join(f"{t:>{len(t)}}" for t in TITLES)]
    for name, row in rows.items():
        cells = (f"{row[c]:>{len(t)}}" for c, t in zip(COLUMNS, TITLES, strict=True))
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def markdown_table(results: Sequence[CaseResult]) -> str:
    rows = figures(results)
    lines = [
        "| namespace | servable | " + " | ".join(TITLES[1:]) + " |",
        "|---|" + "---:|" * len(TITLES),
    ]
    for name, row in rows.items():
        servable = row["cases"] - row["unservable"]
        label = f"**{name}**" if name == "total" else f"`{name}::`"
        lines.append(f"| {label} | {servable} | " + " | ".join(str(row[c]) for c in COLUMNS[1:]) + " |")
    return "\n".join(lines)


def write_expected(results: Sequence[CaseResult]) -> None:
    lines = [
        '"""What our chain verdict says on each servable x509-limbo case, as recorded by',
        "`scripts/limbo/run.py --write-expected` (tests/limbo/test_limbo.py compares every run with it).",
        "When the judge changes, run that again and review the diff: a case leaving false_accept or",
        'false_reject is progress; one entering them is a regression."""',
        "",
        "EXPECTED: dict[str, str] = {",
    ]
    lines += [f'    "{r.id}": "{r.verdict}",' for r in sorted(results, key=lambda r: r.id) if r.verdict != "unservable"]
    lines.append("}")
    EXPECTED_FILE.write_text("\n".join(lines) + "\n")


def _recorded() -> dict[str, str]:
    try:
        module = importlib.import_module("limbo.expected")
    except ModuleNotFoundError:
        return {}
    return dict(module.EXPECTED)


def _as_json(r: CaseResult) -> dict[str, object]:
    return {
        "id": r.id,
        "namespace": r.namespace,
        "expected": r.expected,
        "verdict": r.verdict,
        "accepted": r.accepted,
        "chain_valid": r.chain_valid,
        "hostname_match": r.hostname_match,
        "issues": list(r.issues),
        "reasons": list(r.reasons),
        "other_findings": list(r.other_findings),
        "at": r.at,
        "seconds": round(r.seconds, 3),
    }


if __name__ == "__main__":
    sys.exit(main())
