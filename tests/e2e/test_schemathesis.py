"""Schemathesis against the running portal: every operation of the schema it serves, with
generated valid and invalid input. No answer may be a 5xx, and every answer must be one
the schema documents: its status, its content type and its body's shape."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.e2e.conftest import Portal
from tests.test_openapi import CHECKED_IN

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


def test_every_operation_answers_as_documented(portal: Portal, tmp_path: Path) -> None:
    # Staff, so the served schema holds the staff API too; an organisation of its own.
    token = portal.manage("create_token", "fuzzer", "--org", "fuzz", "--create", "--staff")
    schemathesis = Path(sys.executable).parent / "schemathesis"
    run = subprocess.run(
        [
            str(schemathesis), "run", f"{portal.url}/api/schema/",
            "--header", f"Authorization: Bearer {token.strip().splitlines()[-1]}",
            "--checks", ",".join(CHECKS),
            "--max-examples", "30",
            "--seed", "1",  # the same cases each run: a failure here is reproducible
            "--continue-on-failure",
            "--generation-database", "none",
            "--report", "junit", "--report-junit-path", str(tmp_path / "schemathesis.xml"),
        ],
        capture_output=True, text=True, timeout=900, check=False,
        cwd=tmp_path,  # its cache folder goes there, not into the checkout
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    operations = sum(len(ops) for ops in yaml.safe_load(CHECKED_IN.read_text())["paths"].values())
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert tested and int(tested[1]) == operations, run.stdout[-3000:]
    assert portal.server_errors() == []
