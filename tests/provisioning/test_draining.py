"""Draining a host through the pipeline on the test driver: its agents move to other hosts
(a new node first, the old one deleted once it runs), one at a time per cluster, the
server holds the drain, cancelling stops new moves, an emptied host stops draining; staff
only, from the API and the hypervisors page."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from rest_framework.test import APIClient

from portal.actor import Actor
from portal.models import AuditEntry
from provisioning import draining
from provisioning.models import Cluster, Hypervisor, Node
from provisioning.tasks import inventory as inventory_tasks
from tests.provisioning.factories import launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]


def agent_host(cluster: Cluster) -> Hypervisor:
    node = cluster.nodes.filter(is_server=False).select_related("hypervisor").first()
    assert node is not None and node.hypervisor is not None
    return node.hypervisor


@pytest.fixture
def staff_actor(staff: User) -> Actor:
    return Actor(user=staff)


def test_a_drained_host_ends_empty_and_its_nodes_run_elsewhere(
    demo_cloud: Any, alice, acme, api_for, staff_actor: Actor
) -> None:
    cache.clear()
    cluster = launch(api_for(alice, acme), "web", 3)
    host = agent_host(cluster)
    moved = set(cluster.nodes.filter(hypervisor=host).values_list("name", flat=True))

    assert draining.drain(staff_actor, host) is True  # its first moves start on commit
    host.refresh_from_db()
    assert host.state == "cordoned" and host.draining_since is not None
    inventory_tasks.drain_hosts.apply()  # the beat finds it empty
    host.refresh_from_db()
    assert host.draining_since is None and host.state == "cordoned"
    assert not Node.objects.filter(hypervisor=host).exclude(status="deleted").exists()
    assert Node.objects.filter(name__in=moved, status="deleted").count() == len(moved)
    cluster.refresh_from_db()
    assert cluster.status == "running"
    assert cluster.nodes.filter(status="running").count() == 3
    assert host.vcpus_allocated == 0
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert {"hypervisor.cordon", "hypervisor.drain", "node.replace", "hypervisor.drained"} <= set(
        actions
    )


def test_one_move_at_a_time_per_cluster_the_server_blocks_and_cancel_stops(
    demo_cloud: Any, alice, acme, api_for, staff_actor: Actor, settings
) -> None:
    cache.clear()
    cluster = launch(api_for(alice, acme), "big", 6)  # two nodes a host
    server_host = cluster.nodes.get(is_server=True).hypervisor
    assert server_host is not None
    settings.GUEST_SIMULATOR = False  # moves then stay under way
    draining.drain(staff_actor, server_host)
    on_host = cluster.nodes.filter(hypervisor=server_host, is_server=False)
    assert Node.objects.filter(replaces__in=on_host).count() == 1  # the first move only
    assert draining.step(server_host.pk) == []  # that cluster has a move under way
    progress = draining.progress(server_host)
    assert len(progress.moving) == 1 and len(progress.left) == 2
    server = cluster.nodes.get(is_server=True)
    assert progress.blocked == {server.name: "a server node does not move (its datastore is on it)"}

    assert draining.cancel(staff_actor, server_host) is True
    Node.objects.filter(replaces__isnull=False).update(status="running")  # the move finished
    assert draining.step(server_host.pk) == []  # cancelled: nothing new
    assert draining.cancel(staff_actor, server_host) is False


def test_staff_drain_from_the_api_and_see_it_on_the_page(
    demo_cloud: Any, alice, acme, api_for, staff: User, browser_for, settings
) -> None:
    cache.clear()
    cluster = launch(api_for(alice, acme), "api", 3)
    host = agent_host(cluster)
    settings.GUEST_SIMULATOR = False
    client = APIClient()
    client.force_login(staff)
    answer = client.post(f"/api/v1/staff/hypervisors/{host.name}/drain")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["state"] == "cordoned"
    shown = client.get(f"/api/v1/staff/hypervisors/{host.name}").json()
    assert shown["drain"]["left"] and len(shown["drain"]["moving"]) == 1
    page = browser_for(staff).get("/staff/hypervisors/").content.decode()
    assert f'id="drain-{host.name}"' in page and "Cancel drain" in page
    # Another organisation's owner: the staff API does not exist.
    assert (
        api_for(alice, acme).post(f"/api/v1/staff/hypervisors/{host.name}/drain").status_code == 404
    )
    assert client.post(f"/api/v1/staff/hypervisors/{host.name}/cancel-drain").status_code == 200
    host.refresh_from_db()
    assert host.draining_since is None
