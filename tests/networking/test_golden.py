"""What networking feeds the XML builders, pinned as golden files (UPDATE_GOLDEN=1 rewrites)."""

import os
import uuid
from pathlib import Path

from networking import services
from networking.models import Firewall, Network
from portal.models import Organisation
from provisioning import addresses, host_network
from provisioning.drivers import xml as lvxml
from provisioning.models import Cluster, Hypervisor, Node, Region
from tests.networking.conftest import MakeCluster, owner

GOLDEN = Path(__file__).parent / "golden"


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_tenant_network_xml(
    acme: Organisation,
    region: Region,
    make_cluster: MakeCluster,
    hypervisors: list[Hypervisor],
    settings,
) -> None:
    settings.NETWORK_VNI_MIN = 4097
    network = services.create_network(owner(acme), acme, region, "web", "10.20.0.0/24")
    cluster = make_cluster(
        network, [hypervisors[0]] * 2 + [hypervisors[1]], name="shop", allocate=False
    )
    Cluster.objects.filter(pk=cluster.pk).update(uuid=uuid.UUID(int=0x1A2B3C4D << 96))
    for index, node in enumerate(cluster.nodes.order_by("id")):
        Node.objects.filter(pk=node.pk).update(uuid=uuid.UUID(int=0xA0B0C0 + index))
    for node in cluster.nodes.order_by("id"):  # the MAC comes from the owner's uuid
        addresses.allocate(node)
    on_hv1 = host_network.live_nodes().filter(hypervisor=hypervisors[0])
    assert_golden(
        "tenant_network.xml", lvxml.network_xml(host_network.network_spec(network, on_hv1))
    )


def test_firewall_nwfilter_xml(acme_net: Network) -> None:
    firewall = services.create_firewall(
        owner(acme_net.organisation),
        acme_net.organisation,
        acme_net,
        "web",
        [
            {"direction": "ingress", "protocol": "tcp", "ports": "443", "cidr": "0.0.0.0/0"},
            {
                "direction": "ingress",
                "protocol": "udp",
                "ports": "30000-32767",
                "cidr": "192.0.2.0/24",
                "label": "node ports",
            },
            {"direction": "ingress", "protocol": "icmp", "cidr": "198.51.100.0/24"},
            {"direction": "egress", "protocol": "all", "cidr": "0.0.0.0/0"},
        ],
    )
    Firewall.objects.filter(pk=firewall.pk).update(uuid=uuid.UUID(int=0xF1 << 120))
    firewall.refresh_from_db()
    assert_golden("firewall_nwfilter.xml", lvxml.nwfilter_xml(host_network.nwfilter_spec(firewall)))


def test_default_firewall_nwfilter_xml(acme_net: Network) -> None:
    firewall = Firewall.objects.get(network=acme_net, is_default=True)
    Firewall.objects.filter(pk=firewall.pk).update(uuid=uuid.UUID(int=0xF0 << 120))
    firewall.refresh_from_db()
    assert_golden("default_nwfilter.xml", lvxml.nwfilter_xml(host_network.nwfilter_spec(firewall)))
