"""A region with two libvirt test-driver hypervisors, and a factory of clusters with nodes.

Importing the worker's tasks registers them, so a rollout enqueued by name runs eagerly
here as in a worker.
"""

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User

import provisioning.tasks  # noqa: F401  (registers the rollout task)
from networking import services
from networking.models import Firewall, Network
from portal.actor import Actor
from portal.models import Organisation, Role
from provisioning import addresses
from provisioning.drivers.xml import test_node_xml
from provisioning.models import Cluster, Hypervisor, K3sVersion, Node, NodePool, NodeSize, Region


def owner(organisation: Organisation) -> Actor:
    """The organisation's owner (alice for acme, bob for bobco), acting in it."""
    membership = organisation.memberships.select_related("user").get(role=Role.OWNER)
    return Actor(user=membership.user, organisation=organisation)


@pytest.fixture
def region(db: None) -> Region:
    return Region.objects.create(slug="eu-1", name="Europe 1")


@pytest.fixture
def hypervisors(region: Region, tmp_path: Path) -> list[Hypervisor]:
    """hv-1 and hv-2; a fresh node file per test is a fresh test-driver state."""
    hosts = []
    for name in ("hv-1", "hv-2"):
        node_file = tmp_path / f"{name}.xml"
        node_file.write_text(test_node_xml(name, 16, 32768, "default", 200, ("base.qcow2",)))
        hosts.append(Hypervisor.objects.create(name=name, region=region, uri=f"test://{node_file}"))
    return hosts


@pytest.fixture
def acme_net(acme: Organisation, region: Region, alice: User) -> Network:
    return services.create_network(owner(acme), acme, region, "web", "10.20.0.0/24")


def default_firewall(network: Network) -> Firewall:
    return Firewall.objects.get(network=network, is_default=True)


MakeCluster = Callable[..., Cluster]


@pytest.fixture
def make_cluster(db: None) -> MakeCluster:
    """make_cluster(network, [hv, hv, ...], firewall=None, name=...) -> a cluster whose nodes
    sit on those hypervisors, each holding an address (as create_cluster leaves them)."""
    version = K3sVersion.objects.get_or_create(version="v1.31.4+k3s1")[0]
    size = NodeSize.objects.get_or_create(
        slug="small",
        defaults={"vcpus": 1, "memory_mib": 2048, "disk_gib": 20, "monthly_price": Decimal(10)},
    )[0]
    counter = iter(range(1000))

    def make(
        network: Network,
        hosts: list[Hypervisor],
        firewall: Firewall | None = None,
        name: str | None = None,
        allocate: bool = True,
    ) -> Cluster:
        cluster = Cluster.objects.create(
            organisation=network.organisation,
            name=name or f"c{next(counter)}",
            region=network.region,
            k3s_version=version,
            network=network,
            firewall=firewall or default_firewall(network),
        )
        pool = NodePool.objects.create(cluster=cluster, name="pool", size=size, count=len(hosts))
        for index, host in enumerate(hosts):
            node = Node.objects.create(
                cluster=cluster,
                pool=pool,
                name=f"{cluster.name}-pool-{index}",
                is_server=index == 0,
                hypervisor=host,
            )
            if allocate:
                addresses.allocate(node)
        return cluster

    return make
