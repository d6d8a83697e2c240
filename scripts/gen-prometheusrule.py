#!/usr/bin/env python3
"""Write deploy/kubernetes/base/prometheusrule.yaml: the alert rules of alerting-rules/ as a Prometheus
Operator PrometheusRule, so the Kubernetes base ships the same rules as a plain Prometheus.

The same as `tls-exporter rules --format=prometheusrule`: the rule file verbatim (comments
included), indented under `spec:`; a test checks that the committed file equals it.
Usage: scripts/gen-prometheusrule.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "alerting-rules" / "tls-exporter.rules.yml"
OUTPUT = ROOT / "deploy" / "kubernetes" / "base" / "prometheusrule.yaml"

sys.path.insert(0, str(ROOT))
from exporter.outputs.rules import render_rules  # noqa: E402  (one renderer: the command's)


def render(rules_text: str) -> str:
    return render_rules(rules_text, fmt="prometheusrule")


def main(argv: list[str]) -> int:
    text = render(RULES.read_text(encoding="utf-8"))
    if argv[1:] == ["--check"]:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run scripts/gen-prometheusrule.py", file=sys.stderr)
            return 1
        return 0
    if argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
