"""Reconciliation on libvirt's test driver: a restarted worker, stopped domains, orphans."""

import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from observability.models import Event
from portal.models import Organisation
from provisioning.drivers import get_driver
from provisioning.drivers.base import DomainSpec, VolumeSpec
from provisioning.drivers.libvirt import forget_connections
from provisioning.models import Hypervisor, Node, OrphanDomain, Region
from provisioning.reconcile import Report, reconcile_hypervisor
from provisioning.states import NodeStatus
from provisioning.tasks.reconcile import reconcile_all
from tests import second_factor
from tests.provisioning.inventory_fixtures import UNREACHABLE_URI
from tests.provisioning.test_launch import launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]

ORPHAN = "k3s-deadbeef-workers-9"


@pytest.fixture
def nodes(demo_cloud: Region, alice: User, acme: Organisation, api_for: Any) -> list[Node]:
    """A running 3-node cluster, one node per demo host."""
    launch(api_for(alice, acme))
    running = list(Node.objects.select_related("cluster", "hypervisor"))
    assert [n.status for n in running] == [NodeStatus.RUNNING] * 3
    assert len({n.hypervisor_id for n in running}) == 3
    return running


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    second_factor.verified(
        client, User.objects.create_superuser("root", "root@example.com", "root-pass-1")
    )
    return client


@pytest.fixture
def staff_api(staff: User) -> APIClient:
    client = APIClient()
    client.force_login(staff)
    return client


def restart_worker() -> None:
    """What a worker restart does to the test driver: its in-process state is gone."""
    forget_connections(Hypervisor.objects.values_list("uri", flat=True))
    get_driver.cache_clear()


def state_of(node: Node) -> str | None:
    assert node.hypervisor is not None
    domain = get_driver(node.hypervisor.uri).domain_state(node.domain_name)
    return domain.state if domain else None


def has_disk(node: Node) -> bool:
    assert node.hypervisor is not None
    driver = get_driver(node.hypervisor.uri)
    return driver.volume_exists(node.hypervisor.storage_pool, node.volume_name)


def reconcile_each() -> list[Report]:
    return [reconcile_hypervisor(pk) for pk in Hypervisor.objects.values_list("pk", flat=True)]


def define_orphan(host: Hypervisor, name: str = ORPHAN) -> None:
    driver = get_driver(host.uri)
    driver.ensure_volume(
        VolumeSpec(
            pool=host.storage_pool,
            name=f"{name}.qcow2",
            capacity_gib=20,
            backing_volume="base-v1.31.4-k3s1.qcow2",
        )
    )
    driver.ensure_domain(
        DomainSpec(
            name=name,
            vcpus=1,
            memory_mib=512,
            disk_pool=host.storage_pool,
            disk_volume=f"{name}.qcow2",
            nics=(),
            smbios_serial="ds=nocloud-net;s=http://portal.test/guest/t/",
        )
    )
    driver.start_domain(name)


def test_a_hosts_lost_tenant_network_is_rebuilt_while_its_domains_run(
    nodes: list[Node],
) -> None:
    """As after a host reboot that took the namespaces and bridges along: the next pass
    brings each network back, leases included, without touching the running domains."""
    node = nodes[0]
    assert node.hypervisor is not None
    driver = get_driver(node.hypervisor.uri)
    network = node.cluster.network.libvirt_name
    conn = driver._connection()  # type: ignore[attr-defined]
    conn.networkLookupByName(network).destroy()
    conn.networkLookupByName(network).undefine()

    [report] = [r for r in reconcile_each() if r.hypervisor == node.hypervisor.name]

    assert not report.errors and not report.changed  # no domain needed fixing
    rebuilt = conn.networkLookupByName(network)
    assert rebuilt.isActive()
    assert node.port is not None and node.port.mac in rebuilt.XMLDesc(0)


