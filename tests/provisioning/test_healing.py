"""Self-healing through the pipeline on the test driver: an agent unhealthy for longer than
its cluster's policy allows is replaced (a new node first, then the old one deleted), at
most `max_parallel` at once; the server never; a replacement that fails leaves the old node
serving; the policy is the cluster's, set through the API and audited."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from observability.models import Event
from portal.models import AuditEntry, Quota
from provisioning import healing, node_health
from provisioning.models import Cluster, Hypervisor, Node, NodeHealth
from provisioning.tasks import health

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]
FOUR = {"name": "heal", "region": "demo", "pools": [{"name": "w", "size": "small", "count": 4}]}


@pytest.fixture
def running(demo_cloud: Any, alice: Any, acme: Any, api_for: Any) -> Cluster:
    cache.clear()
    assert api_for(alice, acme).post("/api/v1/clusters", FOUR, format="json").status_code == 202
    cluster = Cluster.objects.get()
    assert cluster.status == "running"
    return cluster


def sicken(*nodes: Node, minutes: float = 10) -> None:
    """Each node's K3s reported failed `minutes` ago: unhealthy since then."""
    when = timezone.now() - timedelta(minutes=minutes)
    for node in nodes:
        sample = node_health.Sample(0.1, 5.0, 100, 2048, 10.0, k3s_state="failed")
        with transaction.atomic():
            assert node_health.record(node, sample, None, when) == "unhealthy"


def agents(cluster: Cluster) -> list[Node]:
    return list(cluster.nodes.filter(is_server=False).order_by("id"))


def test_an_agent_unhealthy_too_long_is_replaced_then_deleted(running: Cluster) -> None:
    sick = agents(running)[0]
    sicken(sick, minutes=4)
    health.watch_health.apply()
    assert not Node.objects.filter(replaces=sick).exists()  # 4 min < the policy's 5

    NodeHealth.objects.filter(node=sick).update(changed_at=F("changed_at") - timedelta(minutes=2))
    health.watch_health.apply()
    sick.refresh_from_db()
    new = Node.objects.get(replaces=sick)
    assert (new.status, new.pool_id, sick.status) == ("running", sick.pool_id, "deleted")
    running.refresh_from_db()
    assert running.status == "running"
    assert running.nodes.filter(status="running").count() == 4
    messages = list(Event.objects.values_list("message", flat=True))
    assert any(m.startswith(f"Replacing {sick.name} (unhealthy since ") for m in messages)
    assert f"{new.name} is running: deleting {sick.name}." in messages
    entry = AuditEntry.objects.get(action="node.replace")
    assert entry.target_repr.endswith(sick.name) and entry.details["replacement"] == new.name
    # Capacity: exactly what the four running nodes hold.
    held = sum(h.vcpus_allocated for h in Hypervisor.objects.all())
    assert held == sum(n.claimed_vcpus for n in running.nodes.filter(status="running"))


def test_at_most_max_parallel_replacements_launch_at_once(running: Cluster, settings) -> None:
    settings.GUEST_SIMULATOR = False  # replacements then stay launching
    first, second, third = agents(running)
    sicken(first, second, third)
    assert healing.heal(timezone.now()) == [first.name]
    assert healing.heal(timezone.now()) == []  # one in flight: the others wait
    Cluster.objects.filter(pk=running.pk).update(heal_max_parallel=3)
    assert healing.heal(timezone.now()) == [second.name, third.name]
    assert Node.objects.filter(replaces__isnull=False).count() == 3


def test_one_at_a_time_means_the_next_once_the_last_has_finished(running: Cluster) -> None:
    first, second, _ = agents(running)
    sicken(first, second)
    assert healing.heal(timezone.now()) == [first.name]  # launched and done (eager)
    assert healing.heal(timezone.now()) == [second.name]  # a finished one is not in flight
    assert running.nodes.filter(status="running").count() == 4


def test_the_server_and_a_cluster_without_the_policy_are_left_alone(
    running: Cluster, settings
) -> None:
    settings.GUEST_SIMULATOR = False
    server = running.nodes.get(is_server=True)
    sicken(server)
    assert healing.heal(timezone.now()) == []
    sick = agents(running)[0]
    sicken(sick)
    Cluster.objects.filter(pk=running.pk).update(heal_enabled=False)
    assert healing.heal(timezone.now()) == []
    assert not Node.objects.filter(replaces__isnull=False).exists()


def test_a_failed_replacement_leaves_the_old_node_serving(running: Cluster, settings) -> None:
    settings.CLOUD_FAULTS = "start_vm:1"  # every new VM fails to start
    sick = agents(running)[0]
    sicken(sick)
    healing.heal(timezone.now())
    new = Node.objects.get(replaces=sick)
    sick.refresh_from_db()
    running.refresh_from_db()
    assert (new.status, sick.status, running.status) == ("failed", "running", "degraded")
    assert healing.heal(timezone.now()) == []  # not again: retry is the user's call


def test_no_room_in_the_quota_is_said_once(running: Cluster, acme: Any) -> None:
    Quota.objects.filter(organisation=acme).update(nodes=4)
    sick = agents(running)[0]
    sicken(sick)
    for _ in range(3):
        assert healing.heal(timezone.now()) == []
    said = Event.objects.filter(message__startswith=f"Cannot replace {sick.name} yet: ")
    assert said.count() == 1 and "quota" in said.get().message


def test_the_policy_is_set_through_the_api(running: Cluster, alice, acme, charlie, api_for) -> None:
    url = f"/api/v1/clusters/{running.uuid}"
    shown = api_for(alice, acme).get(url).json()["health_policy"]
    assert shown == {"enabled": True, "after_seconds": 300, "max_parallel": 1}
    changed = api_for(alice, acme).patch(
        url, {"health_policy": {"after_seconds": 120}}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["health_policy"]["after_seconds"] == 120
    assert AuditEntry.objects.get(action="cluster.health_policy").details["after"] == {
        "heal_after_seconds": 120
    }
    bad = api_for(alice, acme).patch(url, {"health_policy": {"after_seconds": 5}}, format="json")
    assert bad.status_code == 400 and "after_seconds" in bad.json()["health_policy"]
    viewer = api_for(charlie, acme).patch(url, {"health_policy": {"enabled": False}}, format="json")
    assert viewer.status_code == 403
    assert Cluster.objects.get(pk=running.pk).heal_enabled
