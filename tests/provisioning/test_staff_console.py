"""The staff console's pages: every organisation's clusters and nodes with filters (a bad
filter is a 400 naming it), a host with its nodes and allocation over time, orphans, the
organisations' quotas (changed and audited), the audit log with filters; staff only."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from portal.models import AuditEntry, Quota
from provisioning import inventory
from provisioning.models import Cluster, HostSample, Hypervisor, OrphanDomain

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]
BrowserFor = Callable[[User], Client]
PAGES = [
    "/staff/clusters/",
    "/staff/nodes/",
    "/staff/hypervisors/hv-1/",
    "/staff/orphans/",
    "/staff/organisations/",
    "/staff/audit/",
]


@pytest.fixture
def two_tenants(demo_cloud: Any, alice, acme, bob, bobco, api_for) -> tuple[Cluster, Cluster]:
    cache.clear()
    for user, org, name in ((alice, acme, "shop"), (bob, bobco, "blog")):
        body = {
            "name": name,
            "region": "demo",
            "pools": [{"name": "w", "size": "small", "count": 2}],
        }
        assert api_for(user, org).post("/api/v1/clusters", body, format="json").status_code == 202
    return Cluster.objects.get(name="shop"), Cluster.objects.get(name="blog")


@pytest.mark.parametrize("page", PAGES)
def test_only_staff_see_the_console(demo_cloud: Any, alice, browser_for, page: str) -> None:
    assert browser_for(alice).get(page).status_code == 404


def test_clusters_and_nodes_of_every_organisation_filtered(
    two_tenants: tuple[Cluster, Cluster], staff: User, browser_for: BrowserFor
) -> None:
    shop, blog = two_tenants
    client = browser_for(staff)
    page = client.get("/staff/clusters/").content.decode()
    assert f'id="cluster-{shop.uuid}"' in page and f'id="cluster-{blog.uuid}"' in page
    only_bob = client.get("/staff/clusters/", {"organisation": "bobco"}).content.decode()
    assert f'id="cluster-{blog.uuid}"' in only_bob and f'id="cluster-{shop.uuid}"' not in only_bob
    failed = client.get("/staff/clusters/", {"status": "failed"}).content.decode()
    assert "No cluster matches." in failed

    server_host = shop.nodes.get(is_server=True).hypervisor
    assert server_host is not None
    on_host = client.get("/staff/nodes/", {"host": server_host.name}).content.decode()
    for node in shop.nodes.all():
        assert (f'id="node-{node.name}"' in on_host) == (node.hypervisor_id == server_host.pk)
    by_host = client.get("/staff/clusters/", {"host": server_host.name}).content.decode()
    assert f'id="cluster-{shop.uuid}"' in by_host

    bad = client.get("/staff/clusters/", {"status": "sleeping", "host": "hv-99"})
    assert bad.status_code == 400
    text = bad.content.decode()
    assert "Not a status: use one of" in text and "Select a valid choice" in text


def test_a_host_page_shows_its_nodes_and_allocation_over_the_day(
    two_tenants: tuple[Cluster, Cluster], staff: User, browser_for: BrowserFor
) -> None:
    host = Hypervisor.objects.get(name="hv-1")
    HostSample.objects.all().delete()
    inventory.sync_hypervisor(host.pk)
    inventory.sync_hypervisor(host.pk)  # within the minute: no second sample
    assert HostSample.objects.filter(hypervisor=host).count() == 1
    HostSample.objects.update(at=timezone.now() - timedelta(hours=25))
    inventory.sync_hypervisor(host.pk)  # a new one, and the day-old one pruned
    sample = HostSample.objects.get(hypervisor=host)
    host.refresh_from_db()
    assert sample.vcpus_allocated == host.vcpus_allocated > 0

    page = browser_for(staff).get(f"/staff/hypervisors/{host.name}/").content.decode()
    assert "1 sample, one a minute" in page and "<polyline" in page
    for node in host.nodes.all():
        assert node.name in page
    assert browser_for(staff).get("/staff/hypervisors/hv-99/").status_code == 404


def test_orphans_are_listed(demo_cloud: Any, staff: User, browser_for: BrowserFor) -> None:
    now = timezone.now()
    OrphanDomain.objects.create(
        hypervisor=Hypervisor.objects.get(name="hv-2"),
        name="k3s-lost-1",
        first_seen_at=now,
        last_seen_at=now,
    )
    page = browser_for(staff).get("/staff/orphans/").content.decode()
    assert "<code>k3s-lost-1</code>" in page and "hv-2" in page


def test_staff_change_a_quota_and_it_is_audited(
    two_tenants: tuple[Cluster, Cluster], acme, staff: User, browser_for: BrowserFor
) -> None:
    client = browser_for(staff)
    page = client.get("/staff/organisations/").content.decode()
    assert 'id="org-acme"' in page and "2 / 40" in page  # acme's nodes used / allowed
    quota = Quota.objects.get(organisation=acme)
    form = {"organisation": "acme", "clusters": 5, "nodes": 12, "vcpus": quota.vcpus}
    form |= {"memory_mib": quota.memory_mib, "networks": quota.networks}
    assert client.post("/staff/organisations/", form).status_code == 302
    quota.refresh_from_db()
    assert (quota.clusters, quota.nodes) == (5, 12)
    entry = AuditEntry.objects.get(action="quota.change")
    assert entry.actor == staff and entry.organisation == acme
    assert entry.details["after"] == {"clusters": 5, "nodes": 12}
    assert entry.details["before"] == {"clusters": 10, "nodes": 40}

    bad = client.post("/staff/organisations/", {**form, "nodes": -1})
    assert bad.status_code == 400
    quota.refresh_from_db()
    assert quota.nodes == 12


def test_the_audit_log_filters_by_action_actor_and_date(
    two_tenants: tuple[Cluster, Cluster], alice, staff: User, browser_for: BrowserFor
) -> None:
    client = browser_for(staff)
    creates = client.get("/staff/audit/", {"action": "cluster.create"}).content.decode()
    assert creates.count("<code>cluster.create</code>") == 2
    alices = client.get("/staff/audit/", {"actor": "alice", "action": "cluster."}).content
    assert alices.decode().count("<code>cluster.create</code>") == 1
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    none = client.get("/staff/audit/", {"since": tomorrow}).content.decode()
    assert "No entry matches." in none
    bad = client.get("/staff/audit/", {"since": "yesterday-ish"})
    assert bad.status_code == 400 and "Enter a valid date." in bad.content.decode()
