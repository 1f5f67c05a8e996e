"""The libvirt XML builders, pinned by golden files (UPDATE_GOLDEN=1 rewrites them on purpose)."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from provisioning.drivers import xml as lvxml
from provisioning.drivers.base import (
    DhcpHost,
    DomainSpec,
    FirewallRuleSpec,
    NetworkSpec,
    NicSpec,
    NwfilterSpec,
    PermanentDriverError,
    Virtualisation,
    VolumeSpec,
)

GOLDEN = Path(__file__).parent / "golden"

DOMAIN = DomainSpec(
    name="k3s-1a2b3c4d-0",
    vcpus=2,
    memory_mib=4096,
    disk_pool="default",
    disk_volume="k3s-1a2b3c4d-0.qcow2",
    nics=(
        NicSpec(
            network="tn-acme",
            bridge="tnbr9",
            mac="52:54:00:aa:bb:01",
            ip="10.20.0.11",
            nwfilter="fw-1",
        ),
    ),
    smbios_serial="ds=nocloud-net;s=https://portal.example/guest/tok<&>/",
)
CLONE = VolumeSpec(pool="default", name="k3s-1a2b3c4d-0.qcow2", capacity_gib=20, backing_volume="b")
NETWORK = NetworkSpec(
    name="tn-acme",
    bridge="br-tn-4097",
    segment_id=4097,
    gateway="10.20.0.1",
    prefix=24,
    dhcp_hosts=(
        DhcpHost(mac="52:54:00:aa:bb:01", ip="10.20.0.11", name="k3s-1a2b3c4d-0"),
        DhcpHost(mac="52:54:00:aa:bb:02", ip="10.20.0.12", name="k3s-1a2b3c4d-1"),
    ),
)
NWFILTER = NwfilterSpec(
    name="fw-1",
    network_cidr="10.20.0.0/24",
    rules=(
        FirewallRuleSpec("ingress", "tcp", 6443, 6443, "0.0.0.0/0"),
        FirewallRuleSpec("ingress", "udp", 30000, 32767, "192.0.2.0/24"),
        FirewallRuleSpec("ingress", "icmp", None, None, "0.0.0.0/0"),
        FirewallRuleSpec("egress", "tcp", 443, None, "198.51.100.7/32"),
        FirewallRuleSpec("egress", "all", None, None, "203.0.113.0/24"),
    ),
)


def find(parent: ET.Element, path: str) -> ET.Element:
    el = parent.find(path)
    assert el is not None, path
    return el


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_domain_xml_golden() -> None:
    text = lvxml.domain_xml(DOMAIN)
    assert_golden("domain.xml", text)
    root = ET.fromstring(text)
    assert root.get("type") == "kvm"
    assert root.findtext("memory") == "4096"
    assert find(root, "memory").get("unit") == "MiB"
    assert root.findtext("vcpu") == "2"
    assert find(root, "os/smbios").get("mode") == "sysinfo"
    # Escaped by ElementTree, read back intact.
    assert root.findtext("sysinfo[@type='smbios']/system/entry[@name='serial']") == (
        DOMAIN.smbios_serial
    )
    assert root.findtext("on_crash") == "restart"
    disk = root.find("devices/disk[@type='volume']")
    assert disk is not None
    assert find(disk, "source").attrib == {"pool": "default", "volume": DOMAIN.disk_volume}
    assert find(disk, "driver").get("type") == "qcow2"
    assert find(disk, "target").attrib == {"dev": "vda", "bus": "virtio"}
    # On a real host the NIC joins the tenant bridge the host agent built, at its MTU.
    iface = root.find("devices/interface[@type='bridge']")
    assert iface is not None
    assert find(iface, "source").attrib == {"bridge": "tnbr9"}
    assert find(iface, "mtu").get("size") == "1450"
    assert find(iface, "mac").get("address") == "52:54:00:aa:bb:01"
    assert find(iface, "model").get("type") == "virtio"
    assert find(iface, "filterref").get("filter") == "fw-1"
    assert find(iface, "filterref/parameter").attrib == {"name": "IP", "value": "10.20.0.11"}
    assert root.find("devices/serial[@type='pty']") is not None
    assert root.find("uuid") is None


VIRTUALISATIONS = {
    "domain_kvm_host_passthrough.xml": Virtualisation("kvm", "host-passthrough"),
    "domain_qemu_custom_q35.xml": Virtualisation("qemu", "custom", "qemu64", "q35"),
    "domain_qemu_none.xml": Virtualisation("qemu", "none"),
}


@pytest.mark.parametrize("name", sorted(VIRTUALISATIONS))
def test_domain_xml_per_virtualisation(name: str) -> None:
    virt = VIRTUALISATIONS[name]
    text = lvxml.domain_xml(replace(DOMAIN, virtualisation=virt))
    assert_golden(name, text)
    root = ET.fromstring(text)
    assert root.get("type") == virt.virt_type
    cpu = root.find("cpu")
    if virt.cpu_mode == "none":
        assert cpu is None  # QEMU's default CPU for the domain type
    else:
        assert cpu is not None and cpu.get("mode") == virt.cpu_mode
    if virt.cpu_mode == "custom":
        assert root.findtext("cpu/model") == virt.cpu_model
    assert find(root, "os/type").get("machine") == (virt.machine_type or None)


@pytest.mark.parametrize("name", ["domain.xml", *sorted(VIRTUALISATIONS)])
def test_golden_domains_are_valid_libvirt_xml(name: str) -> None:
    validator = shutil.which("virt-xml-validate")
    if validator is None:
        pytest.skip("virt-xml-validate is not installed (Debian package libvirt-clients)")
    done = subprocess.run([validator, str(GOLDEN / name), "domain"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_domain_xml_variants() -> None:
    root = ET.fromstring(lvxml.domain_xml(DOMAIN, uuid="0b1e6d3e-0000-4000-8000-000000000001"))
    assert root.findtext("uuid") == "0b1e6d3e-0000-4000-8000-000000000001"
    test_driver = ET.fromstring(lvxml.domain_xml(DOMAIN, test_driver=True))
    assert test_driver.get("type") == "test" and test_driver.find("cpu") is None
    no_filter = replace(DOMAIN, nics=(NicSpec("n", "br", "52:54:00:00:00:01", "10.0.0.2", None),))
    assert ET.fromstring(lvxml.domain_xml(no_filter)).find(".//filterref") is None


@pytest.mark.parametrize(
    ("model", "usable", "expected"),
    [("Skylake-Client", "yes", True), ("kvm64", "no", False)],
)
def test_kvm_usable_reads_the_host_model(model: str, usable: str, expected: bool) -> None:
    caps = f"""<domainCapabilities><domain>kvm</domain><cpu>
      <mode name='host-model' supported='yes'><model fallback='forbid'>{model}</model></mode>
      <mode name='custom' supported='yes'><model usable='{usable}'>{model}</model></mode>
    </cpu></domainCapabilities>"""
    assert lvxml.kvm_usable(caps) is expected
    assert not lvxml.kvm_usable("<domainCapabilities><cpu/></domainCapabilities>")


def test_volume_clone_xml_golden() -> None:
    text = lvxml.volume_xml(CLONE, ("/var/lib/libvirt/images/default/b", "qcow2"))
    assert_golden("volume_clone.xml", text)
    root = ET.fromstring(text)
    assert root.findtext("name") == CLONE.name
    assert (root.findtext("capacity"), find(root, "capacity").get("unit")) == ("20", "GiB")
    assert find(root, "target/format").get("type") == "qcow2"
    assert root.findtext("backingStore/path") == "/var/lib/libvirt/images/default/b"
    assert find(root, "backingStore/format").get("type") == "qcow2"


def test_volume_without_backing_has_no_backing_store() -> None:
    spec = VolumeSpec(pool="default", name="base.qcow2", capacity_gib=1, backing_volume=None)
    assert ET.fromstring(lvxml.volume_xml(spec, None)).find("backingStore") is None


def test_volume_target_reads_libvirt_output() -> None:
    libvirt_output = (
        "<volume type='file'><name>b</name><target><path>/p/b</path>"
        "<format type='raw'/></target></volume>"
    )
    assert lvxml.volume_target(libvirt_output) == ("/p/b", "raw")


def test_network_xml_golden_and_round_trip() -> None:
    text = lvxml.network_xml(NETWORK)
    assert_golden("network.xml", text)
    root = ET.fromstring(text)
    assert root.find("forward") is None  # isolated
    assert find(root, "bridge").get("name") == "br-tn-4097"
    assert find(root, "mtu").get("size") == "1450"
    assert find(root, "ip").attrib == {"address": "10.20.0.1", "prefix": "24"}
    assert root.find("ip/dhcp/range") is None  # addresses come from the portal's IPAM only
    assert [h.get("ip") for h in root.iterfind("ip/dhcp/host")] == ["10.20.0.11", "10.20.0.12"]
    segment = root.find(f"metadata/{{{lvxml.PORTAL_NS}}}segment")
    assert segment is not None and segment.get("vni") == "4097"
    assert lvxml.network_spec_from_xml(text) == NETWORK


def test_dhcp_host_xml() -> None:
    host = ET.fromstring(lvxml.dhcp_host_xml(NETWORK.dhcp_hosts[0]))
    assert host.tag == "host"
    assert host.attrib == {"mac": "52:54:00:aa:bb:01", "ip": "10.20.0.11", "name": "k3s-1a2b3c4d-0"}


def test_nwfilter_xml_golden() -> None:
    text = lvxml.nwfilter_xml(NWFILTER)
    assert_golden("nwfilter.xml", text)
    root = ET.fromstring(text)
    assert root.attrib == {"name": "fw-1", "chain": "root"}
    assert find(root, "filterref").get("filter") == "clean-traffic"
    rules = root.findall("rule")
    established = rules[0]
    assert established.get("direction") == "inout"
    assert find(established, "all").get("state") == "ESTABLISHED,RELATED"
    same_net_in, same_net_out = rules[1], rules[2]
    assert find(same_net_in, "all").attrib == {"srcipaddr": "10.20.0.0", "srcipmask": "24"}
    assert find(same_net_out, "all").attrib == {"dstipaddr": "10.20.0.0", "dstipmask": "24"}
    api, nodeports, icmp, https_out, all_out = rules[3:8]
    assert api.get("direction") == "in"
    assert find(api, "tcp").attrib == {"dstportstart": "6443", "dstportend": "6443"}
    assert find(nodeports, "udp").attrib == {
        "srcipaddr": "192.0.2.0",
        "srcipmask": "24",
        "dstportstart": "30000",
        "dstportend": "32767",
    }
    assert icmp.find("icmp") is not None
    assert https_out.get("direction") == "out"
    assert find(https_out, "tcp").attrib == {
        "dstipaddr": "198.51.100.7",
        "dstipmask": "32",
        "dstportstart": "443",
        "dstportend": "443",
    }
    assert find(all_out, "all").get("dstipaddr") == "203.0.113.0"
    drop = rules[-1]
    assert (drop.get("action"), drop.get("direction")) == ("drop", "in")
    assert find(drop, "all").attrib == {}
    # The final drop comes last in libvirt's priority order.
    priorities = [int(r.get("priority", "500")) for r in rules]
    assert max(priorities) == priorities[-1] and priorities.count(priorities[-1]) == 1


@pytest.mark.parametrize(
    "rule",
    [
        FirewallRuleSpec("sideways", "tcp", 22, 22, "0.0.0.0/0"),
        FirewallRuleSpec("ingress", "sctp", 22, 22, "0.0.0.0/0"),
        FirewallRuleSpec("ingress", "tcp", 22, 22, "not-a-cidr"),
    ],
)
def test_nwfilter_rejects_bad_rules(rule: FirewallRuleSpec) -> None:
    with pytest.raises(PermanentDriverError) as exc:
        lvxml.nwfilter_xml(NwfilterSpec("fw", "10.0.0.0/24", (rule,)))
    assert exc.value.code == "invalid_config"


def test_test_node_xml_golden() -> None:
    text = lvxml.test_node_xml(
        "hv-1", 8, 16384, "default", 200, ("ubuntu-k3s.qcow2", "debian.qcow2")
    )
    assert_golden("test_node.xml", text)
    root = ET.fromstring(text)
    assert root.findtext("cpu/active") == "8"
    assert root.findtext("memory") == str(16384 * 1024)
    pool = root.find("pool[@type='dir']")
    assert pool is not None and pool.findtext("name") == "default"
    assert [v.findtext("name") for v in pool.iterfind("volume")] == [
        "ubuntu-k3s.qcow2",
        "debian.qcow2",
    ]
    assert {find(v, "target/format").get("type") for v in pool.iterfind("volume")} == {"qcow2"}
