"""The guest simulator: plays a test-driver VM's guest, phoning home over HTTP.

libvirt's test driver boots nothing, so in embedded mode this stands in for the guest
agent of the cloud-init seed. It posts to the same endpoints a real guest does: the guest
steps of the step table with their durations (provisioning.steps) multiplied by
CLOUD_GUEST_SIM_SCALE, failing a step when CLOUD_FAULTS says so; then, while the node
runs, a heartbeat every HEARTBEAT_SECONDS with figures that drift as a light load would.
"""

import json
import math
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache

from provisioning import faults, steps
from provisioning.guest_seed import HEARTBEAT_PATH, PHONE_HOME_PATH
from provisioning.models import Hypervisor, Node
from provisioning.states import NodeStatus

# The reports a guest posts, in order. The first guest step's start is posted by the
# seed's bootcmd on a real VM; the simulator posts it too.
SEQUENCE: list[tuple[steps.StepSpec, str]] = [
    (spec, state)
    for spec in steps.performed_by(steps.Performer.GUEST)
    for state in ("started", "done")
]


@dataclass(frozen=True)
class Reply:
    status: int
    body: str


def post(payload: dict[str, Any], path: str = PHONE_HOME_PATH) -> Reply:
    """POST a report (or a heartbeat) to the portal, as the guest agent's curl does."""
    request = urllib.request.Request(  # noqa: S310  (the portal's own http(s) URL)
        settings.PORTAL_URL + path,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return Reply(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode())


def played() -> Any:
    """The nodes whose guests the simulator plays: test-driver domains only; real VMs run
    the real agent."""
    if not settings.GUEST_SIMULATOR:
        return Node.objects.none()
    return Node.objects.filter(hypervisor__uri__startswith="test:")


def simulated(hypervisor: Hypervisor) -> bool:
    """Whether the simulator plays the guests of `hypervisor`'s nodes (as played())."""
    return settings.GUEST_SIMULATOR and hypervisor.uri.startswith("test:")


def next_batch(index: int) -> tuple[list[dict[str, str]], int, float]:
    """The reports from `index` on that the guest sends at once (as the agent sends a
    step's end with the next one's start): up to a step that takes time, or a failure.
    With the index after them and the delay before the next batch."""
    batch: list[dict[str, str]] = []
    for spec, state in SEQUENCE[index:]:
        if state == "done" and faults.strikes(spec.name):
            state = "failed"
        batch.append({"step": spec.name, "state": state})
        delay = spec.guest_seconds * settings.GUEST_SIM_SCALE if state == "started" else 0.0
        if delay > 0 or state == "failed":
            return batch, index + len(batch), delay
    return batch, len(SEQUENCE), 0.0


def heartbeat(node: Node, now: datetime) -> dict[str, Any]:
    """A running guest's heartbeat (as guest_agent.sh sends it, token aside): CPU and memory
    drift slowly around a light load, each node on its own phase; the server lists the
    cluster's running nodes as Ready."""
    size = node.pool.size
    phase = node.pk * 1.7
    wave = math.sin(now.timestamp() / 240 + phase)
    cpu = max(0.0, 10 + 7 * wave + (6 if node.is_server else 0))
    memory_share = 0.30 + 0.05 * math.sin(now.timestamp() / 600 + phase) + 0.15 * node.is_server
    payload: dict[str, Any] = {
        "load1": round(cpu / 100 * size.vcpus, 2),
        "cpu_percent": round(cpu, 1),
        "memory_used_mib": int(size.memory_mib * memory_share),
        "memory_total_mib": size.memory_mib,
        "disk_used_percent": float(12 + node.pk % 7),
        "k3s": "active",
    }
    if node.is_server:
        running = Node.objects.filter(cluster_id=node.cluster_id, status=NodeStatus.RUNNING)
        payload["nodes"] = [
            {"name": name, "status": "Ready"} for name in running.values_list("name", flat=True)
        ]
    return payload


def running_version(node: Node) -> str:
    """The K3s the simulated guest runs: its seed's, until the portal asks it to upgrade."""
    return cache.get(f"guest-sim:k3s:{node.pk}") or node.version.version


def send_heartbeat(node: Node, token: str, now: datetime) -> Reply:
    """Beat; an answer asking for an upgrade is done at once (as install.sh would, in
    place), so the next heartbeat reports the new version."""
    payload = {"token": token, "k3s_version": running_version(node), **heartbeat(node, now)}
    reply = post(payload, HEARTBEAT_PATH)
    if reply.status == 200 and (wanted := json.loads(reply.body).get("upgrade_to")):
        cache.set(f"guest-sim:k3s:{node.pk}", wanted, timeout=None)
    return reply
