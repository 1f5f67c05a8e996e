"""The guest agent's own heartbeat (`k3s-portal-agent heartbeat`, provisioning/guest_agent.sh)
run here against a live portal: its figures are this machine's /proc and df, and the
portal takes them. K3s cannot run here (no binary), so `systemctl` and `k3s` are small
scripts answering as systemd and `k3s kubectl get nodes --no-headers` print."""

import os
import subprocess
from pathlib import Path

import pytest
from django.core.cache import cache

from provisioning import guest_seed
from provisioning.models import Cluster, Node, NodeHealth, NodeHeartbeat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]
AGENT = Path(guest_seed.__file__).parent / "guest_agent.sh"
TWO = {"name": "shell", "region": "demo", "pools": [{"name": "w", "size": "small", "count": 2}]}


def stub(directory: Path, name: str, output: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}\nOUT\n")
    path.chmod(0o755)


def run_agent(tmp_path: Path, node: Node, url: str, kubectl: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub(bin_dir, "systemctl", "active")
    stub(bin_dir, "k3s", kubectl)
    env_file = tmp_path / "agent.env"
    env_file.write_text(
        f"NODE_TOKEN={guest_seed.node_token(node)}\nIS_SERVER={int(node.is_server)}\n"
        f"HEARTBEAT_URL={url}{guest_seed.HEARTBEAT_PATH}\nPHONE_HOME_URL=unused\n"
    )
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "AGENT_ENV": str(env_file),
        "AGENT_STATE": str(tmp_path / "state" / "cpu"),
    }
    done = subprocess.run(
        ["sh", str(AGENT), "heartbeat"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_agent_heartbeat_reports_this_machine_and_the_servers_node_list(
    demo_cloud, alice, acme, api_for, live_server, tmp_path, settings
) -> None:
    cache.clear()
    assert api_for(alice, acme).post("/api/v1/clusters", TWO, format="json").status_code == 202
    cluster = Cluster.objects.get()
    server = Node.objects.get(cluster=cluster, is_server=True)
    agent = Node.objects.get(cluster=cluster, is_server=False)
    NodeHeartbeat.objects.all().delete()  # the simulator's
    kubectl = (
        f"{server.name}   Ready      control-plane,master   5m   v1.31.4+k3s1\n"
        f"{agent.name}    NotReady   <none>                 4m   v1.31.4+k3s1"
    )
    assert run_agent(tmp_path, server, live_server.url, kubectl) == "200"

    sample = NodeHeartbeat.objects.get(node=server)
    meminfo = Path("/proc/meminfo").read_text().split()
    assert sample.memory_total_mib == int(meminfo[meminfo.index("MemTotal:") + 1]) // 1024
    assert 0 < sample.memory_used_mib < sample.memory_total_mib
    assert 0 <= sample.cpu_percent <= 100
    assert 0 < sample.disk_used_percent <= 100
    assert sample.load1 == float(Path("/proc/loadavg").read_text().split()[0])
    assert sample.k3s_state == "active"
    kube = dict(NodeHealth.objects.values_list("node__name", "kube_status"))
    assert kube == {server.name: "Ready", agent.name: "NotReady"}

    # An agent sends no node list; its CPU share is measured since the last beat's ticks.
    assert run_agent(tmp_path, agent, live_server.url, "") == "200"
    assert 0 <= NodeHeartbeat.objects.get(node=agent).cpu_percent <= 100
    assert NodeHealth.objects.get(node=agent).kube_status == "NotReady"
