"""The guest agent's launch reports (provisioning/guest_agent.sh) run here against a live
portal: a step's end and the next one's start go in one request, and an image without a
K3s bundle fails launch_k3s with its own code. K3s itself cannot run here (no binary)."""

import os
import subprocess
from pathlib import Path

import pytest

from observability.models import Event
from provisioning import guest_seed
from provisioning.models import Node, NodeStep
from provisioning.states import NodeStatus
from tests.provisioning.test_guest import PHONE_HOME, booted, report
from tests.provisioning.test_guest_agent_heartbeat import AGENT, stub

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["booted"]  # the fixture, imported for the tests here


def test_the_agent_batches_its_reports_and_fails_without_a_bundle(
    booted: list[Node], live_server, tmp_path: Path
) -> None:
    server = booted[0]
    assert report(server, "cloud_init", "started").status_code == 200  # the seed's bootcmd
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub(bin_dir, "systemctl", "active")
    env_file = tmp_path / "agent.env"
    env_file.write_text(
        f"NODE_TOKEN={guest_seed.node_token(server)}\nIS_SERVER=1\n"
        f"PHONE_HOME_URL={live_server.url}{PHONE_HOME}\nHEARTBEAT_URL=unused\n"
    )
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "AGENT_ENV": str(env_file)}
    done = subprocess.run(["sh", str(AGENT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr  # launch_k3s failed, as it must here

    server.refresh_from_db()
    assert server.status == NodeStatus.FAILED
    assert server.error_code == "k3s_bundle_missing"
    rows = {r.step: r for r in NodeStep.objects.filter(node=server)}
    assert all(rows[s].finished_at for s in ("cloud_init", "fetch_deps"))
    # One request each for a step's end and the next one's start: they share its moment.
    assert rows["cloud_init"].finished_at == rows["fetch_deps"].started_at
    assert rows["fetch_deps"].finished_at == rows["launch_k3s"].started_at
    assert rows["launch_k3s"].started_at is not None and rows["launch_k3s"].failed
    messages = list(
        Event.objects.filter(node=server.name, step__in=["cloud_init", "fetch_deps", "launch_k3s"])
        .order_by("id")
        .values_list("step", "state")
    )
    assert messages == [
        ("cloud_init", "started"),
        ("cloud_init", "done"),
        ("fetch_deps", "started"),
        ("fetch_deps", "done"),
        ("launch_k3s", "started"),
        ("launch_k3s", "failed"),
    ]