def test_a_restarted_worker_gets_every_running_node_back(nodes: list[Node]) -> None:
    restart_worker()
    assert [state_of(n) for n in nodes] == [None] * 3
    assert not any(has_disk(n) for n in nodes)

    reconcile_all.delay()

    assert [state_of(n) for n in nodes] == ["running"] * 3
    assert all(has_disk(n) for n in nodes)
    for node in nodes:
        assert node.hypervisor is not None
        message = (
            f"{node.name}: domain and disk missing on {node.hypervisor.name}, "
            "re-created and started (reconciliation)"
        )
        assert Event.objects.filter(cluster=node.cluster, node=node.name, message=message).exists()
    # The inventory was synced after the correction.
    assert sum(Hypervisor.objects.values_list("domain_count", flat=True)) == 3
    assert not OrphanDomain.objects.exists()

    events = Event.objects.count()
    reports = reconcile_each()
    assert not any(r.changed or r.errors for r in reports)
    assert Event.objects.count() == events


def test_a_shut_off_domain_of_a_running_node_is_started(nodes: list[Node]) -> None:
    node = nodes[1]
    assert node.hypervisor is not None
    get_driver(node.hypervisor.uri).stop_domain(node.domain_name)
    assert state_of(node) == "shutoff"

    report = reconcile_hypervisor(node.hypervisor.pk)

    assert report.started == [node.name] and not report.recreated
    assert state_of(node) == "running"
    message = f"{node.name}: domain shut off on {node.hypervisor.name}, started (reconciliation)"
    assert Event.objects.filter(node=node.name, message=message).count() == 1
    assert not reconcile_hypervisor(node.hypervisor.pk).changed


def test_an_orphan_is_recorded_kept_within_grace_then_removed(
    nodes: list[Node], settings: Any, staff_api: APIClient
) -> None:
    settings.ORPHAN_GRACE_SECONDS = 600
    host = Hypervisor.objects.get(name="hv-1")
    driver = get_driver(host.uri)
    define_orphan(host)
    define_orphan(host, "someone-elses-vm")  # not the portal's prefix: none of its business
    events = Event.objects.count()

    report = reconcile_hypervisor(host.pk)
    assert report.new_orphans == [ORPHAN] and report.open_orphans == [ORPHAN]
    orphan = OrphanDomain.objects.get()
    assert (orphan.hypervisor, orphan.name, orphan.removed_at) == (host, ORPHAN, None)
    listed = staff_api.get("/api/v1/staff/orphans").json()["results"]
    assert [(o["hypervisor"], o["name"]) for o in listed] == [("hv-1", ORPHAN)]
    due = orphan.first_seen_at + timedelta(seconds=600)
    assert listed[0]["removal_due_at"] == due.isoformat().replace("+00:00", "Z")

    report = reconcile_hypervisor(host.pk)  # still within the grace period
    assert not report.changed and report.open_orphans == [ORPHAN]
    assert driver.domain_state(ORPHAN) is not None
    assert OrphanDomain.objects.count() == 1

    OrphanDomain.objects.update(first_seen_at=timezone.now() - timedelta(seconds=601))
    report = reconcile_hypervisor(host.pk)

    assert report.removed_orphans == [ORPHAN]
    assert driver.domain_state(ORPHAN) is None
    assert not driver.volume_exists(host.storage_pool, f"{ORPHAN}.qcow2")
    assert driver.domain_state("someone-elses-vm") is not None
    orphan.refresh_from_db()
    assert orphan.removed_at is not None and orphan.resolution == "removed"
    assert staff_api.get("/api/v1/staff/orphans").json()["results"] == []
    assert [state_of(n) for n in nodes] == ["running"] * 3  # owned domains untouched
    assert Event.objects.count() == events  # orphans are for staff, not a cluster's log


def test_an_orphan_that_goes_away_is_closed(demo_cloud: Region, settings: Any) -> None:
    settings.ORPHAN_GRACE_SECONDS = 600
    host = Hypervisor.objects.get(name="hv-2")
    define_orphan(host)
    reconcile_hypervisor(host.pk)
    get_driver(host.uri).undefine_domain(ORPHAN)

    report = reconcile_hypervisor(host.pk)

    assert not report.open_orphans
    assert OrphanDomain.objects.get().resolution == "vanished"


