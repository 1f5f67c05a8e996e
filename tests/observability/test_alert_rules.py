"""The Prometheus rules and the Grafana dashboard in deploy/: valid, their alerts fire on
what they should (promtool's own rule tests), and every metric they name is one /metrics
exports (provisioning/metrics.py, observability/instruments.py)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
SOURCES = [
    Path(__file__).resolve().parents[2] / path
    for path in ("provisioning/metrics.py", "observability/instruments.py")
]
METRIC = re.compile(r"k3s_portal_[a-z_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def promtool(*args: str) -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (CI installs Debian's prometheus package)")
    done = subprocess.run(
        [binary, *args], cwd=RULES.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_are_valid_and_their_tests_pass() -> None:
    assert "SUCCESS: 7 rules found" in promtool("check", "rules", RULES.name)
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


def exported() -> set[str]:
    return {name for source in SOURCES for name in METRIC.findall(source.read_text())}


def named_in(text: str) -> set[str]:
    names = set()
    for name in METRIC.findall(text):
        for suffix in SUFFIXES:
            name = name.removesuffix(suffix)
        names.add(name)
    return names


def test_the_rules_and_the_dashboard_name_only_exported_metrics() -> None:
    known = exported()
    rules = RULES.read_text()
    assert named_in(rules) - {"k3s_portal"} <= known, named_in(rules) - known
    dashboard = json.loads((DEPLOY / "grafana" / "portal.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert named_in(exprs) and named_in(exprs) <= known, named_in(exprs) - known
