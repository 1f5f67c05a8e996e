"""Tenant isolation on real Linux bridges and VXLAN, built in network namespaces.

Two organisations create a network with the same CIDR through the product; each network's
segment is then built on two "hypervisors" (namespaces joined by a veth underlay) the way a
host carries it: a bridge `tnbr<VNI>` (MTU 1450) with a VXLAN device of that VNI enslaved,
and each node's "VM" (a namespace) on a veth port with the MAC and address of its static
DHCP entry (`provisioning.host_network.network_spec`). Bridges and VXLAN devices are created only
when missing, as a host re-uses what is there, so two networks given one VNI would share a
bridge and these tests would see it.

The hosts' bridges carry no address here: isolation is about the tenants' L2 segments.
Skipped unless root may create network namespaces (CI runs as root).
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from networking import services
from networking.models import Network
from portal.models import Organisation
from provisioning import host_network
from provisioning.models import Hypervisor, Node, Region
from tests.networking.conftest import MakeCluster, owner
from tests.networking.netns import Lab, ip, unavailable

CIDR = "10.0.0.0/24"  # both organisations chose it
VXLAN_PORT = "4789"


@dataclass(frozen=True)
class Vm:
    ns: str
    mac: str
    ip: str


@dataclass(frozen=True)
class Topology:
    lab: Lab
    net_a: Network
    net_b: Network
    host_ns: dict[str, str]  # hypervisor name -> namespace
    vms: dict[str, Vm]  # node domain name -> its "VM"

    def vm(self, node: Node) -> Vm:
        return self.vms[node.domain_name]


@pytest.fixture(scope="module")
def netns_allowed() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)


def vxlan_name(vni: int) -> str:
    return f"vxlan{vni}"


def ensure_link(ns: str, name: str, *spec: str) -> None:
    if name not in Lab.links(ns):
        ip("-n", ns, "link", "add", name, *spec)


def build(lab: Lab, hypervisors: list[Hypervisor], networks: list[Network]) -> Topology:
    host_ns = {hv.name: lab.namespace(f"hv{i}") for i, hv in enumerate(hypervisors, 1)}
    underlay = {hv.name: f"192.0.2.{i}" for i, hv in enumerate(hypervisors, 1)}
    first, second = (host_ns[hv.name] for hv in hypervisors)
    ip("link", "add", "ul0", "netns", first, "type", "veth", "peer", "name", "ul0", "netns", second)
    for name, ns in host_ns.items():
        ip("-n", ns, "addr", "add", f"{underlay[name]}/24", "dev", "ul0")
        ip("-n", ns, "link", "set", "ul0", "up")
    vms: dict[str, Vm] = {}
    for hv in hypervisors:
        ns = host_ns[hv.name]
        (remote,) = (address for name, address in underlay.items() if name != hv.name)
        for network in networks:
            on_host = host_network.live_nodes().filter(cluster__network=network, hypervisor=hv)
            spec = host_network.network_spec(network, on_host)
            ensure_link(ns, spec.bridge, "mtu", str(spec.mtu), "type", "bridge")
            vxlan = vxlan_name(spec.segment_id)
            ensure_link(
                ns, vxlan, "mtu", str(spec.mtu), "type", "vxlan", "id", str(spec.segment_id),
                "dstport", VXLAN_PORT, "local", underlay[hv.name], "remote", remote, "dev", "ul0",
            )  # fmt: skip
            ip("-n", ns, "link", "set", vxlan, "master", spec.bridge, "up")
            ip("-n", ns, "link", "set", spec.bridge, "up")
            for dhcp in spec.dhcp_hosts:
                vm = Vm(ns=lab.namespace(f"vm{len(vms) + 1}"), mac=dhcp.mac, ip=dhcp.ip)
                port = f"vnet{len(vms)}"
                ip("-n", ns, "link", "add", port, "mtu", str(spec.mtu), "type", "veth",
                   "peer", "name", "eth0", "netns", vm.ns)  # fmt: skip
                ip("-n", ns, "link", "set", port, "master", spec.bridge, "up")
                ip("-n", vm.ns, "link", "set", "eth0", "address", vm.mac, "mtu", str(spec.mtu))
                ip("-n", vm.ns, "addr", "add", f"{vm.ip}/{spec.prefix}", "dev", "eth0")
                ip("-n", vm.ns, "link", "set", "eth0", "up")
                vms[dhcp.name] = vm
    return Topology(lab, networks[0], networks[1], host_ns, vms)


@pytest.fixture
def topology(
    netns_allowed: None,
    region: Region,
    hypervisors: list[Hypervisor],
    acme: Organisation,
    bobco: Organisation,
    make_cluster: MakeCluster,
) -> Iterator[Topology]:
    """acme: a1 (hv-1) and a2 (hv-2); bobco: b1, b3 on hv-1 and b2, b4 on hv-2."""
    hv1, hv2 = hypervisors
    net_a = services.create_network(owner(acme), acme, region, "shared", CIDR)
    net_b = services.create_network(owner(bobco), bobco, region, "shared", CIDR)
    make_cluster(net_a, [hv1, hv2])
    make_cluster(net_b, [hv1, hv2, hv1, hv2])
    with Lab() as lab:
        yield build(lab, hypervisors, [net_a, net_b])


def nodes(network: Network) -> list[Node]:
    return list(
        Node.objects.filter(cluster__network=network).select_related("cluster").order_by("id")
    )


def test_the_two_networks_overlap_in_addresses_but_not_in_segments(topology: Topology) -> None:
    net_a, net_b = topology.net_a, topology.net_b
    assert net_a.cidr == net_b.cidr == CIDR
    assert net_a.segment_id != net_b.segment_id
    assert [topology.vm(n).ip for n in nodes(net_a)] == ["10.0.0.2", "10.0.0.3"]
    assert [topology.vm(n).ip for n in nodes(net_b)] == [
        "10.0.0.2",
        "10.0.0.3",
        "10.0.0.4",
        "10.0.0.5",
    ]


def test_a_tenant_reaches_its_own_vm_on_another_host_across_vxlan(topology: Topology) -> None:
    a1, a2 = (topology.vm(n) for n in nodes(topology.net_a))
    b2 = topology.vm(nodes(topology.net_b)[1])
    assert b2.ip == a2.ip
    assert topology.lab.ping(a1.ns, a2.ip)
    # The answer came from acme's VM, not from bobco's VM at the same address.
    assert topology.lab.neighbour(a1.ns, a2.ip) == a2.mac != b2.mac
    assert topology.lab.ping(a2.ns, a1.ip)
    assert topology.lab.neighbour(a2.ns, a1.ip) == a1.mac
    # A full 1450-byte packet with DF set fits: the MTU leaves room for the VXLAN header.
    assert topology.lab.ping(a1.ns, a2.ip, size=1450 - 28)


def test_a_tenant_cannot_reach_the_other_tenants_vms(topology: Topology) -> None:
    lab = topology.lab
    vms_a = [topology.vm(n) for n in nodes(topology.net_a)]
    vms_b = [topology.vm(n) for n in nodes(topology.net_b)]
    a1, a2 = vms_a
    b1, b2, b3, b4 = vms_b
    macs_a, macs_b = {vm.mac for vm in vms_a}, {vm.mac for vm in vms_b}

    # bobco's addresses acme does not use, on a1's own host (b3) and on the other one (b4).
    for target in (b3, b4):
        assert not lab.ping(a1.ns, target.ip), f"acme reached bobco's {target.ip}"
        assert lab.neighbour(a1.ns, target.ip) is None
    # The shared addresses lead to acme's own VMs only.
    assert lab.ping(a1.ns, b2.ip)
    assert lab.neighbour(a1.ns, b2.ip) == a2.mac
    assert lab.ping(a2.ns, b1.ip)
    assert lab.neighbour(a2.ns, b1.ip) == a1.mac

    # Nothing of acme's arrived anywhere in bobco's segment: no echo request, no ARP, and no
    # frame from an acme MAC ever crossed a bobco bridge on either host.
    for vm in vms_b:
        assert lab.echo_requests_received(vm.ns) == 0, vm
        assert not lab.neighbour_macs(vm.ns) & macs_a, vm
    bridge_a, bridge_b = topology.net_a.bridge, topology.net_b.bridge
    for ns in topology.host_ns.values():
        assert macs_a <= lab.learned_macs(ns, bridge_a)  # the bridges do learn what crosses
        assert not lab.learned_macs(ns, bridge_b) & macs_a

    # bobco's VMs were up: bobco reaches them on the same host and across the underlay.
    assert lab.ping(b1.ns, b3.ip)
    assert lab.ping(b1.ns, b4.ip)
    assert lab.neighbour(b1.ns, b4.ip) == b4.mac
    for ns in topology.host_ns.values():
        assert not lab.learned_macs(ns, bridge_a) & macs_b
    assert lab.echo_requests_received(a1.ns) == 1  # a2's ping, not bobco's


def test_no_bridge_carries_both_tenants(topology: Topology) -> None:
    net_a, net_b = topology.net_a, topology.net_b
    assert net_a.bridge != net_b.bridge
    for ns in topology.host_ns.values():
        ports_a = topology.lab.ports(ns, net_a.bridge)
        ports_b = topology.lab.ports(ns, net_b.bridge)
        assert vxlan_name(net_a.segment_id) in ports_a
        assert vxlan_name(net_b.segment_id) in ports_b
        assert not ports_a & ports_b
        assert len(ports_a) == 2 and len(ports_b) == 3  # the VXLAN device and the VMs here
