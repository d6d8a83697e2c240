#!/usr/bin/env python3
"""pyca/cryptography's figures on the same x509-limbo cases, for comparison with ours.

Runs limbo's own pyca harness (harness/pyca-cryptography/main.py, ``evaluate_testcase``) at the
pinned commit, in the venv generate.py makes (limbo's pinned cryptography ~= 46, unless --venv
holds another), over the servable cases of tests/data/limbo/cases.json, and prints per
namespace: agree, false accepts, false rejects, skipped (the cases limbo's pyca harness skips:
unsupported features, ids it lists as deliberately unsupported, max-depth and EKU options it
does not handle). Needs no network beyond what generate.py needs (a clone, PyPI).

    scripts/limbo/pyca.py [--limbo-src DIR] [--venv DIR] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import LIMBO_COMMIT, OUTPUT, clone, venv_python

COLUMNS = ("servable", "agree", "false_accept", "false_reject", "skipped")
TITLES = ("servable", "agree", "false accepts", "false rejects", "skipped")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limbo-src", type=Path, help=f"a checkout of x509-limbo at {LIMBO_COMMIT[:12]} (default: clone)")
    p.add_argument("--venv", type=Path, help="a venv with limbo's generator dependencies (default: a new one)")
    p.add_argument("--cases", type=Path, default=OUTPUT)
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        json.dump(evaluate(args.limbo_src, args.cases), sys.stdout)
        return 0
    with tempfile.TemporaryDirectory(prefix="limbo-pyca-") as tmp:
        src = args.limbo_src or clone(Path(tmp) / "x509-limbo")
        python = venv_python(args.venv or Path(tmp) / "venv", src, create=args.venv is None)
        env = {**os.environ, "PYTHONPATH": str(src), "PYTHONWARNINGS": "ignore"}
        out = subprocess.run(
            [str(python), __file__, "--worker", "--limbo-src", str(src), "--cases", str(args.cases)],
            env=env,
            capture_output=True,  # limbo's harness says "Evaluating: ID" on stderr for every case
        )
        if out.returncode != 0:
            sys.stderr.write(out.stderr.decode(errors="replace"))
            return out.returncode
    doc = json.loads(out.stdout)
    rows: dict[str, dict[str, int]] = {}
    for r in doc["results"]:
        for key in (r["namespace"], "total"):
            row = rows.setdefault(key, dict.fromkeys(COLUMNS, 0))
            row["servable"] += 1
            row[r["verdict"]] += 1
    rows["total"] = rows.pop("total")
    print(f"pyca/cryptography {doc['version']} (limbo's harness at {LIMBO_COMMIT[:12]}) on {args.cases.name}\n")
    if args.markdown:
        print("| namespace | " + " | ".join(TITLES) + " |")
        print("|---|" + "---:|" * len(TITLES))
        for name, row in rows.items():
            label = f"**{name}**" if name == "total" else f"`{name}::`"
            print(f"| {label} | " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    else:
        width = max(len(n) for n in rows)
        print(f"{'namespace':<{width}}  " + "  ".join(TITLES))
        for name, row in rows.items():
            print(f"{name:<{width}}  " + "  ".join(f"{row[c]:>{len(t)}}" for c, t in zip(COLUMNS, TITLES, strict=True)))
    for verdict in ("false_accept", "false_reject"):
        ids = [r["id"] for r in doc["results"] if r["verdict"] == verdict]
        print(f"\n{verdict}: {len(ids)}" + "".join(f"\n  {i}" for i in ids))
    return 0


# -- the worker: runs inside the venv with limbo importable ---------------------------------------


def evaluate(src: Path, cases_file: Path) -> dict[str, Any]:
    import importlib.util

    import cryptography
    from limbo.models import Testcase  # type: ignore[import-not-found]

    spec = importlib.util.spec_from_file_location("pyca_harness", src / "harness" / "pyca-cryptography" / "main.py")
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    results = []
    for c in json.loads(cases_file.read_text())["cases"]:
        if c["unservable"] is not None:
            continue
        tc = Testcase(
            id=c["id"],
            conflicts_with=c["conflicts_with"],
            features=c["features"],
            importance=c["importance"],
            description=c["description"],
            validation_kind=c["validation_kind"],
            trusted_certs=c["trusted_certs"],
            untrusted_intermediates=c["untrusted_intermediates"],
            peer_certificate=c["peer_certificate"],
            peer_certificate_key=c["leaf_key"],
            validation_time=c["validation_time"],
            signature_algorithms=c["signature_algorithms"],
            key_usage=c["key_usage"],
            extended_key_usage=c["extended_key_usage"],
            expected_result=c["expected_result"],
            expected_peer_name=c["peer_name"],
            expected_peer_names=[],
            max_chain_depth=c["max_chain_depth"],
            crls=c["crls"],
        )
        actual = str(harness.evaluate_testcase(tc).actual_result)
        if actual == "SKIPPED":
            verdict = "skipped"
        elif actual == c["expected_result"]:
            verdict = "agree"
        else:
            verdict = "false_accept" if actual == "SUCCESS" else "false_reject"
        results.append({"id": c["id"], "namespace": c["namespace"], "verdict": verdict})
    return {"version": cryptography.__version__, "results": results}


if __name__ == "__main__":
    sys.exit(main())
