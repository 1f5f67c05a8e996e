"""A 2-node cluster on real VMs: the worker steps on this host's libvirtd, the guest steps
reported by real guests' cloud-init and agent, and launch_k3s failing with its clear code
(no K3s binary can be had here). Then delete, and nothing is left on the host."""

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests import portal_process
from tests.realvm.conftest import GATEWAY, HOST, REGION, RealPortal, leftovers

pytestmark = pytest.mark.realvm

LAUNCH_SECONDS = 900
SETTLED = ("running", "failed", "degraded")


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))


def _events(portal: RealPortal, cluster_id: str) -> list[dict[str, Any]]:
    page = portal.api("GET", f"/api/v1/clusters/{cluster_id}/events?limit=1000")
    return list(page["results"])


def _wait(portal: RealPortal, cluster_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + LAUNCH_SECONDS
    while time.monotonic() < deadline:
        cluster = portal.api("GET", f"/api/v1/clusters/{cluster_id}")
        if cluster["status"] in statuses:
            return dict(cluster)
        time.sleep(2)
    raise AssertionError(
        f"cluster not {statuses} after {LAUNCH_SECONDS} s: {cluster}\n"
        f"{_events(portal, cluster_id)}\n{portal.logs()[-5000:]}"
    )


def _step_event(events: list[dict[str, Any]], node: str, step: str, state: str) -> dict:
    found = [e for e in events if (e["node"], e["step"], e["state"]) == (node, step, state)]
    assert found, f"no {state} event of {step} for {node}: {events}"
    return found[0]


@pytest.fixture
def launched(real_portal: RealPortal) -> Iterator[dict[str, Any]]:
    """A 2-node cluster on this host; deleted afterwards whatever the test found."""
    created = real_portal.api(
        "POST",
        "/api/v1/clusters",
        {"name": "real", "region": REGION, "pools": [{"name": "w", "size": "small", "count": 2}]},
    )
    try:
        yield dict(created)
    finally:
        real_portal.api("DELETE", f"/api/v1/clusters/{created['id']}")
        _wait(real_portal, created["id"], ("deleted",))


def test_two_real_guests_boot_and_report_their_steps(
    real_portal: RealPortal, launched: dict[str, Any], figures: dict[str, float]
) -> None:
    cluster = _wait(real_portal, launched["id"], SETTLED)
    events = _events(real_portal, launched["id"])
    server, agent = sorted(cluster["nodes"], key=lambda n: not n["is_server"])
    assert server["hypervisor"] == agent["hypervisor"] == HOST
    assert server["ip"].startswith(GATEWAY.rsplit(".", 1)[0])

    # The server: every step through the real guest, then the clear K3s code.
    for step in ("import_image", "start_vm", "cloud_init", "fetch_deps"):
        _step_event(events, server["name"], step, "done")
    _step_event(events, server["name"], "launch_k3s", "started")
    assert server["status"] == "failed"
    assert server["error"]["code"] == "k3s_bundle_missing", server
    # The agent: the worker steps; its guest then waits for a Ready server, which this
    # image (no K3s) never has, so it fails with server_failed, by design.
    for step in ("import_image", "start_vm"):
        _step_event(events, agent["name"], step, "done")
    assert agent["status"] == "failed"
    assert agent["error"]["code"] == "server_failed", agent
    assert cluster["status"] == "failed"

    started_vm = _step_event(events, server["name"], "start_vm", "done")
    first_report = _step_event(events, server["name"], "cloud_init", "started")
    figures["clone_s"] = _seconds(events, server["name"], "import_image")
    figures["domain_start_s"] = _seconds(events, server["name"], "start_vm")
    figures["start_vm_to_first_phone_home_s"] = round(
        (_at(first_report) - _at(started_vm)).total_seconds(), 1
    )
    figures["cloud_init_s"] = _seconds(events, server["name"], "cloud_init")


def test_a_deleted_real_cluster_leaves_nothing_on_the_host(real_portal: RealPortal) -> None:
    """Runs after the launch test's cluster was deleted (its fixture waits for that)."""
    assert leftovers("k3s-") == {"domains": [], "volumes": [], "networks": [], "nwfilters": []}
    hosts = real_portal.api("GET", "/api/v1/staff/hypervisors", staff=True)["results"]
    [host] = [h for h in hosts if h["name"] == HOST]
    assert (host["vcpus_allocated"], host["memory_mib_allocated"]) == (0, 0)
    assert not _dnsmasq_files(), "dnsmasq files of the tenant network are left"
    held = portal_process.manage(
        real_portal.env,
        "shell",
        "-c",
        "from provisioning.models import Node; "
        "print(Node.objects.filter(port__isnull=False).count())",
    )
    assert held.splitlines()[-1] == "0", "a deleted node still holds an address"


def _seconds(events: list[dict[str, Any]], node: str, step: str) -> float:
    began = _step_event(events, node, step, "started")
    ended = _step_event(events, node, step, "done")
    return round((_at(ended) - _at(began)).total_seconds(), 1)


def _dnsmasq_files() -> list[str]:
    return [p.name for p in Path("/var/lib/libvirt/dnsmasq").glob("tnbr*")]
