"""Firewalls proven with packets: the product's nwfilter, defined on this host's libvirtd,
bound to "VM" ports on a tenant bridge that `HostNetworks` built in this machine's own
namespace (where libvirtd's filters apply), as a real host carries a guest's tap.

The firewall allows TCP 22 from anywhere. A client outside the network (behind the
network's gateway, as traffic routed in from the internet arrives) reaches port 22 and not
port 8080; a VM of the same network reaches 8080 (the listener is there, and a network's
own traffic is always allowed) unless it forges its source address. Needs libvirtd
(qemu:///system) and root; removes everything it made.
"""

import contextlib
import secrets
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from networking import services
from networking.models import Firewall, Network
from portal.models import Organisation
from provisioning import host_network
from provisioning.drivers.base import DriverError
from provisioning.drivers.hostnet.networks import HostNetworks
from provisioning.drivers.hostnet.site import Site
from provisioning.drivers.libvirt import LibvirtDriver
from provisioning.models import Hypervisor, Node, Region
from tests.networking.conftest import MakeCluster, owner
from tests.networking.netns import UDHCPC_SCRIPT, Lab, ip, unavailable

pytestmark = [pytest.mark.libvirtd, pytest.mark.django_db]

URI = "qemu:///system"
SUFFIX = secrets.token_hex(3)
SUBNET = f"10.251.{secrets.randbelow(250) + 1}"
OUTSIDE = ("198.51.100.1", "198.51.100.10")  # the gateway's and the client's ends
ALLOW_SSH = [{"direction": "ingress", "protocol": "tcp", "ports": "22", "cidr": "0.0.0.0/0"}]


@dataclass(frozen=True)
class Vm:
    ns: str
    port: str
    mac: str
    ip: str


@dataclass
class Bench:
    lab: Lab
    conn: libvirt.virConnect
    vms: list[Vm]
    outside: str
    bindings: dict[str, libvirt.virNWFilterBinding]


def binding_xml(vm: Vm, nwfilter: str) -> str:
    """What libvirt instantiates for a guest's NIC, for a veth port instead of a tap."""
    root = ET.Element("filterbinding")
    owner_el = ET.SubElement(root, "owner")
    ET.SubElement(owner_el, "name").text = vm.ns
    ET.SubElement(owner_el, "uuid").text = str(uuid.uuid4())
    ET.SubElement(root, "portdev", name=vm.port)
    ET.SubElement(root, "mac", address=vm.mac)
    ref = ET.SubElement(root, "filterref", filter=nwfilter)
    ET.SubElement(ref, "parameter", name="IP", value=vm.ip)
    return ET.tostring(root, encoding="unicode")


@pytest.fixture
def bench(
    region: Region,
    hypervisors: list[Hypervisor],
    acme: Organisation,
    make_cluster: MakeCluster,
    tmp_path: Path,
) -> Iterator[Bench]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    site = Site(tmp_path / "hostnet", "http://127.0.0.1:9", "test-key", prefix=f"fw{SUFFIX}-")
    driver = LibvirtDriver(URI, site)
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as err:
        pytest.skip(f"no libvirtd answering on {URI}: {err}")
    network = services.create_network(owner(acme), acme, region, "fw", f"{SUBNET}.0/24")
    # High in the VNI space, with egress on: this machine's own namespace is the host here.
    Network.objects.filter(pk=network.pk).update(
        segment_id=16_700_000 + secrets.randbelow(70_000), egress=True
    )
    network.refresh_from_db()
    firewall = Firewall.objects.get(network=network, is_default=True)
    Firewall.objects.filter(pk=firewall.pk).update(rules=ALLOW_SSH)
    firewall.refresh_from_db()
    hv = hypervisors[0]
    make_cluster(network, [hv, hv], firewall=firewall)
    on_host = host_network.live_nodes().filter(cluster__network=network)
    spec = host_network.network_spec(network, on_host, hv)
    networks = HostNetworks(site)
    nwfilter = host_network.nwfilter_spec(firewall)
    script = tmp_path / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    with Lab() as lab:
        made = Bench(lab, conn, [], "", {})
        try:
            networks.ensure_network(spec)
            driver.ensure_nwfilter(nwfilter)
            for index, node in enumerate(Node.objects.filter(cluster__network=network)):
                assert node.port is not None
                vm = Vm(lab.namespace(f"vm{index}"), f"f{SUFFIX}{index}", node.port.mac,
                        node.port.address)  # fmt: skip
                ip("link", "add", vm.port, "type", "veth", "peer", "name", "eth0", "netns", vm.ns)
                ip("link", "set", vm.port, "mtu", "1450", "master", spec.bridge, "up")
                ip("-n", vm.ns, "link", "set", "eth0", "address", vm.mac, "up")
                Lab.dhcp(vm.ns, "eth0", script)
                made.bindings[vm.ns] = conn.nwfilterBindingCreateXML(binding_xml(vm, nwfilter.name))
                made.vms.append(vm)
            # The outside: a client routed in through the network's gateway namespace.
            made.outside = lab.namespace("out")
            tenant = site.tenant_ns(spec.name)
            ip("link", "add", "ext0", "netns", tenant, "type", "veth", "peer", "name", "eth0",
               "netns", made.outside)  # fmt: skip
            ip("-n", tenant, "addr", "add", f"{OUTSIDE[0]}/24", "dev", "ext0")
            ip("-n", tenant, "link", "set", "ext0", "up")
            ip("-n", made.outside, "addr", "add", f"{OUTSIDE[1]}/24", "dev", "eth0")
            ip("-n", made.outside, "link", "set", "eth0", "up")
            ip("-n", made.outside, "route", "add", "default", "via", OUTSIDE[0])
            yield made
        finally:
            for binding in made.bindings.values():
                binding.delete()
            networks.delete_network(spec.name)
            with contextlib.suppress(DriverError):  # the assertion below reports it
                driver.delete_nwfilter(nwfilter.name)
            assert nwfilter.name not in conn.listNWFilters()
            conn.close()


def test_allowed_port_open_other_ingress_dropped_spoofed_source_dropped(bench: Bench) -> None:
    lab = bench.lab
    target, neighbour = bench.vms
    listener = lab.listen(target.ns, 22, 8080)
    try:
        assert lab.connects(bench.outside, target.ip, 22)  # the firewall's rule
        assert not lab.connects(bench.outside, target.ip, 8080)  # any other ingress: dropped
        assert lab.connects(neighbour.ns, target.ip, 8080)  # the same network: allowed
        # A forged source address never leaves the neighbour's port (clean-traffic).
        ip("-n", neighbour.ns, "addr", "add", f"{SUBNET}.99/32", "dev", "eth0")
        assert not lab.connects(neighbour.ns, target.ip, 8080, source=f"{SUBNET}.99")
        # Without the target's filter, 8080 is open from outside: the filter dropped it.
        bench.bindings.pop(target.ns).delete()
        assert lab.connects(bench.outside, target.ip, 8080)
    finally:
        listener.kill()
        listener.wait(timeout=5)