def test_a_node_that_failed_owns_its_domain_until_released(nodes: list[Node]) -> None:
    node = nodes[2]
    assert node.hypervisor is not None
    Node.objects.filter(pk=node.pk).update(status=NodeStatus.FAILED)  # release not run yet

    assert not reconcile_hypervisor(node.hypervisor.pk).new_orphans

    # Released (the claim is given back last), yet the domain is still there: leaked.
    Node.objects.filter(pk=node.pk).update(claimed_vcpus=0, claimed_memory_mib=0)
    assert reconcile_hypervisor(node.hypervisor.pk).new_orphans == [node.domain_name]


def test_a_failing_host_does_not_stop_the_others(nodes: list[Node]) -> None:
    restart_worker()
    broken = Hypervisor.objects.get(name="hv-1")
    Hypervisor.objects.filter(pk=broken.pk).update(uri=UNREACHABLE_URI)

    reconcile_all.delay()

    others = [n for n in nodes if n.hypervisor_id != broken.pk]
    assert len(others) == 2
    assert [state_of(n) for n in others] == ["running"] * 2
    report = reconcile_hypervisor(broken.pk)
    assert report.errors and "cannot list domains" in report.errors[0]
    assert not report.changed


@pytest.mark.parametrize("status", [NodeStatus.PENDING, NodeStatus.PROVISIONING, "deleting"])
def test_nodes_the_pipeline_owns_or_deletes_are_left_alone(nodes: list[Node], status: str) -> None:
    for node in nodes:
        assert node.hypervisor is not None
        get_driver(node.hypervisor.uri).stop_domain(node.domain_name)
    Node.objects.update(status=status)
    events = Event.objects.count()

    assert not any(r.changed for r in reconcile_each())
    assert [state_of(n) for n in nodes] == ["shutoff"] * 3

    restart_worker()
    assert not any(r.changed for r in reconcile_each())
    assert [state_of(n) for n in nodes] == [None] * 3
    assert Event.objects.count() == events
    assert not OrphanDomain.objects.exists()


def test_the_command_reconciles_now_and_prints_the_report(nodes: list[Node]) -> None:
    restart_worker()
    out = io.StringIO()

    call_command("reconcile", stdout=out)

    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    for node in nodes:
        assert node.hypervisor is not None
        assert f"{node.hypervisor.name}: re-created: {node.name}" in lines
    out = io.StringIO()
    call_command("reconcile", "hv-2", stdout=out)
    assert out.getvalue() == "hv-2: in sync\n"
    with pytest.raises(CommandError, match="No such hypervisor: hv-9"):
        call_command("reconcile", "hv-9")


def test_orphans_are_in_the_admin(demo_cloud: Region, admin_client: Client) -> None:
    host = Hypervisor.objects.get(name="hv-3")
    define_orphan(host)
    reconcile_hypervisor(host.pk)

    page = admin_client.get("/admin/provisioning/orphandomain/")

    assert page.status_code == 200
    assert ORPHAN in page.content.decode()


def test_the_orphan_list_runs_constant_queries(
    demo_cloud: Region, staff_api: APIClient, django_assert_max_num_queries: Any
) -> None:
    now = timezone.now()
    for host in Hypervisor.objects.all():
        for index in range(4):
            OrphanDomain.objects.create(
                hypervisor=host, name=f"k3s-0000000{index}-x", first_seen_at=now, last_seen_at=now
            )
    with django_assert_max_num_queries(4):  # session, user, page count, page
        listed = staff_api.get("/api/v1/staff/orphans").json()
    assert listed["count"] == 12


def test_the_orphan_list_is_for_staff_only(
    demo_cloud: Region, alice: User, acme: Organisation, api_for: Any
) -> None:
    assert api_for(alice, acme).get("/api/v1/staff/orphans").status_code == 404
