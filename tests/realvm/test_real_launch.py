"""Real VMs on tenant networks: two organisations each create a network with the same CIDR
(neither the default one) and a one-node cluster on it, side by side on this host. Both
guests fetch their seed and report through their own network's metadata proxy at
169.254.169.254 (no guest has a route to the portal), run cloud-init and the agent, and
fail launch_k3s with its clear code (no K3s binary can be had here). Then delete, and
nothing is left on the host."""

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests import portal_process
from tests.realvm.conftest import HOST, REGION, RealPortal, leftovers

pytestmark = pytest.mark.realvm

LAUNCH_SECONDS = 900
SETTLED = ("running", "failed", "degraded")


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))


def _events(portal: RealPortal, cluster_id: str, token: str) -> list[dict[str, Any]]:
    page = portal.api("GET", f"/api/v1/clusters/{cluster_id}/events?limit=1000", token=token)
    return list(page["results"])


def _wait(
    portal: RealPortal, cluster_id: str, statuses: tuple[str, ...], token: str
) -> dict[str, Any]:
    deadline = time.monotonic() + LAUNCH_SECONDS
    while time.monotonic() < deadline:
        cluster = portal.api("GET", f"/api/v1/clusters/{cluster_id}", token=token)
        if cluster["status"] in statuses:
            return dict(cluster)
        time.sleep(2)
    raise AssertionError(
        f"cluster not {statuses} after {LAUNCH_SECONDS} s: {cluster}\n"
        f"{_events(portal, cluster_id, token)}\n{portal.logs()[-5000:]}"
    )


def _step_event(events: list[dict[str, Any]], node: str, step: str, state: str) -> dict:
    found = [e for e in events if (e["node"], e["step"], e["state"]) == (node, step, state)]
    assert found, f"no {state} event of {step} for {node}: {events}"
    return found[0]


CIDR = "10.20.0.0/24"  # both organisations chose it; the default networks are 10.0.0.0/24


@pytest.fixture
def launched(real_portal: RealPortal) -> Iterator[list[dict[str, Any]]]:
    """One cluster per organisation, each on its own network of the same CIDR; deleted
    afterwards whatever the test found."""
    clusters = []
    try:
        for token in (real_portal.token, real_portal.other_token):
            network = real_portal.api(
                "POST", "/api/v1/networks", {"name": "apps", "cidr": CIDR, "region": REGION},
                token=token,
            )  # fmt: skip
            body = {
                "name": "real",
                "region": REGION,
                "network": network["id"],
                "pools": [{"name": "w", "size": "small", "count": 1}],
            }
            clusters.append((token, real_portal.api("POST", "/api/v1/clusters", body, token=token)))
        yield [cluster for _, cluster in clusters]
    finally:
        for token, cluster in clusters:
            real_portal.api("DELETE", f"/api/v1/clusters/{cluster['id']}", token=token)
        for token, cluster in clusters:
            _wait(real_portal, cluster["id"], ("deleted",), token)


def test_two_tenants_same_cidr_guests_boot_and_report_through_their_metadata_proxy(
    real_portal: RealPortal, launched: list[dict[str, Any]], figures: dict[str, float]
) -> None:
    tokens = (real_portal.token, real_portal.other_token)
    settled = [
        _wait(real_portal, c["id"], SETTLED, t) for c, t in zip(launched, tokens, strict=True)
    ]
    servers = [cluster["nodes"][0] for cluster in settled]
    assert [s["ip"] for s in servers] == ["10.20.0.2", "10.20.0.2"]  # the same address
    assert {s["hypervisor"] for s in servers} == {HOST}
    for cluster, token, server in zip(settled, tokens, servers, strict=True):
        events = _events(real_portal, cluster["id"], token)
        # Every step through the real guest (the seed and each report came through the
        # metadata proxy of this tenant's namespace), then the clear K3s code.
        for step in ("import_image", "start_vm", "cloud_init", "fetch_deps"):
            _step_event(events, server["name"], step, "done")
        _step_event(events, server["name"], "launch_k3s", "started")
        assert server["status"] == "failed"
        assert server["error"]["code"] == "k3s_bundle_missing", server
        assert cluster["status"] == "failed"

    events = _events(real_portal, launched[0]["id"], tokens[0])
    server = servers[0]["name"]
    started_vm = _step_event(events, server, "start_vm", "done")
    first_report = _step_event(events, server, "cloud_init", "started")
    figures["clone_s"] = _seconds(events, server, "import_image")
    figures["domain_start_s"] = _seconds(events, server, "start_vm")
    figures["start_vm_to_first_phone_home_s"] = round(
        (_at(first_report) - _at(started_vm)).total_seconds(), 1
    )
    figures["cloud_init_s"] = _seconds(events, server, "cloud_init")


def test_deleted_real_clusters_leave_nothing_on_the_host(real_portal: RealPortal) -> None:
    """Runs after the launch test's clusters were deleted (its fixture waits for that)."""
    assert leftovers("k3s-", real_portal.data_dir) == {
        "domains": [], "volumes": [], "nwfilters": [], "bridges": [], "namespaces": [],
        "helpers": [],
    }  # fmt: skip
    hosts = real_portal.api("GET", "/api/v1/staff/hypervisors", staff=True)["results"]
    [host] = [h for h in hosts if h["name"] == HOST]
    assert (host["vcpus_allocated"], host["memory_mib_allocated"]) == (0, 0)
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
