"""Write prometheusrule.yaml: deploy/prometheus/collectord-rules.yml as a PrometheusRule.

The rule groups are copied verbatim (indented under ``spec:``), so the Prometheus Operator
and a plain Prometheus load exactly the same rules. Run after editing the rules file:

    python deploy/kubernetes/render_prometheusrule.py

tests/deploy/test_kubernetes.py fails when the two files differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "prometheus" / "collectord-rules.yml"
TARGET = HERE / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/collectord-rules.yml by render_prometheusrule.py:
# edit the rules there and re-run the script. For the Prometheus Operator; add the label
# your Prometheus' ruleSelector expects (kube-prometheus-stack: `release: <release name>`).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: collectord
  labels:
    app.kubernetes.io/name: collectord
spec:
"""


def render(rules_text: str) -> str:
    """Return the PrometheusRule manifest holding ``rules_text`` (a rule file) as its spec."""
    body = "".join(
        f"  {line}" if line.strip() else line for line in rules_text.splitlines(keepends=True)
    )
    return HEADER + body


def main() -> int:
    TARGET.write_text(render(RULES.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
