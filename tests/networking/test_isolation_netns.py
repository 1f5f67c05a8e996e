"""Tenant networks as the host agent builds them, on two "hypervisors" made of network
namespaces joined by an underlay link (the only thing this test builds itself: the wire).

Each host's part of a network comes from the product: `host_network.network_spec` (the
static leases, the host's underlay address, the segment's peers) applied by
`drivers.hostnet.HostNetworks` (bridge, VXLAN device with its flood list, the tenant
namespace with dnsmasq and the metadata proxy). Each node's "VM" is a namespace plugged into
the bridge by a veth pair, as libvirt plugs a tap, that takes its address by DHCP.

Two organisations chose the same CIDR; the proofs: a tenant reaches its own VM on the other
host at full MTU, the other tenant sees no frame, metadata answers only the asking node's
seed, and egress is NAT where it is turned on only. Skipped unless root may create network
namespaces (CI runs as root).
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from networking import services
from networking.models import Network
from portal.models import Organisation
from provisioning import api_forwards, guest_seed, host_network
from provisioning.drivers import metadata_key
from provisioning.drivers.hostnet import processes
from provisioning.drivers.hostnet.networks import HostNetworks
from provisioning.drivers.hostnet.segment import vxlan_name
from provisioning.drivers.hostnet.site import Site
from provisioning.models import Hypervisor, Node, Region
from tests.networking.conftest import MakeCluster, owner
from tests.networking.netns import UDHCPC_SCRIPT, Lab, ip, run, unavailable

pytestmark = pytest.mark.django_db(transaction=True)

CIDR = "10.0.0.0/24"  # both organisations chose it
METADATA = "http://169.254.169.254"


@dataclass(frozen=True)
class Vm:
    ns: str
    mac: str
    ip: str
    node: Node


@dataclass(frozen=True)
class Host:
    hypervisor: Hypervisor
    ns: str
    networks: HostNetworks


@dataclass(frozen=True)
class Topology:
    lab: Lab
    net_a: Network
    net_b: Network
    hosts: dict[str, Host]  # by hypervisor name
    vms: dict[str, Vm]  # by node domain name

    def vm(self, node: Node) -> Vm:
        return self.vms[node.domain_name]

    def spec(self, network: Network, host: Host) -> host_network.NetworkSpec:
        on_host = host_network.live_nodes().filter(
            cluster__network=network, hypervisor=host.hypervisor
        )
        return host_network.network_spec(network, on_host, host.hypervisor)


@pytest.fixture(scope="module")
def netns_allowed() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)


def plug(lab: Lab, host: Host, bridge: str, node: Node, script: Path) -> Vm:
    """A "VM" for `node`: a namespace on a port of `bridge`, configured by DHCP."""
    assert node.port is not None
    vm = Vm(lab.namespace(f"vm{node.pk}"), node.port.mac, node.port.address, node)
    port = f"vnet{node.pk}"
    ip("-n", host.ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", vm.ns)
    # As libvirt plugs a tap: at the bridge's MTU.
    ip("-n", host.ns, "link", "set", port, "mtu", "1450", "master", bridge, "up")
    ip("-n", vm.ns, "link", "set", "eth0", "address", vm.mac, "up")
    Lab.dhcp(vm.ns, "eth0", script)
    return vm


def build(
    topology: Topology, hypervisors: list[Hypervisor], portal_url: str, run_dir: Path
) -> None:
    """Fills `topology` as it goes, so a teardown after a failure finds what was made."""
    lab, hosts = topology.lab, topology.hosts
    for index, hv in enumerate(hypervisors, 1):
        ns = lab.namespace(f"hv{index}")
        # Its underlay address is where customers reach it too (the forwarded APIs).
        hv.underlay_address = hv.public_address = f"192.0.2.{index}"
        hv.save(update_fields=["underlay_address", "public_address"])
        site = Site(run_dir / hv.name, portal_url, metadata_key(), netns=ns, prefix=f"{ns}-")
        hosts[hv.name] = Host(hv, ns, HostNetworks(site))
    first, second = (host.ns for host in hosts.values())
    ip("link", "add", "ul0", "netns", first, "type", "veth", "peer", "name", "ul0", "netns", second)
    for host in hosts.values():
        ip("-n", host.ns, "addr", "add", f"{host.hypervisor.underlay_address}/24", "dev", "ul0")
        ip("-n", host.ns, "link", "set", "ul0", "up")
    script = run_dir / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    for server in Node.objects.filter(is_server=True).select_related("hypervisor"):
        api_forwards.allocate(server)  # as attaching a server node does
    for host in hosts.values():
        for network in (topology.net_a, topology.net_b):
            spec = topology.spec(network, host)
            host.networks.ensure_network(spec)
            host.networks.ensure_network(spec)  # again: converged, nothing changes
            nodes = Node.objects.filter(cluster__network=network, hypervisor=host.hypervisor)
            for node in nodes.select_related("port").order_by("id"):
                topology.vms[node.domain_name] = plug(lab, host, spec.bridge, node, script)


def teardown(topology: Topology) -> None:
    """What the last node leaving does on each host, for every network; then nothing of
    them is left on the machine."""
    for host in topology.hosts.values():
        for network in (topology.net_a, topology.net_b):
            host.networks.delete_network(network.libvirt_name)
        assert not {
            ns for ns in host.networks.site.namespaces() if ns.startswith(host.networks.site.prefix)
        }


@pytest.fixture
def topology(
    netns_allowed: None,
    region: Region,
    hypervisors: list[Hypervisor],
    acme: Organisation,
    bobco: Organisation,
    make_cluster: MakeCluster,
    live_server: object,
    tmp_path: Path,
) -> Iterator[Topology]:
    """acme (egress on): a1 (hv-1) and a2 (hv-2); bobco: b1, b3 on hv-1 and b2, b4 on hv-2."""
    hv1, hv2 = hypervisors
    net_a = services.create_network(owner(acme), acme, region, "shared", CIDR)
    net_b = services.create_network(owner(bobco), bobco, region, "shared", CIDR)
    Network.objects.filter(pk=net_a.pk).update(egress=True)
    net_a.refresh_from_db()
    make_cluster(net_a, [hv1, hv2])
    make_cluster(net_b, [hv1, hv2, hv1, hv2])
    for node in Node.objects.all():  # as a launch leaves them: each guest holds a token
        token = guest_seed.node_token(node)
        Node.objects.filter(pk=node.pk).update(token_digest=guest_seed.token_digest(token))
    with Lab() as lab:
        topology = Topology(lab, net_a, net_b, {}, {})
        try:
            build(topology, hypervisors, str(live_server), tmp_path)
            yield topology
        finally:
            teardown(topology)


def nodes(network: Network) -> list[Node]:
    return list(
        Node.objects.filter(cluster__network=network).select_related("cluster").order_by("id")
    )


def addresses_of(ns: str, dev: str) -> list[str]:
    [link] = json.loads(ip("-n", ns, "-j", "addr", "show", "dev", dev))
    return [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"]


def test_every_vm_took_its_portal_address_and_the_overlay_mtu_by_dhcp(
    topology: Topology,
) -> None:
    for vm in topology.vms.values():
        assert addresses_of(vm.ns, "eth0") == [f"{vm.ip}/24"], vm
        [link] = json.loads(ip("-n", vm.ns, "-j", "link", "show", "dev", "eth0"))
        assert link["mtu"] == 1450
        [route] = json.loads(ip("-n", vm.ns, "-j", "route", "show", "default"))
        assert route["gateway"] == "10.0.0.1"
    net_a, net_b = topology.net_a, topology.net_b
    assert net_a.cidr == net_b.cidr == CIDR and net_a.segment_id != net_b.segment_id
    assert [topology.vm(n).ip for n in nodes(net_a)] == ["10.0.0.2", "10.0.0.3"]
    assert [topology.vm(n).ip for n in nodes(net_b)] == [
        "10.0.0.2",
        "10.0.0.3",
        "10.0.0.4",
        "10.0.0.5",
    ]


def test_a_tenant_reaches_its_own_vm_on_another_host_at_full_mtu(topology: Topology) -> None:
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
    assert not topology.lab.ping(a1.ns, a2.ip, size=1450 - 28 + 1)
    # Each host floods the segment's unknown frames to the other one, and only there.
    for host, peer in (("hv-1", "192.0.2.2"), ("hv-2", "192.0.2.1")):
        assert flood_list(topology.hosts[host], topology.net_a) == {peer}


def flood_list(host: Host, network: Network) -> set[str]:
    entries = json.loads(
        run("bridge", "-n", host.ns, "-j", "fdb", "show", "dev", vxlan_name(network.segment_id))
    )
    return {e["dst"] for e in entries if e["mac"] == "00:00:00:00:00:00"}


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
    for host in topology.hosts.values():
        assert macs_a <= lab.learned_macs(host.ns, bridge_a)  # the bridges do learn
        assert not lab.learned_macs(host.ns, bridge_b) & macs_a

    # bobco's VMs were up: bobco reaches them on the same host and across the underlay.
    assert lab.ping(b1.ns, b3.ip)
    assert lab.ping(b1.ns, b4.ip)
    assert lab.neighbour(b1.ns, b4.ip) == b4.mac
    for host in topology.hosts.values():
        assert not lab.learned_macs(host.ns, bridge_a) & macs_b
    assert lab.echo_requests_received(a1.ns) == 1  # a2's ping, not bobco's


def test_no_bridge_carries_both_tenants(topology: Topology) -> None:
    net_a, net_b = topology.net_a, topology.net_b
    assert net_a.bridge != net_b.bridge
    for host in topology.hosts.values():
        ports_a = topology.lab.ports(host.ns, net_a.bridge)
        ports_b = topology.lab.ports(host.ns, net_b.bridge)
        assert {vxlan_name(net_a.segment_id), f"tg{net_a.segment_id}"} <= ports_a
        assert {vxlan_name(net_b.segment_id), f"tg{net_b.segment_id}"} <= ports_b
        assert not ports_a & ports_b
        # The VXLAN device, the gateway's port and the VMs here.
        assert len(ports_a) == 3 and len(ports_b) == 4


def test_metadata_answers_only_the_asking_nodes_seed(topology: Topology) -> None:
    a1, a2 = (topology.vm(n) for n in nodes(topology.net_a))
    b1 = topology.vm(nodes(topology.net_b)[0])
    assert b1.ip == a1.ip  # bobco's VM at acme's a1 address, on the same host

    def seed(vm: Vm, of: Vm) -> tuple[int, str]:
        return topology.lab.get(
            vm.ns, f"{METADATA}/guest/{guest_seed.node_token(of.node)}/meta-data"
        )

    status, body = seed(a1, a1)
    assert status == 200 and f"instance-id: {a1.node.uuid}" in body
    assert seed(a2, a2)[0] == 200  # through the other host's proxy
    assert seed(a2, a1)[0] == 404  # acme's other node, holding a1's token
    assert seed(b1, a1)[0] == 404  # same address, other tenant's network
    assert seed(b1, b1)[0] == 200
    # Only guest paths go through: the customer API is not reachable from a guest.
    assert topology.lab.get(a1.ns, f"{METADATA}/api/v1/clusters")[0] == 404


def test_egress_is_nat_where_the_tenant_turned_it_on_only(topology: Topology) -> None:
    a1 = topology.vm(nodes(topology.net_a)[0])
    b1 = topology.vm(nodes(topology.net_b)[0])
    outside = topology.hosts["hv-2"].hypervisor.underlay_address  # beyond hv-1
    assert outside is not None
    assert topology.lab.ping(a1.ns, outside)  # acme: egress on
    assert not topology.lab.ping(b1.ns, outside)  # bobco: off (the default)


def test_a_servers_api_is_forwarded_from_its_hosts_public_address_to_that_server_only(
    topology: Topology,
) -> None:
    """acme's and bobco's servers share hv-1 and the address 10.0.0.2; each has its own
    port of hv-1's public address. Reached from beyond the host (hv-2's namespace)."""
    a1 = topology.vm(nodes(topology.net_a)[0])
    b1 = topology.vm(nodes(topology.net_b)[0])
    assert a1.ip == b1.ip and a1.node.is_server and b1.node.is_server
    port_a, port_b = (Node.objects.get(pk=vm.node.pk).api_port for vm in (a1, b1))
    assert port_a is not None and port_b is not None and port_a != port_b
    public = topology.hosts["hv-1"].hypervisor.public_address
    assert public is not None
    client = topology.hosts["hv-2"].ns
    for listening, reached, other in ((a1, port_a, port_b), (b1, port_b, port_a)):
        listener = topology.lab.listen(listening.ns, api_forwards.API_PORT)
        try:
            assert topology.lab.connects(client, public, reached)
            assert not topology.lab.connects(client, public, other)  # the other tenant's
        finally:
            listener.kill()
            listener.wait(timeout=5)
    # bobco has no egress: its server answers forwarded connections but starts none out.
    assert not topology.lab.ping(b1.ns, public)


def test_the_last_node_leaving_takes_the_whole_segment_with_it(topology: Topology) -> None:
    host = topology.hosts["hv-1"]
    net_b = topology.net_b
    state = host.networks.site.state_dir(net_b.libvirt_name)
    pids = [state / "dnsmasq.pid", state / "metadata-proxy.pid"]
    assert all(processes.running(p) for p in pids)
    tenant_ns = host.networks.site.tenant_ns(net_b.libvirt_name)
    host.networks.delete_network(net_b.libvirt_name)
    host.networks.delete_network(net_b.libvirt_name)  # idempotent
    links = topology.lab.links(host.ns)
    assert not {net_b.bridge, vxlan_name(net_b.segment_id), f"tg{net_b.segment_id}"} & links
    assert tenant_ns not in host.networks.site.namespaces()
    assert not any(processes.running(p) for p in pids)
    assert not state.exists()
    # acme's network on the same host is untouched.
    a1, a2 = (topology.vm(n) for n in nodes(topology.net_a))
    assert topology.lab.ping(a1.ns, a2.ip)
