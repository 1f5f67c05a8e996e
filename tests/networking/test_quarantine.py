"""A freed address waits out its DHCP lease before anyone else gets it; the host's lock row
makes concurrent network changes on one host take turns, so 10 deletes at once all finish."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from networking import ipam
from networking.models import HostNetworkLock, Network, Port, QuarantinedAddress
from provisioning import addresses, host_network, pipeline
from provisioning.drivers import get_driver
from provisioning.drivers.xml import network_spec_from_xml
from provisioning.models import Hypervisor, Node
from provisioning.states import NodeStatus
from tests.networking.conftest import MakeCluster


def test_a_released_address_is_not_reissued_while_quarantined(
    acme_net: Network, make_cluster: MakeCluster, hypervisors: list[Hypervisor], settings
) -> None:
    settings.ADDRESS_QUARANTINE_SECONDS = 300
    cluster = make_cluster(acme_net, hypervisors * 2)
    second = cluster.nodes.order_by("id")[1]
    old = addresses.address_of(second)
    old_mac = addresses.mac_of(second)
    addresses.release(second)
    addresses.release(second)  # idempotent
    assert not Port.objects.filter(owner=str(second.uuid)).exists()
    quarantined = QuarantinedAddress.objects.get(network=acme_net)
    assert (quarantined.address, quarantined.mac) == (old, old_mac)
    newcomer = make_cluster(acme_net, hypervisors[:1]).nodes.get()
    assert addresses.address_of(newcomer) == "10.20.0.6"  # not 10.20.0.3, still leased
    assert addresses.mac_of(newcomer) != old_mac

    # Once the quarantine is over, the address is the lowest free one again.
    QuarantinedAddress.objects.update(released_at=timezone.now() - timedelta(seconds=301))
    later = make_cluster(acme_net, hypervisors[:1]).nodes.get()
    assert addresses.address_of(later) == old
    assert not QuarantinedAddress.objects.exists()


def test_a_lease_seen_gone_ends_the_quarantine_at_once(
    acme_net: Network, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    node = make_cluster(acme_net, hypervisors[:1]).nodes.get()
    address, mac = addresses.address_of(node), addresses.mac_of(node)
    addresses.release(node)
    assert ipam.lease_gone(acme_net, ["52:54:00:00:00:00"]) == 0  # another MAC: still held
    assert ipam.lease_gone(acme_net, [mac or ""]) == 1
    assert addresses.address_of(make_cluster(acme_net, hypervisors[:1]).nodes.get()) == address


def test_release_on_the_test_driver_quarantines_unless_the_network_left_the_host(
    acme_net: Network, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    """The test driver reports no leases: an address whose network stays on the host is
    quarantined; the last node's address is not (its network, leases and all, is gone)."""
    hv = hypervisors[0]
    first, last = make_cluster(acme_net, [hv, hv]).nodes.order_by("id")
    driver = get_driver(hv.uri)
    for node in (first, last):
        host_network.attach(pipeline.load(node.pk), driver)  # type: ignore[arg-type]
    assert HostNetworkLock.objects.filter(network=acme_net, hypervisor=hv).count() == 1

    Node.objects.filter(pk=first.pk).update(status=NodeStatus.DELETING)
    pipeline.release(pipeline.load(first.pk))  # type: ignore[arg-type]
    assert QuarantinedAddress.objects.filter(address="10.20.0.2").exists()
    conn = driver._connection()  # type: ignore[attr-defined]
    spec = network_spec_from_xml(conn.networkLookupByName(acme_net.libvirt_name).XMLDesc(0))
    assert [(h.ip, h.lease_seconds) for h in spec.dhcp_hosts] == [("10.20.0.3", 300)]

    Node.objects.filter(pk=last.pk).update(status=NodeStatus.DELETING)
    pipeline.release(pipeline.load(last.pk))  # type: ignore[arg-type]
    assert acme_net.libvirt_name not in conn.listNetworks()
    assert list(QuarantinedAddress.objects.values_list("address", flat=True)) == ["10.20.0.2"]


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (DATABASE_URL=postgres://...): SQLite serialises all writers anyway",
)
@pytest.mark.django_db(transaction=True)
def test_10_concurrent_deletes_on_one_host_leave_no_node_deleting(
    acme_net: Network, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    """Each delete rewrites the host's DHCP entries for the nodes that stay: unserialised,
    they remove each other's entries ("couldn't locate a matching dhcp host entry")."""
    hv = hypervisors[0]
    *nodes, stay_1, stay_2 = list(make_cluster(acme_net, [hv] * 12).nodes.order_by("id"))
    driver = get_driver(hv.uri)
    for node in [*nodes, stay_1, stay_2]:
        host_network.attach(pipeline.load(node.pk), driver)  # type: ignore[arg-type]
    Node.objects.filter(pk__in=[n.pk for n in nodes]).update(status=NodeStatus.DELETING)
    start = threading.Barrier(len(nodes))
    errors: list[BaseException] = []

    def delete(node_id: int) -> None:
        try:
            node = pipeline.load(node_id)
            assert node is not None
            start.wait()
            pipeline.release(node)
            pipeline.finish_delete(node)
        except BaseException as err:  # reported below, a thread cannot fail the test itself
            errors.append(err)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=delete, args=(n.pk,)) for n in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not Node.objects.filter(status=NodeStatus.DELETING).exists()
    assert Port.objects.filter(network=acme_net).count() == 2
    assert QuarantinedAddress.objects.filter(network=acme_net).count() == 10
    conn = driver._connection()  # type: ignore[attr-defined]
    spec = network_spec_from_xml(conn.networkLookupByName(acme_net.libvirt_name).XMLDesc(0))
    assert {h.ip for h in spec.dhcp_hosts} == {addresses.address_of(n) for n in (stay_1, stay_2)}
