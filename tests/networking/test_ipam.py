"""IPAM: lowest free host address, never network/gateway/broadcast, release, exhaustion,
deterministic MACs, and no duplicate under 100 concurrent allocations on PostgreSQL."""

import itertools
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from networking import ipam, services
from networking.models import Network, Port
from portal.models import Organisation
from provisioning import addresses
from provisioning.models import Hypervisor, Node, Region
from tests.networking.conftest import MakeCluster, owner


def test_lowest_free_address_after_the_gateway(
    acme_net: Network, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    cluster = make_cluster(acme_net, hypervisors * 2)
    assert [addresses.address_of(n) for n in cluster.nodes.order_by("id")] == [
        "10.20.0.2",
        "10.20.0.3",
        "10.20.0.4",
        "10.20.0.5",
    ]


def test_release_gives_the_address_back_and_is_idempotent(
    acme_net: Network, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    cluster = make_cluster(acme_net, hypervisors * 2)
    second = cluster.nodes.order_by("id")[1]
    # Never on a host, so no lease can hold it (test_quarantine.py has the other case).
    addresses.release(second, quarantine=False)
    addresses.release(second, quarantine=False)
    assert addresses.address_of(second) is None
    assert addresses.address_of(Node.objects.get(pk=second.pk)) is None
    assert Port.objects.filter(network=acme_net).count() == 3
    # The hole is the lowest free address, so it is handed out next.
    newcomer = make_cluster(acme_net, hypervisors[:1]).nodes.get()
    assert addresses.address_of(newcomer) == "10.20.0.3"


def test_allocate_is_idempotent(
    acme_net: Network, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    node = make_cluster(acme_net, hypervisors[:1]).nodes.get()
    assert (
        addresses.allocate(node) == addresses.allocate(Node.objects.get(pk=node.pk)) == "10.20.0.2"
    )
    assert Port.objects.filter(owner=str(node.uuid)).count() == 1


def test_a_full_network_never_hands_out_network_gateway_or_broadcast(
    acme: Organisation, region: Region, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    small = services.create_network(owner(acme), acme, region, "tiny", "192.168.7.16/28")
    cluster = make_cluster(small, [hypervisors[0]] * 13)
    held = {addresses.address_of(n) for n in cluster.nodes.all()}
    assert held == {f"192.168.7.{i}" for i in range(18, 31)}  # .16 net, .17 gw, .31 bcast
    with pytest.raises(ValidationError) as caught:
        make_cluster(small, [hypervisors[0]])
    assert caught.value.message_dict == {"network": ["no free address in 192.168.7.16/28"]}


def test_same_cidr_in_two_networks_allocates_independently(
    acme_net: Network,
    bobco: Organisation,
    region: Region,
    make_cluster: MakeCluster,
    hypervisors: list[Hypervisor],
) -> None:
    bob_net = services.create_network(owner(bobco), bobco, region, "web", acme_net.cidr)
    a = make_cluster(acme_net, hypervisors[:1]).nodes.get()
    b = make_cluster(bob_net, hypervisors[:1]).nodes.get()
    assert addresses.address_of(a) == addresses.address_of(b) == "10.20.0.2"


def test_mac_is_deterministic_and_locally_administered(
    acme_net: Network, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    a, b = make_cluster(acme_net, hypervisors).nodes.order_by("id")
    mac = addresses.mac_of(a)
    assert mac is not None and mac == addresses.mac_of(Node.objects.get(pk=a.pk))
    assert mac.startswith("52:54:00:") and len(mac) == 17
    assert mac == "52:54:00:" + ":".join(f"{x:02x}" for x in a.uuid.bytes[-3:])  # as before
    assert mac != addresses.mac_of(b)


def test_a_taken_mac_moves_the_owner_to_its_next_stable_one(acme_net: Network) -> None:
    first = ipam.allocate(acme_net, "00000000-0000-4000-8000-000000abcdef")
    # Another owner whose preferred MAC is taken (same last three bytes).
    clash = "11111111-1111-4111-8111-111111abcdef"
    second = ipam.allocate(acme_net, clash)
    assert first.mac == "52:54:00:ab:cd:ef" != second.mac
    assert second.mac == list(itertools.islice(ipam.macs_for(clash), 2))[1]
    assert ipam.allocate(acme_net, clash) == second  # idempotent
    ipam.release(clash)
    assert not Port.objects.filter(owner=clash).exists()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (DATABASE_URL=postgres://...): SQLite serialises all writers anyway",
)
@pytest.mark.django_db(transaction=True)
def test_100_concurrent_allocations_never_duplicate(
    acme: Organisation, region: Region, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    network = services.create_network(owner(acme), acme, region, "busy", "10.50.0.0/24")
    nodes = list(make_cluster(network, [hypervisors[0]] * 100, allocate=False).nodes.all())
    start = threading.Barrier(len(nodes))
    errors: list[BaseException] = []

    def allocate(node: Node) -> None:
        try:
            start.wait()
            addresses.allocate(node)
        except BaseException as err:  # reported below, a thread cannot fail the test itself
            errors.append(err)
        finally:
            connections.close_all()  # each thread has its own connection

    threads = [threading.Thread(target=allocate, args=(n,)) for n in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    held = list(Port.objects.filter(network=network).values_list("address", flat=True))
    assert len(held) == len(set(held)) == 100
    assert set(held) == {f"10.50.0.{i}" for i in range(2, 102)}
