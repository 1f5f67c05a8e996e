"""Rows for tests that need a cluster or a node without running a launch."""

import uuid
from typing import Any

from networking.models import Firewall, Network
from portal.models import Organisation
from provisioning.models import (
    Cluster,
    Hypervisor,
    K3sVersion,
    Node,
    NodePool,
    NodeSize,
    Region,
)


def make_cluster(organisation: Organisation, region: Region, name: str = "c") -> Cluster:
    network = Network.objects.create(
        organisation=organisation,
        region=region,
        name=f"n-{uuid.uuid4().hex[:6]}",
        cidr="10.0.0.0/24",
        gateway="10.0.0.1",
        segment_id=Network.objects.count() + 10000,
    )
    firewall = Firewall.objects.create(
        organisation=organisation, network=network, name=f"f-{network.name}"
    )
    version, _ = K3sVersion.objects.get_or_create(version="v1.31.4+k3s1")
    return Cluster.objects.create(
        organisation=organisation,
        name=name,
        region=region,
        k3s_version=version,
        network=network,
        firewall=firewall,
    )


def make_cluster_node(host: Hypervisor, size: NodeSize) -> Node:
    """A node on `host` holding one `size` worth of its claimed capacity."""
    suffix = uuid.uuid4().hex[:6]
    organisation = Organisation.objects.create(slug=f"org-{suffix}", name=suffix)
    cluster = make_cluster(organisation, host.region)
    pool = NodePool.objects.create(cluster=cluster, name="p", size=size, count=1)
    return Node.objects.create(
        cluster=cluster,
        pool=pool,
        name="c-p-0",
        hypervisor=host,
        claimed_vcpus=size.vcpus,
        claimed_memory_mib=size.memory_mib,
    )


def launch(api: Any, name: str, count: int = 1) -> Cluster:
    """A cluster of one pool of `count` small nodes, created through the API."""
    body = {
        "name": name,
        "region": "demo",
        "pools": [{"name": "w", "size": "small", "count": count}],
    }
    assert api.post("/api/v1/clusters", body, format="json").status_code == 202
    return Cluster.objects.get(name=name)
