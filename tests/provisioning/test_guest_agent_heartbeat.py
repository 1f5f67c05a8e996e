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


def run_agent(
    tmp_path: Path, node: Node, url: str, kubectl: str, script: Path = AGENT, extra: str = ""
) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub(bin_dir, "systemctl", "active")
    stub(bin_dir, "k3s", kubectl)
    env_file = tmp_path / "agent.env"
    env_file.write_text(
        f"NODE_TOKEN={guest_seed.node_token(node)}\nIS_SERVER={int(node.is_server)}\n"
        f"HEARTBEAT_URL={url}{guest_seed.HEARTBEAT_PATH}\nPHONE_HOME_URL=unused\n{extra}"
    )
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "AGENT_ENV": str(env_file),
        "AGENT_STATE": str(tmp_path / "state" / "cpu"),
    }
    done = subprocess.run(
        ["sh", str(script), "heartbeat"], env=env, capture_output=True, text=True, timeout=30
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
    NodeHeartbeat.objects.all().delete()  # the simulator's, kept just now:
    NodeHealth.objects.update(sampled_at=None)  # the agent's beat is kept too
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


def test_a_server_asked_to_upgrade_re_runs_the_install_script_with_the_new_version(
    demo_cloud, alice, acme, api_for, live_server, tmp_path, settings
) -> None:
    """The heartbeat's answer names the version; the agent runs K3s' install script with
    it (here a script that writes down its arguments), as K3s' manual upgrade does."""
    cache.clear()
    old = {**TWO, "k3s_version": "v1.30.8+k3s1"}
    assert api_for(alice, acme).post("/api/v1/clusters", old, format="json").status_code == 202
    cluster = Cluster.objects.get()
    server = Node.objects.get(cluster=cluster, is_server=True)
    settings.GUEST_SIMULATOR = False  # this test's agent is the server's guest now
    url = f"/api/v1/clusters/{cluster.uuid}/upgrade"
    body = {"k3s_version": "v1.31.4+k3s1"}
    assert api_for(alice, acme).post(url, body, format="json").status_code == 202

    bundle = tmp_path / "opt-k3s"
    bundle.mkdir()
    args = tmp_path / "install-args"
    (bundle / "install.sh").write_text(f'#!/bin/sh\necho "$INSTALL_K3S_VERSION $*" > {args}\n')
    script = tmp_path / "agent.sh"
    script.write_text(AGENT.read_text().replace("/opt/k3s", str(bundle)))
    extra = "NODE_NAME=srv\nK3S_JOIN_TOKEN=t\nK3S_TLS_SAN=\nK3S_ARGS=--node-label=a=b\n"
    assert run_agent(tmp_path, server, live_server.url, "", script, extra) == "200"
    assert args.read_text().split() == [
        "v1.31.4+k3s1", "server", "--node-name", "srv", "--node-label=a=b"
    ]  # fmt: skip
